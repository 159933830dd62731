"""Frozen-encoder features, cached by (data fingerprint, model) in memory and on disk.

Feature extraction, the transferability scores, the profiler and kNN probes all read the same
embeddings; computing them once per data set and model is what keeps those paths cheap. For the
ImageNet classifier the cache also keeps the head's logits (the source distribution LEEP and NCE need).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tladvisor.data import Dataset

_memory: dict[tuple[str, str], Features] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Features:
    features: np.ndarray  # (n_items, d) float32, in dataset order
    source_logits: np.ndarray | None  # (n_items, 1000) ImageNet logits, image classifier only


def cache_dir() -> Path:
    """``TLADVISOR_CACHE`` or ``data/cache/embeddings`` beside the default database."""
    root = os.environ.get("TLADVISOR_CACHE")
    path = Path(root) if root else Path(__file__).resolve().parent.parent / "data" / "cache"
    return path / "embeddings"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def encode(dataset: Dataset, model_name: str, *, device: str | None = None) -> Features:
    """Features of every item of ``dataset`` under ``model_name`` (frozen), computed at most once."""
    key = (dataset.fingerprint, model_name)
    with _lock:
        if key in _memory:
            return _memory[key]
    path = cache_dir() / f"{dataset.fingerprint}-{_safe(model_name)}.npz"
    if path.exists():
        feats = _read(path, len(dataset))
        if feats is not None:
            with _lock:
                _memory[key] = feats
            return feats
    feats = _compute(dataset, model_name, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")  # write then rename: a killed run leaves no torn file
    arrays = {"features": feats.features}
    if feats.source_logits is not None:
        arrays["source_logits"] = feats.source_logits
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    with _lock:
        _memory[key] = feats
    return feats


def _read(path: Path, n: int) -> Features | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            feats = z["features"]
            logits = z["source_logits"] if "source_logits" in z.files else None
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache file: recompute
    if len(feats) != n:
        return None
    return Features(feats, logits)


def _compute(dataset: Dataset, model_name: str, device: str | None) -> Features:
    from tladvisor import catalog

    spec = catalog.get_spec(model_name)
    if spec.modality != dataset.modality:
        raise ValueError(
            f"model {model_name!r} encodes {spec.modality}, but the data set is {dataset.modality}; "
            f"pick a {dataset.modality} model (default: {catalog.default_model(dataset.modality)})"
        )
    model = catalog.load(model_name, device=device)
    if spec.kind == catalog.TEXT_ENCODER:
        return Features(model.encode(list(dataset.items)), None)
    if spec.kind == catalog.IMAGE_CLASSIFIER:
        feats, logits = model.forward_batches(list(dataset.items))
        return Features(feats, logits)
    if spec.kind == catalog.INSTRUCTION_LM:
        return Features(model.embed(list(dataset.items)), None)
    if spec.kind == catalog.CLIP:
        return Features(model.encode_images(list(dataset.items)), None)
    raise ValueError(f"model {model_name!r} ({spec.kind}) gives no embeddings to cache")


def clear_memory() -> None:
    with _lock:
        _memory.clear()
