"""Tests for the data profiler and the unusualness scale (tladvisor.profile, tladvisor.unusualness).

Known answers on hand-made data sets for counts, balance, duplicates and the probe's bookkeeping;
ordering tests for unusualness on inputs held out from the calibration sample: Rotten Tomatoes
review snippets (the calibration used plot summaries) against Python source from stdlib modules the
calibration did not read and number strings of another format; a photo the calibration never saw
against MNIST digits and textures. The real models load once per session (SmolLM2: ~20 s).
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tladvisor import unusualness as u
from tladvisor.data import Dataset, fingerprint_of, load_sample
from tladvisor.decision import recommend
from tladvisor.profile import (
    PROBE_ROWS,
    USER_FIELDS,
    detect_gpu_memory_gb,
    few_shot_accuracies,
    find_duplicates,
    measure_profile,
    probe_rows,
)


def make_dataset(items: list, labels: list[str], modality: str = "text") -> Dataset:
    return Dataset("hand-made", modality, items, labels, fingerprint_of(modality, items, labels))


def subset(ds: Dataset, per_class: int, skip: int = 0) -> Dataset:
    """The rows ``skip .. skip + per_class`` of each class, in data order."""
    seen: dict[str, int] = {}
    rows = []
    for i, label in enumerate(ds.labels):
        seen[label] = seen.get(label, 0) + 1
        if skip < seen[label] <= skip + per_class:
            rows.append(i)
    return make_dataset([ds.items[i] for i in rows], [ds.labels[i] for i in rows], ds.modality)


# ---------------------------------------------------------------- known answers, no models


def test_scale_maps_reference_points_and_clips() -> None:
    assert u.scale(2.0, low=2.0, high=4.0) == 0.0
    assert u.scale(3.0, low=2.0, high=4.0) == 0.5
    assert u.scale(9.0, low=2.0, high=4.0) == 1.0
    assert u.scale(0.0, low=2.0, high=4.0) == 0.0
    # A signal that falls with unusualness (confidence): high < low.
    assert u.scale(0.3, low=0.4, high=0.2) == pytest.approx(0.5)
    assert u.level_of(0.1) == "low" and u.level_of(0.5) == "moderate" and u.level_of(0.9) == "high"


def test_nn_distance_groups_leave_own_group_out() -> None:
    bank = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert u.nn_distance(bank, bank) == pytest.approx(0.0)
    # Each row may not match itself, so its nearest neighbour is the orthogonal one.
    assert u.nn_distance(bank, bank, ["a", "b"], ["a", "b"]) == pytest.approx(1.0)


def test_head_stats_known_answers() -> None:
    uniform = np.zeros((2, 4))
    confidence, entropy = u.head_stats(uniform)
    assert confidence == pytest.approx(0.25) and entropy == pytest.approx(1.0)
    peaked = np.array([[100.0, 0.0, 0.0, 0.0]])
    confidence, entropy = u.head_stats(peaked)
    assert confidence == pytest.approx(1.0) and entropy == pytest.approx(0.0, abs=1e-6)


def test_duplicates_on_images_hash_pixels() -> None:
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    blue = Image.new("RGB", (4, 4), (0, 0, 255))
    dup = find_duplicates([red, red.copy(), blue, blue.copy(), blue.copy()], list("aabcb"))
    assert (dup.duplicate_rows, dup.duplicate_items) == (3, 2)
    assert (dup.conflicting_items, dup.conflicting_rows) == (1, 3)  # blue is labelled b and c


def test_probe_rows_takes_every_row_up_to_the_cap_then_a_stratified_sample() -> None:
    labels = ["a"] * 20 + ["b"] * 5 + ["c"] * 2
    assert probe_rows(labels, cap=27) == list(range(27))
    rows = probe_rows(labels, cap=10)
    per_class = {c: sum(labels[i] == c for i in rows) for c in "abc"}
    # In proportion (20:5:2 of 10 -> 7, 2, 1), and never under two a class: folds need them.
    assert per_class == {"a": 7, "b": 2, "c": 2}
    assert rows == sorted(set(rows))


def test_few_shot_accuracies_on_separable_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    y_train, y_test = np.repeat(np.arange(3), 4), np.repeat(np.arange(3), 10)
    x_train = centres[y_train] + rng.normal(size=(12, 3))
    x_test = centres[y_test] + rng.normal(size=(30, 3))
    assert few_shot_accuracies(x_train, y_train, x_test, y_test, k=3) == (1.0, 1.0)
    # Labels unrelated to the features: both fall to about chance.
    shuffled = rng.permutation(y_test)
    knn, linear = few_shot_accuracies(x_train, y_train, x_test, shuffled, k=3)
    assert knn < 0.7 and linear < 0.7


def test_detect_gpu_memory_gb() -> None:
    import torch

    found = detect_gpu_memory_gb()
    assert (found is None) == (not torch.cuda.is_available())
    assert found is None or found > 0


# ---------------------------------------------------------------- counts with the tokenizer


def test_counts_balance_duplicates_and_lengths() -> None:
    long_text = " ".join(["word"] * 400)  # 402 pieces with [CLS]/[SEP]: beyond MiniLM's 256
    items = ["good film", "good film", "bad film", "bad film", "meh", "fine", long_text]
    labels = ["pos", "pos", "neg", "pos", "neg", "neg", "neg"]
    prof = measure_profile(make_dataset(items, labels), probe=False, unusualness=False)
    assert (prof.n_rows, prof.n_classes, prof.min_per_class) == (7, 2, 3)
    assert prof.class_counts == {"neg": 4, "pos": 3}
    assert prof.imbalance_ratio == pytest.approx(4 / 3)
    dup = prof.duplicates
    assert (dup.duplicate_rows, dup.duplicate_items) == (2, 2)
    assert (dup.conflicting_items, dup.conflicting_rows) == (1, 2)  # "bad film": neg and pos
    lengths = prof.text_lengths
    assert lengths is not None and lengths.n_truncated == 1 and lengths.context_tokens == 256
    assert lengths.chars_mean == pytest.approx(np.mean([len(t) for t in items]))
    assert lengths.tokens_mean is not None and lengths.tokens_p95 > lengths.tokens_mean
    assert lengths.truncated_share == pytest.approx(1 / 7)  # under the 20% at which chunking starts
    assert "14% of texts are longer than MiniLM's 256 tokens and are cut" in " ".join(prof.notes)
    assert prof.unusualness is None and prof.probe is None
    assert json.loads(json.dumps(prof.to_dict()))["text_lengths"]["truncated_share"] == 1 / 7


def test_truncation_heavy_texts_are_probed_with_chunked_features() -> None:
    from test_embeddings import long_text_dataset

    # Prompting off: the LM's pass over 24 long texts is half a minute and tests nothing here.
    prof = measure_profile(long_text_dataset(per_class=12), unusualness=False, prompting=False)
    lengths = prof.text_lengths
    assert lengths is not None and lengths.n_truncated == 24 and lengths.truncated_share == 1.0
    assert prof.probe is not None and prof.probe.chunked
    assert prof.probe.truncated_best is not None  # the plain features' figure, for the advice
    assert any(
        n.startswith("100% of texts are longer than MiniLM's 256 tokens;") for n in prof.notes
    )
    assert prof.to_task_profile().truncated_share == 1.0
    assert prof.to_dict()["probe"]["chunked"] is True


# ---------------------------------------------------------------- held-out unusualness inputs


def held_out_code(n: int = 120) -> list[str]:
    """Code lines from stdlib modules the calibration did not read (it read json, string, ...)."""
    lines: list[str] = []
    for module in ("argparse", "calendar", "ipaddress"):
        origin = importlib.util.find_spec(module).origin
        for line in Path(origin).read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if len(s) >= 24 and not s.startswith(("#", '"', "'")) and any(c in s for c in "()=[]"):
                lines.append(line.rstrip())
    return random.Random(1).sample(sorted(set(lines)), n)


def held_out_numbers(n: int = 120) -> list[str]:
    """Invoice/log-like number strings, a different generator from the calibration's."""
    rng = random.Random(7)
    return [
        f"INV-{rng.randint(10000, 99999)} {rng.randint(1, 99)}x{rng.uniform(1, 500):.2f} "
        f"={rng.uniform(10, 9000):.2f} {rng.choice(['EUR', 'USD', 'GBP'])} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} "
        f"+{rng.randint(10, 99)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        for _ in range(n)
    ]


def natural_crops(n: int = 24) -> list[Image.Image]:
    """Crops of scikit-image's motorcycle photo, which the natural reference set does not use."""
    folder = importlib.util.find_spec("skimage.data").submodule_search_locations[0]
    with Image.open(Path(folder) / "motorcycle_left.png") as im:
        photo = im.convert("RGB")
    w, h = photo.size
    rng = np.random.default_rng(3)
    crops = []
    for _ in range(n):
        side = int(min(w, h) * rng.uniform(0.4, 0.9))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crops.append(photo.crop((x, y, x + side, y + side)).resize((112, 112)))
    return crops


def synthetic_textures(n: int = 24) -> list[Image.Image]:
    """Procedural textures: oriented gratings under noise, nothing like the reference textures."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:112, 0:112]
    out = []
    for _ in range(n):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.1, 0.5)
        wave = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        pixels = 127 + 60 * wave + rng.normal(0, 40, size=wave.shape)
        out.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB"))
    return out


@pytest.fixture(scope="module")
def rotten_profile():
    """Rotten Tomatoes (2,000 review snippets) measured in full: also the 'completes' check."""
    return measure_profile(load_sample("rotten_tomatoes"))


@pytest.fixture(scope="module")
def mnist_profile():
    # 20 a class (not the first rows, to differ from what the reference set may share).
    return measure_profile(subset(load_sample("mnist_digits"), per_class=20, skip=100))


def test_the_no_transfer_baseline_beats_pretrained_features_on_permuted_pixels() -> None:
    """Negative transfer, measured: scrambling every digit's pixels with one fixed permutation
    keeps the task learnable from raw pixels but destroys what ImageNet features see."""
    digits = subset(load_sample("mnist_digits"), per_class=30, skip=200)
    perm = np.random.default_rng(0).permutation(28 * 28)
    items = [
        Image.fromarray(np.asarray(img.convert("L")).ravel()[perm].reshape(28, 28)).convert("RGB")
        for img in digits.items
    ]
    scrambled = Dataset("permuted", "image", items, digits.labels,
                        fingerprint_of("image", items, digits.labels))  # fmt: skip
    prof = measure_profile(scrambled, unusualness=False)
    assert prof.probe.baseline_accuracy > prof.probe.best + 0.1
    rec = recommend(prof.to_task_profile())
    assert rec.strategy.value == "scratch"
    assert "profile.baseline_beats_probe" in [r.rule for r in rec.reasons]


def test_measuring_2000_text_rows_completes(rotten_profile) -> None:
    prof = rotten_profile
    assert prof.n_rows == 2000 and prof.class_counts == {"negative": 1000, "positive": 1000}
    assert prof.unusualness is not None and not prof.unusualness.missing
    assert set(prof.unusualness.signals) == set(u.TEXT_SIGNALS)
    assert prof.probe is not None and prof.seconds > 0
    # PROBE_ROWS (1,200) of the 2,000, 600 a class; each of 5 folds trains on 480 a class.
    assert prof.probe.shots_per_class == 480
    assert prof.probe.n_eval == PROBE_ROWS
    assert 0 <= prof.probe.baseline_accuracy <= 1
    json.dumps(prof.to_dict())


def test_zero_shot_is_measured_and_a_users_figure_wins(rotten_profile, mnist_profile):
    # MiniLM label similarity on review snippets: 0.655 on the benchmark's test split.
    assert 0.6 < rotten_profile.probe.zero_shot_accuracy < 0.75
    assert rotten_profile.to_task_profile(gpu_memory_gb=0.0).zero_shot_accuracy == pytest.approx(
        rotten_profile.probe.zero_shot_accuracy, abs=1e-4
    )
    told = rotten_profile.to_task_profile(gpu_memory_gb=0.0, zero_shot_accuracy=0.9)
    assert told.zero_shot_accuracy == 0.9
    # Digits through ImageNet labels (ConSE): near chance, 0.113 on the benchmark's test split.
    assert 0.0 <= mnist_profile.probe.zero_shot_accuracy < 0.3
    task = mnist_profile.to_task_profile(gpu_memory_gb=0.0)
    assert task.zero_shot_accuracy == pytest.approx(
        mnist_profile.probe.zero_shot_accuracy, abs=1e-4
    )
    assert "profile.zero_shot_weak" in [r.rule for r in recommend(task).reasons]


def test_a_small_upload_is_cross_validated_over_every_row() -> None:
    """16 reviews: a held-out split would score 6 rows, too few to use; cross-validation scores
    all 16 once, so the probe, the baseline and zero-shot count as measurements."""
    reviews = subset(load_sample("rotten_tomatoes"), per_class=8, skip=500)
    prof = measure_profile(reviews, unusualness=False, prompting=False)
    probe = prof.probe
    assert probe.cross_validated and probe.n_eval == 16 and probe.zero_shot_rows == 16
    assert 0 <= probe.best <= 1 and 0 <= probe.baseline_accuracy <= 1
    task = prof.to_task_profile(gpu_memory_gb=0.0)
    assert task.probe_rows == 16 and task.zero_shot_rows == 16 and task.probe_shots == 6
    assert "profile.too_few_rows" not in [r.rule for r in recommend(task).reasons]
    assert any("cross-validated" in n for n in prof.notes)


def test_prompting_is_measured_on_a_sample_of_rows(rotten_profile) -> None:
    from tladvisor.profile import PROMPT_CONTENTION_ROWS, PROMPT_PROBE_ROWS

    probe = rotten_profile.probe
    # Prompting scores about as well as the probe on reviews: in contention, so measured longer.
    assert probe.prompting_rows == PROMPT_CONTENTION_ROWS
    assert any(f"measured on {PROMPT_CONTENTION_ROWS} rows" in n for n in rotten_profile.notes)
    assert PROMPT_PROBE_ROWS < PROMPT_CONTENTION_ROWS
    # Calibrated SmolLM2 on review snippets: 0.72 on the advice suite's test subsample.
    assert 0.55 < probe.prompting_accuracy <= 1.0
    low, high = probe.intervals()["prompting"]
    assert low < probe.prompting_accuracy < high
    task = rotten_profile.to_task_profile(gpu_memory_gb=0.0)
    assert task.prompting_rows == PROMPT_CONTENTION_ROWS
    assert task.prompting_accuracy == pytest.approx(probe.prompting_accuracy, abs=1e-4)


def test_prompting_is_measured_longer_only_while_in_contention() -> None:
    """The first PROMPT_PROBE_ROWS rows decide whether more are scored: a rival no prompt can reach
    (above 1) stops there, one it cannot be ruled below (0) extends to every row available."""
    from tladvisor.profile import PROMPT_PROBE_ROWS, prompting_accuracy

    reviews = subset(load_sample("rotten_tomatoes"), per_class=30, skip=700)
    y = np.array(reviews.label_ids())
    notes: list[str] = []
    clear = prompting_accuracy(list(reviews.items), y, reviews.classes, "cpu", notes, rival=1.01)
    assert clear[1] == PROMPT_PROBE_ROWS and not notes
    close = prompting_accuracy(list(reviews.items), y, reviews.classes, "cpu", notes, rival=0.0)
    assert close[1] == len(reviews) == 60
    assert len(notes) == 1 and "measured on 60 rows" in notes[0]
    # The first 40 rows are the same draw in both: the extension only adds rows.
    assert abs(close[0] * 60 - clear[0] * 40) <= 20


def test_zero_shot_at_chance_on_rot13_keeps_the_advice_off_prompting() -> None:
    """ROT13 reviews keep every label but no English: label similarity falls to chance, and the
    advisor stops sending the data to prompting (SmolLM2 scored 0.44 there, BENCHMARKS.md)."""
    import codecs

    reviews = subset(load_sample("rotten_tomatoes"), per_class=150, skip=300)
    items = [codecs.encode(t, "rot13") for t in reviews.items]
    rot13 = make_dataset(items, list(reviews.labels), "text")
    prof = measure_profile(rot13, unusualness=False)
    assert prof.probe.zero_shot_accuracy < 0.6  # chance is 0.5; plain English scores ~0.65
    assert prof.probe.prompting_accuracy < 0.65  # the LM reads no English either
    rec = recommend(prof.to_task_profile(gpu_memory_gb=0.0))
    assert rec.strategy.value not in ("prompting", "zero_shot")
    assert "profile.zero_shot_weak" in [r.rule for r in rec.reasons]


def test_ordinary_english_scores_below_code_and_numbers(rotten_profile) -> None:
    english = rotten_profile.unusualness
    code = u.measure(held_out_code(), "text")
    numbers = u.measure(held_out_numbers(), "text")
    assert english is not None and code is not None and numbers is not None
    assert english.score < 0.4, english.explanation
    assert code.score > english.score + 0.3, code.explanation
    assert numbers.score > english.score + 0.3, numbers.explanation
    # Each raw signal orders the same way, so the ranking does not rest on one of them.
    for name in u.TEXT_SIGNALS:
        assert english.scaled[name] <= min(code.scaled[name], numbers.scaled[name]), name
    assert "ordinary English" in code.explanation and "code/number strings" in code.explanation


def test_natural_photos_score_below_digits_and_textures(mnist_profile) -> None:
    natural = u.measure(natural_crops(), "image")
    textures = u.measure(synthetic_textures(), "image")
    digits = mnist_profile.unusualness
    assert natural is not None and textures is not None and digits is not None
    assert natural.score < 0.4, natural.explanation
    assert digits.score > natural.score + 0.3, digits.explanation
    assert textures.score > natural.score + 0.3, textures.explanation


def test_probe_beats_chance_on_mnist(mnist_profile) -> None:
    probe = mnist_profile.probe
    # Cross-validated over all 200 rows: each of 5 folds trains on 16 a class
    assert probe is not None and probe.n_train == 160 and probe.n_eval == 200
    assert probe.knn_accuracy > 0.3, probe  # chance is 0.1
    assert probe.linear_accuracy > 0.3, probe


def test_to_task_profile_is_accepted_by_recommend(mnist_profile) -> None:
    from tladvisor.decision import recommend

    task = mnist_profile.to_task_profile(format_critical=False, gpu_memory_gb=0.0)
    assert (task.modality, task.n_labeled, task.n_classes, task.min_per_class) == (
        "image",
        200,
        10,
        20,
    )
    assert task.unusualness_measured and task.domain_unusualness == pytest.approx(
        mnist_profile.unusualness.score, abs=1e-4
    )
    assert task.probe_accuracy == pytest.approx(mnist_profile.probe.best, abs=1e-4)
    rec = recommend(task)
    json.dumps(rec.to_dict())
    with pytest.raises(ValueError, match="n_labeled"):
        mnist_profile.to_task_profile(n_labeled=5)
    assert "gpu_memory_gb" in USER_FIELDS
