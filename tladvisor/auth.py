"""Who may open the dashboard: nobody is asked by default, a shared team password, or OIDC sign-in.

The default server binds to 127.0.0.1, so only this machine reaches it and no login is needed.
A team deployment turns access control on in ``.streamlit/secrets.toml`` or the environment:

- ``[auth]`` (Streamlit's OIDC settings: ``redirect_uri``, ``cookie_secret``, ``client_id``,
  ``client_secret``, ``server_metadata_url``, or one sub-table per provider): people sign in with
  ``st.login()`` and their run owner is ``st.user.email`` (else the name), which they cannot type.
  This wins over a password.
- ``TLADVISOR_PASSWORD`` (environment, wins) or ``[tladvisor] password = "..."``: one shared
  password. The sign-in form also asks for the person's name, which then owns their runs. Wrong
  passwords are counted per client address across every session of the server process
  (``SignInLimiter``): after ``MAX_TRIES`` the address is locked out, for longer at each further
  wrong password, and every failure is logged.

``require_access()`` is the gate ``app.py`` calls before routing. A configuration it cannot read
keeps the app closed with a message saying what to fix: failing open would publish the runs.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import ipaddress
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

OPEN, PASSWORD, OIDC = "open", "password", "oidc"
PASSWORD_ENV = "TLADVISOR_PASSWORD"
MAX_TRIES = 5  # wrong passwords one client address may type before it is locked out
LOCKOUT_SECONDS = 60.0  # the first lockout; each further wrong password doubles it
MAX_LOCKOUT_SECONDS = 3600.0  # ... up to an hour
FORGET_SECONDS = 24 * 3600.0  # an address's count is forgotten after a day without a wrong one
MAX_CLIENTS = 10_000  # addresses remembered at once (the longest-quiet are dropped first)
FAIL_DELAY_SECONDS = 1.0  # each wrong password also waits, so guessing is slow even before lockout
LOCAL = "local"  # the address key of a client on this machine that no proxy names

_LOG = logging.getLogger(__name__)

# Session-state keys (prefixed so no page widget can collide with them).
_IDENTITY = "auth_identity"  # the signed-in name (password mode)
_SIGNED_WITH = "auth_signed_with"  # tag of the password that was accepted (see _password_tag)
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


# ---------------------------------------------------------------- wrong passwords, per address


@dataclass
class _Failures:
    count: int = 0  # wrong passwords in a row from this address
    last: float = 0.0  # when the latest came (clock seconds)
    locked_until: float = 0.0


class SignInLimiter:
    """Wrong passwords counted per client address across every session of one server process.

    A new browser session per guess no longer starts from zero: the count belongs to the address.
    After ``max_tries`` wrong passwords in a row the address is locked out for ``lockout``
    seconds, and each further wrong one (typed once the lockout is over) doubles that, up to
    ``max_lockout``. A right password clears the address; ``forget`` seconds without a wrong one
    clear it too. Thread-safe (sessions run on threads of their own); ``clock`` is injectable so
    the policy is tested without waiting.
    """

    def __init__(
        self,
        *,
        max_tries: int = MAX_TRIES,
        lockout: float = LOCKOUT_SECONDS,
        max_lockout: float = MAX_LOCKOUT_SECONDS,
        forget: float = FORGET_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        if not 0 < lockout <= max_lockout:
            raise ValueError(
                f"need 0 < lockout <= max_lockout, got lockout={lockout}, max_lockout={max_lockout}"
            )
        self.max_tries, self.lockout, self.max_lockout = max_tries, lockout, max_lockout
        self.forget, self.max_clients, self.clock = forget, max_clients, clock
        self._lock = threading.Lock()
        self._by_client: dict[str, _Failures] = {}

    def wait(self, client: str) -> float:
        """Seconds before ``client`` may try a password again (0: now)."""
        with self._lock:
            now = self.clock()
            record = self._current(client, now)
            return 0.0 if record is None else max(0.0, record.locked_until - now)

    def failures(self, client: str) -> int:
        """Wrong passwords in a row from ``client`` (0 once forgotten or after a right one)."""
        with self._lock:
            record = self._current(client, self.clock())
            return 0 if record is None else record.count

    def failed(self, client: str) -> float:
        """Count a wrong password from ``client``; returns the lockout it starts (0: none yet)."""
        with self._lock:
            now = self.clock()
            record = self._current(client, now) or _Failures()
            record.count += 1
            record.last = now
            lock = 0.0
            if record.count >= self.max_tries:
                lock = min(self.lockout * 2 ** (record.count - self.max_tries), self.max_lockout)
                record.locked_until = now + lock
            self._by_client.pop(client, None)  # re-inserted last: the dict is oldest-first
            self._by_client[client] = record
            self._prune(now)
            return lock

    def succeeded(self, client: str) -> None:
        """A right password from ``client``: its count starts again from zero."""
        with self._lock:
            self._by_client.pop(client, None)

    def _current(self, client: str, now: float) -> _Failures | None:
        record = self._by_client.get(client)
        if record is not None and now - record.last > self.forget:
            del self._by_client[client]
            return None
        return record

    def _prune(self, now: float) -> None:
        """Forget quiet addresses, and the quietest beyond ``max_clients`` (memory stays bounded
        however many addresses guess)."""
        for client in [c for c, r in self._by_client.items() if now - r.last > self.forget]:
            del self._by_client[client]
        while len(self._by_client) > self.max_clients:
            del self._by_client[next(iter(self._by_client))]


# One per server process: every session's sign-in form counts against it.
SIGN_INS = SignInLimiter()


def client_address(peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
    """The address wrong passwords are counted against.

    ``peer`` is the connection's remote address as ``st.context.ip_address`` gives it: None when
    the peer is this machine. Such a peer is a reverse proxy on this machine (docs/deploy.md) or
    someone already on it, so its ``X-Forwarded-For`` headers are believed, and only their last
    entry, the one the proxy itself appended (anything before it the client could have typed);
    without a usable one the client is ``LOCAL``. A remote peer is taken as it is: its headers are
    the client's own words. An IPv6 address counts as its /64 network, which one machine can
    fill with fresh addresses.
    """
    if not peer:
        entries = [e.strip() for header in forwarded_for for e in header.split(",")]
        peer = entries[-1] if entries else ""
        try:
            ipaddress.ip_address(peer)
        except ValueError:
            return LOCAL  # no header, or not an address (a proxy that writes names)
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _this_client() -> str:
    """This session's client address; a session without a real connection (AppTest) is local."""
    peer = st.context.ip_address
    forwarded = st.context.headers.get_all("X-Forwarded-For")
    return client_address(
        peer if isinstance(peer, str) else None, [h for h in forwarded if isinstance(h, str)]
    )


# ---------------------------------------------------------------- the gate


def require_access(url_paths: Iterable[str] = ()) -> str | None:
    """Stop the run at a sign-in page until this session has access.

    Returns None when no access control is configured (the who-am-I sidebar names people), else
    the signed-in identity, which is also written to ``st.session_state.user`` on every run so
    the pages, which read that, always use the authenticated name.

    ``url_paths`` are the dashboard's page addresses (``app.py`` passes them): while signed out
    each of them shows the sign-in form too, so a deep link (``/detail?run=...``) lands on the
    form rather than on Streamlit's "Page not found", and after signing in the same address
    opens the page it names.
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

        # The only pages while signed out, all of them the sign-in form: every URL lands here,
        # and the page files are never run without this gate, because this run does call
        # st.navigation. A page's address hashes to the same id as the real page, so the
        # rerun after signing in opens the page the link named.
        forms = [st.Page(sign_in, title="Sign in", icon=":material/lock:", url_path="sign-in")]
        forms += [
            st.Page(sign_in, title="Sign in", icon=":material/lock:", url_path=path)
            for path in dict.fromkeys(url_paths)
            if path and path != "sign-in"
        ]
        st.navigation(forms, position="hidden").run()
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
    from tladvisor.ui_state import plain  # the dashboard's one escape for user strings

    st.markdown(f"Signed in as **{plain(identity)}**")
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
    client = _this_client()
    wait = SIGN_INS.wait(client)
    if wait > 0:
        _LOG.warning("sign-in refused from %s: locked out for %.0f s more", client, wait)
        st.error(
            f"Too many wrong passwords from your address. Wait {_duration(wait)}, then try again."
        )
        return
    try:
        name = clean_user_name(st.session_state.auth_name)
    except ValueError as exc:
        st.error(str(exc))
        return
    if not passwords_match(st.session_state.get("auth_password") or "", access.password or ""):
        _wrong_password(client)
        return
    SIGN_INS.succeeded(client)
    _LOG.info("signed in from %s as %r", client, name)
    st.session_state[_IDENTITY] = name
    st.session_state[_SIGNED_WITH] = _password_tag(access.password or "")
    st.rerun()  # draw the dashboard now rather than at the next click


def _wrong_password(client: str) -> None:
    time.sleep(FAIL_DELAY_SECONDS)
    lock = SIGN_INS.failed(client)
    count = SIGN_INS.failures(client)
    # The typed name is not logged: people type the password into it by mistake.
    _LOG.warning(
        "wrong password from %s (%d in a row)%s",
        client,
        count,
        f"; locked out for {lock:.0f} s" if lock else "",
    )
    if lock:
        st.error(
            f"Too many wrong passwords from your address: sign-in is locked for "
            f"{_duration(lock)}. Ask whoever runs this dashboard for the team password."
        )
        return
    left = SIGN_INS.max_tries - count
    st.error(f"Wrong password. {left} more {'try' if left == 1 else 'tries'} before a lockout.")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
