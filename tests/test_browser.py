"""The main journey in a real browser: Debian's chromium driven by playwright against a live
``streamlit run app.py`` with a database file of its own (``browser`` comes from tests/conftest.py).

A new teammate names herself, uploads a small CSV, sees its profile, gets advice, runs feature
extraction to completion and finds it on the compare page with charts drawn; a second teammate in
another browser context sees her run. Screenshots go to ``test-artifacts/`` for a person to look at.

A second server holds runs, names and labels written as markdown images and HTML pointing at a
loopback listener: every page is shown, and the listener must hear nothing.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import dbfiles
import pytest

from tladvisor import data

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "test-artifacts"
RUN_TIMEOUT_MS = 240_000  # first run loads MiniLM and encodes the texts on a shared CPU


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(tmp: Path, db: Path, **env_extra: str):
    """``streamlit run app.py`` on a free port of 127.0.0.1 with database ``db``; yields its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "TLADVISOR_PASSWORD"}  # no sign-in
    env.update(
        TLADVISOR_DB=str(db),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        **env_extra,
    )
    log_path = tmp / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below, after the server stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("streamlit did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium_path):
    # chromium_path (tests/conftest.py) skips, or fails under CI=true, before streamlit starts.
    tmp = tmp_path_factory.mktemp("browser")
    with _serve(tmp, tmp / "runs.duckdb") as url:
        yield {"url": url, "tmp": tmp}


@pytest.fixture(scope="module")
def small_csv(server) -> Path:
    """60 positive and 60 negative Rotten Tomatoes snippets, as a user would export them."""
    sample = data.load_sample("rotten_tomatoes")
    rows, seen = [], {"positive": 0, "negative": 0}
    for text, label in zip(sample.items, sample.labels, strict=True):
        if seen[label] < 60:
            seen[label] += 1
            rows.append((text, label))
    path = server["tmp"] / "my_reviews.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows(rows)
    return path


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.wait_for_timeout(500)  # let charts finish drawing
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.wait_for_load_state("networkidle")


def _pick(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.get_by_role("option", name=option).first.click()


def test_a_teammate_profiles_advises_runs_and_compares(server, small_csv, browser):
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    url = server["url"]
    ada = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ada.new_page()
    page.goto(url)
    page.get_by_text("New here?").first.wait_for()
    page.get_by_role("button", name="Load sample").wait_for()
    _shot(page, "01_new_user")

    page.get_by_label("New here? Type your name").fill("Ada")
    page.keyboard.press("Enter")
    page.get_by_text("Working as").wait_for()
    assert "user=Ada" in page.url

    page.get_by_text("Text CSV", exact=True).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(small_csv))
    page.get_by_text("Text column").wait_for()
    # Unusualness loads SmolLM2 (minutes on a shared CPU); AppTest covers how it is shown.
    page.get_by_text("Also measure with the pretrained models").click()
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Measured profile").wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator('[data-testid="stMetricValue"]').filter(has_text="120").wait_for()
    _shot(page, "02_profile")

    _nav(page, "Advise")
    page.get_by_text("Recommended:").wait_for(timeout=60_000)
    page.locator(".vega-embed").first.wait_for()
    _shot(page, "03_advice")

    page.get_by_role("button", name="Run the recommended strategy").click()
    page.get_by_text("Start run").wait_for()
    _pick(page, "Strategy", "Feature extraction (linear probe)")
    _shot(page, "04_run_form")
    page.get_by_role("button", name="Start run").click()
    page.get_by_text("finished: test accuracy").wait_for(timeout=RUN_TIMEOUT_MS)
    _shot(page, "05_run_done")

    _nav(page, "Compare")
    page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('.vega-embed').length >= 4")
    page.set_viewport_size({"width": 1400, "height": 2600})  # the main area scrolls inside
    _shot(page, "06_compare")
    page.set_viewport_size({"width": 1400, "height": 1000})
    _download_the_model_and_predictions(page, small_csv)
    ada.close()

    bob = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = bob.new_page()
    page.goto(url)
    page.get_by_label("Pick your name").wait_for()  # Ada is now a known teammate
    page.get_by_label("New here? Type your name").fill("Bob")
    page.keyboard.press("Enter")
    page.get_by_text("Working as").wait_for()
    _nav(page, "Compare")
    page.get_by_text("1 run(s) by 1 person(s)").wait_for(timeout=30_000)
    page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for(timeout=30_000)
    _nav(page, "Run detail")
    page.get_by_text("by Ada").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Delete run").is_disabled()
    page.get_by_text("Only Ada can delete this run").first.wait_for()
    page.set_viewport_size({"width": 1400, "height": 1800})
    _shot(page, "07_teammate_sees_run")
    bob.close()


def _download_the_model_and_predictions(page, small_csv: Path) -> None:
    """Ada takes her run away: the model as a ZIP that loads elsewhere, then predictions on a
    file, made in the job queue, as a CSV with one row per input row."""
    import io
    import zipfile

    import pandas as pd

    _nav(page, "Run detail")
    button = page.get_by_role(
        "button", name="Download the model (ZIP that loads without tladvisor)"
    )
    button.wait_for(timeout=30_000)
    with page.expect_download(timeout=RUN_TIMEOUT_MS) as got:
        button.click()
    names = set(zipfile.ZipFile(got.value.path()).namelist())
    assert {"README.md", "head.safetensors", "head.json", "modules.json"} <= names, names

    page.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(small_csv))
    page.get_by_role("button", name="Predict", exact=True).click()
    csv_button = page.get_by_role("button", name="Download the predictions (CSV)")
    csv_button.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("120 rows predicted; accuracy on the file's labels").wait_for()
    _shot(page, "06b_predictions")
    # Clicking reruns the page, which makes the file: on a loaded CI machine that took over 30 s.
    with page.expect_download(timeout=RUN_TIMEOUT_MS) as got:
        csv_button.click()
    table = pd.read_csv(io.BytesIO(Path(got.value.path()).read_bytes()))
    given = pd.read_csv(small_csv)
    assert table["review"].tolist() == given["review"].tolist()
    assert set(table["prediction"]) <= {"positive", "negative"}
    assert {"p_negative", "p_positive"} <= set(table.columns)


# -- user strings are text, never markup ---------------------------------------------------------


@pytest.fixture(scope="module")
def tripwire():
    """An HTTP listener on a random loopback port; every request it gets is a user string that
    the browser interpreted (an image fetched)."""
    heard: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            heard.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    yield listener.server_address[1], heard
    listener.shutdown()
    listener.server_close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, chromium_path, tripwire):
    """A server whose store holds a data set, a user, a model, class names, notes and errors
    written as a markdown image and as an HTML image, both pointing at the tripwire (as an older
    version, an import or the CLI could have stored them)."""
    port, _ = tripwire
    pixel = f"![n](http://127.0.0.1:{port}/markdown.png)"
    tag = f'<img src="http://127.0.0.1:{port}/html.png">'
    tmp = tmp_path_factory.mktemp("hostile")
    db = tmp / "runs.duckdb"
    runs = dbfiles.hostile(
        db, pixel, tag, ("failed", "cancelled", "done"),  # done last: the newest, shown first
        notes=[f"label {pixel} {tag}"], train_per_class=2,
    )  # fmt: skip
    labels = [pixel] * 6 + [tag] * 6
    good = tmp / "labels.csv"
    with good.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [["review", pixel], *[(f"review number {i}", lab) for i, lab in enumerate(labels)]]
        )
    headless = tmp / "no_header.csv"  # its header is a label: the loader's error quotes it
    with headless.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text", tag], ["a review", tag], ["another", pixel]])
    with _serve(tmp, db) as url:
        yield {"url": url, "pixel": pixel, "runs": runs, "good": good, "headless": headless}


def _tooltips(page) -> None:
    """Hover across the first chart, so any tooltip naming a class is drawn."""
    chart = page.locator(".vega-embed").first
    box = chart.bounding_box()
    for fx in (0.2, 0.5, 0.8):
        for fy in (0.2, 0.4, 0.6, 0.8):
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.wait_for_timeout(100)


def test_user_strings_stay_text_on_every_page(hostile, tripwire, browser):
    _, heard = tripwire
    url, pixel, runs = hostile["url"], hostile["pixel"], hostile["runs"]
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = context.new_page()
    page.goto(url)
    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Pick your name")
    picker.click()  # the known teammates, the markup one among them, drawn as options
    page.get_by_role("option").first.click()
    page.get_by_text("Working as").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text(pixel).first.wait_for()

    page.get_by_text("Text CSV", exact=True).click()
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    page.get_by_text("Also measure with the pretrained models").click()
    uploader.set_input_files(str(hostile["headless"]))
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("seems to have no header row").wait_for()
    uploader.set_input_files(str(hostile["good"]))
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Class balance").first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator(".vega-embed").first.wait_for()
    _tooltips(page)

    _nav(page, "Advise")
    page.get_by_text("Recommended:").wait_for(timeout=60_000)
    _nav(page, "Choose a model")
    page.get_by_role("button", name="Rank the models").wait_for()
    _nav(page, "Run")
    page.get_by_role("button", name="Start run").wait_for(timeout=60_000)
    _nav(page, "Compare")
    page.locator(".vega-embed").first.wait_for(timeout=30_000)
    for label in ("Data set", "Person", "Model"):  # open each filter: its options are drawn
        page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).click()
        page.get_by_role("option").first.wait_for()
        page.keyboard.press("Escape")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Confusion matrix of").click()
    page.get_by_role("option").first.wait_for()
    page.keyboard.press("Escape")
    shown = {  # each page shows the string as typed, so it was drawn, and drawn as text
        runs["done"]: f"label {pixel}",
        runs["failed"]: f"could not load {pixel}",
        runs["cancelled"]: f"could not load {pixel}",
        pixel: "There is no run",  # a link to no run quotes what it named
    }
    for run_id, text in shown.items():
        page.goto(f"{url}/detail?{urllib.parse.urlencode({'run': run_id})}")
        page.get_by_text(text).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # any image request would have been sent by now
    assert heard == [], f"the browser fetched {heard}: a user string was drawn as markup"

    # The tripwire does hear this browser: a deliberate request reaches it.
    page.evaluate(f"fetch('http://127.0.0.1:{tripwire[0]}/control').catch(() => null)")
    deadline = time.monotonic() + 10
    while not heard and time.monotonic() < deadline:
        time.sleep(0.1)
    context.close()
    assert heard == ["/control"]
