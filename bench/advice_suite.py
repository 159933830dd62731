"""The advice benchmark's measurements: every strategy over label budgets on the whole suite.

For each entry of ``bench/suite.py`` and each budget of labelled examples per class, this runs
the applicable strategies through ``tladvisor.runner.execute`` (the same code a user's run takes)
and profiles the budget's training rows with ``tladvisor.profile.measure_profile`` (what the
advisor would see if a user uploaded exactly those rows). ``bench/lodo.py`` then fits the outcome
model leave-one-data-set-out on these rows and scores the advisor on the set left out.

Results are appended, one JSON line a run or profile, to ``bench/results/advice_runs.jsonl`` and
``bench/results/advice_profiles.jsonl``. They are committed: a later session resumes where this
one stopped (a line is never measured twice), since the whole suite takes hours on 2 cores.

    python bench/advice_suite.py                    # everything not yet measured
    python bench/advice_suite.py --only cheap       # zero-shot, probe, scratch and profiles
    python bench/advice_suite.py --sets bbc_news,textures --minutes 30
    python bench/advice_suite.py --quick            # seconds: two small sets, for the smoke test
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401  (sets offline mode and sys.path first)
import suite
from common import OUT_DIR, ROOT, log, open_store, run_one

RESULTS = ROOT / "bench" / "results"
RUNS_FILE = "advice_runs.jsonl"
PROFILES_FILE = "advice_profiles.jsonl"
DB_NAME = "advice.duckdb"

# Labelled examples per class; None is the whole training split ("all").
BUDGETS: tuple[int | None, ...] = (2, 8, 32, 128, None)
CHEAP = ("feature_extraction", "scratch")  # seconds a run once the embeddings are cached
CHEAP_SEEDS = (0, 1, 2)
TRAINING_FREE = ("zero_shot",)  # budget-independent: measured once, on the fixed test split
# Fine-tuning text on 2 CPU cores costs minutes a run: LoRA only, at the budgets where the
# seeds' bands put the decision, one seed; partial / full fine-tuning and LP-FT of MiniLM are left
# to a GPU session (make bench reports them as skipped).
# On 64 px images every fine-tuning path takes seconds a run, so all four run there.
EXPENSIVE = {
    "text": ("lora",),
    "image": ("partial_finetune", "lora", "full_finetune", "lp_ft"),
}
EXPENSIVE_BUDGETS = (8, 128)
SKIPPED = {"text": ("partial_finetune", "full_finetune", "lp_ft"), "image": ()}
FINE_TUNING = ("lora", "partial_finetune", "full_finetune", "lp_ft")
# The defaults a user gets, except (as in bench/data_efficiency.py): 2 epochs, no forgetting
# measurement, and 64 px images (the suite's images are 8-64 px; 224 px costs 12x on a CPU).
SHORT_SCHEDULE = {
    "text": {"epochs": 2, "measure_forgetting": False},
    "image": {"epochs": 2, "image_size": 64, "measure_forgetting": False},
}
# Prompting (zero-shot, content-free calibrated) trains on nothing: it runs once a text set on the
# fixed test split like zero-shot, without scoring the validation split (it only reports there).
# It was once run on a 100-a-class subsample: 40 test texts, a truth 8 points noisy either way.
PROMPT_OVERRIDES = {"max_val": 0}
QUICK_SETS = ("rotten_tomatoes", "sklearn_digits")
QUICK_CAP = 120
QUICK_BUDGETS = (8, None)


def budget_label(k: int | None) -> str:
    return "all" if k is None else str(k)


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise
            # The last line of a file another process is appending to may be half-written.
    return rows


def append_line(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


def run_key(row: dict[str, Any]) -> tuple:
    return (row["dataset"], row["strategy"], row["budget"], row["seed"])


def plan(
    ds: Any, entry: suite.Entry, only: str | None, quick: bool = False
) -> list[tuple[str, int | None, int]]:
    """(strategy, budget, seed) to run on ``ds``; budgets past the data's size collapse to all."""
    n_train = len(suite.fixed_split(ds).train)
    n_classes = len(ds.classes)
    budgets: list[int | None] = []
    for k in QUICK_BUDGETS if quick else BUDGETS:
        effective = None if k is None or k * n_classes >= n_train else k
        if effective not in budgets:
            budgets.append(effective)
    jobs: list[tuple[str, int | None, int]] = []
    if only != "expensive":
        for strategy in TRAINING_FREE:
            jobs.append((strategy, None, 0))
        for k in budgets:
            for strategy in CHEAP:
                jobs += [(strategy, k, seed) for seed in ((0,) if quick else CHEAP_SEEDS)]
    if only == "cheap":
        return jobs
    for k in EXPENSIVE_BUDGETS:
        effective = None if k * n_classes >= n_train else k
        for strategy in EXPENSIVE[entry.modality]:
            jobs.append((strategy, effective, 0))
    if entry.modality == "text":
        jobs.append(("prompting", None, 0))
    return jobs


def overrides_for(
    strategy: str, k: int | None, seed: int, n_classes: int, modality: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed}
    if k is not None and strategy not in ("zero_shot", "prompting"):
        out["max_train"] = k * n_classes
    if strategy == "prompting":
        out.update(PROMPT_OVERRIDES)
    if strategy in FINE_TUNING:
        out.update(SHORT_SCHEDULE[modality])
    return out


def budget_rows(ds: Any, k: int | None, seed: int = 0) -> Any:
    """The training rows a run at budget ``k`` uses: what a user with that many labels uploads."""
    from tladvisor.data import Dataset, fingerprint_of, split_dataset

    cap = None if k is None else k * len(ds.classes)
    split = split_dataset(ds, seed=seed, max_train=cap)
    items = [ds.items[i] for i in split.train]
    labels = [ds.labels[i] for i in split.train]
    fp = fingerprint_of(ds.modality, items, labels)
    return Dataset(f"{ds.name}@{budget_label(k)}", ds.modality, items, labels, fp, ds.source)


# The profiler's prompting measurement has not changed since this version: a newer profile of the
# same rows carries it over instead of prompting the LM again (on the long news and Chinese reviews
# it was three quarters of the suite's profiling time). Its extension to PROMPT_CONTENTION_ROWS was
# decided against that version's probe. Lower it when prompting's measurement changes.
PROMPTING_SINCE = 6


def earlier_prompting(path: Path, dataset: str, budget: str) -> dict[str, Any] | None:
    """The newest prompting measurement of (dataset, budget) still current (PROMPTING_SINCE)."""
    found = None
    for r in read_lines(path):
        if (r["dataset"], r["budget"]) == (dataset, budget) and r.get("profiler", 1) >= (
            PROMPTING_SINCE
        ):
            found = {key: r.get(key) for key in ("prompting_accuracy", "prompting_rows")}
            found["prompting_profile_seconds"] = r.get("seconds") or 0.0
    return found


def profile_row(ds: Any, k: int | None, carried: dict[str, Any] | None = None) -> dict[str, Any]:
    from tladvisor.profile import PROFILER_VERSION, measure_profile

    rows = budget_rows(ds, k)
    started = time.perf_counter()
    # Unusualness is left out: the outcome model reads only the measured accuracies, and
    # the calibrated unusualness costs a minute a set (the rules' reasons do not enter the regret).
    measured = measure_profile(rows, unusualness=False, prompting=carried is None, device="cpu")
    task = measured.to_task_profile(gpu_memory_gb=0.0)
    return {
        "dataset": ds.name,
        "budget": budget_label(k),
        "n_labeled": task.n_labeled,
        "n_classes": task.n_classes,
        "min_per_class": task.min_per_class,
        "probe_accuracy": task.probe_accuracy,
        "baseline_accuracy": task.baseline_accuracy,
        "zero_shot_accuracy": task.zero_shot_accuracy,
        "probe_rows": task.probe_rows,
        "probe_shots": task.probe_shots,
        "zero_shot_rows": task.zero_shot_rows,
        "prompting_accuracy": task.prompting_accuracy,
        "prompting_rows": task.prompting_rows,
        **(carried or {}),
        "probe_truncated_accuracy": task.probe_truncated_accuracy,
        "truncated_share": task.truncated_share,
        # With prompting carried over, the earlier profile's whole time is added (an upper
        # bound on what measuring prompting again would cost), so compute saved is not flattered.
        "seconds": round(
            time.perf_counter() - started + (carried or {}).get("prompting_profile_seconds", 0.0), 2
        ),
        "profiler": PROFILER_VERSION,
        **({"prompting_from": PROMPTING_SINCE} if carried else {}),
    }


def current_profiles(path: Path) -> set[tuple[str, str]]:
    """(dataset, budget) profiled by this version of the profiler: older ones are measured again
    (the newest line of a key is the one bench/lodo.py reads)."""
    from tladvisor.profile import PROFILER_VERSION

    return {
        (r["dataset"], r["budget"])
        for r in read_lines(path)
        if r.get("profiler", 1) == PROFILER_VERSION
    }


def run_suite(
    names: list[str],
    results: Path,
    db: Path,
    only: str | None,
    minutes: float | None,
    cap: int = suite.DEFAULT_CAP,
    quick: bool = False,
) -> dict[str, int]:
    runs_path, profiles_path = results / RUNS_FILE, results / PROFILES_FILE
    done = {run_key(r) for r in read_lines(runs_path)}
    profiled = current_profiles(profiles_path)
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    counts = {"runs": 0, "profiles": 0, "left": 0}
    store = open_store(db)
    try:
        for name in names:
            entry = suite.get(name)
            missing = suite.missing_requirement(entry)
            if missing:
                log(f"advice suite: {name} skipped: {missing}")
                continue
            ds = suite.load(name, cap=cap)
            for strategy, k, seed in plan(ds, entry, only, quick):
                key = (ds.name, strategy, budget_label(k), seed)
                if key in done:
                    continue
                # Another process may share the work (--only, --sets): re-read what it finished.
                done |= {run_key(r) for r in read_lines(runs_path)}
                if key in done:
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    counts["left"] += 1
                    continue
                log(f"advice suite: {name} {strategy} @{budget_label(k)} seed {seed}")
                over = overrides_for(strategy, k, seed, len(ds.classes), ds.modality)
                row = run_one(store, ds, strategy, over)
                row.update(dataset=ds.name, budget=budget_label(k), seed=seed)
                row.pop("transferability", None)
                append_line(runs_path, row)
                done.add(key)
                counts["runs"] += 1
            budgets = {
                budget_label(k) for s, k, _seed in plan(ds, entry, "cheap", quick) if s in CHEAP
            }
            if only == "expensive":
                continue  # the profiles belong to the cheap pass
            for b in sorted(budgets, key=lambda b: (b == "all", int(b) if b != "all" else 0)):
                profiled |= current_profiles(profiles_path)  # another process may have done it
                if (ds.name, b) in profiled:
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    counts["left"] += 1
                    continue
                k = None if b == "all" else int(b)
                log(f"advice suite: profiling {name} @{b}")
                carried = (
                    earlier_prompting(profiles_path, ds.name, b)
                    if entry.modality == "text"
                    else None
                )
                append_line(profiles_path, profile_row(ds, k, carried))
                profiled.add((ds.name, b))
                counts["profiles"] += 1
    finally:
        store.close()
    return counts


def run(quick: bool, out: Path) -> dict[str, int]:
    """``make bench``'s step: the whole suite (resuming), or the quick one into ``out``."""
    if quick:
        results = out / "advice_results"
        return run_suite(list(QUICK_SETS), results, out / DB_NAME, "cheap", None, QUICK_CAP, True)
    return run_suite([e.name for e in suite.entries()], RESULTS, OUT_DIR / DB_NAME, None, None)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small sets, cheap runs only")
    parser.add_argument("--sets", help="comma-separated suite entries (default: all)")
    parser.add_argument(
        "--only",
        choices=["cheap", "expensive"],
        help="only the cheap strategies and the profiles, or only fine-tuning and prompting "
        "(two processes can share the work: give each its own --db)",
    )
    parser.add_argument("--minutes", type=float, help="stop starting new runs after this long")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--db", type=Path, default=OUT_DIR / DB_NAME)
    args = parser.parse_args()
    if args.quick:
        names, only, cap = list(QUICK_SETS), "cheap", QUICK_CAP
    else:
        names = args.sets.split(",") if args.sets else [e.name for e in suite.entries()]
        only, cap = args.only, suite.DEFAULT_CAP
    counts = run_suite(names, args.results, args.db, only, args.minutes, cap, args.quick)
    log(
        f"advice suite: {counts['runs']} runs and {counts['profiles']} profiles measured; "
        f"{counts['left']} left for the next call (it resumes)"
    )


if __name__ == "__main__":
    main()
