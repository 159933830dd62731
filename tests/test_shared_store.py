"""One database file, many processes (tladvisor.store's short connections): two processes writing
50 runs each at once, and the CLI reading, running and importing while another process holds a
``Store`` on the file and runs a job in it, as the dashboard does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tladvisor.store import Store

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

# A writer: opens its Store, says ready, waits for "go", then records `count` runs from queued to
# done (data set, run, start, one curve point, metrics) and prints their ids as JSON.
WRITER = textwrap.dedent(
    """
    import json, sys, time
    from tladvisor.store import Store
    path, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store(path)
    print("ready", flush=True)
    sys.stdin.readline()
    ids, started = [], time.perf_counter()
    for i in range(count):
        store.upsert_dataset(f"fp-{who}", f"rows of {who}", "text", 10, {"a": 5, "b": 5}, user=who)
        run_id = store.create_run(
            user=who, dataset_fingerprint=f"fp-{who}", strategy="scratch", model="tfidf",
            config={"i": i}, seed=i,
        )
        store.start_run(run_id, device="cpu", precision="fp32")
        store.log_curve(run_id, 0, "train_loss", 1.0 / (i + 1))
        store.finish_run(
            run_id, metrics=[("accuracy", i / 100, "test"), ("seconds", 0.1, "")],
            backend="tfidf+logreg", details={"writer": who, "i": i},
        )
        ids.append(run_id)
    print(json.dumps({"ids": ids, "seconds": time.perf_counter() - started}), flush=True)
    """
)


def _writer(db: Path, who: str, count: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), who, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_two_processes_writing_50_runs_each_at_once_lose_and_double_nothing(tmp_path):
    db = tmp_path / "shared.duckdb"
    Store(db).close()
    writers = {who: _writer(db, who, 50) for who in ("ana", "bo")}
    for proc in writers.values():  # both start together, so their operations interleave
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = {}
    for who, proc in writers.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"writer {who} failed"
        results[who] = json.loads(out.strip().splitlines()[-1])
    print({who: round(r["seconds"], 1) for who, r in results.items()})

    with Store(db) as store:
        runs = store.list_runs()
        assert len(runs) == 100 and runs["id"].is_unique
        for who, result in results.items():
            mine = runs[runs["user_name"] == who]
            assert sorted(mine["id"]) == sorted(result["ids"])
            assert set(mine["status"]) == {"done"}
            # Each run has its own metrics, once: accuracy i/100 for config i.
            assert sorted(round(a * 100) for a in mine["accuracy"]) == list(range(50))
            assert all(
                run["i"] == d["i"] for run, d in zip(mine["config"], mine["details"], strict=True)
            )
        assert store.table_rows()["metrics"] == 200
        assert store.table_rows()["curves"] == 100
        assert store.table_rows()["run_events"] == 300  # queued, running, done: each once
        assert sorted(store.list_datasets()["fingerprint"]) == ["fp-ana", "fp-bo"]


# The dashboard, minus Streamlit: one Store for the process's life (st.cache_resource) and the
# dashboard's JobQueue running a real scratch run, held queued until stdin says go.
DASHBOARD = textwrap.dedent(
    """
    import sys
    from tladvisor import data
    from tladvisor.jobs import JobQueue
    from tladvisor.store import Store
    store = Store(sys.argv[1])
    store.mark_interrupted("restarted")
    ds = data.load_text_csv(sys.argv[2], name="tiny.csv")
    queue = JobQueue(store)
    # A run this live process keeps queued: no other process may take it for an abandoned one.
    gate = store.create_run(
        user="gate", dataset_fingerprint=ds.fingerprint, strategy="scratch", model="tfidf",
        config={}, seed=0,
    )
    print(gate, flush=True)
    sys.stdin.readline()
    run_id = queue.submit(ds, "scratch", {}, user="dash")
    state = queue.wait(run_id, timeout=300)
    print(state.status, run_id, flush=True)
    """
)


def _tiny_csv(path: Path) -> Path:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    rows = [f"{w} film number {i},{'pos' if w in words[:3] else 'neg'}" for i in range(6)
            for w in words]  # fmt: skip
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def _cli(db: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tladvisor.cli", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=ENV,
    )


@pytest.mark.slow
def test_the_cli_reads_runs_and_imports_while_the_dashboard_process_serves_the_file(tmp_path):
    db, other = tmp_path / "team.duckdb", tmp_path / "teammate.duckdb"
    csv = _tiny_csv(tmp_path / "tiny.csv")
    with Store(other) as theirs:  # a teammate's file with one finished run
        theirs.upsert_dataset("fp-x", "x", "text", 4, {"a": 2, "b": 2}, user="cy")
        run_id = theirs.create_run(
            user="cy", dataset_fingerprint="fp-x", strategy="scratch", model="tfidf", config={},
            seed=0,
        )  # fmt: skip
        theirs.start_run(run_id, device="cpu", precision="fp32")
        theirs.finish_run(run_id, metrics=[("accuracy", 0.5, "test")], backend="b", details={})
    dashboard = subprocess.Popen(
        [sys.executable, "-c", DASHBOARD, str(db), str(csv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    try:
        gate = dashboard.stdout.readline().strip()
        # The dashboard holds its Store and has a run of its own in flight: the CLI still reads...
        listed = _cli(db, "runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert {r["id"]: r["status"] for r in json.loads(listed.stdout)}[gate] == "queued"
        # ...runs (the dashboard's own run goes on meanwhile)...
        dashboard.stdin.write("go\n")
        dashboard.stdin.flush()
        ran = _cli(db, "run", str(csv), "--strategy", "scratch", "--json", "--user", "cli")
        assert ran.returncode == 0, ran.stderr
        cli_run = json.loads(ran.stdout)
        assert cli_run["status"] == "done" and cli_run["executor"] == {"kind": "local"}
        # ...and imports; nobody's live run was taken for a dead one.
        imported = _cli(db, "import", str(other), "--json")
        assert imported.returncode == 0, imported.stderr
        assert json.loads(imported.stdout)["runs_added"] == 1
        status, dash_run = dashboard.communicate(timeout=300)[0].split()
        assert status == "done"
    finally:
        dashboard.kill()
        dashboard.wait()
    with Store(db) as store:
        runs = store.list_runs().set_index("id")
        assert runs.loc[dash_run, "status"] == runs.loc[cli_run["run_id"], "status"] == "done"
        assert runs.loc[run_id, "user_name"] == "cy"
        assert runs.loc[gate, "status"] == "queued"  # the CLI's opens left the live run alone
        assert runs.loc[cli_run["run_id"], "executor"] == {"kind": "local"}


def test_the_cli_waits_then_explains_a_file_another_program_keeps_open(tmp_path):
    db = tmp_path / "held.duckdb"
    Store(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "tladvisor.cli", "--db", str(db), "runs"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**ENV, "TLADVISOR_DB_LOCK_TIMEOUT": "2"},
        )
        assert time.monotonic() - started >= 2  # it waited for the holder before giving up
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "another process has held it for 2." in proc.stderr
        assert "TLADVISOR_DB_LOCK_TIMEOUT" in proc.stderr
    finally:
        holder.communicate("", timeout=30)
    assert _cli(db, "runs").returncode == 0  # free again: it opens
