"""Tests for tladvisor.ui_state: a database file that cannot be used stops the dashboard with an
error naming the file and the fix (AppTest, real files), and each person's data set names."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbfiles import digest, filled, truncated_copy, unwritable
from streamlit.testing.v1 import AppTest

from tladvisor import ui_state
from tladvisor.store import Store

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def _app(script: str, db: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("TLADVISOR_DB", str(db))
    return AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)


def _stopped_with_the_fix(at: AppTest, db: Path, *words: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    texts = [e.value for e in at.error]
    assert len(texts) == 1, texts
    assert str(db) in texts[0] and "--db" in texts[0] and "TLADVISOR_DB" in texts[0], texts[0]
    for word in words:
        assert word in texts[0], texts[0]
    assert not at.title  # the page stopped before drawing


@pytest.mark.parametrize("script", ["app.py", "views/compare.py", "views/run.py"])
def test_a_truncated_database_stops_every_page_with_the_file_and_the_fix(
    tmp_path, monkeypatch, script
):
    filled(tmp_path / "good.duckdb")
    db = truncated_copy(tmp_path / "good.duckdb", tmp_path / "runs.duckdb")
    before = digest(db)
    at = _app(script, db, monkeypatch).run()
    _stopped_with_the_fix(at, db, "damaged", "Restore it from a backup", "docs/deploy.md")
    assert digest(db) == before


def test_an_unwritable_database_stops_the_app_with_the_fix(tmp_path, monkeypatch):
    db = tmp_path / "runs.duckdb"
    filled(db)
    with unwritable(db):
        at = _app("app.py", db, monkeypatch).run()
    _stopped_with_the_fix(at, db, "read-only", "chmod u+w")


def test_a_fixed_file_opens_on_the_next_load(tmp_path, monkeypatch):
    db = tmp_path / "runs.duckdb"
    db.write_text("not a database")
    at = _app("app.py", db, monkeypatch).run()
    _stopped_with_the_fix(at, db, "not a DuckDB database")
    db.unlink()  # the admin removes the bad file: the next page load starts a fresh database
    at = _app("app.py", db, monkeypatch).run()
    assert not at.exception and not at.error and at.title


def test_datasets_by_name_knows_every_name_a_run_shows(tmp_path):
    db = tmp_path / "runs.duckdb"
    with Store(db) as store:
        store.upsert_dataset("fp", "ana.csv", "text", 4, {"a": 2, "b": 2}, user="ana")
        store.upsert_dataset("fp", "bob.csv", "text", 4, {"a": 2, "b": 2}, user="bob")
    names = ui_state.datasets_by_name(str(db))
    ui_state.get_store(str(db)).close()  # the cached store holds the file; let it go
    ui_state.get_store.clear()
    assert set(names) == {"ana.csv", "bob.csv"}
    assert names["bob.csv"]["fingerprint"] == "fp" and names["bob.csv"]["n_rows"] == 4
