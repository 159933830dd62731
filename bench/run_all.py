"""Run every benchmark in sequence, then the evidence, charts and BENCHMARKS.md (``make bench``).

python bench/run_all.py            # ~2 h + the advice suite (~6 h, resumable) on 2 CPU cores
python bench/run_all.py --quick    # tiny versions of everything (results stay in --out)
python bench/run_all.py --ray HOST:PORT   # the sweep step on that Ray cluster (make bench RAY=...)
"""

from __future__ import annotations

import time

import advice_suite
import common  # noqa: F401  (sets offline mode and sys.path first)
import cost
import data_efficiency
import estimate_check
import evidence
import lodo
import model_selection
import plots
import regret
import report
import sweep
import transferability
from common import CHART_DIR, collect_runs, log, parse_args, prune_stale_runs


def main(quick: bool, db, out, args=None) -> None:
    steps = [
        ("data efficiency", lambda: data_efficiency.run(quick, db, out)),
        ("transferability", lambda: transferability.run(quick, db, out)),
        ("cost", lambda: cost.run(quick, db, out)),
        ("estimated against measured time", lambda: estimate_check.run(quick, db, out)),
        ("one database", lambda: (collect_runs(db), prune_stale_runs(db, out))),
        ("advice suite (resumes)", lambda: advice_suite.run(quick, out)),
        ("leave-one-data-set-out", lambda: lodo.run(quick, out)),
        ("model selection (resumes)", lambda: model_selection.run(quick, out)),
        ("evidence", lambda: evidence.run(quick, out)),
        ("regret (bundled samples, in-sample)", lambda: regret.run(quick, db, out)),
        ("sweep on Ray against the queue", lambda: sweep.run_if_possible(quick, out, args)),
        ("charts", lambda: plots.run(quick, out, out / "charts" if quick else CHART_DIR)),
        ("report", lambda: report.run(quick, out)),
    ]
    for name, step in steps:
        t0 = time.perf_counter()
        log(f"== {name}")
        step()
        log(f"== {name} done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], sweep.add_ray_arg)
    main(args.quick, args.db, args.out, args)
