"""The main journey in a real browser: Debian's chromium driven by playwright against a live
``streamlit run app.py`` with a database file of its own (``browser`` comes from tests/conftest.py).

A new teammate names herself, uploads a small CSV, sees its profile, gets advice, runs feature
extraction to completion and finds it on the compare page with charts drawn; a second teammate in
another browser context sees her run. Screenshots go to ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium_path):
    # chromium_path (tests/conftest.py) skips, or fails under CI=true, before streamlit starts.
    tmp = tmp_path_factory.mktemp("browser")
    port = _free_port()
    env = dict(
        os.environ,
        TLADVISOR_DB=str(tmp / "runs.duckdb"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed below, after the server stops
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
            pytest.fail("streamlit did not start:\n" + (tmp / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    yield {"url": url, "tmp": tmp}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


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
