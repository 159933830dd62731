"""LEEP: log expected empirical prediction of a source classifier (Nguyen et al., ICML 2020).

theta (N, Z) holds the source head's softmax over its Z source labels for each target example,
y (N,) the target labels. With the empirical joint P(y, z) = 1/N sum_{i: y_i = y} theta_iz and the
conditional P(y | z) = P(y, z) / P(z),

    LEEP = 1/N sum_i log sum_z P(y_i | z) theta_iz.

It is the average log-likelihood of the "expected empirical predictor" that maps the source
prediction to target labels; it is <= 0, and 0 when the source prediction fixes the target label.
Needs a source head (e.g. EfficientNet-Lite0's ImageNet softmax). Labels may be any hashable values.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import check_probs, encode_labels


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP of source softmax ``source_probs`` (N, Z) for target ``labels`` (N,); higher is better."""
    y = encode_labels(labels)
    theta = check_probs(source_probs, y.shape[0])
    n = y.shape[0]
    joint = np.zeros((int(y.max()) + 1, theta.shape[1]))  # (C, Z)
    np.add.at(joint, y, theta / n)
    p_z = joint.sum(axis=0)
    # A source label with P(z) = 0 has theta_iz = 0 for every i, so its conditional never counts.
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y | z)
    eep = (theta * cond[y]).sum(axis=1)  # probability of the true label under the predictor
    return float(np.mean(np.log(np.maximum(eep, np.finfo(np.float64).tiny))))
