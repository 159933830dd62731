"""Smoke test of the benchmark scripts: each core function on a tiny budget (``bench/ --quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


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


@pytest.mark.slow
def test_reference_logme_agrees_with_the_project():
    sys.path.insert(0, str(BENCH))
    import numpy as np
    from cost import reference_logme

    from tladvisor.transferability import logme

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    f = (np.eye(3)[y] @ rng.normal(size=(3, 16)) + rng.normal(size=(300, 16))).astype(np.float32)
    assert abs(reference_logme(f, y) - logme(f, y)) < 0.05


@pytest.mark.slow
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
    _run("estimate_check.py", tmp_path)
    checked = json.loads((tmp_path / "estimate_check.json").read_text())
    assert [r["status"] for r in checked["runs"]] == ["done", "done"]
    assert all(r["measured_seconds"] > 0 and r["estimated_seconds"] > 0 for r in checked["runs"])
    _run("plots.py", tmp_path)
    _run("report.py", tmp_path)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## 1. Data efficiency" in text and "## 4. Cost" in text


@pytest.mark.slow
def test_the_advice_suite_and_its_lodo_evaluation_run_quick(tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, str(BENCH / "advice_suite.py"), "--quick", "--results", str(results)]
    cmd += ["--db", str(tmp_path / "a.duckdb")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(line) for line in (results / "advice_runs.jsonl").read_text().splitlines()]
    assert {r["dataset"] for r in runs} == {"rotten_tomatoes", "sklearn_digits"}
    assert all(r["status"] == "done" for r in runs)
    # Resumable: a second call measures nothing new.
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH, timeout=600)
    assert "0 runs and 0 profiles measured" in proc.stdout
    report = tmp_path / "B.md"
    report.write_text("# Benchmarks\n\n## Summary\n")
    cmd = [
        sys.executable,
        str(BENCH / "lodo.py"),
        "--results",
        str(results),
        "--out",
        str(tmp_path),
    ]
    cmd += ["--model", str(tmp_path / "model.json"), "--report", str(report)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "lodo.json").read_text())
    assert data["lodo_summary"]["cases"] > 0 and data["in_sample_summary"]["cases"] > 0
    # The trade tolerance's table: each value scored, the shipped one marked.
    assert [r["trade_max"] for r in data["trade_sweep"]] == [0.0, 0.01, 0.02, 0.03]
    assert [r["chosen"] for r in data["trade_sweep"]].count(True) == 1
    model = json.loads((tmp_path / "model.json").read_text())
    assert (
        "text/feature_extraction" in model["anchored"]
        or "text/feature_extraction" in model["unanchored"]
    )
    text = report.read_text()
    assert "leave-one-data-set-out" in text and text.index("advice:start") < text.index(
        "## Summary"
    )


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _fake_results(folder: Path) -> None:
    """Advice-suite results for 3 real text sets, a synthetic shift and a small image set."""
    lines = []

    def add(dataset: str, strategy: str, budget: str, accuracy: float, seeds=(0,)) -> None:
        for seed in seeds:
            row = {"dataset": dataset, "strategy": strategy, "status": "done", "seconds": 1.0}
            lines.append({**row, "accuracy": accuracy, "budget": budget, "seed": seed})

    # Per set: probe at 2/8/32/128, LoRA at 8/128, prompting and zero-shot, scratch.
    # LoRA beats the probe at 128 on the first two sets only; scratch is far ahead at 128 on
    # bbc_news alone (enough to lift the mean, not a majority).
    sets = {
        "rotten_tomatoes": ((0.55, 0.62, 0.75, 0.80), (0.60, 0.88), 0.70, (0.5, 0.52, 0.55, 0.78)),
        "chinese_reviews": ((0.50, 0.60, 0.72, 0.78), (0.58, 0.85), 0.68, (0.5, 0.52, 0.55, 0.77)),
        "bbc_news": ((0.40, 0.55, 0.80, 0.90), (0.50, 0.86), 0.65, (0.3, 0.50, 0.60, 0.99)),
    }
    for name, (probe, lora, prompting, scratch) in sets.items():
        for k, acc, acc_scratch in zip(("2", "8", "32", "128"), probe, scratch, strict=True):
            add(name, "feature_extraction", k, acc - 0.01, seeds=(0,))
            add(name, "feature_extraction", k, acc + 0.01, seeds=(1,))
            add(name, "scratch", k, acc_scratch, seeds=(0, 1))
        add(name, "feature_extraction", "all", 0.99, seeds=(0, 1))  # not on the pooled curve
        add(name, "lora", "8", lora[0])
        add(name, "lora", "128", lora[1])
        add(name, "prompting", "all", prompting)
        add(name, "zero_shot", "all", 0.55)
    add("rotten_tomatoes_rot13", "feature_extraction", "128", 0.1)  # a shift: never pooled
    add("rotten_tomatoes_rot13", "zero_shot", "all", 0.99)
    for k, acc in (("2", 0.6), ("8", 0.7), ("32", 0.8), ("all", 0.9)):  # 65 a class: 128 is "all"
        add("lfw_faces", "feature_extraction", k, acc)
    folder.mkdir()
    text = "".join(json.dumps(row) + "\n" for row in lines)
    (folder / "advice_runs.jsonl").write_text(text)
    profile = {"dataset": "lfw_faces", "budget": "all", "n_labeled": 130, "n_classes": 2}
    (folder / "advice_profiles.jsonl").write_text(json.dumps(profile) + "\n")


def test_evidence_is_pooled_over_the_real_sets_and_kept_only_where_most_agree(tmp_path):
    sys.path.insert(0, str(BENCH))
    import evidence

    from tladvisor.evidence import Evidence

    results = tmp_path / "results"
    _fake_results(results)
    pools = {p.modality: p for p in evidence.suite_pools(results)}
    text = pools["text"]
    assert list(text.sets) == ["rotten_tomatoes", "chinese_reviews", "bbc_news"]
    assert text.where.startswith("Over 3 real text sets of the suite (rotten_tomatoes")
    assert sorted(text.curve["feature_extraction"]) == [2, 8, 32, 128]
    assert text.curve["feature_extraction"][32]["mean"] == pytest.approx(0.7567, abs=1e-4)
    assert text.curve["prompting"] == {
        0: pytest.approx({"mean": 0.6767, "std": 0.0252, "n": 3}, abs=1e-4)
    }
    assert pools["image"].curve["feature_extraction"][128]["mean"] == 0.9  # the "all" run

    entries = evidence.run(
        quick=False, out=tmp_path / "out", results=results, evidence_path=tmp_path / "e.json"
    )
    assert json.loads((tmp_path / "e.json").read_text()) == entries
    for name, entry in entries.items():
        Evidence.from_dict(name, entry)
    probe = entries["text_probe_beats_prompting"]
    assert probe["per_class_min"] == 32 and probe["weight"] == -2.0
    assert "Held on 3 of 3 sets." in probe["text"]
    free = entries["text_training_free_beats_few_shot_probe"]
    assert free["favour"] == "prompting" and free["per_class_max"] == 8
    tuned = entries["text_finetune_beats_probe"]
    assert tuned["favour"] == "lora" and tuned["per_class_min"] == 128
    assert tuned["text"].endswith("Held on 2 of 3 sets.")
    assert "bundled" not in tuned["text"]
    # Scratch's mean is ahead at 128 (+2 points), but on one set of three: not written.
    assert "text_scratch_beats_probe" not in entries
    assert all(e.get("unusual") is None for e in entries.values())


def test_model_selection_scores_rank_agreement_and_regret_with_known_answers(monkeypatch):
    """Three candidates on one set: a score that orders them as their accuracies has tau 1 and no
    regret; one that reverses them has tau -1 and loses the best-minus-worst gap."""
    monkeypatch.syspath_prepend(str(BENCH))
    import model_selection as ms

    rows = []
    for model, acc, ms_item, logme, h in (
        ("minilm", 0.70, 2.0, -0.60, 0.9),
        ("mpnet", 0.80, 10.0, -0.40, 0.1),
        ("smollm2", 0.60, 12.0, -0.70, 0.5),
    ):
        rows.append({"dataset": "rotten_tomatoes", "model": model, "kind": "feature_extraction",
                     "status": "done", "accuracy": acc, "seconds": 10.0})  # fmt: skip
        rows.append({"dataset": "rotten_tomatoes", "model": model, "kind": "scores",
                     "scores": {"logme": logme, "h_score": h}, "scoring_seconds": 1.0,
                     "ms_per_item": ms_item})  # fmt: skip
    data = ms.evaluate(rows)
    (entry,) = data["per_set"]
    assert entry["tau"]["logme"] == pytest.approx(1.0)
    assert entry["regret"]["logme"] == pytest.approx(0.0)
    assert entry["tau"]["h_score"] == pytest.approx(-1 / 3)  # minilm, smollm2, mpnet
    assert entry["regret"]["h_score"] == pytest.approx(0.10)  # picks minilm: 0.80 - 0.70
    assert entry["regret"]["advice_accuracy"] == pytest.approx(0.0)
    assert entry["scoring_seconds"] == 3.0 and entry["running_seconds"] == 30.0
    summary = data["summary"]["text/feature_extraction"]
    assert summary["logme"]["mean_regret"] == pytest.approx(0.0) and summary["sets"] == 1
    assert "Model selection" in ms.section(data, None)
