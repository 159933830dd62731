"""Forgetting: how much an adapted model lost of what it could do before adaptation.

Three measurements, each before vs after adaptation:

- Representation drift, ``linear_cka`` (Kornblith et al., ICML 2019): features X (n, d1) and Y (n, d2)
  of the same n reference inputs, columns centred; with K = X X^T, L = Y Y^T,
  CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F).
  1 = same representation up to rotation and isotropic scaling; lower = drift. It is sensitive to
  outliers and to n, so report it with n (``forgetting_report`` does).
- Weight drift, ``weight_drift``: ||theta - theta_0|| / ||theta_0|| over the shared parameters (the
  distance L2-SP penalises). For LoRA pass the merged weights.
- General-ability drop on shipped reference tasks (Biderman et al. 2024, "LoRA Learns Less and
  Forgets Less"): text retrieval accuracy@1 on ``data/reference/text_pairs.tsv``
  (``text_reference_score``) and top-1 ImageNet agreement on ``data/reference/images_natural/``
  (``image_reference_agreement``). The files are built by ``scripts/build_reference.py``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
TEXT_KINDS = ("general", "code", "numbers")
IMAGE_KINDS = ("natural", "texture", "digits")


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between features ``x`` (n, d1) and ``y`` (n, d2) of the same n inputs, in [0, 1]."""
    x = _as_matrix(x, "x")
    y = _as_matrix(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x has {x.shape[0]} rows but y has {y.shape[0]}; CKA compares features of the same "
            "inputs, so compute both on the same reference set, in the same order."
        )
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    n = x.shape[0]
    if n < max(x.shape[1], y.shape[1]):
        # Same value from the n x n Gram matrices, cheaper when features are wider than n.
        k, lg = x @ x.T, y @ y.T
        cross, norm_x, norm_y = float(np.sum(k * lg)), np.linalg.norm(k), np.linalg.norm(lg)
    else:
        cross = float(np.linalg.norm(y.T @ x) ** 2)
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if norm_x == 0 or norm_y == 0:
        raise ValueError(
            "one feature matrix is constant across the inputs (zero variance after centring); "
            "CKA is undefined. Check that the model's features depend on the input."
        )
    return float(cross / (norm_x * norm_y))


def weight_drift(before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
    """Relative L2 distance ||after - before|| / ||before|| over parameters in both with equal shapes.

    Values may be numpy arrays or torch tensors (torch is imported only when tensors are given).
    """
    shared = [k for k in before if k in after and _shape(before[k]) == _shape(after[k])]
    if not shared:
        raise ValueError(
            "before and after share no parameter with the same name and shape; pass two "
            "state_dicts of the same architecture (for LoRA, the merged weights)."
        )
    diff_sq = base_sq = 0.0
    for key in shared:
        a, b = _to_numpy(before[key]), _to_numpy(after[key])
        diff_sq += float(np.sum((b - a) ** 2))
        base_sq += float(np.sum(a**2))
    if base_sq == 0.0:
        raise ValueError("the 'before' weights are all zero, so a relative drift is undefined.")
    return float(np.sqrt(diff_sq / base_sq))


def load_text_reference_pairs() -> list[tuple[str, str]]:
    """The 200 (first half, second half) general-English passages of ``text_pairs.tsv``."""
    path = _reference_path("text_pairs.tsv")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(a, b) for a, b in rows[1:]]


def load_text_reference_sentences(kind: str = "general") -> list[str]:
    """Reference lines: ``general`` English sentences (the CKA set), ``code`` or ``numbers``."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"kind must be one of {TEXT_KINDS}, got {kind!r}.")
    return _reference_path(f"text_{kind}.txt").read_text(encoding="utf-8").splitlines()


def load_image_reference(kind: str = "natural") -> list[Image.Image]:
    """Reference images as RGB PIL images: ``natural`` photos (default), ``texture`` or ``digits``."""
    from PIL import Image

    if kind not in IMAGE_KINDS:
        raise ValueError(f"kind must be one of {IMAGE_KINDS}, got {kind!r}.")
    images = []
    for path in sorted(_reference_path(f"images_{kind}").glob("*.png")):
        with Image.open(path) as img:
            images.append(img.convert("RGB"))
    return images


def text_reference_score(encode: Callable[[list[str]], np.ndarray]) -> float:
    """Retrieval accuracy@1 of ``encode`` on the reference pairs (chance = 1 / 200; MiniLM: 0.18).

    ``encode(texts)`` returns (n, d) embeddings. Each first half must be closer (cosine) to its own
    second half than to any other second half.
    """
    pairs = load_text_reference_pairs()
    firsts = _unit_rows(encode([a for a, _ in pairs]), len(pairs), "encode(first halves)")
    seconds = _unit_rows(encode([b for _, b in pairs]), len(pairs), "encode(second halves)")
    sims = firsts @ seconds.T
    return float(np.mean(sims.argmax(axis=1) == np.arange(len(pairs))))


def image_reference_agreement(logits_before: np.ndarray, logits_after: np.ndarray) -> float:
    """Share of images whose top-1 ImageNet class is unchanged: logits (n, 1000) before and after."""
    before = _as_matrix(logits_before, "logits_before")
    after = _as_matrix(logits_after, "logits_after")
    if before.shape != after.shape:
        raise ValueError(
            f"logits_before has shape {before.shape} but logits_after has {after.shape}; "
            "compute both with the same head on the same reference images."
        )
    return float(np.mean(before.argmax(axis=1) == after.argmax(axis=1)))


def forgetting_report(
    features_before: np.ndarray | None = None,
    features_after: np.ndarray | None = None,
    weights_before: Mapping[str, Any] | None = None,
    weights_after: Mapping[str, Any] | None = None,
    reference_before: float | None = None,
    reference_after: float | None = None,
) -> dict[str, float | None]:
    """Collect the forgetting measurements from whichever pieces are given (None where missing).

    Keys: ``cka`` (linear CKA of reference-set features before vs after) with ``cka_n`` (rows it
    used), ``weight_drift``, ``reference_before``, ``reference_after`` and ``reference_drop`` =
    before - after (positive = the adapted model does worse on the general reference task).
    """
    report: dict[str, float | None] = dict.fromkeys(
        ("cka", "cka_n", "weight_drift", "reference_before", "reference_after", "reference_drop")
    )
    if features_before is not None and features_after is not None:
        report["cka"] = linear_cka(features_before, features_after)
        report["cka_n"] = float(np.shape(features_before)[0])
    if weights_before is not None and weights_after is not None:
        report["weight_drift"] = weight_drift(weights_before, weights_after)
    if reference_before is not None:
        report["reference_before"] = float(reference_before)
    if reference_after is not None:
        report["reference_after"] = float(reference_after)
    if reference_before is not None and reference_after is not None:
        report["reference_drop"] = float(reference_before) - float(reference_after)
    return report


def _reference_path(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.exists():
        raise FileNotFoundError(
            f"reference file {path} is missing; rebuild it with `python scripts/build_reference.py`."
        )
    return path


def _as_matrix(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D array with at least 2 rows, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; fix the model outputs first.")
    return arr


def _unit_rows(values: Any, n: int, name: str) -> np.ndarray:
    arr = _as_matrix(values, name)
    if arr.shape[0] != n:
        raise ValueError(f"{name} returned {arr.shape[0]} rows for {n} texts; return one per text.")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.where(norms > 0, norms, 1.0)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)


def _to_numpy(value: Any) -> np.ndarray:
    if _is_tensor(value):
        import torch

        return value.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)
