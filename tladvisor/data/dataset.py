"""The in-memory labelled data set: ``Dataset``, its content fingerprint, ``DataError``, label checks.

A ``Dataset`` holds the items (texts as ``str``, images as RGB ``PIL.Image``) with one string label
each. Every loader ends in ``_check_labels`` and builds one with ``fingerprint_of``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tladvisor.data import labels as label_forms
from tladvisor.data import limits

TEXT = "text"
IMAGE = "image"


class DataError(ValueError):
    """Bad user input: the message names what was wrong and how to fix it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    modality: str  # TEXT or IMAGE
    items: list[Any]  # str for text, PIL.Image (RGB) for images
    labels: list[str]
    fingerprint: str
    source: str = ""  # where it came from (file name, "sample:rotten_tomatoes", ...)
    notes: list[str] = field(
        default_factory=list
    )  # what loading changed (dropped rows, truncation)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    @property
    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def label_ids(self) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[label] for label in self.labels], dtype=np.int64)


def fingerprint_of(modality: str, items: list[Any], labels: list[str]) -> str:
    """Content hash: the same rows uploaded twice (under any file name) are one data set.

    Row order counts, because splits are drawn by position. Every field is length-prefixed so
    that no two different data sets can hash the same bytes.
    """
    h = hashlib.sha256(modality.encode())

    def put(tag: bytes, data: bytes) -> None:
        h.update(tag + len(data).to_bytes(8, "little") + data)

    for item, label in zip(items, labels, strict=True):
        if isinstance(item, str):
            put(b"T", item.encode("utf-8"))
        else:  # PIL image: hash its pixels, not its container format
            put(b"I", f"{item.size[0]}x{item.size[1]}:{item.mode}".encode() + item.tobytes())
        put(b"L", label.encode("utf-8"))
    return h.hexdigest()[:16]


def _check_labels(
    labels: list[str], what: str, notes: list[str], *, labels_confirmed: bool
) -> None:
    """Reject label sets no classifier can learn from; note the ones that weaken the split.

    ``labels_confirmed``: the user chose the labels (named the column, or they are images in class
    folders or listed with their files). Then mostly unique labels are a zero-shot check (one
    example a class) and only noted; a guessed column is refused, as it is likely an ID.
    """
    counts = Counter(labels)
    n, k = len(labels), len(counts)
    lookalike = label_forms.lookalike_note(labels, what)
    if lookalike:
        notes.append(lookalike)
    if k < 2:
        raise DataError(
            f"{what} has one class ({next(iter(counts))!r}, {n} examples); a classifier needs at "
            "least two. Check the label column, or add examples of the other classes."
        )
    if k > limits.MAX_CLASSES:
        raise DataError(
            f"{what} has {k} classes, above the limit of {limits.MAX_CLASSES}. Group labels into "
            "broader classes, or check that the label column is really a label."
        )
    if k >= n / 1.5:
        if not labels_confirmed:
            raise DataError(
                f"{what} has {k} distinct labels for {n} examples: most labels are unique. Did "
                "you pick an ID or free-text column as the label? Choose the label column by "
                "name, or add examples so that each class has several."
            )
        single = sum(m == 1 for m in counts.values())
        notes.append(
            f"{k} distinct labels for {n} examples ({single} of {k} classes have one example): "
            "enough for a zero-shot check. Zero-shot and prompting run on it and are scored on "
            "every example; strategies that train refuse it, as they need several examples a "
            "class to train and test on"
        )
        return
    single = sorted(c for c, m in counts.items() if m == 1)
    if single:
        shown = ", ".join(map(repr, single[:5])) + (" ..." if len(single) > 5 else "")
        notes.append(
            f"{len(single)} class(es) have a single example ({shown}); they stay in training but "
            "cannot be tested, and stratified splits need at least 3 examples a class"
        )


def merge_lookalikes(dataset: Dataset) -> Dataset:
    """``dataset`` with each group of look-alike labels (``labels.lookalike_groups``) merged into
    its most frequent spelling, and a note saying which; unchanged when there are none."""
    mapping = label_forms.merge_map(list(dataset.labels))
    if not mapping:
        return dataset
    merged = [mapping.get(label, label) for label in dataset.labels]
    said = "; ".join(
        f"{', '.join(repr(m) for m in sorted(mapping) if mapping[m] == keep and m != keep)} -> "
        f"{keep!r}"
        for keep in sorted(set(mapping.values()))
    )
    notes = [n for n in dataset.notes if "differ only by case" not in n]
    notes.append(f"merged look-alike labels: {said}")
    return Dataset(
        name=dataset.name,
        modality=dataset.modality,
        items=dataset.items,
        labels=merged,
        fingerprint=fingerprint_of(dataset.modality, list(dataset.items), merged),
        source=dataset.source,
        notes=notes,
    )
