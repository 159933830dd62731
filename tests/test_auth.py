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


# -- wrong passwords per client address --------------------------------------------------------


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_locked_after_max_tries_and_each_further_miss_doubles_the_lockout():
    clock = FakeClock()
    limiter = auth.SignInLimiter(max_tries=3, lockout=60, max_lockout=200, clock=clock)
    assert [limiter.failed("10.0.0.7") for _ in range(2)] == [0.0, 0.0]
    assert limiter.wait("10.0.0.7") == 0.0 and limiter.failures("10.0.0.7") == 2
    assert limiter.failed("10.0.0.7") == 60.0  # the third wrong one locks
    clock.now += 59
    assert limiter.wait("10.0.0.7") == pytest.approx(1.0)
    clock.now += 1
    assert limiter.wait("10.0.0.7") == 0.0
    assert limiter.failed("10.0.0.7") == 120.0  # one more after the lockout: twice as long
    clock.now += 120
    assert limiter.failed("10.0.0.7") == 200.0  # capped
    assert limiter.wait("10.0.0.8") == 0.0  # another address is not held up


def test_a_right_password_or_a_quiet_day_clears_an_address():
    clock = FakeClock()
    limiter = auth.SignInLimiter(max_tries=2, lockout=60, forget=3600, clock=clock)
    limiter.failed("10.0.0.7")
    limiter.succeeded("10.0.0.7")
    assert limiter.failures("10.0.0.7") == 0
    limiter.failed("10.0.0.7")
    assert limiter.failed("10.0.0.7") == 60.0
    clock.now += 3601
    assert limiter.failures("10.0.0.7") == 0 and limiter.wait("10.0.0.7") == 0.0


def test_the_limiter_remembers_a_bounded_number_of_addresses():
    clock = FakeClock()
    limiter = auth.SignInLimiter(max_tries=2, max_clients=3, clock=clock)
    for i in range(5):
        clock.now += 1
        limiter.failed(f"10.0.0.{i}")
    assert [limiter.failures(f"10.0.0.{i}") for i in range(5)] == [0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", [], "203.0.113.9"),
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # a remote client's header is its word
        (None, [], auth.LOCAL),
        (None, ["198.51.100.1"], "198.51.100.1"),  # the local proxy names the client
        (None, ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),  # the proxy's own entry is the last
        (None, ["1.2.3.4", "198.51.100.1"], "198.51.100.1"),
        (None, ["not-an-address"], auth.LOCAL),
        ("2001:db8:1:2:3:4:5:6", [], "2001:db8:1:2::/64"),  # one machine owns a whole /64
        (None, ["2001:db8:1:2::99"], "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
    ],
)
def test_failures_are_counted_against_the_client_address(peer, forwarded, client):
    assert auth.client_address(peer, forwarded) == client


# -- the gate in the app -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> FakeClock:
    """A fresh process-wide sign-in limiter per test, on a clock the test moves."""
    fake = FakeClock()
    monkeypatch.setattr(auth, "SIGN_INS", auth.SignInLimiter(clock=fake))
    return fake


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


def test_repeated_wrong_passwords_lock_the_address_out_in_every_session(
    app, monkeypatch, clock, caplog
):
    monkeypatch.setenv("TLADVISOR_PASSWORD", PASSWORD)
    at = app().run()
    with caplog.at_level("WARNING", logger="tladvisor.auth"):
        for _ in range(auth.MAX_TRIES):
            _sign_in(at, "Mallory", "guess")
    assert "locked for 60 s" in at.error[0].value
    logged = [r.getMessage() for r in caplog.records if r.name == "tladvisor.auth"]
    assert len(logged) == auth.MAX_TRIES and all("wrong password from" in m for m in logged)
    assert "Mallory" not in " ".join(logged)  # a typed name may be the password by mistake

    # A new session from the same address, even with the right password, waits it out.
    fresh = app().run()
    _sign_in(fresh, "Mallory", PASSWORD)
    assert "Too many wrong passwords" in fresh.error[0].value and not _shows_pages(fresh)
    _sign_in(at, "Mallory", PASSWORD)
    assert "Too many wrong passwords" in at.error[0].value and not _shows_pages(at)

    clock.now += auth.LOCKOUT_SECONDS  # the lockout has run out
    _sign_in(fresh, "Mallory", "guess again")  # one more wrong one locks for twice as long
    assert "locked for 2 min" in fresh.error[0].value
    clock.now += 2 * auth.LOCKOUT_SECONDS
    _sign_in(fresh, "Mallory", PASSWORD)
    assert _shows_pages(fresh) and fresh.session_state.user == "Mallory"
    assert auth.SIGN_INS.failures(auth.LOCAL) == 0  # a right password clears the address


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


def _private_baseline(head: Path) -> None:
    """A real TF-IDF baseline artefact (what a scratch run saves) that exports in a moment."""
    import json

    import torch
    from safetensors.torch import save_file

    head.parent.mkdir(parents=True)
    save_file({"weight": torch.zeros(2, 1), "bias": torch.zeros(2)}, str(head))
    tfidf = {
        "vocabulary": {"private": 0},
        "idf": [1.0],
        "ngram_range": [1, 2],
        "sublinear_tf": True,
    }
    (head.parent / "tfidf.json").write_text(json.dumps(tfidf))


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory, chromium_path):
    """A password-protected dashboard on a store with a failed run and, newest, a finished one
    with a saved head. chromium_path (tests/conftest.py) skips, or fails under CI=true, first."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    tmp = tmp_path_factory.mktemp("locked")
    db = tmp / "runs.duckdb"
    head = tmp / "artifacts" / "run" / "head.safetensors"
    _private_baseline(head)
    with Store(db) as store:
        store.upsert_dataset("fp-deep", "private-data", "text", 4, {"a": 2, "b": 2}, "test")
        failed = store.create_run(
            user="ada", dataset_fingerprint="fp-deep", strategy="zero_shot", model="minilm",
            config={}, seed=0,
        )  # fmt: skip
        store.fail_run(failed, "PRIVATE-ERROR-TEXT")
        done = store.create_run(
            user="ada", dataset_fingerprint="fp-deep", strategy="scratch",
            model="tfidf", config={}, seed=0,
        )  # fmt: skip
        store.start_run(done, device="cpu", precision="fp32")
        store.finish_run(
            done, metrics=[("accuracy", 0.75, "test"), ("seconds", 2.0, "")], backend="test",
            details={"artifact_path": str(head), "train_per_class": 2, "classes": ["a", "b"]},
        )  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TLADVISOR_DB=str(db), TLADVISOR_PASSWORD=PASSWORD, HF_HUB_OFFLINE="1")
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed below, after the server stops
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=Path(APP).parent, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "no server"
            time.sleep(0.3)
    yield {"url": url, "failed": failed, "done": done, "log": tmp / "server.log"}
    server.terminate()
    server.wait(timeout=10)
    log.close()


def _sign_in_browser(page, name: str, password: str = PASSWORD) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Team password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.slow
@pytest.mark.browser
def test_a_deep_link_shows_only_the_sign_in_form_then_the_page_it_names(locked_server, browser):
    url, failed = locked_server["url"], locked_server["failed"]
    page = browser.new_page()
    page.goto(f"{url}/detail?run={failed}")  # the first request this server sees
    page.get_by_text("Sign in to tladvisor").wait_for()
    page.wait_for_timeout(1500)  # time for a "Page not found" dialog to open over the form
    body = page.inner_text("body")
    assert "PRIVATE-ERROR-TEXT" not in body and "private-data" not in body
    assert "Page not found" not in body and not page.get_by_role("dialog").count()

    _sign_in_browser(page, "bob")
    page.get_by_text("PRIVATE-ERROR-TEXT").first.wait_for(timeout=30_000)  # the linked run
    assert "/detail" in page.url and f"run={failed}" in page.url
    page.close()


@pytest.mark.slow
@pytest.mark.browser
def test_a_signed_out_client_cannot_fetch_an_export(locked_server, browser):
    """A signed-in teammate downloads the runs CSV and a trained head; a client without her
    session then gets neither, though her page still offers both."""
    import urllib.error
    import urllib.request

    from tladvisor import downloads

    url, done = locked_server["url"], locked_server["done"]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    _sign_in_browser(page, "ada")
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Compare", exact=True).click()
    with page.expect_download(timeout=30_000) as got:
        page.get_by_role("button", name="Download CSV").click()
    exports = {"csv": got.value.url}
    assert done in Path(got.value.path()).read_text()  # the signed-in session gets the file
    nav.get_by_text("Run detail", exact=True).click()
    with page.expect_download(timeout=30_000) as got:
        page.get_by_role(
            "button", name="Download the model (ZIP that loads without tladvisor)"
        ).click()
    exports["zip"] = got.value.url
    assert all("/media/" in u for u in exports.values()), exports

    statuses = {}
    deadline = time.monotonic() + downloads.EXPORT_SECONDS + 15
    while True:
        for name, address in exports.items():
            try:  # no cookie, no session: what anyone who learnt the address would send
                with urllib.request.urlopen(address, timeout=5) as response:
                    statuses[name] = response.status
            except urllib.error.HTTPError as exc:
                statuses[name] = exc.code
        if set(statuses.values()) == {404} or time.monotonic() > deadline:
            break
        time.sleep(1)
    page.get_by_role(
        "button", name="Download the model (ZIP that loads without tladvisor)"
    ).wait_for()
    context.close()
    assert statuses == {"csv": 404, "zip": 404}


@pytest.mark.slow
@pytest.mark.browser
def test_a_new_session_per_guess_is_still_locked_out_and_logged(locked_server, browser):
    """The reported attack: a fresh browser session for every guess. Runs last here: it locks
    this server's only client address (this machine) out."""
    url = locked_server["url"]

    def guess(password: str) -> str:
        context = browser.new_context()  # no cookie, a new session
        page = context.new_page()
        page.goto(url)
        _sign_in_browser(page, "mallory", password)
        alert = page.locator('[data-testid="stAlert"]').first
        alert.wait_for(timeout=30_000)
        said = alert.inner_text()
        context.close()
        return said

    said = [guess(f"guess {i}") for i in range(auth.MAX_TRIES)]
    assert "4 more tries" in said[0] and "locked for 60 s" in said[-1]
    assert "Too many wrong passwords" in guess(PASSWORD)  # even the right one waits it out
    logged = locked_server["log"].read_text()
    assert logged.count("wrong password from local") == auth.MAX_TRIES
    assert "(5 in a row); locked out for 60 s" in logged and "sign-in refused from local" in logged
