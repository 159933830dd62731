"""The runner and job queue on real data, a real model and a real DuckDB file."""

from __future__ import annotations

import json

import pytest

from tladvisor import data
from tladvisor.jobs import JobQueue
from tladvisor.runner import execute
from tladvisor.store import Store


@pytest.fixture(scope="module")
def reviews() -> data.Dataset:
    """600 Rotten Tomatoes snippets from the bundled sample, balanced."""
    full = data.load_sample("rotten_tomatoes")
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(full.labels):
        by_class.setdefault(label, []).append(i)
    keep = sorted(i for rows in by_class.values() for i in rows[:300])
    items = [full.items[i] for i in keep]
    labels = [full.labels[i] for i in keep]
    return data.Dataset("rt600", "text", items, labels, data.fingerprint_of("text", items, labels))


def test_feature_extraction_run_is_recorded_with_every_metric(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    report = execute(store, reviews, "feature_extraction", {"seed": 1}, user="ada")
    assert report.status == "done", report.error
    assert report.metrics["accuracy"] > 0.6  # MiniLM features: well above chance (0.5)
    assert 0 < report.metrics["macro_f1"] <= 1
    assert report.cost["seconds"] > 0 and report.cost["peak_mem_mb"] > 100
    assert 0 < report.cost["trainable_params"] < report.cost["total_params"]
    assert {"logme", "h_score", "knn_accuracy"} <= set(report.transferability)
    run = store.get_run(report.run_id)
    assert run["status"] == "done" and run["user_name"] == "ada"
    assert run["metrics"]["accuracy"] == pytest.approx(report.metrics["accuracy"])
    assert run["details"]["classes"] == ["negative", "positive"]
    assert sum(map(sum, run["details"]["confusion"])) == run["details"]["split"]["test"]
    assert "torch" in run["details"]["versions"]
    json.dumps(report.to_dict())  # the CLI's --json


def test_a_failing_run_leaves_a_failed_row_and_no_metrics(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    report = execute(
        store, reviews, "feature_extraction", {"model": "hf:/no/such/folder"}, user="ada"
    )
    assert report.status == "failed" and "local folder" in report.error
    run = store.get_run(report.run_id)
    assert run["status"] == "failed" and "local folder" in run["error"]
    assert run["metrics"] == {}


def test_bad_settings_raise_before_anything_is_written(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    with pytest.raises(ValueError, match="epochs"):
        execute(store, reviews, "feature_extraction", {"epochs": 0}, user="ada")
    with pytest.raises(ValueError, match="unknown setting"):
        execute(store, reviews, "feature_extraction", {"nonsense": 1}, user="ada")
    assert store.list_runs().empty


def test_time_limit_fails_the_run_cleanly(tmp_path, reviews, monkeypatch):
    monkeypatch.setenv("TLADVISOR_MAX_RUN_SECONDS", "0.000001")
    store = Store(tmp_path / "runs.duckdb")
    report = execute(store, reviews, "full_finetune", {"epochs": 1, "max_train": 40}, user="ada")
    assert report.status == "failed" and "time limit" in report.error
    assert store.get_run(report.run_id)["metrics"] == {}


def test_two_teammates_queue_runs_and_both_complete(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    jobs = JobQueue(store)
    try:
        first = jobs.submit(reviews, "feature_extraction", {"seed": 0}, user="ada")
        second = jobs.submit(reviews, "zero_shot", {}, user="grace")
        assert {s.run_id for s in jobs.active()} <= {first, second}
        assert jobs.wait(first, timeout=300).status == "done"
        assert jobs.wait(second, timeout=300).status == "done"
    finally:
        jobs.shutdown()
    runs = store.list_runs()
    assert sorted(runs["user_name"]) == ["ada", "grace"]
    assert set(runs["status"]) == {"done"} and runs["id"].is_unique


def test_cancel_before_start_marks_the_run_cancelled(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    jobs = JobQueue(store)
    try:
        running = jobs.submit(reviews, "full_finetune", {"epochs": 1, "max_train": 60}, user="ada")
        waiting = jobs.submit(reviews, "feature_extraction", {}, user="ada")
        assert jobs.cancel(waiting)
        assert jobs.cancel(running)
        assert jobs.wait(running, timeout=300).status == "cancelled"
        assert jobs.wait(waiting, timeout=60).status == "cancelled"
    finally:
        jobs.shutdown()
    assert set(store.list_runs()["status"]) == {"cancelled"}
