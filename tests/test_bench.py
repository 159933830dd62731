"""Smoke test of the benchmark scripts: each core function on a tiny budget (``bench/ --quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

pytestmark = pytest.mark.slow


def _run(script: str, tmp_path: Path, *extra: str) -> None:
    cmd = [
        sys.executable,
        str(BENCH / script),
        "--quick",
        "--db",
        str(tmp_path / "b.duckdb"),
        "--out",
        str(tmp_path),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_reference_logme_agrees_with_the_project():
    sys.path.insert(0, str(BENCH))
    import numpy as np
    from cost import reference_logme

    from tladvisor.transferability import logme

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    f = (np.eye(3)[y] @ rng.normal(size=(3, 16)) + rng.normal(size=(300, 16))).astype(np.float32)
    assert abs(reference_logme(f, y) - logme(f, y)) < 0.05


def test_every_script_runs_quick_and_the_report_is_written(tmp_path):
    _run("data_efficiency.py", tmp_path, "--only", "feature_extraction", "scratch", "zero_shot")
    rows = json.loads((tmp_path / "data_efficiency.json").read_text())["rows"]
    assert rows and all(r["status"] == "done" for r in rows)
    _run("evidence.py", tmp_path)
    _run("regret.py", tmp_path)
    regret = json.loads((tmp_path / "regret.json").read_text())
    assert regret["summary"]
    _run("transferability.py", tmp_path)
    _run("cost.py", tmp_path)
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["logme"]["abs_difference"] < 0.05
    _run("plots.py", tmp_path)
    _run("report.py", tmp_path)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## 1. Data efficiency" in text and "## 4. Cost" in text


def test_collect_runs_gathers_every_database_beside_the_main_one(tmp_path):
    sys.path.insert(0, str(BENCH))
    from common import collect_runs

    from tladvisor.store import Store

    for name, user in (("bench.duckdb", "main"), ("cost.duckdb", "cost"), ("other.duckdb", "x")):
        with Store(tmp_path / name) as store:
            store.upsert_dataset("fp", "d", "text", 4, {"a": 2, "b": 2})
            run_id = store.create_run(
                user=user, dataset_fingerprint="fp", strategy="lora", model="m", config={}, seed=0
            )
            store.start_run(run_id, device="cpu", precision="fp32")
            store.finish_run(run_id, metrics=[("accuracy", 0.5, "test")], backend="b", details={})
    assert collect_runs(tmp_path / "bench.duckdb") == 2
    assert collect_runs(tmp_path / "bench.duckdb") == 0  # nothing twice
    with Store(tmp_path / "bench.duckdb") as store:
        assert store.users() == ["cost", "main", "x"]


def test_prune_keeps_only_the_runs_the_results_name(tmp_path):
    sys.path.insert(0, str(BENCH))
    from common import prune_stale_runs, write_json

    from tladvisor.store import Store

    ids = []
    with Store(tmp_path / "bench.duckdb") as store:
        store.upsert_dataset("fp", "d", "text", 4, {"a": 2, "b": 2})
        for user in ("bench", "bench", "bench", "ada"):
            run_id = store.create_run(
                user=user, dataset_fingerprint="fp", strategy="lora", model="m", config={}, seed=0
            )
            store.start_run(run_id, device="cpu", precision="fp32")
            store.finish_run(run_id, metrics=[("accuracy", 0.5, "test")], backend="b", details={})
            ids.append(run_id)
    write_json(tmp_path, "data_efficiency", {"rows": [{"run_id": ids[0]}]})
    write_json(tmp_path, "cost", {"finetune": [{"run_id": ids[1]}]})
    assert prune_stale_runs(tmp_path / "bench.duckdb", tmp_path) == 1
    with Store(tmp_path / "bench.duckdb") as store:
        assert set(store.list_runs()["id"]) == {ids[0], ids[1], ids[3]}  # ada's run is not ours


def test_a_budget_past_the_data_is_the_all_run_once():
    """Pixel-permuted digits hold 32 training rows a class: a plan at 64 a class re-ran "all"
    and counted it as another point; old rows are relabelled and the repeat dropped."""
    sys.path.insert(0, str(BENCH))
    from common import effective_budget, load_datasets, n_train_of
    from data_efficiency import _relabel_budgets, plan

    from tladvisor.data import split_dataset

    assert effective_budget(64, 10, 400) is None
    assert effective_budget(32, 10, 400) == 32
    assert effective_budget(None, 10, 400) is None
    permuted = next(d for d in load_datasets(quick=False) if d.name.endswith("_permuted"))
    n_train = n_train_of(permuted)
    jobs = [j for j in plan([permuted], quick=False) if j[1] in ("scratch", "lora")]
    budgets = sorted((j[1], str(j[2])) for j in jobs)
    assert budgets == sorted(set(budgets))  # no run planned twice
    assert ("lora", "None") in budgets and ("scratch", "64") not in budgets
    for _, _, k, seed, over in jobs:  # every planned cap keeps fewer rows than the data, or all
        trained = split_dataset(permuted, seed=seed, max_train=over["max_train"]).train
        assert (k is None) == (len(trained) == n_train)

    row = {"dataset": permuted.name, "strategy": "scratch", "seed": 0, "status": "done"}
    rows = [{**row, "per_class": "64", "run_id": "a"}, {**row, "per_class": "all", "run_id": "b"}]
    assert [(r["per_class"], r["run_id"]) for r in _relabel_budgets(rows, [permuted])] == [
        ("all", "b")
    ]
    lone = _relabel_budgets([{**row, "per_class": "64", "strategy": "lora"}], [permuted])
    assert lone[0]["per_class"] == "all"
