"""Direct proxies for transferability: cross-validated kNN and linear-probe accuracy on frozen features.

Both train a cheap classifier on the features (N, D) with stratified K-fold cross-validation and
return the pooled out-of-fold accuracy (each example is predicted once, by the model that did not
see it). They are the most direct proxies of transferability: slower than LogME (You et al. ICML
2021) but in the units users care about.

- ``knn_accuracy``: cosine-similarity k-nearest-neighbour vote (so invariant to rescaling each
  example); ties in the vote go to the class with the larger summed similarity.
- ``linear_probe_accuracy``: standardised features + L2 logistic regression (sklearn lbfgs, C=1).

Scale: above ``MAX_ROWS`` rows both are scored on a stratified sample of that many
(``max_rows=None`` uses every row), since their time grows with the rows squared (kNN) or the rows
times the solver's iterations (the probe). The kNN similarities are computed a block of
``BLOCK_BYTES`` at a time, so its memory is O(N D) plus a constant, never the (N/K) x N similarity
matrix, with the same answer as from the full matrix.

Fold count: the number of folds is reduced automatically to the size of the smallest class when a
class has fewer examples than ``folds`` (stratification needs one example per class per fold), and
a ``ValueError`` is raised if any class has a single example.
"""

from __future__ import annotations

import numpy as np

from tladvisor.transferability._validate import check_features, encode_labels

# Bytes of one block of similarities. The full test x train matrix of a 65,000-row training split
# (13,000 x 52,000 float64 a fold) is 5.4 GB, and argpartition needs as much again; in blocks of
# 32 MB the peak stays near 100 MB whatever the size, and a block still fills the BLAS kernels.
BLOCK_BYTES = 32 * 2**20
# Rows the two accuracies are scored on, at most (a stratified sample above it). kNN time grows
# with the square of the rows (65,000 rows of 384-d features: 200 s on two busy cores; 10,000: 5 s),
# the probe's with the rows times its L-BFGS iterations (65,000 MiniLM rows of one-word texts: 340 s);
# the standard error of an accuracy measured on 10,000 rows is at most 0.005, below any gap the
# advisor acts on.
MAX_ROWS = 10_000


def knn_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    k: int = 5,
    folds: int = 5,
    seed: int = 0,
    max_rows: int | None = MAX_ROWS,
) -> float:
    """Out-of-fold accuracy of a cosine kNN (``k`` neighbours) on ``features`` (N, D).

    Above ``max_rows`` rows it is scored on a stratified sample of that many (``sample_rows``,
    drawn with ``seed``); ``None`` scores every row.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    f, y = _rows_to_score(features, labels, max_rows, seed)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    # An all-zero row has no direction; leave it at zero so its similarities are 0, not NaN.
    f = f / np.where(norms > 0, norms, 1.0)
    n_classes = int(y.max()) + 1
    correct = 0
    for train, test in _splits(y, folds, seed):
        pred = _knn_predict(f[test], f[train], y[train], k, n_classes)
        correct += int(np.sum(pred == y[test]))
    return correct / y.size


def _knn_predict(
    query: np.ndarray, base: np.ndarray, base_y: np.ndarray, k: int, n_classes: int
) -> np.ndarray:
    """Class of each unit row of ``query`` by a vote of its ``k`` most cosine-similar ``base`` rows.

    Similarities are computed for one block of query rows at a time, so memory is
    O(block x len(base)) instead of O(len(query) x len(base)); each row's answer is the one the
    full matrix gives, since a row's neighbours depend on that row of similarities alone.
    """
    kk = min(k, base.shape[0])
    block = max(1, BLOCK_BYTES // (base.itemsize * base.shape[0]))
    pred = np.empty(query.shape[0], dtype=np.int64)
    for start in range(0, query.shape[0], block):
        sims = query[start : start + block] @ base.T  # (block, n_base) cosine similarities
        np.negative(sims, out=sims)  # in place: argpartition finds the smallest
        nearest = np.argpartition(sims, kk - 1, axis=1)[:, :kk].copy()
        near_sims = -np.take_along_axis(sims, nearest, axis=1)
        del sims
        near_labels = base_y[nearest]
        rows = np.repeat(np.arange(nearest.shape[0]), kk)
        votes = np.zeros((nearest.shape[0], n_classes))
        np.add.at(votes, (rows, near_labels.ravel()), 1.0)
        sim_sum = np.zeros_like(votes)
        np.add.at(sim_sum, (rows, near_labels.ravel()), near_sims.ravel())
        # Summed similarities differ by less than 2k between classes, so this term only breaks ties.
        score = votes + sim_sum / (2 * kk + 1)
        pred[start : start + block] = score.argmax(axis=1)
    return pred


def _rows_to_score(
    features: np.ndarray, labels: np.ndarray, max_rows: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validated features and label codes, cut to a stratified sample above ``max_rows`` rows."""
    if max_rows is not None and (not isinstance(max_rows, (int, np.integer)) or max_rows < 2):
        raise ValueError(f"max_rows must be an integer >= 2 or None, got {max_rows!r}.")
    f = check_features(features)
    y = encode_labels(labels, f.shape[0])
    if max_rows is not None and y.size > max_rows:
        keep = sample_rows(y, max_rows, seed)
        f, y = f[keep], y[keep]
    return f, y


def sample_rows(y: np.ndarray, max_rows: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a stratified sample of about ``max_rows`` of the label codes ``y``.

    Each class keeps its share (rounded down), and at least 2 rows where it has them, so
    cross-validation still sees every class; the sample may exceed ``max_rows`` by 2 a class.
    """
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    take = np.maximum(np.minimum(counts, 2), counts * max_rows // y.size)
    keep = [rng.choice(np.flatnonzero(y == c), size=t, replace=False) for c, t in enumerate(take)]
    return np.sort(np.concatenate(keep))


def linear_probe_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    max_rows: int | None = MAX_ROWS,
) -> float:
    """Out-of-fold accuracy of standardised logistic regression on ``features`` (N, D).

    Above ``max_rows`` rows it is scored on a stratified sample of that many, as kNN is.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f, y = _rows_to_score(features, labels, max_rows, seed)
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
