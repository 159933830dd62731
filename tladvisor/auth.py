"""Who may open the dashboard: nobody is asked by default, a shared team password, or OIDC sign-in.

The default server binds to 127.0.0.1, so only this machine reaches it and no login is needed.
A team deployment turns access control on in ``.streamlit/secrets.toml`` or the environment:

- ``[auth]`` (Streamlit's OIDC settings: ``redirect_uri``, ``cookie_secret``, ``client_id``,
  ``client_secret``, ``server_metadata_url``, or one sub-table per provider): people sign in with
  ``st.login()`` and their run owner is ``st.user.email`` (else the name), which they cannot type.
  This wins over a password.
- ``TLADVISOR_PASSWORD`` (environment, wins) or ``[tladvisor] password = "..."``: one shared
  password. The sign-in form also asks for the person's name, which then owns their runs; a
  session is locked out for a while after ``MAX_TRIES`` wrong passwords.

``require_access()`` is the gate ``app.py`` calls before routing. A configuration it cannot read
keeps the app closed with a message saying what to fix: failing open would publish the runs.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

OPEN, PASSWORD, OIDC = "open", "password", "oidc"
PASSWORD_ENV = "TLADVISOR_PASSWORD"
MAX_TRIES = 5  # wrong passwords a session may type before it is locked out
LOCKOUT_SECONDS = 60.0  # how long that lockout lasts
FAIL_DELAY_SECONDS = 1.0  # each wrong password also waits, so guessing is slow even before lockout

# Session-state keys (prefixed so no page widget can collide with them).
_IDENTITY = "auth_identity"  # the signed-in name (password mode)
_SIGNED_WITH = "auth_signed_with"  # tag of the password that was accepted (see _password_tag)
_FAILURES = "auth_failures"
_LOCKED_UNTIL = "auth_locked_until"
# A per-process key: the session keeps a tag of the accepted password, not the password itself,
# and changing the password signs every session out at its next interaction.
_TAG_KEY = secrets.token_bytes(32)


class AccessConfigError(RuntimeError):
    """The access settings are present but unusable (the app stays closed)."""


@dataclass(frozen=True)
class Access:
    """The access mode of this server and what it needs."""

    mode: str  # OPEN, PASSWORD or OIDC
    password: str | None = field(default=None, repr=False)  # never printed in logs or errors
    providers: tuple[str | None, ...] = ()  # OIDC: None = the [auth] table itself, else a sub-table


def access_from(secrets_: Mapping[str, Any], environ: Mapping[str, str]) -> Access:
    """The access mode for these secrets and environment (pure, so it is tested without a server).

    An empty password counts as none. ``[auth]`` with its own ``client_id`` is one provider
    (``st.login()``); its sub-tables (``[auth.google]``) are named providers.
    """
    auth = secrets_.get("auth")
    if auth is not None:
        if not isinstance(auth, Mapping) or not auth:
            raise AccessConfigError(
                "[auth] in .streamlit/secrets.toml is empty or not a table; fill in Streamlit's "
                "OIDC settings (redirect_uri, cookie_secret, client_id, client_secret, "
                "server_metadata_url) or remove the section"
            )
        named = tuple(str(k) for k, v in auth.items() if isinstance(v, Mapping))
        providers: tuple[str | None, ...] = ((None,) if "client_id" in auth else ()) + named
        if not providers:
            raise AccessConfigError(
                "[auth] in .streamlit/secrets.toml has no client_id and no provider table "
                "(e.g. [auth.google]); add one so people can sign in"
            )
        return Access(OIDC, providers=providers)
    password = environ.get(PASSWORD_ENV)
    if not password:
        section = secrets_.get("tladvisor")
        password = section.get("password") if isinstance(section, Mapping) else None
    if password is None or password == "":
        return Access(OPEN)
    if not isinstance(password, str):
        raise AccessConfigError(
            "[tladvisor] password in .streamlit/secrets.toml must be a quoted string, "
            f'got a {type(password).__name__}; write password = "..."'
        )
    return Access(PASSWORD, password=password)


def passwords_match(given: str, expected: str) -> bool:
    """Constant-time comparison, so the time taken does not reveal how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _password_tag(password: str) -> str:
    return hmac.new(_TAG_KEY, password.encode("utf-8"), hashlib.sha256).hexdigest()


def _secrets() -> Mapping[str, Any]:
    """This server's secrets, {} when there is no secrets file; raises when one exists but cannot
    be read (a broken file must not silently switch the password off)."""
    try:
        return dict(st.secrets)
    except FileNotFoundError as exc:  # Streamlit's "no secrets" and "cannot parse" errors
        from streamlit import config

        if any(os.path.exists(p) for p in config.get_option("secrets.files")):
            raise AccessConfigError(f"could not read the secrets file: {exc}") from None
        return {}


def current_access() -> Access:
    return access_from(_secrets(), os.environ)


# ---------------------------------------------------------------- the gate


def require_access() -> str | None:
    """Stop the run at a sign-in page until this session has access.

    Returns None when no access control is configured (the who-am-I sidebar names people), else
    the signed-in identity, which is also written to ``st.session_state.user`` on every run so
    the pages, which read that, always use the authenticated name.
    """
    try:
        access = current_access()
    except AccessConfigError as exc:
        _closed(f"tladvisor is closed: {exc}. Fix the settings and reload this page.")
    if access.mode == OPEN:
        return None
    identity = _identity(access)
    if identity is None:
        _forget_identity()  # e.g. signed in under a password that has since changed

        def sign_in() -> None:
            _sign_in_page(access)

        # The only page while signed out: every URL (/run, /compare ...) lands here, and the
        # page files are never run without this gate, because this run does call st.navigation.
        st.navigation(
            [st.Page(sign_in, title="Sign in", icon=":material/lock:", url_path="sign-in")],
            position="hidden",
        ).run()
        st.stop()
    st.session_state.user = identity
    return identity


def sign_out() -> None:
    """Forget this session's sign-in (OIDC: also the identity cookie)."""
    _forget_identity()
    if current_access().mode == OIDC:
        st.logout()


def _forget_identity() -> None:
    for key in (_IDENTITY, _SIGNED_WITH):
        st.session_state.pop(key, None)
    st.session_state.user = None


def draw_signed_in(identity: str) -> None:
    """The sidebar block for a signed-in person: who they are and a sign-out button."""
    st.markdown(f"Signed in as **{_escape_markdown(identity)}**")
    st.caption("Runs you start carry this name; only you can delete them.")
    st.button("Sign out", key="auth_sign_out", on_click=sign_out)


def _identity(access: Access) -> str | None:
    if access.mode == OIDC:
        if not st.user.get("is_logged_in"):
            return None
        # The provider's verified email is the stable owner; a display name is the fallback.
        return str(st.user.get("email") or st.user.get("name") or "") or None
    signed_with = st.session_state.get(_SIGNED_WITH)
    if signed_with is None or not hmac.compare_digest(
        signed_with, _password_tag(access.password or "")
    ):
        return None  # never signed in, or the password changed since
    return st.session_state.get(_IDENTITY)


def _closed(message: str) -> NoReturn:
    st.title("tladvisor")
    st.error(message)
    st.stop()


def _sign_in_page(access: Access) -> None:
    st.title("Sign in to tladvisor")
    if access.mode == OIDC:
        _oidc_sign_in(access)
    else:
        _password_sign_in(access)


def _oidc_sign_in(access: Access) -> None:
    if st.user.get("is_logged_in"):  # signed in, but the provider sent neither email nor name
        st.error(
            "Your identity provider sent no email or name, so runs could not be credited to you. "
            "Ask the admin to request the 'email' and 'profile' scopes, then sign in again."
        )
        st.button("Sign out", key="auth_sign_out", on_click=st.logout)
        return
    if importlib.util.find_spec("authlib") is None:
        st.error(
            "Sign-in is configured ([auth] in .streamlit/secrets.toml) but this server lacks "
            "Authlib, which Streamlit's st.login() needs. The admin should install it "
            "(pip install 'Authlib>=1.3.2') and restart the dashboard."
        )
        return
    st.write("This dashboard is shared by a team; sign in to see and start runs.")
    for provider in access.providers:
        label = "Sign in" if provider is None else f"Sign in with {provider.title()}"
        st.button(
            label,
            key=f"auth_login_{provider or 'default'}",
            type="primary",
            on_click=st.login,
            args=() if provider is None else (provider,),
        )


def _password_sign_in(access: Access) -> None:
    from tladvisor.users import MAX_NAME, clean_user_name

    if "auth_name" not in st.session_state:  # a shared link's ?user= fills in the name once
        try:
            st.session_state.auth_name = clean_user_name(st.query_params.get("user"))
        except ValueError:
            st.session_state.auth_name = ""
    st.write("This dashboard is shared by a team: type your name and the team password.")
    with st.form("auth_form"):
        st.text_input("Your name", key="auth_name", max_chars=MAX_NAME, placeholder="e.g. Ada")
        st.text_input("Team password", key="auth_password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    wait = st.session_state.get(_LOCKED_UNTIL, 0.0) - time.monotonic()
    if wait > 0:
        st.error(f"Too many wrong passwords. Wait {wait:.0f} s, then try again.")
        return
    try:
        name = clean_user_name(st.session_state.auth_name)
    except ValueError as exc:
        st.error(str(exc))
        return
    if not passwords_match(st.session_state.get("auth_password") or "", access.password or ""):
        _wrong_password()
        return
    st.session_state[_FAILURES] = 0
    st.session_state[_IDENTITY] = name
    st.session_state[_SIGNED_WITH] = _password_tag(access.password or "")
    st.rerun()  # draw the dashboard now rather than at the next click


def _wrong_password() -> None:
    time.sleep(FAIL_DELAY_SECONDS)
    failures = st.session_state.get(_FAILURES, 0) + 1
    if failures >= MAX_TRIES:
        st.session_state[_FAILURES] = 0
        st.session_state[_LOCKED_UNTIL] = time.monotonic() + LOCKOUT_SECONDS
        st.error(
            f"Wrong password {failures} times: sign-in is locked for {LOCKOUT_SECONDS:.0f} s. "
            "Ask whoever runs this dashboard for the team password."
        )
        return
    st.session_state[_FAILURES] = failures
    left = MAX_TRIES - failures
    st.error(f"Wrong password. {left} more {'try' if left == 1 else 'tries'} before a lockout.")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def _escape_markdown(text: str) -> str:
    """An identity from a provider is shown literally (emails hold _ and . that markdown eats)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
