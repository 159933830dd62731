"""Seeded stratified train/validation/test splits, and ``TaskData``: a data set with its split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tladvisor.data.dataset import DataError, Dataset


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int


def split_problem(ds: Dataset) -> str | None:
    """Why ``ds`` cannot be split into train, validation and test sets (None when it can).

    A split needs two classes, two examples beyond one a class, and fewer classes than two thirds
    of the examples: past that most classes have one example, which can train or be tested but not
    both, so a test score would measure classes the model never saw.
    """
    n, k = len(ds), len(set(ds.labels))
    if k < 2:
        return f"the data has one class ({ds.classes[0]!r}); a classifier needs at least two"
    if n < k + 2:
        return f"{n} examples are too few to split {k} classes into train, validation and test sets"
    if k >= n / 1.5:
        return (
            f"{k} classes for {n} examples leave most classes a single example, which cannot be "
            "both trained on and tested"
        )
    return None


def evaluation_split(ds: Dataset, seed: int = 0) -> Split:
    """Every row in the test set: for paths that train on nothing (zero-shot, 0-shot prompting)
    when the data cannot be split, e.g. one example a class."""
    empty = np.array([], dtype=np.int64)
    return Split(empty, empty, np.arange(len(ds), dtype=np.int64), seed)


def split_dataset(
    ds: Dataset,
    seed: int = 0,
    val_frac: float = 0.15,
    test_frac: float = 0.2,
    max_train: int | None = None,
) -> Split:
    """Stratified split; every class keeps at least one training example.

    Falls back to a plain random split when the smallest class has fewer than 3 examples
    (stratification needs one per part), then moves one example of any class missing from
    training back into it. ``max_train`` caps the training set (stratified, at least one a class)
    after the split, so runs with different label budgets share one test set.
    """
    from sklearn.model_selection import train_test_split

    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(
            f"val_frac={val_frac} and test_frac={test_frac} must each be in (0, 1) and sum below 1"
        )
    problem = split_problem(ds)
    if problem:
        raise DataError(f"{problem}; add examples (several a class).")
    y = ds.label_ids()
    idx = np.arange(len(ds))
    counts = np.bincount(y)
    stratify_ok = counts.min() >= 3
    strat = y if stratify_ok else None
    n_test = max(int(round(len(ds) * test_frac)), len(counts) if stratify_ok else 1)
    n_test = min(n_test, len(ds) - len(counts) - 1)
    rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=strat)
    n_val = max(int(round(len(ds) * val_frac)), len(counts) if stratify_ok else 1)
    n_val = max(1, min(n_val, len(rest) - len(counts)))
    strat_rest = y[rest] if stratify_ok else None
    train, val = train_test_split(rest, test_size=n_val, random_state=seed, stratify=strat_rest)
    train, val, test = _ensure_train_classes(train, val, test, y)
    if max_train is not None and max_train < len(train):
        train = _stratified_cap(train, y, max_train, seed)
    return Split(np.sort(train), np.sort(val), np.sort(test), seed)


def _ensure_train_classes(
    train: np.ndarray, val: np.ndarray, test: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move one example of each class absent from training out of test (or val) into training."""
    train, val, test = list(train), list(val), list(test)
    for c in np.setdiff1d(np.unique(y), y[train]):
        for part in (test, val):  # prefer emptying test: val drives early stopping
            pos = next((i for i, j in enumerate(part) if y[j] == c), None)
            if pos is not None and len(part) > 1:
                train.append(part.pop(pos))
                break
    as_array = lambda part: np.array(part, dtype=np.int64)  # noqa: E731
    return as_array(train), as_array(val), as_array(test)


def _stratified_cap(train: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Keep ``n`` training rows, as evenly per class as the data allows (at least one a class)."""
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(train[y[train] == c]) for c in np.unique(y[train])]
    n = max(n, len(by_class))
    keep: list[int] = []
    depth = 0
    while len(keep) < n:
        for rows in by_class:
            if depth < len(rows) and len(keep) < n:
                keep.append(int(rows[depth]))
        depth += 1
    return np.array(keep, dtype=np.int64)


@dataclass(frozen=True)
class TaskData:
    """A data set with its split, as the strategies see it."""

    dataset: Dataset
    split: Split

    @property
    def modality(self) -> str:
        return self.dataset.modality

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    def items(self, part: str) -> list[Any]:
        return [self.dataset.items[i] for i in getattr(self.split, part)]

    def y(self, part: str) -> np.ndarray:
        return self.dataset.label_ids()[getattr(self.split, part)]
