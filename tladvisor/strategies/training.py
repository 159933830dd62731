"""The training machinery every weight-changing strategy shares: classifier, loop, prediction, forgetting.

A ``Classifier`` is a pretrained backbone (MiniLM's transformer with mean pooling, or EfficientNet's
feature extractor) with a new ``nn.Linear`` head. ``fit`` trains it with AdamW, discriminative
learning rates by depth (ULMFiT, Howard & Ruder 2018: each block below the top gets the rate of
the block above divided by 2.6), linear warm-up then linear decay, seeded mini-batches, early
stopping on validation accuracy (best weights restored), optional gradual unfreezing, and on CUDA
autocast, a GradScaler for fp16 and batch halving on out-of-memory. ``measure_forgetting`` compares
the adapted backbone with the frozen one on the shipped reference sets (``tladvisor.forgetting``).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tladvisor import catalog
from tladvisor.backbones import IMAGE_SIZE, ImageNetClassifier, TextEncoder, mean_pool
from tladvisor.data import TaskData, _stratified_cap
from tladvisor.strategies.base import RunContext, StoredRun, StrategyConfig

# Backbone learning rates of the top block: BERT-size encoders fine-tune well at 2e-5..1e-4
# (Devlin et al. 2019); a mobile CNN tolerates about 1e-4 with its BatchNorm statistics frozen.
BACKBONE_LR = {"text": 5e-5, "image": 1e-4}


@dataclass
class TrainingConfig(StrategyConfig):
    """Settings of the shared training loop (the base of every fine-tuning strategy's config)."""

    batch_size: int = field(
        default=16, metadata={"help": "examples per step; 16 gives small data sets enough steps"}
    )
    backbone_lr: float | None = field(
        default=None,
        metadata={
            "help": "learning rate of the top backbone block (lower blocks get less, see "
            "lr_decay); None: 5e-5 for text, 1e-4 for images"
        },
    )
    lr_decay: float = field(
        default=2.6,
        metadata={"help": "divide the learning rate by this per block downwards (ULMFiT: 2.6)"},
    )
    min_lr_ratio: float = field(
        default=0.01,
        metadata={
            "help": "floor of a block's rate as a share of backbone_lr; EfficientNet has 17 "
            "blocks and 2.6^16 would freeze its stem in all but name"
        },
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_frac: float = field(
        default=0.1, metadata={"help": "share of the steps spent warming the rate up from 0"}
    )
    min_steps_per_epoch: int = field(
        default=20,
        metadata={
            "help": "an epoch repeats a small training set until it has this many steps: with "
            "16 examples, 2 epochs would otherwise be 2 optimiser steps and nothing is learnt"
        },
    )
    image_size: int = field(
        default=IMAGE_SIZE,
        metadata={"help": "side in pixels images are resized to, for training and prediction"},
    )
    measure_forgetting: bool = field(
        default=True,
        metadata={"help": "compare the adapted backbone with the frozen one on reference sets"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_steps_per_epoch < 1:
            raise ValueError(
                f"min_steps_per_epoch must be at least 1, got {self.min_steps_per_epoch}; try 20"
            )
        if self.backbone_lr is not None and not self.backbone_lr > 0:
            raise ValueError(
                f"backbone_lr must be positive or None, got {self.backbone_lr}; try 5e-5 (text)"
            )
        if not self.lr_decay >= 1:
            raise ValueError(f"lr_decay must be at least 1, got {self.lr_decay}; try 2.6")
        if not 0 < self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in (0, 1], got {self.min_lr_ratio}; try 0.01")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay}; try 0.01")
        if not 0 <= self.warmup_frac < 1:
            raise ValueError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}; try 0.1")
        if not 32 <= self.image_size <= 1024:
            raise ValueError(
                f"image_size must be between 32 and 1024 pixels, got {self.image_size}; try 224"
            )

    def resolved_backbone_lr(self, modality: str) -> float:
        return self.backbone_lr if self.backbone_lr is not None else BACKBONE_LR[modality]


# ----------------------------------------------------------------------------- the model


class Classifier(nn.Module):
    """A backbone's pooled features through a linear head (``.classifier``, a name no backbone
    module ends with, so peft's suffix match in ``modules_to_save`` finds only it)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, n_classes: int, modality: str):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(feature_dim, n_classes)
        self.modality = modality

    def features(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.modality == "text":
            hidden = self.backbone(**inputs).last_hidden_state
            # Mean pooling without the L2 normalisation of sentence embeddings: on unit vectors a
            # fresh head's logits grow ~20x slower, too slow for the few steps of a small data set.
            return mean_pool(hidden.float(), inputs["attention_mask"])
        return self.backbone.features(inputs["pixels"])

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.features(inputs))


Wrapper = TextEncoder | ImageNetClassifier


def load_wrapper(config: StrategyConfig, data: TaskData, ctx: RunContext) -> tuple[str, Wrapper]:
    """The catalogue model to fine-tune, checked to be a trainable encoder of the data's modality."""
    name = config.model or catalog.default_model(data.modality)
    spec = catalog.get_spec(name)
    if spec.modality != data.modality:
        raise ValueError(
            f"model {name!r} reads {spec.modality}, but the data set is {data.modality}; "
            f"pick a {data.modality} model (default: {catalog.default_model(data.modality)})"
        )
    if spec.kind not in (catalog.TEXT_ENCODER, catalog.IMAGE_CLASSIFIER):
        raise ValueError(
            f"model {name!r} ({spec.kind}) cannot be fine-tuned by tladvisor; use a text encoder "
            "('minilm' or 'hf:/path') or 'efficientnet-lite0' (CLIP models: feature_extraction)"
        )
    return name, catalog.load(name, device=ctx.device)


def unused_modules(backbone: nn.Module) -> list[nn.Module]:
    """Parts of a pretrained network our classifier never runs: BERT's pooler, the ImageNet head."""
    if hasattr(backbone, "net"):  # EfficientNetBody
        return [backbone.net._fc]
    pooler = getattr(backbone, "pooler", None)
    return [pooler] if pooler is not None else []


def build_classifier(
    wrapper: Wrapper, n_classes: int, seed: int, backbone: nn.Module | None = None
) -> Classifier:
    """A classifier over a trainable copy of the backbone (or ``backbone``), head seeded by ``seed``."""
    backbone = backbone if backbone is not None else wrapper.fresh_module()
    for module in unused_modules(backbone):
        module.requires_grad_(False)  # never in the forward pass: not trainable, not counted
    modality = "text" if isinstance(wrapper, TextEncoder) else "image"
    torch.manual_seed(seed)
    return Classifier(backbone, wrapper.feature_dim, n_classes, modality).to(wrapper.device)


def used_param_count(module: nn.Module) -> int:
    """Parameters of ``module`` that the classifier's forward pass uses."""
    skipped = {id(p) for m in unused_modules(module) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in skipped)


def trainable_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def set_trainable(model: Classifier, wrapper: Wrapper, top_blocks: int | None) -> None:
    """Train the head and the top ``top_blocks`` blocks (None: the whole backbone)."""
    model.requires_grad_(top_blocks is None)
    if top_blocks is not None:
        blocks = wrapper.blocks(model.backbone)
        for block in blocks[len(blocks) - top_blocks :]:
            block.requires_grad_(True)
    model.classifier.requires_grad_(True)
    for module in unused_modules(model.backbone):
        module.requires_grad_(False)


def discriminative_groups(
    model: Classifier, wrapper: Wrapper, head_lr: float, config: TrainingConfig
) -> list[dict[str, Any]]:
    """AdamW parameter groups: the head at ``head_lr``; block k below the top at top_lr / decay^k.

    Parameters outside the blocks (embeddings, the CNN stem) sit below the lowest block. Every
    parameter is in a group, frozen or not, so gradual unfreezing needs no new optimizer.
    """
    top_lr = config.resolved_backbone_lr(model.modality)
    floor = top_lr * config.min_lr_ratio
    blocks = wrapper.blocks(model.backbone)
    groups: list[dict[str, Any]] = [{"params": list(model.classifier.parameters()), "lr": head_lr}]
    seen = {id(p) for p in model.classifier.parameters()}
    for depth, block in enumerate(reversed(blocks)):
        params = [p for p in block.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        groups.append({"params": params, "lr": max(top_lr / config.lr_decay**depth, floor)})
    rest = [p for p in model.backbone.parameters() if id(p) not in seen]
    if rest:
        groups.append({"params": rest, "lr": max(top_lr / config.lr_decay ** len(blocks), floor)})
    return [g for g in groups if g["params"]]


# ----------------------------------------------------------------------------- inputs


class Inputs:
    """One split's model inputs: texts tokenised per batch, images resized once and kept as uint8."""

    def __init__(self, wrapper: Wrapper, items: Sequence[Any], image_size: int = IMAGE_SIZE):
        self.wrapper = wrapper
        self.device = wrapper.device
        self.n = len(items)
        if isinstance(wrapper, TextEncoder):
            self.texts: list[str] | None = list(items)
            self.pixels: torch.Tensor | None = None
        else:
            self.texts = None
            self.pixels = image_array(items, image_size)
            if self.device.startswith("cuda"):
                self.pixels = self.pixels.pin_memory()  # lets .to(cuda, non_blocking) overlap

    def __len__(self) -> int:
        return self.n

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        if self.texts is not None:
            tokens = self.wrapper.tokenize([self.texts[i] for i in idx])
            return {k: v.to(self.device) for k, v in tokens.items()}
        x = self.pixels[torch.as_tensor(idx)].to(self.device, non_blocking=True)
        return {"pixels": scale_pixels(x)}

    def inference_order(self) -> np.ndarray:
        """Longest texts first so each batch pads to similar lengths; images in order."""
        if self.texts is None:
            return np.arange(self.n)
        return np.argsort([-len(t) for t in self.texts], kind="stable")


def image_array(images: Sequence[Any], size: int) -> torch.Tensor:
    """(N, size, size, 3) uint8: the resize of ``backbones.images_to_tensor``, at a quarter of its
    memory (5,000 images at 224 px are 750 MB as uint8, 3 GB as float)."""
    from PIL import Image

    arrays = [
        np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
        for img in images
    ]
    if not arrays:
        return torch.zeros((0, size, size, 3), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))


def scale_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) scaled as EfficientNet-Lite expects: (x - 127) / 128."""
    return (x.permute(0, 3, 1, 2).float() - 127.0) / 128.0


@dataclass
class Prepared:
    """A task's training rows and model inputs, built once per run."""

    train: Inputs
    val: Inputs
    test: Inputs
    y_train: np.ndarray
    y_val: np.ndarray
    notes: list[str]


def train_rows(data: TaskData, max_train: int | None, seed: int) -> np.ndarray:
    """Dataset indices of the training rows, capped (stratified, deterministic) at ``max_train``.

    The runner already caps the split; the cap is applied again here (a no-op then) so that a
    strategy called directly honours its config too.
    """
    train = data.split.train
    if max_train is not None and max_train < len(train):
        train = np.sort(_stratified_cap(train, data.dataset.label_ids(), max_train, seed))
    return train


def prepare(wrapper: Wrapper, data: TaskData, config: TrainingConfig) -> Prepared:
    rows = train_rows(data, config.max_train, config.seed)
    items = data.dataset.items
    labels = data.dataset.label_ids()
    train_items = [items[i] for i in rows]
    notes: list[str] = []
    if len(rows) < len(data.split.train):
        notes.append(
            f"trained on {len(rows)} of {len(data.split.train)} training examples (max_train)"
        )
    if isinstance(wrapper, TextEncoder):
        every = train_items + data.items("val") + data.items("test")
        cut = wrapper.n_truncated(every)
        if cut:
            notes.append(
                f"{cut} of {len(every)} texts are longer than {wrapper.max_length} tokens and "
                "were truncated"
            )
    size = config.image_size
    return Prepared(
        train=Inputs(wrapper, train_items, size),
        val=Inputs(wrapper, data.items("val"), size),
        test=Inputs(wrapper, data.items("test"), size),
        y_train=labels[rows],
        y_val=data.y("val"),
        notes=notes,
    )


# ----------------------------------------------------------------------------- the loop


def autocast_for(ctx: RunContext):
    """Autocast at ``ctx.precision`` on CUDA; nothing on the CPU or at fp32."""
    import contextlib

    dtype = catalog.autocast_dtype(ctx.precision)
    if dtype is None or not ctx.device.startswith("cuda"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` share of training, then linear decay to 0."""
    if warmup > 0 and progress < warmup:
        return progress / warmup
    return max(0.0, (1.0 - progress) / (1.0 - warmup))


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """Train mode, with BatchNorm kept on its pretrained statistics when ``freeze_bn``.

    Small fine-tuning batches give noisy batch statistics, and running means updated at momentum
    0.01 lag far behind them, so train and eval would see different networks (Keras' transfer
    learning guide gives the same advice). A randomly initialised network needs them: no freeze.
    """
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


@torch.inference_mode()
def predict_proba(
    model: nn.Module, inputs: Inputs, ctx: RunContext, batch_size: int = 64
) -> np.ndarray:
    """(n, n_classes) softmax probabilities in ``inputs`` order; halves the batch on CUDA OOM."""
    was_training = model.training
    model.eval()
    order = inputs.inference_order()
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    start = 0
    while start < len(order):
        idx = order[start : start + batch_size]
        try:
            with autocast_for(ctx):
                logits = model(inputs.batch(idx))
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size //= 2
            torch.cuda.empty_cache()
            continue
        chunks.append((idx, torch.softmax(logits.float(), -1).cpu().numpy()))
        start += len(idx)
    model.train(was_training)
    if not chunks:
        return np.zeros((0, 0), np.float32)
    out = np.zeros((len(order), chunks[0][1].shape[1]), np.float32)
    for idx, proba in chunks:
        out[idx] = proba
    return out


@torch.inference_mode()
def extract_features(
    model: Classifier, inputs: Inputs, ctx: RunContext, batch_size: int = 64
) -> np.ndarray:
    """(n, d) pooled features of the classifier's backbone, in ``inputs`` order (eval mode)."""
    was_training = model.training
    model.eval()
    order = inputs.inference_order()
    out = np.zeros((len(order), model.classifier.in_features), np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        with autocast_for(ctx):
            out[idx] = model.features(inputs.batch(idx)).float().cpu().numpy()
    model.train(was_training)
    return out


@dataclass
class FitResult:
    best_epoch: int  # 0 = the weights before training (only with evaluate_start)
    best_val_accuracy: float
    epochs_run: int
    batch_size: int  # after any halving on CUDA OOM
    trained_names: set[str]  # parameters that were trainable at some point
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """The validation figures every training strategy reports (stored with split 'val')."""
        return {
            "val_accuracy": self.best_val_accuracy,
            "best_epoch": float(self.best_epoch),
            "epochs_run": float(self.epochs_run),
        }


def _cpu_copy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu_copy(v) for v in obj]
    return copy.deepcopy(obj)


def _changing_state(model: nn.Module, everything: bool) -> dict[str, torch.Tensor]:
    """A CPU copy of what training can change: the trainable parameters and the buffers
    (batch-norm statistics), or the whole state when the trainable set changes between epochs
    (``everything``: gradual unfreezing). Frozen weights never change, so LoRA's snapshot of the
    best epoch holds its adapters and head, not another copy of the backbone (438 MB on MPNet).
    """
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    keep |= {n for n, _ in model.named_buffers()}
    return {
        k: v.detach().to("cpu", copy=True)
        for k, v in model.state_dict().items()
        if everything or k in keep
    }


def fit(
    model: nn.Module,
    groups: list[dict[str, Any]],
    data: Prepared,
    config: TrainingConfig,
    ctx: RunContext,
    *,
    freeze_bn: bool = True,
    unfreeze: Callable[[int], None] | None = None,
    evaluate_start: bool = False,
    span: tuple[float, float] = (0.05, 0.85),
) -> FitResult:
    """Train ``model`` on ``data.train``, early-stopping on ``data.val``; best weights restored.

    ``unfreeze(epoch)`` runs before each epoch (gradual unfreezing). ``evaluate_start`` counts the
    untrained weights as epoch 0, so training must beat them on validation to be kept (LP-FT).
    ``patience`` is the number of non-improving epochs tolerated before stopping.
    """
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    cuda = ctx.device.startswith("cuda")
    for g in groups:
        g["base_lr"] = g["lr"]
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and ctx.precision == "fp16")
    loss_fn = nn.CrossEntropyLoss()
    y_train = torch.as_tensor(data.y_train, dtype=torch.long)
    batch_size = min(config.batch_size, len(data.train))
    notes: list[str] = []
    trained: set[str] = set()
    best: tuple[float, float] | None = None  # (val accuracy, -val loss): ties go to lower loss
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, bad, epochs_run = 0, 0, 0

    def validate(epoch: int) -> bool:
        """Log validation metrics; keep the weights when they are the best so far."""
        nonlocal best, best_state, best_epoch, bad
        if len(data.val) == 0:
            best_state, best_epoch = None, epoch  # nothing to stop on: keep the last weights
            return False
        proba = predict_proba(model, data.val, ctx)
        acc = float(np.mean(proba.argmax(1) == data.y_val))
        loss = float(-np.mean(np.log(proba[np.arange(len(proba)), data.y_val] + 1e-12)))
        ctx.log_curve(epoch, "val_accuracy", acc)
        ctx.log_curve(epoch, "val_loss", loss)
        if best is None or (acc, -loss) > best:
            best, best_epoch, bad = (acc, -loss), epoch, 0
            best_state = _changing_state(model, everything=unfreeze is not None)
            return False
        bad += 1
        return bad > config.patience

    if evaluate_start:
        validate(0)
    for epoch in range(config.epochs):
        if unfreeze is not None:
            unfreeze(epoch)
        trained.update(n for n, p in model.named_parameters() if p.requires_grad)
        snapshot = (
            (_cpu_copy(model.state_dict()), _cpu_copy(optimizer.state_dict())) if cuda else None
        )
        while True:
            try:
                loss = _train_epoch(
                    model,
                    optimizer,
                    scaler,
                    loss_fn,
                    data.train,
                    y_train,
                    batch_size,
                    epoch,
                    config,
                    ctx,
                    freeze_bn,
                    span,
                )
                break
            except torch.cuda.OutOfMemoryError:
                if batch_size == 1:
                    raise RuntimeError(
                        "the GPU ran out of memory even at batch size 1; use LoRA, a smaller "
                        "image_size or model, or run on the CPU (--device cpu)"
                    ) from None
                model.load_state_dict(snapshot[0])
                optimizer.load_state_dict(snapshot[1])
                torch.cuda.empty_cache()
                batch_size //= 2
                notes.append(f"CUDA out of memory: batch size halved to {batch_size}")
        epochs_run = epoch + 1
        ctx.log_curve(epoch + 1, "train_loss", loss)
        if validate(epoch + 1):
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)  # what it holds is all that changed
    if epochs_run < config.epochs:
        notes.append(f"early stopping after epoch {epochs_run} of {config.epochs}")
    if best is not None and best_epoch < epochs_run:
        notes.append(
            f"kept the weights of epoch {best_epoch} (best validation accuracy {best[0]:.3f})"
        )
    return FitResult(
        best_epoch=best_epoch,
        best_val_accuracy=best[0] if best is not None else float("nan"),
        epochs_run=epochs_run,
        batch_size=batch_size,
        trained_names=trained,
        notes=notes,
    )


def _batches(n: int, batch_size: int, seed: int, repeats: int = 1) -> Iterator[np.ndarray]:
    # A generator per epoch (not one advanced across epochs) so a retried epoch sees the same order.
    g = torch.Generator().manual_seed(seed)
    perm = np.concatenate([torch.randperm(n, generator=g).numpy() for _ in range(repeats)])
    for start in range(0, len(perm), batch_size):
        yield perm[start : start + batch_size]


def epoch_repeats(n: int, batch_size: int, min_steps: int) -> int:
    """Passes over the training set per epoch so that an epoch has at least ``min_steps`` steps."""
    return max(1, math.ceil(min_steps * batch_size / max(n, 1)))


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss_fn: nn.Module,
    inputs: Inputs,
    y: torch.Tensor,
    batch_size: int,
    epoch: int,
    config: TrainingConfig,
    ctx: RunContext,
    freeze_bn: bool,
    span: tuple[float, float],
) -> float:
    set_train_mode(model, freeze_bn)
    repeats = epoch_repeats(len(inputs), batch_size, config.min_steps_per_epoch)
    n = len(inputs) * repeats  # examples this epoch, counting repeats
    steps = math.ceil(n / batch_size)
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    total, seen = 0.0, 0
    batches = _batches(len(inputs), batch_size, config.seed * 1009 + epoch, repeats)
    for step, idx in enumerate(batches, start=1):
        ctx.check_cancel()
        # Rate from the share of examples seen (mid-batch), so halving the batch keeps the schedule.
        progress = (epoch + (seen + len(idx) / 2) / n) / config.epochs
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * lr_factor(progress, config.warmup_frac)
        with autocast_for(ctx):
            logits = model(inputs.batch(idx))
        loss = loss_fn(logits.float(), y[idx].to(logits.device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # guards the first steps of a fresh head
        scaler.step(optimizer)
        scaler.update()
        total += float(loss.detach()) * len(idx)
        seen += len(idx)
        done = (epoch + seen / n) / config.epochs
        ctx.progress(
            span[0] + (span[1] - span[0]) * done,
            f"epoch {epoch + 1}/{config.epochs} · step {step}/{steps}",
        )
    return total / max(seen, 1)


# ----------------------------------------------------------------------------- outputs


def save_weights(
    model: nn.Module,
    names: set[str],
    path: Path,
    metadata: dict[str, Any],
    with_buffers: bool = False,
) -> str:
    """Save the named parameters (the head and what training changed) as safetensors;
    ``with_buffers`` adds the batch-norm statistics (a network that learnt them, from scratch)."""
    from safetensors.torch import save_file

    state = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if n in names}
    if with_buffers:
        state.update({n: b.detach().cpu().contiguous() for n, b in model.named_buffers()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return str(path)


def load_saved_classifier(run: StoredRun, ctx: RunContext) -> tuple[Classifier, Wrapper]:
    """The run's classifier: the catalogue model with the changed weights ``save_weights`` kept."""
    from safetensors.torch import load_file

    from tladvisor.strategies.base import MissingArtifact

    path = run.artifact_file("model.safetensors")
    wrapper = catalog.load(run.model, device=ctx.device)
    model = build_classifier(wrapper, len(run.classes), run.config.seed)
    state = load_file(str(path), device="cpu")
    unexpected = model.load_state_dict(state, strict=False).unexpected_keys
    if unexpected:
        raise MissingArtifact(
            f"{path} holds weights {run.model} does not have ({', '.join(unexpected[:3])} ...): "
            "the catalogue model changed since the run. Load the model it ran with, or run again."
        )
    return model, wrapper


def predict_saved(run: StoredRun, items: list, ctx: RunContext) -> np.ndarray:
    """Class probabilities of ``items`` under a fine-tuned (or from-scratch) run's weights."""
    model, wrapper = load_saved_classifier(run, ctx)
    image_size = getattr(run.config, "image_size", IMAGE_SIZE)
    return predict_proba(model, Inputs(wrapper, items, image_size), ctx)


def params_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """Named parameters as detached CPU tensors (for weight drift)."""
    return {n: p.detach().cpu() for n, p in module.named_parameters()}


_frozen_reference: dict[tuple[str, str], tuple[np.ndarray, np.ndarray | float]] = {}


def measure_forgetting(
    wrapper: Wrapper, adapted: nn.Module, ctx: RunContext, name: str
) -> dict[str, float]:
    """CKA, weight drift and reference-task drop of ``adapted`` (a backbone) vs the frozen model.

    Text: features of the general reference sentences, and retrieval accuracy@1 on the reference
    passage pairs. Images: features of the natural reference photos at the model's native 224 px,
    and top-1 agreement of the adapted features through the ORIGINAL ImageNet head with the frozen
    model (so ``reference_before`` is 1.0). The frozen side is computed once per model and device.
    """
    from tladvisor import forgetting

    key = (name, ctx.device)
    if isinstance(wrapper, TextEncoder):
        sentences = forgetting.load_text_reference_sentences("general")
        if key not in _frozen_reference:
            _frozen_reference[key] = (
                wrapper.encode(sentences),
                forgetting.text_reference_score(wrapper.encode),
            )
        feats_before, ref_before = _frozen_reference[key]
        feats_after = wrapper.encode(sentences, module=adapted)
        ref_after = forgetting.text_reference_score(lambda t: wrapper.encode(t, module=adapted))
        frozen = wrapper.model
    else:
        images = forgetting.load_image_reference("natural")
        if key not in _frozen_reference:
            _frozen_reference[key] = wrapper.forward_batches(images)
        feats_before, logits_before = _frozen_reference[key]
        feats_after, logits_after = wrapper.forward_batches(images, module=adapted)
        ref_before = forgetting.image_reference_agreement(logits_before, logits_before)
        ref_after = forgetting.image_reference_agreement(logits_before, logits_after)
        frozen = wrapper.body
    report = forgetting.forgetting_report(
        features_before=feats_before,
        features_after=feats_after,
        weights_before=params_of(frozen),
        weights_after=params_of(adapted),
        reference_before=float(ref_before),
        reference_after=ref_after,
    )
    return {k: float(v) for k, v in report.items() if v is not None}
