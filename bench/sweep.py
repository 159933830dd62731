"""A sweep on a Ray cluster against the sequential queue, in the same run (issue #18).

python bench/sweep.py                      # local Ray head in a loopback-only namespace (root)
python bench/sweep.py --ray HOST:PORT      # the same sweep on a real cluster
python bench/sweep.py --quick              # two tiny runs a side (the smoke test)

The same jobs (every cheap strategy, two seeds, on the bundled review sample) run twice from a
cold embedding cache each: one at a time in the dashboard's queue on this machine, then all at
once through the queue in Ray mode. It prints the wall-time ratio (the speed-up), writes
``bench/out/sweep.json`` and puts its section in BENCHMARKS.md (``bench/report.py`` keeps it).
On 2 cores expect little: the point is that the same command scales with the cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (sets offline mode and sys.path first)
from common import ROOT, log, machine_info, parse_args, put_section, write_json

SECTION = "## 6. Sweeps on a Ray cluster"
STRATEGIES = ("scratch", "feature_extraction", "zero_shot")
SEEDS = (0, 1)


def jobs(quick: bool) -> list[tuple[str, dict]]:
    if quick:
        return [("scratch", {"seed": seed}) for seed in SEEDS]
    return [(s, {"seed": seed, "max_train": 400}) for s in STRATEGIES for seed in SEEDS]


def sweep(db: Path, quick: bool, ray_address: str | None) -> dict:
    """Run the jobs through a JobQueue (Ray mode when ``ray_address``); wall seconds and runs."""
    from tladvisor import data
    from tladvisor.jobs import JobQueue
    from tladvisor.store import Store

    ds = data.load_sample("rotten_tomatoes")
    if quick:
        items, labels = ds.items[:60], ds.labels[:60]
        ds = data.Dataset(
            ds.name, ds.modality, items, labels, data.fingerprint_of("text", items, labels)
        )
    store = Store(db)
    queue = JobQueue(store, ray_address=ray_address)
    started = time.perf_counter()
    ids = [
        queue.submit(ds, strategy, overrides, user="bench") for strategy, overrides in jobs(quick)
    ]
    states = [queue.wait(run_id, timeout=3600) for run_id in ids]
    seconds = time.perf_counter() - started
    runs = [
        {"strategy": s.strategy, "status": s.status, "executor": s.report.executor} for s in states
    ]
    return {"seconds": seconds, "runs": runs}


def _ray_side(args, db: Path) -> dict:
    """The Ray sweep: on ``--ray``'s cluster, or a local head in its own namespace."""
    inner = [sys.executable, __file__, "--inner", "--db", str(db)] + (
        ["--quick"] if args.quick else []
    )
    if args.ray:
        return _child(inner + ["--ray", args.ray], os.environ)
    from tladvisor.ray_local import LocalCluster, unavailable

    reason = unavailable()
    if reason:
        raise SystemExit(f"cannot start a local Ray cluster: {reason}; give --ray HOST:PORT")
    # A cold cache for the workers too: the head, its raylet and the workers inherit it.
    os.environ["TLADVISOR_CACHE"] = str(db.parent / "cache-ray")
    with LocalCluster(num_cpus=os.cpu_count() or 2) as cluster:
        return _child(cluster.command(inner + ["--ray", cluster.address]), os.environ)


def _child(argv: list[str], env) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the sweep failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool, out: Path, args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sweep-"))
    cache = os.environ.get("TLADVISOR_CACHE")
    try:
        log(f"sequential queue: {len(jobs(quick))} runs on this machine")
        os.environ["TLADVISOR_CACHE"] = str(work / "cache-local")
        local = sweep(work / "local.duckdb", quick, None)
        log(f"sequential: {local['seconds']:.1f} s")
        log("Ray: the same runs at once")
        remote = _ray_side(args, work / "ray.duckdb")
        log(f"Ray: {remote['seconds']:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cache is None:
            os.environ.pop("TLADVISOR_CACHE", None)
        else:
            os.environ["TLADVISOR_CACHE"] = cache
    result = {
        "machine": machine_info(),
        "cluster": args.ray or f"local head, {os.cpu_count()} CPUs, loopback-only namespace",
        "jobs": [[s, o] for s, o in jobs(quick)],
        "sequential": local,
        "ray": remote,
        "speedup": local["seconds"] / remote["seconds"],
    }
    write_json(out, "sweep", result)
    print(f"speed-up of the sweep on Ray against the sequential queue: {result['speedup']:.2f}x")
    if not quick:
        put_section(ROOT / "BENCHMARKS.md", SECTION, section(result))
    return result


def section(result: dict) -> str:
    m = result["machine"]
    failed = [
        r for side in ("sequential", "ray") for r in result[side]["runs"] if r["status"] != "done"
    ]
    nodes = sorted({r["executor"].get("node", "?") for r in result["ray"]["runs"]})
    return "\n".join(
        [
            SECTION,
            "",
            f"{len(result['jobs'])} runs ({', '.join(STRATEGIES)}; seeds {', '.join(map(str, SEEDS))}; "
            "`max_train` 400 on the bundled review sample), each side from a cold embedding cache: "
            "one at a time in the dashboard's queue on this machine, then all at once through the "
            f"same queue in Ray mode ({result['cluster']}; ran on node(s) {', '.join(nodes)}).",
            "",
            "| side | wall time | runs done |",
            "|---|---|---|",
            *(
                f"| {name} | {result[side]['seconds']:.0f} s | "
                f"{sum(r['status'] == 'done' for r in result[side]['runs'])}/{len(result[side]['runs'])} |"
                for name, side in (("sequential queue", "sequential"), ("Ray sweep", "ray"))
            ),
            "",
            f"**Speed-up: {result['speedup']:.2f}x** on {m['cpu']} ({m['nproc']} cores, "
            f"{m['memory']} memory, {m['date']}; 1-minute load {m['load_average'][0]:.1f} from "
            "the sweep itself and other jobs as it ended). Two cores allow at most two runs at once, and each "
            "Ray worker loads its models itself where the queue's one process reuses them: on a "
            "real cluster the same command spreads the runs over every node's CPUs and GPUs. "
            "Reproduce: `python bench/sweep.py` (as root: it starts a local head in a "
            "loopback-only network namespace), or `python bench/sweep.py --ray HOST:PORT`."
            + (f" Not done: {len(failed)} run(s)." if failed else ""),
        ]
    )


def run_if_possible(quick: bool, out: Path, args) -> dict | None:
    """``run``, unless there is neither ``--ray`` nor a way to start a local head (``make bench``)."""
    from tladvisor.ray_local import unavailable

    reason = None if getattr(args, "ray", None) else unavailable()
    if reason:
        log(f"sweep skipped: {reason}; `make bench RAY=HOST:PORT` runs it on a cluster")
        return None
    return run(quick, out, args)


def add_ray_arg(parser) -> None:
    parser.add_argument("--ray", metavar="ADDRESS", help="an existing cluster's head (HOST:PORT)")


def _extra(parser) -> None:
    add_ray_arg(parser)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], _extra)
    if args.inner:  # the Ray side, inside the cluster's namespace: one JSON line on stdout
        print(json.dumps(sweep(args.db, args.quick, args.ray)))
    else:
        run(args.quick, args.out, args)
