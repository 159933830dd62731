"""Rank the model zoo for a data set by transferability scores, without fine-tuning.

Every installed candidate of the data's modality (``candidate_models``: text encoders and the
instruction LM's mean-pooled hidden states for text, ImageNet classifiers and CLIP for images)
encodes the same rows once (cached), and each score is timed on its own: LogME, H-score, kNN and a
cross-validated linear probe, plus LEEP and NCE for a model with an ImageNet head. Ranking is by
LogME, the metric with the best published agreement with fine-tuned accuracy (You et al. 2021;
BENCHMARKS.md, "Model selection", for ours). Each candidate also states what feature extraction
costs with it here: milliseconds an item (a timed pass over ``COST_SAMPLE`` items, not cached),
parameters and weight memory.

A text encoder scores the features feature extraction would ship: when at least
``embeddings.CHUNK_WHEN_TRUNCATED_SHARE`` of the texts are longer than its context, each text is
embedded as the mean of its chunks (the strategy's ``chunk_long_texts='auto'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tladvisor.data import Dataset, fingerprint_of
from tladvisor.model_choice import FEATURE_KINDS  # one list of the kinds that give features

MAX_ROWS = 3000  # the scores stabilise well before this; keeps ranking to seconds a model
COST_SAMPLE = 32  # items encoded (uncached) to time a model's cost an item


def candidate_models(modality: str) -> list[str]:
    """The catalogue's models that give features for ``modality``, installed here or not."""
    from tladvisor import catalog

    return [
        s.name for s in catalog.list_models() if s.modality == modality and s.kind in FEATURE_KINDS
    ]


def sample_rows(dataset: Dataset, max_rows: int, seed: int = 0) -> Dataset:
    """At most ``max_rows`` rows drawn at random (seeded), as a data set of their own: its
    embeddings are cached under its own fingerprint, so a second ranking reads them."""
    if len(dataset) <= max_rows:
        return dataset
    rows = np.sort(np.random.default_rng(seed).choice(len(dataset), max_rows, replace=False))
    items = [dataset.items[i] for i in rows]
    labels = [dataset.labels[i] for i in rows]
    fp = fingerprint_of(dataset.modality, items, labels)
    return Dataset(f"{dataset.name}-sample{max_rows}", dataset.modality, items, labels, fp)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def score_features(
    features: np.ndarray, labels: np.ndarray, logits: np.ndarray | None
) -> tuple[dict[str, float], dict[str, float]]:
    """(scores, seconds each took) of every transferability score that applies."""
    from tladvisor import transferability as t

    jobs: dict[str, Callable[[], float]] = {
        "logme": lambda: t.logme(features, labels),
        "h_score": lambda: t.h_score(features, labels),
        "knn_accuracy": lambda: t.knn_accuracy(features, labels),
        "linear_probe_accuracy": lambda: t.linear_probe_accuracy(features, labels),
    }
    if logits is not None:
        z = np.exp(logits - logits.max(1, keepdims=True))
        probs = z / z.sum(1, keepdims=True)
        jobs["leep"] = lambda: t.leep(probs, labels)
        jobs["nce"] = lambda: t.nce(probs.argmax(axis=1), labels)
    scores, seconds = {}, {}
    for name, job in jobs.items():
        value, took = _timed(job)
        scores[name], seconds[name] = float(value), round(took, 4)
    return scores, seconds


def item_cost_ms(dataset: Dataset, name: str, device: str | None, chunked: bool) -> float:
    """Milliseconds to encode one item with ``name`` here: an uncached pass over a sample."""
    from tladvisor import embeddings

    sample = sample_rows(dataset, COST_SAMPLE, seed=1)
    _, took = _timed(lambda: embeddings.compute(sample, name, device=device, chunked=chunked))
    return 1000 * took / max(len(sample), 1)


def rank_models(
    dataset: Dataset,
    models: list[str] | None = None,
    *,
    max_rows: int = MAX_ROWS,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Candidates best first: [{rank, model, title, scores, seconds, cost, rows, truncated_share,
    chunked}], then the ones that could not be scored here, with ``error`` saying why.

    ``seconds`` holds the time each score took, the encoding's (``encode``, zero when cached) and
    the total; ``cost`` is feature extraction's here: ``ms_per_item``, ``params``, ``weights_mb``.
    """
    from tladvisor import catalog, embeddings, families

    names = models or candidate_models(dataset.modality)
    for name in names:
        spec = catalog.get_spec(name)
        if spec.modality != dataset.modality:
            raise ValueError(f"model {name!r} is for {spec.modality} data, not {dataset.modality}")
    sub = sample_rows(dataset, max_rows)
    y = sub.label_ids()
    table, failed = [], []
    for name in names:
        spec = catalog.get_spec(name)
        ok, why = families.installed(name)
        if not ok and why != families.USER_UNCHECKED:
            failed.append({"model": name, "title": spec.title or name, "error": why})
            continue
        started = time.perf_counter()
        try:
            share = embeddings.truncated_share(list(sub.items), name, device=device)
            chunked = embeddings.should_chunk("auto", share)
            started_encoding = time.perf_counter()
            feats = embeddings.encode(sub, name, device=device, chunked=chunked)
            encode_s = time.perf_counter() - started_encoding
            per_item = item_cost_ms(sub, name, device, chunked)
        except catalog.ModelUnavailable as exc:
            failed.append({"model": name, "title": spec.title or name, "error": str(exc)})
            continue
        scores, seconds = score_features(feats.features, y, feats.source_logits)
        seconds["encode"] = round(encode_s, 3)
        seconds["total"] = round(time.perf_counter() - started, 3)
        params = spec.params
        table.append(
            {
                "model": name,
                "title": spec.title or name,
                "kind": spec.kind,
                "scores": scores,
                "seconds": seconds,
                "cost": {
                    "ms_per_item": round(per_item, 3),
                    "params": params,
                    "weights_mb": round(params * 4 / 2**20, 1) if params else None,
                },
                "rows": len(sub),
                "truncated_share": share,
                "chunked": chunked,
            }
        )
    table.sort(key=lambda r: -r["scores"].get("logme", float("-inf")))
    for i, row in enumerate(table, 1):
        row["rank"] = i
    return table + failed
