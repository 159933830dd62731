"""Runs on a Ray cluster (tladvisor.ray_runs) against a real local head, started once for the
module inside a network namespace whose only interface is loopback (tladvisor.ray_local), so no
test traffic can leave 127.0.0.1. The drivers run in that namespace; this process only reads the
DuckDB file they write, which is also the shared-store path at work."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tladvisor import ray_local, ray_runs
from tladvisor.store import Store
from tladvisor.strategies import Strategy

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize(
    "strategy, gpus, device, memory, expected",
    [
        ("lora", 2, None, 3 * 2**30, {"num_cpus": 1, "num_gpus": 1, "memory": 3 * 2**30}),
        ("full_finetune", 1, None, None, {"num_cpus": 1, "num_gpus": 1}),
        ("prompting", 1, None, None, {"num_cpus": 1, "num_gpus": 1}),
        ("lora", 0, None, None, {"num_cpus": 1, "num_gpus": 0}),  # a CPU-only cluster
        ("lora", 4, "cpu", None, {"num_cpus": 1, "num_gpus": 0}),  # --device cpu wins
        ("feature_extraction", 4, None, None, {"num_cpus": 1, "num_gpus": 0}),
        ("scratch", 4, None, 64 * 2**30, {"num_cpus": 1, "num_gpus": 0, "memory": 16 * 2**30}),
    ],
)
def test_the_resource_request_follows_the_strategy_and_the_cluster(
    strategy, gpus, device, memory, expected
):
    largest = 16 * 2**30  # the largest node's memory: a bigger estimate is capped to it
    request = ray_runs.request_for(Strategy(strategy), gpus, device, memory, largest)
    assert request == expected


@pytest.fixture(scope="module")
def cluster():  # every test that uses it is marked slow
    reason = ray_local.unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Ray tests must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with ray_local.LocalCluster(num_cpus=2) as running:
        yield running


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    rows = [f"{w} film number {i},{'pos' if w in words[:3] else 'neg'}" for i in range(6)
            for w in words]  # fmt: skip
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def _tladvisor(wrap, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The CLI with ``args``, its command line passed through ``wrap`` (``cluster.command`` runs
    it inside the cluster's namespace)."""
    return subprocess.run(
        wrap([sys.executable, "-m", "tladvisor.cli", *args]),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**ENV, **env},
    )


@pytest.mark.slow
def test_a_cli_run_goes_to_the_cluster_and_lands_in_the_store(cluster, tiny_csv, tmp_path):
    db = tmp_path / "runs.duckdb"
    args = ["--db", str(db), "run", str(tiny_csv), "--strategy", "scratch", "--json"]
    done = _tladvisor(cluster.command, {"TLADVISOR_RAY_ADDRESS": cluster.address}, *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "done" and report["metrics"]["accuracy"] > 0.5
    executor = report["executor"]
    assert executor["kind"] == "ray" and executor["node"] == "127.0.0.1"
    assert executor["pid"] != os.getpid()  # a Ray worker ran it, not the CLI
    with Store(db) as store:
        run = store.get_run(report["run_id"])
    assert run["status"] == "done" and run["executor"] == executor
    assert run["metrics"]["accuracy"] == report["metrics"]["accuracy"]
    assert run["details"]["versions"]["python"]  # the worker's measurements came back whole


@pytest.mark.slow
def test_an_unreachable_cluster_is_a_clear_error_and_records_nothing(tiny_csv, tmp_path):
    db = tmp_path / "runs.duckdb"
    args = ["--db", str(db), "run", str(tiny_csv), "--strategy", "scratch", "--ray", "127.0.0.1:9"]
    done = _tladvisor(list, {}, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no Ray cluster answers at 127.0.0.1:9" in done.stderr
    assert not db.exists() or Store(db).list_runs().empty


# The dashboard's queue in Ray mode: two runs submitted at once, then it waits for both.
QUEUE = """
import sys
from tladvisor import data
from tladvisor.jobs import JobQueue
from tladvisor.store import Store
store = Store(sys.argv[1])
ds = data.load_text_csv(sys.argv[2], name="tiny.csv")
queue = JobQueue(store, ray_address=sys.argv[3])
slow = {"architecture": "same", "epochs": 30}  # a random network trained a while: time to kill
ids = [queue.submit(ds, "scratch", slow, user=who) for who in ("keep", "victim")]
for run_id in ids:
    state = queue.wait(run_id, timeout=600)
    print(run_id, state.status, flush=True)
"""


@pytest.mark.slow
def test_two_runs_at_once_and_a_worker_killed_mid_run(cluster, tiny_csv, tmp_path):
    db = tmp_path / "queue.duckdb"
    Store(db).close()
    driver = subprocess.Popen(
        cluster.command([sys.executable, "-c", QUEUE, str(db), str(tiny_csv), cluster.address]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    try:
        running = _wait_until_both_run(db, driver)
        victim = running["victim"]
        os.kill(victim["executor"]["pid"], signal.SIGKILL)
        out, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    with Store(db) as store:
        runs = store.list_runs().set_index("user_name")
        keep, killed = runs.loc["keep"], runs.loc["victim"]
        assert keep["status"] == "done" and keep["accuracy"] >= 0
        assert keep["executor"]["kind"] == "ray"
        assert killed["status"] == "failed"
        assert "Ray worker running it died" in killed["error"]
        assert store.get_run(killed["id"])["metrics"] == {}  # nothing half-written
        events = store.get_events(killed["id"])["status"].tolist()
    assert events == ["queued", "running", "failed"]


def _wait_until_both_run(db: Path, driver: subprocess.Popen, timeout: float = 300) -> dict:
    """Poll the store (while the driver writes it) until both runs are running at once."""
    deadline = time.monotonic() + timeout
    with Store(db) as store:
        while time.monotonic() < deadline:
            assert driver.poll() is None, driver.stderr.read()
            runs = store.list_runs()
            active = runs[runs["status"] == "running"]
            if len(active) == 2:
                return {r["user_name"]: r for r in active.to_dict("records")}
            assert not set(runs["status"]) & {"done", "failed"}, runs[["user_name", "status"]]
            time.sleep(0.2)
    raise AssertionError("the two runs were never running at the same time")


@pytest.mark.slow
def test_the_sweep_bench_measures_both_sides_and_prints_the_speedup(cluster, tmp_path):
    done = subprocess.run(
        cluster.command(
            [
                sys.executable,
                "bench/sweep.py",
                "--quick",
                "--ray",
                cluster.address,
                "--out",
                str(tmp_path),
            ]
        ),  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    printed = re.search(r"speed-up of the sweep on Ray .*: ([0-9.]+)x", done.stdout)
    result = json.loads((tmp_path / "sweep.json").read_text())
    assert printed and float(printed.group(1)) == round(result["speedup"], 2)
    assert result["speedup"] == result["sequential"]["seconds"] / result["ray"]["seconds"]
    assert [r["status"] for r in result["sequential"]["runs"] + result["ray"]["runs"]] == [
        "done"
    ] * 4
    assert {r["executor"]["kind"] for r in result["ray"]["runs"]} == {"ray"}
    assert {r["executor"]["kind"] for r in result["sequential"]["runs"]} == {"local"}
