"""Tests for tladvisor.db_check on real files: an older schema is reported but not migrated, a cut
artefact and an unwritable file are problems, a file with a table missing is damaged."""

from __future__ import annotations

import duckdb
import numpy as np
from dbfiles import digest, filled, unwritable
from safetensors.numpy import save_file

from tladvisor.db_check import artefact_problem, check_database
from tladvisor.store import LATEST_VERSION, migrate


def test_an_older_schema_is_fine_and_is_not_migrated_by_the_check(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, target=1)
    con.close()
    before = digest(db)
    report = check_database(db)
    assert report.healthy, report.findings
    assert any(f"schema version 1 of {LATEST_VERSION}" in f.text for f in report.findings)
    assert digest(db) == before


def test_a_missing_table_is_damage(tmp_path):
    db = tmp_path / "runs.duckdb"
    filled(db)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE metrics")
    con.close()
    report = check_database(db)
    assert not report.healthy
    assert "metrics are missing" in report.problems[0] and "Restore" in report.problems[0]


def test_artefact_problems_cut_short_empty_or_missing(tmp_path):
    head = tmp_path / "head.safetensors"
    save_file({"w": np.ones((4, 16), dtype=np.float32)}, str(head))
    assert artefact_problem(head) is None
    assert artefact_problem(tmp_path) is None  # a folder of readable files
    head.write_bytes(head.read_bytes()[:-10])
    assert "cut short" in artefact_problem(head)
    head.write_bytes(b"\xff" * 4)
    assert "too short" in artefact_problem(head)
    (tmp_path / "adapter").mkdir()
    assert "is empty" in artefact_problem(tmp_path / "adapter")
    assert "is missing" in artefact_problem(tmp_path / "gone.safetensors")


def test_an_unwritable_file_is_a_problem_but_is_still_read(tmp_path):
    db = tmp_path / "runs.duckdb"
    filled(db)
    with unwritable(db):
        report = check_database(db)
    assert not report.healthy
    (problem,) = report.problems
    assert "read-only" in problem and f"chmod u+w {db}" in problem
    assert any("2 runs" in f.text for f in report.findings if f.ok)
