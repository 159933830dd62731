"""Faults: a run killed mid-way. (A database held by another process: tests/test_shared_store.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tladvisor.store import Store


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
