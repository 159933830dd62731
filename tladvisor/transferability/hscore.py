"""H-score with a shrinkage-regularised covariance (Bao et al., ICIP 2019; Ibrahim et al., 2022).

For features f (N, D) and labels y (N,), H-score = tr(cov(f)^-1 cov(E[f | y])): the class-mean
(between-class) covariance measured in units of the total feature covariance, so a higher score
means classes are further apart relative to the spread of the features. cov(E[f | y]) equals
sum_c (n_c / N) (mu_c - mu)(mu_c - mu)^T.

With D comparable to N (e.g. 1,280-d CNN features of a few hundred images), the sample covariance
is singular and its pseudo-inverse blows the score up. Following Ibrahim et al. ("Newer is not
always better: rethinking transferability metrics", NeurIPS 2021 / arXiv 2022; tllib
``regularized_h_score``), the score is

    H_a = tr(Sigma_a^-1 (1 - a) cov(E[f | y])),   Sigma_a = (1 - a) S + a (tr(S) / D) I,

a Ledoit-Wolf-style shrinkage of the (1/N) sample covariance S towards the scaled identity, with
the between-class covariance shrunk by the same (1 - a). The factor matters: noise features get
a near 1 and hence a score near 0, instead of a dimension-driven D / N. a in [0, 1] is given or, by
default ("auto"), the
Ledoit-Wolf (2004) optimal intensity (same value as sklearn ``ledoit_wolf_shrinkage``, computed
from the covariance already at hand). ``shrinkage=0`` gives the
original H-score of Bao et al., computed with a pseudo-inverse as in tllib ``ranking/hscore.py``
(cut-off max(N, D) * eps relative, where tllib uses 1e-15).
Invariant to translation, isotropic scaling and rotation of the features (and, with shrinkage=0,
to any invertible linear map), and to renaming classes.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import check_features, encode_labels


def h_score(features: np.ndarray, labels: np.ndarray, shrinkage: float | str = "auto") -> float:
    """Shrinkage-regularised H-score of ``features`` (N, D) for ``labels`` (N,); higher is better.

    ``shrinkage``: "auto" (Ledoit-Wolf intensity) or a float in [0, 1]; 0 is the unregularised
    score of Bao et al., 1 always gives 0.
    """
    f = check_features(features)
    y = encode_labels(labels, f.shape[0])
    n, d = f.shape
    f = f - f.mean(axis=0)
    cov = f.T @ f / n
    if np.trace(cov) == 0.0:  # constant features separate nothing (and Sigma would be 0)
        return 0.0
    if isinstance(shrinkage, str) and shrinkage == "auto":
        a = ledoit_wolf_intensity(f, cov)
    elif isinstance(shrinkage, (int, float, np.floating)) and not isinstance(shrinkage, bool):
        a = float(shrinkage)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"shrinkage must lie in [0, 1], got {a}; use 'auto' for Ledoit-Wolf.")
    else:
        raise ValueError(f"shrinkage must be 'auto' or a float in [0, 1], got {shrinkage!r}.")

    counts = np.bincount(y).astype(np.float64)
    means = np.zeros((counts.size, d))
    np.add.at(means, y, f)
    means /= counts[:, None]  # class means of the centred features: mu_c - mu
    weighted = means * np.sqrt(counts / n)[:, None]  # rows r_c with sum_c r_c^T r_c = cov(E[f|y])

    if a == 0.0:
        # Relative cut-off as in numpy's matrix_rank: eigenvalues below it are rounding noise.
        rcond = max(n, d) * np.finfo(np.float64).eps
        inv_w = weighted @ np.linalg.pinv(cov, rcond=rcond, hermitian=True)
    else:
        sigma = (1.0 - a) * cov + a * (np.trace(cov) / d) * np.eye(d)
        inv_w = np.linalg.solve(sigma, weighted.T).T
    # tr(Sigma^-1 (1 - a) sum_c r_c^T r_c) = (1 - a) sum_c r_c Sigma^-1 r_c^T
    return float((1.0 - a) * np.sum(inv_w * weighted))


def ledoit_wolf_intensity(centred: np.ndarray, cov: np.ndarray) -> float:
    """Ledoit-Wolf (2004) shrinkage intensity for centred data (N, D) with ``cov`` = X^T X / N.

    a = min(b^2, d^2) / d^2 with d^2 = ||S - mu I||_F^2 / D (distance to the scaled identity) and
    b^2 = sum_i ||x_i x_i^T - S||_F^2 / (N^2 D) = (sum_i ||x_i||^4 / N - ||S||_F^2) / (N D).
    """
    n, d = centred.shape
    mu = np.trace(cov) / d
    cov_sq = float(np.sum(cov**2))
    delta = (cov_sq - 2 * mu * np.trace(cov) + d * mu**2) / d
    beta = (float(np.sum(np.sum(centred**2, axis=1) ** 2)) / n - cov_sq) / (n * d)
    return 0.0 if delta <= 0 else float(min(max(beta, 0.0), delta) / delta)
