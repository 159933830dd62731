"""Faults: a run killed mid-way, a database held by another process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tladvisor.store import Store, StoreLockedError


@pytest.mark.slow
def test_kill_9_mid_run_leaves_an_interrupted_run_and_no_metrics(tmp_path):
    db = tmp_path / "runs.duckdb"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tladvisor.cli",
            "--db",
            str(db),
            "run",
            "sample:rotten_tomatoes",
            "--strategy",
            "full_finetune",
            "--epochs",
            "5",
            "--max-train",
            "400",
            "--user",
            "ada",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    seen = b""
    deadline = time.monotonic() + 300
    while b"epoch 1" not in seen and time.monotonic() < deadline:  # training has started
        chunk = proc.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
    assert b"epoch 1" in seen, seen[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    store = Store(db)
    assert store.get_run(store.list_runs()["id"][0])["status"] == "running"  # as the kill left it
    assert store.mark_interrupted("killed") == 1
    run = store.get_run(store.list_runs()["id"][0])
    assert run["status"] == "interrupted" and run["metrics"] == {}
    store.close()


def test_the_cli_reports_a_database_held_by_another_process(tmp_path):
    db = tmp_path / "held.duckdb"
    Store(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from tladvisor.store import Store; s = Store(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="another"):
            Store(db)
        proc = subprocess.run(
            [sys.executable, "-m", "tladvisor.cli", "--db", str(db), "runs"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and "error:" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()
