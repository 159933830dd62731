"""LEEP: log expected empirical prediction of a source classifier (Nguyen et al., ICML 2020).

theta (N, Z) holds the source head's softmax over its Z source labels for each target example,
y (N,) the target labels. With the empirical joint P(y, z) = 1/N sum_{i: y_i = y} theta_iz and the
conditional P(y | z) = P(y, z) / P(z),

    LEEP = 1/N sum_i log sum_z P(y_i | z) theta_iz.

It is the average log-likelihood of the "expected empirical predictor" that maps the source
prediction to target labels; it is <= 0, and 0 when the source prediction fixes the target label.
Needs a source head (e.g. EfficientNet-Lite0's ImageNet softmax). Labels may be any hashable values.

Scale: theta is read in blocks of about ``BLOCK_BYTES`` (two passes: the joint, then the
predictor), so memory beyond the input is O(block + C Z); 100,000 rows of an ImageNet head are
800 MB at float64, and the direct formula would hold several such copies at once.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import check_probs, encode_labels

# Bytes of one float64 block of theta: large enough for fast matrix products, small beside the input.
BLOCK_BYTES = 32 * 2**20


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP of source softmax ``source_probs`` (N, Z) for target ``labels`` (N,); higher is better."""
    y = encode_labels(labels)
    n = y.shape[0]
    theta = np.asarray(source_probs)
    if theta.ndim != 2 or theta.shape[0] != n:
        check_probs(theta, n)  # raises the message that names the expected shape
    step = max(2, BLOCK_BYTES // (8 * theta.shape[1]))
    blocks = [slice(start, min(start + step, n)) for start in range(0, n, step)]
    if len(blocks) > 1 and blocks[-1].stop - blocks[-1].start < 2:  # a block needs 2 rows
        blocks[-2:] = [slice(blocks[-2].start, n)]
    n_classes = int(y.max()) + 1
    joint = np.zeros((n_classes, theta.shape[1]))  # (C, Z)
    for rows in blocks:
        t = check_probs(theta[rows], len(y[rows]))  # float64, validated a block at a time
        onehot = np.eye(n_classes)[y[rows]]  # (block, C)
        joint += onehot.T @ t / n
    p_z = joint.sum(axis=0)
    # A source label with P(z) = 0 has theta_iz = 0 for every i, so its conditional never counts.
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y | z)
    log_eep = np.empty(n)
    for rows in blocks:
        t = np.asarray(theta[rows], dtype=np.float64)
        eep = (t * cond[y[rows]]).sum(axis=1)  # probability of the true label under the predictor
        log_eep[rows] = np.log(np.maximum(eep, np.finfo(np.float64).tiny))
    return float(np.mean(log_eep))
