"""Shared input validation for the transferability metrics: features, labels, source probabilities.

Every metric takes numpy-like inputs and returns a float; these helpers turn the inputs into
float64 / int64 arrays and raise ``ValueError``s that name what was expected, what was found and
the fix. Labels may be any hashable values (ints, strings, ...): they are mapped
to codes 0..C-1 by order of first appearance, never by guessing ``max(label) + 1`` as tllib does.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

# Softmax rows from float32 heads sum to 1 only up to rounding; anything further off is not a
# probability vector (most likely logits passed by mistake).
_PROB_SUM_TOL = 1e-3


def check_features(features: Any, name: str = "features") -> np.ndarray:
    """Return ``features`` as a finite float64 array of shape (N, D) with N >= 2."""
    arr = np.asarray(features)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{name} must be a numeric array of shape (N, D), got dtype {arr.dtype}; "
            "pass embeddings as a float numpy array."
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (N examples x D dimensions), got shape {arr.shape}; "
            "reshape with features.reshape(len(features), -1)."
        )
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(
            f"{name} needs at least 2 rows and 1 column, got shape {arr.shape}; "
            "score a data set with more examples."
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise ValueError(
            f"{name} contains NaN or infinite values in {bad} row(s); "
            "drop or fix those rows before scoring."
        )
    return arr


def encode_labels(labels: Any, n_rows: int | None = None, name: str = "labels") -> np.ndarray:
    """Map hashable ``labels`` to int64 codes 0..C-1 (first-appearance order); require C >= 2.

    ``n_rows`` is the number of feature rows the labels must match, if known.
    """
    codes, n_classes = _codes(labels, n_rows, name)
    if n_classes < 2:
        raise ValueError(
            f"{name} must contain at least 2 classes, got {n_classes}; "
            "a transferability score compares classes, so add examples of another class."
        )
    return codes


def encode_source_labels(labels: Any, n_rows: int, name: str = "source_labels") -> np.ndarray:
    """Like :func:`encode_labels` but a single source class is allowed (it is a valid, if useless, Z)."""
    return _codes(labels, n_rows, name)[0]


def check_probs(probs: Any, n_rows: int, name: str = "source_probs") -> np.ndarray:
    """Return ``probs`` as float64 (N, Z) rows that are non-negative and sum to 1."""
    arr = check_features(probs, name)
    if arr.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but labels has {n_rows}; "
            "pass one probability row per labelled example."
        )
    if arr.min() < 0 or np.abs(arr.sum(axis=1) - 1.0).max() > _PROB_SUM_TOL:
        raise ValueError(
            f"{name} rows must be probabilities (non-negative, summing to 1); "
            f"found min {arr.min():.3g} and row sums in [{arr.sum(1).min():.4g}, "
            f"{arr.sum(1).max():.4g}]. If these are logits, apply a softmax first."
        )
    return arr


def _codes(labels: Any, n_rows: int | None, name: str) -> tuple[np.ndarray, int]:
    if isinstance(labels, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of labels, got a single string.")
    arr = np.asarray(labels, dtype=object) if not isinstance(labels, np.ndarray) else labels
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one label per example), got shape {arr.shape}; "
            "for one-hot labels pass labels.argmax(axis=1)."
        )
    values: list[Any] = arr.tolist()
    if n_rows is not None and len(values) != n_rows:
        raise ValueError(
            f"{name} has {len(values)} entries but features has {n_rows} rows; "
            "pass exactly one label per feature row, in the same order."
        )
    index: dict[Hashable, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if not isinstance(value, Hashable):
            raise ValueError(
                f"{name}[{i}] is a {type(value).__name__}, which cannot be a class label; "
                "use strings or integers."
            )
        if isinstance(value, float) and value != value:  # NaN never equals itself
            raise ValueError(f"{name}[{i}] is NaN; drop unlabelled rows before scoring.")
        codes[i] = index.setdefault(value, len(index))
    return codes, len(index)
