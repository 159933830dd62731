"""Accuracy against labelled examples per class, for every strategy that applies (issue #7, part 1).

For each data set (the bundled Rotten Tomatoes and MNIST samples, plus two variants that are
unusual for the pretrained models: ROT13 text and pixel-permuted digits) and each budget of
labelled examples per class, every applicable strategy is run through ``tladvisor.runner.execute``
and recorded in ``bench/out/bench.duckdb``. All runs of one seed share one test split
(``split_dataset(..., max_train=)`` caps only the training rows). Cheap strategies (zero-shot,
feature extraction, scratch: they share cached embeddings) run 2-3 seeds at every budget;
expensive ones (partial / full fine-tuning, LoRA) run 3 seeds at 8 and 64 examples a class and 2
at the larger budgets, with short schedules; prompting runs 0, 1, 2 and 4 demonstrations a class
with 3 seeds on a seeded subset. Results go to ``bench/out/data_efficiency.json`` after every run,
and a re-run skips what is already there (``--fresh`` starts over).

    python bench/data_efficiency.py            # ~30 min on 2 shared CPU cores
    python bench/data_efficiency.py --quick    # seconds: tiny subsets, 2 budgets, 1 seed
"""

from __future__ import annotations

import common  # noqa: F401  (sets offline mode and sys.path first)
from common import (
    ALL_BUDGETS,
    budget_label,
    effective_budget,
    load_datasets,
    log,
    max_train_for,
    n_train_of,
    open_store,
    parse_args,
    read_json,
    run_one,
    subsample,
    write_json,
)

NAME = "data_efficiency"
SEEDS = (0, 1, 2)
# Seeds of the cheap strategies: 3 for text; 2 for digits, whose 1,280-d, 10-class probes take
# ~20 s a run on a loaded 2-core machine; 1 for the unusual variants (they feed the regret table).
CHEAP_SEEDS = {"text": 3, "image": 2}
UNUSUAL_SEEDS = 1
CHEAP = ("feature_extraction", "scratch")  # budget-dependent, seconds a run on cached features
EXPENSIVE = ("partial_finetune", "full_finetune", "lora")
# Budget -> seeds of the expensive strategies. Text MiniLM runs take ~30 s at 64 a class and ~3 min
# on all 650 a class (2 epochs); 64 px digits ~1 min at 256 a class. "All" digits (325 a class) is
# close to 256, so it is left out.
EXPENSIVE_SEEDS = {
    "text": {8: 3, 64: 3, 256: 2, None: 2},
    "image": {8: 3, 64: 3, 256: 2},
}
PROMPT_SHOTS = (0, 1, 2, 4)  # demonstrations per class; 0 is zero-shot prompting
PROMPT_SEEDS = 3
# SmolLM2 scores every test item x label on the CPU (~0.25 s an item on a quiet 2-core machine),
# so prompting runs on a seeded subset of this many texts a class (a test split of 100).
PROMPT_PER_CLASS = 250
UNUSUAL_BUDGETS = (1, 4, 16, 64, None)
UNUSUAL_EXPENSIVE = ("lora",)
UNUSUAL_EXPENSIVE_BUDGETS = (64,)

# Short schedules that a 2-core CPU finishes in about a minute a run. The bench measures the
# defaults a user gets, except: fewer epochs, 64 px digits (MNIST is 28 px; 224 px costs 12x),
# and no forgetting measurement (not what this benchmark compares).
TRAIN_OVERRIDES = {
    "text": {"epochs": 2, "measure_forgetting": False},
    "image": {"epochs": 2, "image_size": 64, "measure_forgetting": False},
}


def plan(datasets: list, quick: bool) -> list[tuple]:
    """(dataset, strategy, per_class, seed, overrides) for every run: the bundled samples first
    (cheap strategies, then expensive ones), then the unusual variants."""
    from tladvisor.strategies import get

    bundled = [ds for ds in datasets if ds.source.startswith("sample:")]
    unusual = [ds for ds in datasets if not ds.source.startswith("sample:")]
    jobs: list[tuple] = []
    for group, is_bundled in ((bundled, True), (unusual, False)):
        for ds in group:
            jobs += _cheap_jobs(ds, quick, is_bundled, get)
        for ds in group:
            jobs += _expensive_jobs(ds, quick, is_bundled, get)
    return _without_repeats(jobs)


def _without_repeats(jobs: list[tuple]) -> list[tuple]:
    """Budgets whose cap keeps every training row become "all", once: a larger budget than the
    data holds would re-run the "all" run and count it as a second point (or a second seed)."""
    n_train: dict[str, int] = {}
    seen: set[tuple] = set()
    out = []
    for ds, strategy, k, seed, over in jobs:
        if strategy != "prompting" and k:  # prompting's k is demonstrations, zero-shot has none
            if ds.name not in n_train:
                n_train[ds.name] = n_train_of(ds)
            k = effective_budget(k, len(ds.classes), n_train[ds.name])
            over = {**over, "max_train": max_train_for(k, len(ds.classes))}
        key = (ds.name, strategy, budget_label(k), seed)
        if key not in seen:
            seen.add(key)
            out.append((ds, strategy, k, seed, over))
    return out


def _cheap_jobs(ds, quick: bool, bundled: bool, get) -> list[tuple]:
    if quick:
        budgets, seeds = (2, 8), SEEDS[:1]
    elif bundled:
        budgets, seeds = ALL_BUDGETS, SEEDS[: CHEAP_SEEDS[ds.modality]]
    else:
        budgets, seeds = UNUSUAL_BUDGETS, SEEDS[:UNUSUAL_SEEDS]
    jobs = []
    for seed in seeds:
        if _applies("zero_shot", ds, get):
            jobs.append((ds, "zero_shot", 0, seed, {"seed": seed}))
        for strategy in CHEAP:
            for k in budgets:
                mt = max_train_for(k, len(ds.classes))
                jobs.append((ds, strategy, k, seed, {"seed": seed, "max_train": mt}))
    return jobs


def _expensive_jobs(ds, quick: bool, bundled: bool, get) -> list[tuple]:
    jobs = []
    if _applies("prompting", ds, get):
        small = ds if quick else subsample(ds, PROMPT_PER_CLASS)
        shots = (0, 1) if quick else PROMPT_SHOTS if bundled else PROMPT_SHOTS[:1]
        for seed in SEEDS[: 1 if quick or not bundled else PROMPT_SEEDS]:
            for k in shots:
                jobs.append((small, "prompting", k, seed, {"seed": seed, "shots": k}))
    if quick:
        seeds_at = {8: 1}
    elif bundled:
        seeds_at = EXPENSIVE_SEEDS[ds.modality]
    else:
        seeds_at = {k: UNUSUAL_SEEDS for k in UNUSUAL_EXPENSIVE_BUDGETS}
    # Seed-major, so that an interrupted run leaves whole seeds rather than a few budgets.
    for seed in SEEDS[: max(seeds_at.values())]:
        for strategy in EXPENSIVE if bundled else UNUSUAL_EXPENSIVE:
            over = dict(TRAIN_OVERRIDES[ds.modality])
            if quick:
                over["epochs"] = 1
            for k, n_seeds in seeds_at.items():
                if seed < n_seeds:
                    mt = max_train_for(k, len(ds.classes))
                    jobs.append((ds, strategy, k, seed, {**over, "seed": seed, "max_train": mt}))
    return jobs


def _applies(strategy: str, ds, get) -> bool:
    try:
        return get(strategy).supports(ds.modality)
    except (ImportError, KeyError) as exc:  # a strategy another engineer has not landed yet
        log(f"{strategy} unavailable: {exc}")
        return False


def run(
    quick: bool,
    db,
    out,
    fresh: bool = False,
    only: list[str] | None = None,
) -> dict:
    """Run the plan, skipping the runs already in ``data_efficiency.json`` unless ``fresh``."""
    datasets = load_datasets(quick)
    name = NAME
    previous = None if fresh else read_json(out, name)
    rows = list(previous["rows"]) if previous and previous.get("quick") == quick else []
    rows = _relabel_budgets(rows, datasets)
    done = {_key(r) for r in rows if r["status"] == "done"}
    rows = [r for r in rows if r["status"] == "done"]
    result = {"quick": quick, "rows": rows, "datasets": _describe(datasets)}
    store = open_store(db)
    try:
        for ds, strategy, k, seed, over in plan(datasets, quick):
            if only and strategy not in only:
                continue
            key = (ds.name, strategy, budget_label(k), seed)
            if key in done:
                continue
            log(f"{ds.name} {strategy} per_class={budget_label(k)} seed={seed}")
            # Transferability scores (for bench/transferability.py) on seed 0 only: they read the
            # same cached embeddings, and one seed is enough to rank.
            row = run_one(store, ds, strategy, over, with_transferability=seed == 0)
            row.update(per_class=budget_label(k), seed=seed, modality=ds.modality)
            if row["status"] != "done":
                log(f"  -> {row['status']}: {row['error']}")
            else:
                log(f"  -> accuracy {row['accuracy']:.3f} in {row['seconds']:.1f} s")
            rows.append(row)
            write_json(out, name, result)
    finally:
        store.close()
    write_json(out, name, result)
    return result


def _relabel_budgets(rows: list[dict], datasets: list) -> list[dict]:
    """Rows from before budgets were capped at the data's size: a budget that kept every
    training row was the "all" run, so it is labelled so; where the "all" run exists too, the
    repeat is dropped."""
    sizes = {ds.name: (len(ds.classes), n_train_of(ds)) for ds in datasets}

    def relabelled(row: dict) -> dict:
        pc, size = row["per_class"], sizes.get(row["dataset"])
        if not size or row["strategy"] == "prompting" or pc in ("all", "0"):
            return row
        return {**row, "per_class": budget_label(effective_budget(int(pc), *size))}

    new = [relabelled(r) for r in rows]
    taken = {_key(r) for r, n in zip(rows, new, strict=True) if r is n and r["status"] == "done"}
    out = []
    for old, row in zip(rows, new, strict=True):
        if row is not old and row["status"] == "done":
            if _key(row) in taken:
                continue
            taken.add(_key(row))
        out.append(row)
    return out


def _key(row: dict) -> tuple:
    return (row["dataset"], row["strategy"], row["per_class"], row["seed"])


def _describe(datasets: list) -> list[dict]:
    from common import per_class_all

    return [
        {
            "name": ds.name,
            "modality": ds.modality,
            "n": len(ds),
            "n_classes": len(ds.classes),
            "source": ds.source,
            "all_per_class": per_class_all(ds),
            "n_train": n_train_of(ds),
        }
        for ds in datasets
    ]


if __name__ == "__main__":
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("--fresh", action="store_true", help="ignore earlier results"),
            p.add_argument("--only", nargs="*", help="strategies to run (default: all)"),
        ),
    )
    run(args.quick, args.db, args.out, args.fresh, args.only)
