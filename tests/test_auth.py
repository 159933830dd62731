"""Access control: the mode read from secrets and environment, and the gate in the real app.

The app tests drive ``app.py`` with AppTest against a DuckDB file of their own; a password comes
from ``TLADVISOR_PASSWORD`` or ``at.secrets``, an OIDC sign-in from ``at.secrets["auth"]`` and
``at.user`` (what Streamlit's ``st.user`` reads).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tladvisor import auth
from tladvisor.store import Store

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PASSWORD = "correct horse battery staple"
OIDC_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret",
        "client_id": "tladvisor",
        "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
    }
}


# -- the access mode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secrets", "environ", "mode", "password", "providers"),
    [
        ({}, {}, auth.OPEN, None, ()),
        ({}, {"TLADVISOR_PASSWORD": ""}, auth.OPEN, None, ()),  # empty means unset
        ({}, {"TLADVISOR_PASSWORD": "s3cret"}, auth.PASSWORD, "s3cret", ()),
        ({"tladvisor": {"password": "from-file"}}, {}, auth.PASSWORD, "from-file", ()),
        (  # the environment wins over the file, so a deployment can rotate it without editing
            {"tladvisor": {"password": "from-file"}},
            {"TLADVISOR_PASSWORD": "from-env"},
            auth.PASSWORD,
            "from-env",
            (),
        ),
        (OIDC_SECRETS, {"TLADVISOR_PASSWORD": "ignored"}, auth.OIDC, None, (None,)),
        (
            {"auth": {"redirect_uri": "x", "cookie_secret": "y", "google": {"client_id": "g"}}},
            {},
            auth.OIDC,
            None,
            ("google",),
        ),
    ],
)
def test_access_mode_comes_from_secrets_and_environment(
    secrets, environ, mode, password, providers
):
    access = auth.access_from(secrets, environ)
    assert (access.mode, access.password, access.providers) == (mode, password, providers)
    if password:
        assert password not in repr(access)  # never lands in a log line


@pytest.mark.parametrize(
    ("secrets", "words"),
    [
        ({"auth": {}}, "empty"),
        ({"auth": {"redirect_uri": "x", "cookie_secret": "y"}}, "no client_id"),
        ({"tladvisor": {"password": 1234}}, "quoted string"),
    ],
)
def test_unusable_settings_are_refused_with_the_fix(secrets, words):
    with pytest.raises(auth.AccessConfigError, match=words):
        auth.access_from(secrets, {})


def test_passwords_match_only_exactly():
    assert auth.passwords_match(PASSWORD, PASSWORD)
    assert auth.passwords_match("pässwörd", "pässwörd")
    for guess in ("", PASSWORD[:-1], PASSWORD + " ", PASSWORD.upper()):
        assert not auth.passwords_match(guess, PASSWORD)


# -- the gate in the app -----------------------------------------------------------------------


@pytest.fixture
def app(tmp_path, monkeypatch):
    """A fresh AppTest of app.py on its own database, with no password in the environment."""
    monkeypatch.setenv("TLADVISOR_DB", str(tmp_path / "runs.duckdb"))
    monkeypatch.delenv("TLADVISOR_PASSWORD", raising=False)
    monkeypatch.setattr(auth, "FAIL_DELAY_SECONDS", 0.0)  # the delay has its own test

    def make() -> AppTest:
        return AppTest.from_file(APP, default_timeout=60)

    return make


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _keys(widgets) -> set[str]:
    return {w.key for w in widgets}


def _shows_pages(at: AppTest) -> bool:
    """The upload page (the default page) is drawn: its data-source picker is there."""
    return "upload_source" in _keys(at.radio)


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_name").input(name)
    at.text_input(key="auth_password").input(password)
    return at.button[0].click().run()  # the form's only button: Sign in


def test_without_a_password_the_app_opens(app):
    at = app().run()
    _no_exception(at)
    assert _shows_pages(at)
    assert "auth_password" not in _keys(at.text_input)


def test_with_a_password_no_page_is_shown_until_it_is_entered(app, monkeypatch):
    monkeypatch.setenv("TLADVISOR_PASSWORD", PASSWORD)
    at = app().run()
    _no_exception(at)
    assert not _shows_pages(at)
    assert at.title[0].value == "Sign in to tladvisor"
    assert "who_new" not in _keys(at.sidebar.text_input)  # no who-am-I either

    _sign_in(at, "  Ada  Lovelace ", PASSWORD)
    _no_exception(at)
    assert _shows_pages(at) and not at.error
    assert at.session_state.user == "Ada Lovelace"


def test_a_wrong_password_shows_an_error_and_nothing_else(app, monkeypatch):
    monkeypatch.setenv("TLADVISOR_PASSWORD", PASSWORD)
    monkeypatch.setattr(auth, "FAIL_DELAY_SECONDS", 0.3)
    at = app().run()
    started = time.monotonic()
    _sign_in(at, "Ada", PASSWORD[:-1])
    assert time.monotonic() - started >= 0.3  # every wrong guess waits
    _no_exception(at)
    assert [e.value for e in at.error] == ["Wrong password. 4 more tries before a lockout."]
    assert not _shows_pages(at) and not at.dataframe and not at.metric
    assert at.session_state.user is None


def test_repeated_wrong_passwords_lock_the_session_out(app, monkeypatch):
    monkeypatch.setenv("TLADVISOR_PASSWORD", PASSWORD)
    at = app().run()
    for _ in range(auth.MAX_TRIES):
        _sign_in(at, "Mallory", "guess")
    assert "locked" in at.error[0].value
    _sign_in(at, "Mallory", PASSWORD)  # even the right password waits out the lockout
    assert "Too many wrong passwords" in at.error[0].value and not _shows_pages(at)

    at.session_state["auth_locked_until"] = time.monotonic() - 1  # the lockout has run out
    _sign_in(at, "Mallory", PASSWORD)
    assert _shows_pages(at) and at.session_state.user == "Mallory"


def test_a_password_in_secrets_works(app):
    at = app()
    at.secrets["tladvisor"] = {"password": PASSWORD}
    at.run()
    assert not _shows_pages(at)
    _sign_in(at, "Grace", PASSWORD)
    assert _shows_pages(at) and at.session_state.user == "Grace"


# The gate alone in a one-page script: AppTest reruns of app.py on a page run that page's file
# without app.py, so reruns are checked here.
GATED = """
import streamlit as st
from tladvisor import auth
who = auth.require_access()
st.title(f"inside as {who}")
"""


def test_changing_the_password_signs_everyone_out(monkeypatch):
    monkeypatch.delenv("TLADVISOR_PASSWORD", raising=False)
    at = AppTest.from_string(GATED)
    at.secrets["tladvisor"] = {"password": PASSWORD}
    at.run()
    _sign_in(at, "Grace", PASSWORD)
    assert at.title[0].value == "inside as Grace"
    assert at.run().title[0].value == "inside as Grace"  # stays signed in
    at.secrets["tladvisor"] = {"password": "rotated"}
    at.run()
    assert at.title[0].value == "Sign in to tladvisor" and at.session_state.user is None


def test_the_signed_in_name_owns_runs_not_the_name_in_the_url(app, monkeypatch, tmp_path):
    # A failed run by ada, written through the store as the runner would.
    with Store(tmp_path / "runs.duckdb") as store:
        store.upsert_dataset("fp-auth", "tiny", "text", 4, {"a": 2, "b": 2}, "test")
        run_id = store.create_run(
            user="ada", dataset_fingerprint="fp-auth", strategy="zero_shot", model="minilm",
            config={}, seed=0,
        )  # fmt: skip
        store.fail_run(run_id, "stopped for the test")
    monkeypatch.setenv("TLADVISOR_PASSWORD", PASSWORD)
    at = app()
    at.query_params["user"] = "ada"  # a shared link naming ada cannot make bob ada
    at.query_params["run"] = run_id
    at.run()
    assert at.text_input(key="auth_name").value == "ada"  # it only fills in the name
    _sign_in(at, "bob", PASSWORD)
    at.switch_page("views/detail.py").run()
    _no_exception(at)
    assert at.session_state.user == "bob"
    assert at.button(key="detail_delete").disabled


def test_oidc_shows_only_sign_in_until_the_provider_says_who_it_is(app):
    at = app()
    at.secrets.update(OIDC_SECRETS)
    at.user = {"is_logged_in": False}
    at.run()
    _no_exception(at)
    assert not _shows_pages(at) and at.title[0].value == "Sign in to tladvisor"
    # This environment has no Authlib: the page says so instead of a button that would fail.
    offered = [b.label for b in at.button] + [e.value for e in at.error]
    assert any("Sign in" in o or "Authlib" in o for o in offered), offered

    at = app()
    at.secrets.update(OIDC_SECRETS)
    at.user = {"is_logged_in": True, "email": "ada@example.com", "name": "Ada"}
    at.query_params["user"] = "mallory"  # cannot be typed or linked in
    at.run()
    _no_exception(at)
    assert _shows_pages(at)
    assert at.session_state.user == "ada@example.com"
    assert any(r"Signed in as **ada@example\.com**" in md.value for md in at.sidebar.markdown)
    assert "who_new" not in _keys(at.sidebar.text_input)


# -- a real server -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
def test_a_deep_link_to_a_fresh_server_still_needs_the_password(tmp_path, browser):
    # browser (tests/conftest.py) skips, or fails under CI=true, when chromium is missing.
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    db = tmp_path / "runs.duckdb"
    with Store(db) as store:
        store.upsert_dataset("fp-deep", "private-data", "text", 4, {"a": 2, "b": 2}, "test")
        run_id = store.create_run(
            user="ada", dataset_fingerprint="fp-deep", strategy="zero_shot", model="minilm",
            config={}, seed=0,
        )  # fmt: skip
        store.fail_run(run_id, "PRIVATE-ERROR-TEXT")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TLADVISOR_DB=str(db), TLADVISOR_PASSWORD=PASSWORD, HF_HUB_OFFLINE="1")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=Path(APP).parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.3)
        page = browser.new_page()
        page.goto(f"{url}/detail?run={run_id}")  # the first request this server sees
        page.get_by_text("Sign in to tladvisor").or_(page.get_by_text("ada")).first.wait_for()
        page.wait_for_timeout(1000)
        body = page.inner_text("body")
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "PRIVATE-ERROR-TEXT" not in body and "private-data" not in body
    assert "Sign in to tladvisor" in body
