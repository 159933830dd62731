"""Rank the catalogue's models for a data set by transferability scores, without fine-tuning.

Each model's frozen embeddings of the data (cached) are scored with LogME, H-score, kNN and, for an
ImageNet-head model, LEEP and NCE. Ranking is by LogME, the metric with the best published
agreement with fine-tuned accuracy (You et al. 2021; see BENCHMARKS.md for ours).

A text encoder scores the features feature extraction would ship: when at least
``embeddings.CHUNK_WHEN_TRUNCATED_SHARE`` of the texts are longer than its context, each text is
embedded as the mean of its chunks (the strategy's ``chunk_long_texts='auto'``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tladvisor.data import Dataset

MAX_ROWS = 3000  # the scores stabilise well before this; keeps ranking to seconds


def candidate_models(modality: str) -> list[str]:
    from tladvisor import catalog

    return [s.name for s in catalog.list_models() if s.modality == modality]


def rank_models(dataset: Dataset, models: list[str] | None = None) -> list[dict[str, Any]]:
    """[{rank, model, scores: {logme, h_score, knn_accuracy, ...}, seconds, truncated_share,
    chunked}] best first; ``truncated_share`` is None for a model that is not a text encoder."""
    from tladvisor import catalog, embeddings, transferability

    names = models or candidate_models(dataset.modality)
    for name in names:
        spec = catalog.get_spec(name)
        if spec.modality != dataset.modality:
            raise ValueError(f"model {name!r} is for {spec.modality} data, not {dataset.modality}")
    rng = np.random.default_rng(0)
    rows = np.arange(len(dataset))
    if len(rows) > MAX_ROWS:
        rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
    y = dataset.label_ids()[rows]
    table = []
    for name in names:
        started = time.perf_counter()
        share = embeddings.truncated_share(list(dataset.items), name)
        chunked = embeddings.should_chunk("auto", share)
        feats = embeddings.encode(dataset, name, chunked=chunked)
        probs = None
        if feats.source_logits is not None:
            z = feats.source_logits[rows]
            z = np.exp(z - z.max(1, keepdims=True))
            probs = z / z.sum(1, keepdims=True)
        scores = transferability.score_all(feats.features[rows], y, probs)
        table.append(
            {
                "model": name,
                "scores": scores,
                "seconds": time.perf_counter() - started,
                "truncated_share": share,
                "chunked": chunked,
            }
        )
    table.sort(key=lambda r: -r["scores"].get("logme", float("-inf")))
    for i, row in enumerate(table, 1):
        row["rank"] = i
    return table
