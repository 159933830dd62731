"""Direct proxies for transferability: cross-validated kNN and linear-probe accuracy on frozen features.

Both train a cheap classifier on the features (N, D) with stratified K-fold cross-validation and
return the pooled out-of-fold accuracy (each example is predicted once, by the model that did not
see it). They are the most direct proxies of transferability: slower than LogME (You et al. ICML
2021) but in the units users care about.

- ``knn_accuracy``: cosine-similarity k-nearest-neighbour vote (so invariant to rescaling each
  example); ties in the vote go to the class with the larger summed similarity.
- ``linear_probe_accuracy``: standardised features + L2 logistic regression (sklearn lbfgs, C=1).

Fold count: the number of folds is reduced automatically to the size of the smallest class when a
class has fewer examples than ``folds`` (stratification needs one example per class per fold), and
a ``ValueError`` is raised if any class has a single example.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import check_features, encode_labels


def knn_accuracy(
    features: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5, seed: int = 0
) -> float:
    """Out-of-fold accuracy of a cosine kNN (``k`` neighbours) on ``features`` (N, D)."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    f = check_features(features)
    y = encode_labels(labels, f.shape[0])
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    # An all-zero row has no direction; leave it at zero so its similarities are 0, not NaN.
    f = f / np.where(norms > 0, norms, 1.0)
    n_classes = int(y.max()) + 1
    correct = 0
    for train, test in _splits(y, folds, seed):
        sims = f[test] @ f[train].T  # (n_test, n_train) cosine similarities
        kk = min(k, train.size)
        nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        near_sims = np.take_along_axis(sims, nearest, axis=1)
        near_labels = y[train][nearest]
        votes = np.zeros((test.size, n_classes))
        rows = np.repeat(np.arange(test.size), kk)
        np.add.at(votes, (rows, near_labels.ravel()), 1.0)
        sim_sum = np.zeros_like(votes)
        np.add.at(sim_sum, (rows, near_labels.ravel()), near_sims.ravel())
        # Summed similarities differ by less than 2k between classes, so this term only breaks ties.
        score = votes + sim_sum / (2 * kk + 1)
        correct += int(np.sum(score.argmax(axis=1) == y[test]))
    return correct / y.size


def linear_probe_accuracy(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    """Out-of-fold accuracy of standardised logistic regression on ``features`` (N, D)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f = check_features(features)
    y = encode_labels(labels, f.shape[0])
    correct = 0
    for train, test in _splits(y, folds, seed):
        # max_iter well above the default 100: unscaled embeddings converge slowly.
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        model.fit(f[train], y[train])
        correct += int(np.sum(model.predict(f[test]) == y[test]))
    return correct / y.size


def _splits(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled K-fold splits with K reduced to the smallest class size if needed."""
    from sklearn.model_selection import StratifiedKFold

    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}.")
    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise ValueError(
            "every class needs at least 2 examples for cross-validated accuracy, but one class "
            "has 1; add examples of it or drop it."
        )
    splitter = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(y.size), y))
