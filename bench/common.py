"""What the benchmark scripts share: paths, arguments, the machine, runs, budgets, data variants.

Every script in ``bench/`` writes its raw results as JSON under ``bench/out/`` (gitignored) and
records its runs in the shared DuckDB file ``bench/out/bench.duckdb``, so the dashboard shows them
(``TLADVISOR_DB=bench/out/bench.duckdb make run``). ``bench/report.py`` turns the JSON into
``BENCHMARKS.md``; no number in that file is typed by hand.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# Offline before anything imports transformers: the packaged models are all on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT_DIR = ROOT / "bench" / "out"
DB_PATH = OUT_DIR / "bench.duckdb"
CHART_DIR = ROOT / "docs" / "bench"
BENCH_USER = "bench"

# Labelled examples per class of issue #7; None is "all" (the whole training split).
ALL_BUDGETS: tuple[int | None, ...] = (1, 2, 4, 8, 16, 64, 256, None)


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    """The arguments every script takes: ``--quick`` (tiny, for the smoke test), ``--db``, ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for smoke tests")
    parser.add_argument("--db", type=Path, default=DB_PATH, help="DuckDB file the runs go to")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the JSON results")
    if extra:
        extra(parser)
    return parser.parse_args()


def budget_label(per_class: int | None) -> str:
    return "all" if per_class is None else str(per_class)


def max_train_for(per_class: int | None, n_classes: int) -> int | None:
    """``max_train`` that keeps ``per_class`` examples a class (the cap is stratified)."""
    return None if per_class is None else max(2, per_class * n_classes)


def effective_budget(per_class: int | None, n_classes: int, n_train: int) -> int | None:
    """``per_class``, or None ("all") when its cap keeps every training row: a budget of 64 a
    class on a data set with 32 a class is the "all" run, not another point on the curve."""
    cap = max_train_for(per_class, n_classes)
    return None if cap is None or cap >= n_train else per_class


def write_json(out: Path, name: str, data: Any) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=_jsonable), encoding="utf-8")
    return path


def read_json(out: Path, name: str) -> Any | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_efficiency(out: Path) -> dict | None:
    """The results of bench/data_efficiency.py (``data_efficiency.json``), or None."""
    return read_json(out, "data_efficiency")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (issue #7: the machine and the date)."""
    from tladvisor.machine import machine_info as info

    return info()


def open_store(path: Path):
    from tladvisor.store import Store

    path.parent.mkdir(parents=True, exist_ok=True)
    return Store(path)


def collect_runs(db: Path) -> int:
    """Import the runs of the other ``*.duckdb`` files beside ``db`` (those written by scripts
    that ran side by side, e.g. bench/cost.py) into ``db``, so one file holds every run."""
    store = open_store(db)
    added = 0
    try:
        for other in sorted(db.parent.glob("*.duckdb")):
            if other.resolve() != db.resolve():
                summary = store.import_runs(other)
                log(f"{other.name}: {summary.runs_added} runs imported into {db.name}")
                added += summary.runs_added
    finally:
        store.close()
    return added


def prune_stale_runs(db: Path, out: Path) -> int:
    """Delete the benchmark's runs that no current result file names (left by earlier, resumed
    or re-run sessions), so the dashboard shows what BENCHMARKS.md reports; return how many."""
    keep = set()
    for name, key in (("data_efficiency", "rows"), ("cost", "finetune")):
        keep |= {r.get("run_id") for r in (read_json(out, name) or {}).get(key) or []}
    store = open_store(db)
    try:
        runs = store.list_runs(user=BENCH_USER)
        stale = [run_id for run_id in runs["id"] if run_id not in keep]
        for run_id in stale:
            store.delete_run(run_id, user=BENCH_USER)
    finally:
        store.close()
    log(f"{len(stale)} stale benchmark runs deleted from {db.name}")
    return len(stale)


def run_one(
    store: Any,
    dataset: Any,
    strategy: str,
    overrides: dict[str, Any],
    *,
    with_transferability: bool = False,
) -> dict[str, Any]:
    """One ``runner.execute`` call, flattened to a JSON row (failures are rows too)."""
    from tladvisor import runner

    started = time.perf_counter()
    report = runner.execute(
        store,
        dataset,
        strategy,
        overrides,
        user=BENCH_USER,
        device="cpu",
        with_transferability=with_transferability,
    )
    return {
        "run_id": report.run_id,
        "dataset": dataset.name,
        "strategy": strategy,
        "status": report.status,
        "error": report.error,
        "model": report.model,
        "accuracy": report.metrics.get("accuracy"),
        "macro_f1": report.metrics.get("macro_f1"),
        "seconds": report.cost.get("seconds"),
        "wall_seconds": time.perf_counter() - started,
        "peak_mem_mb": report.cost.get("peak_mem_mb"),
        "trainable_params": report.cost.get("trainable_params"),
        "transferability": report.transferability,
        "config": {k: v for k, v in overrides.items() if not isinstance(v, dict)},
    }


def timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (these machines are shared: one call is noise)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    vals = [v for v in values if v is not None]
    if not vals:
        return float("nan"), float("nan"), 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0), len(vals)


# ── Data sets, including ones that are unusual for the pretrained models ──────────────────────────
def _derived(name: str, modality: str, items: list[Any], labels: list[str], source: str):
    from tladvisor.data import Dataset, fingerprint_of

    return Dataset(name, modality, items, labels, fingerprint_of(modality, items, labels), source)


def subsample(dataset: Any, per_class: int, seed: int = 0) -> Any:
    """The first ``per_class`` items of each class after a seeded shuffle (a smaller copy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = dataset.label_ids()
    keep = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])
    )
    items = [dataset.items[i] for i in keep]
    labels = [dataset.labels[i] for i in keep]
    return _derived(
        f"{dataset.name}_{per_class}pc", dataset.modality, items, labels, dataset.source
    )


def rot13_text(dataset: Any) -> Any:
    """Every text ROT13-encoded: same labels and information, a vocabulary no English model knows."""
    items = [codecs.encode(t, "rot13") for t in dataset.items]
    return _derived("rotten_tomatoes_rot13", "text", items, list(dataset.labels), "bench:rot13")


def permuted_pixels(dataset: Any, seed: int = 0) -> Any:
    """Images with one fixed random pixel permutation (permuted MNIST, Goodfellow et al. 2013):
    the same information for a pixel model, no shapes for an ImageNet CNN."""
    import numpy as np
    from PIL import Image

    first = np.asarray(dataset.items[0].convert("L"))
    perm = np.random.default_rng(seed).permutation(first.size)
    items = []
    for im in dataset.items:
        arr = np.asarray(im.convert("L"))
        flat = arr.reshape(-1)[perm].reshape(arr.shape)
        items.append(Image.fromarray(flat).convert("RGB"))
    return _derived(
        f"{dataset.name}_permuted", "image", items, list(dataset.labels), "bench:permuted"
    )


def load_datasets(quick: bool, unusual: bool = True) -> list[Any]:
    """The bundled samples, then the unusual variants (smaller: they are for the advisor's regret).

    ``quick`` shrinks everything to a few examples a class so a smoke test takes seconds.
    """
    from tladvisor.data import load_sample

    rt, mnist = load_sample("rotten_tomatoes"), load_sample("mnist_digits")
    if quick:
        rt, mnist = subsample(rt, 30), subsample(mnist, 12)
    sets = [rt, mnist]
    if unusual:
        small = subsample(mnist, 12 if quick else 50)
        sets += [rot13_text(rt), permuted_pixels(small)]
    return sets


def n_train_of(dataset: Any, seed: int = 0) -> int:
    """Rows in the uncapped training split (what a budget is compared with)."""
    from tladvisor.data import split_dataset

    return len(split_dataset(dataset, seed=seed).train)


def per_class_all(dataset: Any, seed: int = 0) -> int:
    """Smallest class count of the training split: what "all" means in examples per class."""
    import numpy as np

    from tladvisor.data import split_dataset

    split = split_dataset(dataset, seed=seed)
    return int(np.bincount(dataset.label_ids()[split.train]).min())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def put_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts at ``heading`` in ``path`` with ``text`` (which starts with
    it), up to the next ``## `` heading, or add it before the commentary."""
    doc = path.read_text(encoding="utf-8")
    if heading in doc:
        start = doc.index(heading)
        end = doc.find("\n## ", start + len(heading))
        doc = doc[:start] + text + ("\n" + doc[end:] if end != -1 else "\n")
    elif "\n## Commentary" in doc:
        doc = doc.replace("\n## Commentary", f"\n{text}\n\n## Commentary", 1)
    else:
        doc = doc.rstrip("\n") + f"\n\n{text}\n"
    path.write_text(doc, encoding="utf-8")
    log(f"wrote its section in {path}")
