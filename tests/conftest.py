"""Shared fixtures: the one place that finds Debian's chromium for the real-browser tests, and a
private embedding cache for the modules that encode.

``make test`` installs chromium when it can (root, or sudo without a password). Where it could not,
the browser tests skip with the command to run, except under ``CI=true``, where a missing browser
fails them: CI must exercise the real browser.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
CHROMIUM_MISSING = (
    "Chromium not found: run `sudo apt-get install chromium` (as root: `apt-get install chromium`), "
    "then `make test` again; never `playwright install`"
)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The chromium executable on PATH; skips the test without it (fails it under ``CI=true``)."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM_MISSING} (CI=true: the browser tests must run)", pytrace=False)
        pytest.skip(CHROMIUM_MISSING)
    return path


@pytest.fixture
def browser(chromium_path: str):
    """A headless chromium driven by playwright, closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def isolated_embedding_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep a module's embeddings cache out of the repository's data folder."""
    from tladvisor import embeddings

    old = os.environ.get("TLADVISOR_CACHE")
    os.environ["TLADVISOR_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    embeddings.clear_memory()
    yield
    embeddings.clear_memory()
    if old is None:
        os.environ.pop("TLADVISOR_CACHE", None)
    else:
        os.environ["TLADVISOR_CACHE"] = old


@pytest.fixture(scope="session")
def stored_runs(tmp_path_factory: pytest.TempPathFactory):
    """A database holding one finished run, with its artefact, per strategy and modality."""
    import stored_runs as built

    return built.build(tmp_path_factory.mktemp("stored_runs"))
