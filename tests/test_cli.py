"""The CLI, headless: JSON shapes, exit codes and plain-words errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import nullcontext as _nothing

import pytest

from tladvisor import catalog
from tladvisor.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_the_packaged_catalogue(capsys, tmp_path, monkeypatch):
    # An empty Hugging Face cache and no TLADVISOR_MODELS: only the packaged models are listed.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("TLADVISOR_MODELS", raising=False)
    code, out, _ = run_cli(capsys, "models", "--json")
    rows = json.loads(out)
    assert code == 0
    assert {r["name"] for r in rows} == set(catalog.CATALOG)
    assert {r["name"] for r in rows} >= {"minilm", "mpnet", "smollm2", "efficientnet-lite2"}
    assert all(r["available"] for r in rows)
    mpnet = next(r for r in rows if r["name"] == "mpnet")
    assert mpnet["feature_dim"] == 768 and mpnet["size_mb"] > 300


def test_advise_from_flags_alone(capsys):
    code, out, _ = run_cli(
        capsys,
        "advise",
        "--n-labeled",
        "20000",
        "--n-classes",
        "5",
        "--domain-unusualness",
        "0.8",
        "--gpu-memory-gb",
        "80",
        "--json",
    )
    rec = json.loads(out)
    assert code == 0
    assert rec["strategy"] in {"full_finetune", "lp_ft", "partial_finetune", "lora"}
    assert all({"strategy", "score"} <= set(a) for a in rec["alternatives"])
    assert all({"rule", "text", "source"} <= set(r) for r in rec["reasons"])
    assert "advice" in rec and "profile" in rec
    # Every alternative states its expected accuracy with an ordered 80% interval.
    for alt in rec["alternatives"]:
        e = alt["expected_accuracy"]
        assert 0.0 <= e["low"] <= e["point"] <= e["high"] <= 1.0, alt
        assert "expected_cost" in alt
    assert rec["decided_by"] == "rules"  # nothing was measured: the framework decides
    code, out, _ = run_cli(capsys, "advise", "--n-labeled", "20000", "--n-classes", "5",
                           "--best-accuracy", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["preference"] == "accuracy"


def test_advise_bad_combination_gets_advice_not_a_crash(capsys):
    code, out, _ = run_cli(capsys, "advise", "--n-labeled", "3", "--n-classes", "10", "--json")
    rec = json.loads(out)
    assert code == 0 and rec["strategy"] in {"prompting", "zero_shot"}
    assert any(a["key"] == "collect_labels" for a in rec["advice"])


def test_advise_without_data_or_flags_explains(capsys):
    code, _, err = run_cli(capsys, "advise")
    assert code == 2 and "--n-labeled" in err


def test_bad_csv_exits_2_with_the_problem_and_no_traceback(tmp_path):
    bad = tmp_path / "one_class.csv"
    bad.write_text("text,label\nfine film,pos\ngreat,pos\nlovely,pos\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tladvisor.cli",
            "--db",
            str(tmp_path / "x.duckdb"),
            "run",
            str(bad),
            "--strategy",
            "feature_extraction",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "class" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.duckdb").exists() or "pos" not in proc.stdout


@pytest.mark.slow
def test_run_and_runs_json_round_trip(capsys, tmp_path):
    db = str(tmp_path / "cli.duckdb")
    code, out, _ = run_cli(
        capsys,
        "--db",
        db,
        "run",
        "sample:rotten_tomatoes",
        "--strategy",
        "zero_shot",
        "--user",
        "ada",
        "--json",
    )
    report = json.loads(out)
    assert code == 0, report
    assert {
        "run_id",
        "strategy",
        "model",
        "backend",
        "device",
        "metrics",
        "cost",
        "transferability",
        "forgetting",
    } <= set(report)
    assert report["metrics"]["accuracy"] > 0.5
    assert {"seconds", "peak_mem_mb", "trainable_params"} <= set(report["cost"])
    code, out, _ = run_cli(capsys, "--db", db, "runs", "--json")
    runs = json.loads(out)
    assert [r["id"] for r in runs] == [report["run_id"]] and runs[0]["user_name"] == "ada"
    # --db is a global option, accepted after the command as the README lists it.
    code, out, _ = run_cli(capsys, "runs", "--db", db, "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [report["run_id"]]
    other = str(tmp_path / "other.duckdb")
    code, out, _ = run_cli(capsys, "--db", db, "runs", "--db", other, "--json")
    assert code == 0 and json.loads(out) == []  # the later one wins, as argparse does


def test_import_merges_a_teammates_file(capsys, tmp_path):
    from tladvisor.store import Store

    theirs = tmp_path / "theirs.duckdb"
    with Store(theirs) as other:
        other.upsert_dataset("fp", "reviews", "text", 4, {"a": 2, "b": 2})
        run_id = other.create_run(
            user="bo", dataset_fingerprint="fp", strategy="lora", model="minilm", config={}, seed=0
        )
        other.start_run(run_id, device="cpu", precision="fp32")
        other.finish_run(run_id, metrics=[("accuracy", 0.7, "test")], backend="t", details={})
    mine = str(tmp_path / "mine.duckdb")
    code, out, _ = run_cli(capsys, "--db", mine, "import", str(theirs), "--json")
    assert code == 0
    assert json.loads(out)["runs_added"] == 1
    code, out, _ = run_cli(capsys, "--db", mine, "import", str(theirs))
    assert code == 0 and "0 runs added, 1 already here" in out
    code, out, _ = run_cli(capsys, "--db", mine, "runs", "--json")
    assert [(r["id"], r["user_name"], r["accuracy"]) for r in json.loads(out)] == [
        (run_id, "bo", 0.7)
    ]
    code, _, err = run_cli(capsys, "--db", mine, "import", str(tmp_path / "nope.duckdb"))
    assert code == 2 and "no database file" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "user, why",
    [
        ("![n](http://127.0.0.1:9/x.png)", "letters, digits"),
        ("<b>ada</b>", "letters, digits"),
        ("../../etc/passwd", "letters, digits"),
        ("a" * 5000, "5000 characters"),
    ],
)
def test_run_refuses_a_user_name_the_dashboard_would_refuse(capsys, tmp_path, user, why):
    from tladvisor.store import Store

    data = tmp_path / "reviews.csv"
    rows = [f"{w} film,{lab}" for lab in ("pos", "neg") for w in ("fine", "dull", "odd", "bold")]
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli(capsys, "--db", str(db), "run", str(data), "--strategy", "scratch",
                           "--user", user)  # fmt: skip
    assert code == 2 and why in err and "Traceback" not in err
    if db.exists():
        with Store(db) as store:
            assert store.list_runs().empty  # nothing stored under that name
    code, _, _ = run_cli(capsys, "--db", str(db), "run", str(data), "--strategy", "scratch",
                         "--user", "  Ada  Lovelace ")  # fmt: skip
    assert code == 0
    with Store(db) as store:
        assert list(store.list_runs()["user_name"]) == ["Ada Lovelace"]


# -- a damaged or unusable database file, and `tladvisor check` -------------------------------------


def _artefact_run(db, folder) -> str:
    """A finished run of ana's in ``db`` whose trained head is a real safetensors file."""
    import numpy as np
    from safetensors.numpy import save_file

    from tladvisor.store import Store

    folder.mkdir()
    head = folder / "head.safetensors"
    save_file({"weight": np.ones((2, 8), dtype=np.float32)}, str(head))
    with Store(db) as store:
        run_id = store.create_run(
            user="ana", dataset_fingerprint="fp-rt", strategy="feature_extraction",
            model="minilm", config={}, seed=0,
        )  # fmt: skip
        store.start_run(run_id, device="cpu", precision="fp32")
        store.finish_run(
            run_id, metrics=[("accuracy", 0.9, "test")], backend="t",
            details={"artifact_path": str(head)},
        )  # fmt: skip
    return run_id


@pytest.mark.parametrize("kind", ["truncated", "not-duckdb", "unwritable"])
def test_runs_on_an_unusable_database_says_what_to_do_and_changes_nothing(capsys, tmp_path, kind):
    from dbfiles import digest, filled, truncated_copy, unwritable

    db = tmp_path / "runs.duckdb"
    if kind == "truncated":
        filled(tmp_path / "good.duckdb")
        truncated_copy(tmp_path / "good.duckdb", db)
        fix = "Restore it from a backup"
    elif kind == "not-duckdb":
        db.write_text("id,user\n1,ana\n")
        fix = "not a DuckDB database"
    else:
        filled(db)
        fix = "read-only"
    before = digest(db)
    with unwritable(db) if kind == "unwritable" else _nothing():
        code, out, err = run_cli(capsys, "--db", str(db), "runs")
    assert code == 2 and out == ""
    assert str(db) in err and fix in err and "--db" in err, err
    assert "Traceback" not in err and "_duckdb" not in err
    assert digest(db) == before


def test_a_truncated_database_in_a_real_process_gives_no_traceback(tmp_path):
    from dbfiles import filled, truncated_copy

    filled(tmp_path / "good.duckdb")
    db = truncated_copy(tmp_path / "good.duckdb", tmp_path / "copy.duckdb")
    proc = subprocess.run(
        [sys.executable, "-m", "tladvisor.cli", "--db", str(db), "runs"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"cannot use the database file {db}" in proc.stderr
    assert "Traceback" not in proc.stderr and "IOException" not in proc.stderr


def test_check_passes_a_healthy_database_and_names_each_problem(capsys, tmp_path):
    from dbfiles import filled, truncated_copy

    db = tmp_path / "runs.duckdb"
    filled(db)
    run_id = _artefact_run(db, tmp_path / "artifacts")
    code, out, _ = run_cli(capsys, "check", "--db", str(db))
    assert code == 0, out
    assert f"checking {db}" in out and out.rstrip().endswith("healthy")
    assert "3 runs" in out and "1 saved heads/adapters are present" in out
    code, out, _ = run_cli(capsys, "--db", str(db), "check", "--json")
    assert code == 0 and json.loads(out)["healthy"] is True

    # A lost artefact: the database is fine, the run's download is not.
    (tmp_path / "artifacts" / "head.safetensors").unlink()
    code, out, _ = run_cli(capsys, "check", "--db", str(db))
    assert code == 1 and f"PROBLEM  run {run_id}" in out and "is missing" in out

    # A truncated copy of the database: named, with the backup fix, and left as it was.
    copy = truncated_copy(db, tmp_path / "copy.duckdb")
    code, out, _ = run_cli(capsys, "check", "--db", str(copy), "--json")
    report = json.loads(out)
    assert code == 1 and report["healthy"] is False
    (problem,) = [f["text"] for f in report["findings"] if not f["ok"]]
    assert str(copy) in problem and "damaged" in problem and "Restore it from a backup" in problem
    code, out, _ = run_cli(capsys, "check", "--db", str(tmp_path / "nope.duckdb"))
    assert code == 1 and "no such file" in out
    assert not (tmp_path / "nope.duckdb").exists()


@pytest.mark.slow
def test_run_all_runs_every_image_strategy_and_ranks_them(capsys, tmp_path):
    """``--strategy all`` on 36 real digits (12 a class, as a ZIP of class folders): one stored,
    finished run per strategy that applies to images, each on its default model."""
    import io
    import zipfile

    from tladvisor.data import load_sample
    from tladvisor.strategies import applicable

    digits = load_sample("mnist_digits")
    path, taken = tmp_path / "digits.zip", {"0": 0, "1": 0, "7": 0}
    with zipfile.ZipFile(path, "w") as zf:
        for image, label in zip(digits.items, digits.labels, strict=True):
            if taken.get(label, 12) < 12:
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                zf.writestr(f"{label}/{taken[label]}.png", buf.getvalue())
                taken[label] += 1
    db = str(tmp_path / "all.duckdb")
    code, _, err = run_cli(capsys, "--db", db, "run", str(path), "--strategy", "all",
                           "--model", "minilm")  # fmt: skip
    assert code == 2 and "each runs on its default model" in err
    argv = ["--db", db, "run", str(path), "--strategy", "all", "--epochs", "1", "--json"]
    code, out, _ = run_cli(capsys, *argv)
    reports = json.loads(out)
    assert code == 0, [(r["strategy"], r["error"]) for r in reports]
    assert [r["strategy"] for r in reports] == applicable("image")
    assert all(r["status"] == "done" and 0 <= r["metrics"]["accuracy"] <= 1 for r in reports)
    code, out, _ = run_cli(capsys, "--db", db, "runs", "--json")
    assert sorted(r["id"] for r in json.loads(out)) == sorted(r["run_id"] for r in reports)
