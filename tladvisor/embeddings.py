"""Frozen-encoder features, cached by (data fingerprint, model, chunking) in memory and on disk.

Feature extraction, the transferability scores, the profiler and kNN probes all read the same
embeddings; computing them once per data set and model is what keeps those paths cheap. For the
ImageNet classifier the cache also keeps the head's logits (the source distribution LEEP and NCE need).

A text encoder reads at most its context (MiniLM: 256 word pieces) and drops the rest, so on long
documents the plain features describe only each text's opening. ``encode(..., chunked=True)``
embeds a long text as the mean of its chunk embeddings instead (``TextEncoder.encode_chunked``);
``should_chunk`` is the rule that turns it on when at least ``CHUNK_WHEN_TRUNCATED_SHARE`` of the
texts would be cut. Chunked and plain features are cached apart.

Imports: numpy, ``tladvisor.data`` and ``tladvisor.catalog`` (data); the loaders
(``tladvisor.families``, torch) only inside the functions that compute features, so
``tladvisor.backbones`` can read the chunking constants and ``cache_dir`` from here.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tladvisor import catalog
from tladvisor.data import Dataset

# "Many texts" are truncated from a fifth on: a judgement, not a fit. Below it the cut rows are too
# few to move a probe's accuracy much, and chunking multiplies their encoding cost by up to 16.
CHUNK_WHEN_TRUNCATED_SHARE = 0.2
# Chunks are the encoder's context minus [CLS]/[SEP], overlapping by this many word pieces so a
# sentence cut at a window edge is still read whole once.
CHUNK_OVERLAP = 32
# At most this many chunks a text, so encoding stays bounded: MiniLM reads 3,584 word pieces
# (roughly 2,700 English words) whole; a longer text is read through 16 windows spread evenly over it.
MAX_CHUNKS = 16
CHUNK_SETTINGS = ("auto", "on", "off")

_memory: dict[tuple[str, str, bool], Features] = {}
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


def chunk_setting(value: object, field: str = "chunk_long_texts") -> str:
    """``value`` as one of ``CHUNK_SETTINGS``: True/"true"/"on" -> "on", False/"false"/"off" ->
    "off", "auto" stays; anything else raises ``ValueError`` naming ``field``."""
    aliases = {True: "on", False: "off", "true": "on", "false": "off", "yes": "on", "no": "off"}
    text = value.strip().lower() if isinstance(value, str) else value
    resolved = aliases.get(text, text) if isinstance(text, bool | str) else None
    if resolved not in CHUNK_SETTINGS:
        raise ValueError(
            f"{field} must be 'auto', 'on' or 'off' (or true/false), got {value!r}; 'auto' "
            f"chunks when at least {CHUNK_WHEN_TRUNCATED_SHARE:.0%} of the texts are truncated"
        )
    return resolved


def should_chunk(setting: str, truncated_share: float | None) -> bool:
    """Whether to embed long texts as the mean of their chunks: 'on' / 'off' force it; 'auto' does
    when ``truncated_share`` (texts longer than the encoder's context) reaches the threshold."""
    setting = chunk_setting(setting)
    if setting != "auto":
        return setting == "on"
    return truncated_share is not None and truncated_share >= CHUNK_WHEN_TRUNCATED_SHARE


def truncated_share(
    texts: list[str], model_name: str, *, device: str | None = None
) -> float | None:
    """Share of ``texts`` longer than the text encoder's context (None: not a text encoder)."""
    if catalog.get_spec(model_name).kind != catalog.TEXT_ENCODER or not texts:
        return None
    from tladvisor.families import load

    encoder = load(model_name, device=device)
    return encoder.n_truncated(list(texts)) / len(texts)


def encode(
    dataset: Dataset, model_name: str, *, device: str | None = None, chunked: bool = False
) -> Features:
    """Features of every item of ``dataset`` under ``model_name`` (frozen), computed at most once.

    ``chunked`` (text encoders only) embeds each text as the mean of its chunk embeddings, so
    words past the encoder's context count too; a text within the context gets its plain embedding.
    """
    key = (dataset.fingerprint, model_name, bool(chunked))
    with _lock:
        if key in _memory:
            return _memory[key]
    # The chunking parameters are part of the file name: changing them never reads stale features.
    variant = f"-chunks{MAX_CHUNKS}x{CHUNK_OVERLAP}" if chunked else ""
    path = cache_dir() / f"{dataset.fingerprint}-{_safe(model_name)}{variant}.npz"
    if path.exists():
        feats = _read(path, len(dataset))
        if feats is not None:
            with _lock:
                _memory[key] = feats
            return feats
    feats = _compute(dataset, model_name, device, chunked)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a killed run leaves no torn file, and the temporary name is this
    # process's own, so two processes encoding the same data never write one file at once.
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp.npz")
    arrays = {"features": feats.features}
    if feats.source_logits is not None:
        arrays["source_logits"] = feats.source_logits
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    with _lock:
        _memory[key] = feats
    return feats


def compute(
    dataset: Dataset, model_name: str, *, device: str | None = None, chunked: bool = False
) -> Features:
    """Features computed now, not read from or written to the cache (to time a model)."""
    return _compute(dataset, model_name, device, chunked)


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


def _compute(dataset: Dataset, model_name: str, device: str | None, chunked: bool) -> Features:
    from tladvisor.families import load

    spec = catalog.get_spec(model_name)
    if spec.modality != dataset.modality:
        raise ValueError(
            f"model {model_name!r} encodes {spec.modality}, but the data set is {dataset.modality}; "
            f"pick a {dataset.modality} model (default: {catalog.default_model(dataset.modality)})"
        )
    if chunked and spec.kind != catalog.TEXT_ENCODER:
        raise ValueError(
            f"chunked features need a text encoder (MiniLM or an 'hf:' model), but {model_name!r} "
            f"is a {spec.kind}; encode it without chunking"
        )
    model = load(model_name, device=device)
    if spec.kind == catalog.TEXT_ENCODER:
        if chunked:
            return Features(model.encode_chunked(list(dataset.items)), None)
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
