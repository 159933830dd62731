"""Transferability metrics: score how well a frozen model's outputs suit a labelled data set.

One small module per metric, numpy in, float out (higher is better for all of them):

- :func:`logme` (You et al. 2021): Bayesian evidence of a linear model on the features.
- :func:`leep` (Nguyen et al. 2020): needs the source head's softmax (N, Z).
- :func:`nce` (Tran et al. 2019): -H(Y | Z) with Z the source head's argmax label.
- :func:`h_score` (Bao et al. 2019), Ledoit-Wolf shrinkage covariance (Ibrahim et al. 2022).
- :func:`knn_accuracy`, :func:`linear_probe_accuracy`: cross-validated accuracy on the features.

:func:`score_all` computes every metric that applies. Labels may be any hashable values.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import check_features, encode_labels
from tladvisor.transferability.hscore import h_score
from tladvisor.transferability.knn import knn_accuracy, linear_probe_accuracy
from tladvisor.transferability.leep import leep
from tladvisor.transferability.logme import logme
from tladvisor.transferability.nce import nce

__all__ = [
    "h_score",
    "knn_accuracy",
    "leep",
    "linear_probe_accuracy",
    "logme",
    "nce",
    "score_all",
]


def score_all(
    features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None
) -> dict[str, float]:
    """Every metric that applies to ``features`` (N, D) and ``labels`` (N,).

    Keys: ``logme``, ``h_score``, ``knn_accuracy``, ``linear_probe_accuracy``, plus ``leep`` and
    ``nce`` when the source head's softmax ``source_probs`` (N, Z) is given (NCE uses its argmax).
    """
    f = check_features(features)
    encode_labels(labels, f.shape[0])  # fail once, early, before any metric runs
    scores = {
        "logme": logme(f, labels),
        "h_score": h_score(f, labels),
        "knn_accuracy": knn_accuracy(f, labels),
        "linear_probe_accuracy": linear_probe_accuracy(f, labels),
    }
    if source_probs is not None:
        scores["leep"] = leep(source_probs, labels)  # validates the probabilities block by block
        scores["nce"] = nce(np.asarray(source_probs).argmax(axis=1), labels)
    return scores
