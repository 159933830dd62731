"""Fine-tuning the pretrained backbone: partial (last blocks), full, and LP-FT.

- ``PARTIAL_FINETUNE`` trains the head and the last ``unfreeze_blocks`` blocks (seed 002: "last 1-2
  blocks" for 500-5K examples under moderate shift).
- ``FULL_FINETUNE`` trains every layer with discriminative learning rates (ULMFiT: /2.6 per block
  downwards), optionally unfreezing one more block from the top each epoch (gradual unfreezing).
- ``LP_FT`` (Kumar et al., ICLR 2022) first fits the head as a linear probe on frozen features,
  then fine-tunes everything at a small rate: a trained head sends small, aligned gradients into
  the backbone, where a random one distorts the pretrained features (+10% out of distribution).

All three share ``training.fit``; the changed weights are saved as safetensors in the artefact folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tladvisor.data import TaskData
from tladvisor.strategies import register
from tladvisor.strategies.base import Outcome, RunContext
from tladvisor.strategies.names import Strategy
from tladvisor.strategies.training import (
    Classifier,
    Prepared,
    TrainingConfig,
    build_classifier,
    discriminative_groups,
    extract_features,
    fit,
    load_wrapper,
    measure_forgetting,
    predict_proba,
    predict_saved,
    prepare,
    save_weights,
    set_trainable,
    used_param_count,
)


@dataclass
class PartialFinetuneConfig(TrainingConfig):
    unfreeze_blocks: int = field(
        default=2,
        metadata={
            "help": "top blocks trained with the head (MiniLM has 6 transformer blocks, "
            "EfficientNet-Lite0 16 MBConv blocks + its head conv)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.unfreeze_blocks < 1:
            raise ValueError(
                f"unfreeze_blocks must be at least 1, got {self.unfreeze_blocks}; try 2 "
                "(0 blocks is feature extraction)"
            )


@dataclass
class FullFinetuneConfig(TrainingConfig):
    gradual_unfreezing: bool = field(
        default=False,
        metadata={
            "help": "start with the top block and unfreeze one more per epoch (ULMFiT); the "
            "embeddings / stem join once every block is unfrozen"
        },
    )


@dataclass
class LPFTConfig(TrainingConfig):
    # The probe already fits the task: a head rate 10x below a fresh head's keeps the first steps
    # from undoing it, which is what protects the features (Kumar et al. 2022).
    lr: float = field(
        default=1e-4, metadata={"help": "learning rate of the (probe-initialised) head"}
    )


def run_partial(config: PartialFinetuneConfig, data: TaskData, ctx: RunContext) -> Outcome:
    return _finetune(
        Strategy.PARTIAL_FINETUNE, config, data, ctx, top_blocks=config.unfreeze_blocks
    )


def run_full(config: FullFinetuneConfig, data: TaskData, ctx: RunContext) -> Outcome:
    return _finetune(Strategy.FULL_FINETUNE, config, data, ctx, gradual=config.gradual_unfreezing)


def run_lp_ft(config: LPFTConfig, data: TaskData, ctx: RunContext) -> Outcome:
    return _finetune(Strategy.LP_FT, config, data, ctx, linear_probe=True)


def _finetune(
    strategy: Strategy,
    config: TrainingConfig,
    data: TaskData,
    ctx: RunContext,
    *,
    top_blocks: int | None = None,
    gradual: bool = False,
    linear_probe: bool = False,
) -> Outcome:
    ctx.check_cancel()
    ctx.progress(0.01, "loading the model")
    name, wrapper = load_wrapper(config, data, ctx)
    prepared = prepare(wrapper, data, config)
    model = build_classifier(wrapper, len(data.classes), config.seed)
    n_blocks = len(wrapper.blocks(model.backbone))
    if top_blocks is not None and top_blocks > n_blocks:
        raise ValueError(
            f"unfreeze_blocks={top_blocks} but {name} has {n_blocks} blocks; use at most "
            f"{n_blocks} (or full_finetune)"
        )
    notes = list(prepared.notes)
    extra: dict[str, float] = {}
    if linear_probe:
        extra["probe_val_accuracy"] = _probe_head(model, prepared, data, config, ctx, notes)

    unfreeze = None
    if gradual:

        def unfreeze(epoch: int) -> None:
            # One more block per epoch from the top; the embeddings/stem once all blocks are in.
            set_trainable(model, wrapper, epoch + 1 if epoch + 1 < n_blocks else None)

        unfreeze(0)
    else:
        set_trainable(model, wrapper, top_blocks)
    groups = discriminative_groups(model, wrapper, config.lr, config)
    result = fit(
        model, groups, prepared, config, ctx, unfreeze=unfreeze, evaluate_start=linear_probe
    )
    notes += result.notes
    if gradual:
        notes.append(
            f"gradual unfreezing: {min(result.epochs_run, n_blocks)} of {n_blocks} blocks "
            "unfrozen by the last epoch"
        )

    ctx.progress(0.88, "predicting the test split")
    proba = predict_proba(model, prepared.test, ctx)
    head = sum(p.numel() for p in model.classifier.parameters())
    trainable = sum(p.numel() for n, p in model.named_parameters() if n in result.trained_names)
    outcome = Outcome.from_proba(
        proba,
        model=name,
        backend=_backend(strategy, name, config, top_blocks, gradual),
        trainable_params=int(trainable),
        total_params=int(used_param_count(model.backbone) + head),
        extra_metrics={**result.metrics(), **extra},
        notes=notes,
    )
    if ctx.artifact_dir is not None:
        outcome.artifact_path = save_weights(
            model,
            result.trained_names,
            ctx.artifact_dir / "model.safetensors",
            {
                "strategy": strategy.value,
                "model": name,
                "classes": data.classes,
                "image_size": config.image_size,
                "keys": "backbone.* are the changed weights of the pretrained model; classifier.* is "
                "the new linear head over mean-pooled (text) or pooled (image) features",
            },
        )
    if config.measure_forgetting:
        ctx.progress(0.9, "measuring forgetting on the reference sets")
        outcome.forgetting = measure_forgetting(wrapper, model.backbone, ctx, name)
    ctx.progress(0.95, "fine-tuning done")
    return outcome


def _probe_head(
    model: Classifier,
    prepared: Prepared,
    data: TaskData,
    config: TrainingConfig,
    ctx: RunContext,
    notes: list[str],
) -> float:
    """Fit the head as a logistic-regression probe on the frozen model's own features.

    The features come from the classifier itself (not the embeddings cache) so they match the
    fine-tuning inputs exactly, image_size included.
    """
    from tladvisor.strategies.feature_extraction import fit_linear_probe

    ctx.progress(0.02, "linear probe on frozen features")
    x_train = extract_features(model, prepared.train, ctx)
    ctx.check_cancel()
    x_val = extract_features(model, prepared.val, ctx)
    probe = fit_linear_probe(x_train, prepared.y_train, x_val, prepared.y_val, len(data.classes))
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(probe.weight))
        model.classifier.bias.copy_(torch.from_numpy(probe.bias))
    notes += probe.notes
    notes.append(f"linear probe (C={probe.c:g}): validation accuracy {probe.val_accuracy:.3f}")
    return probe.val_accuracy


def _backend(
    strategy: Strategy, name: str, config: TrainingConfig, top_blocks: int | None, gradual: bool
) -> str:
    if strategy is Strategy.PARTIAL_FINETUNE:
        return f"{name}: last {top_blocks} blocks + linear head fine-tuned (torch AdamW)"
    if strategy is Strategy.LP_FT:
        return f"{name}: logistic-regression probe, then all layers fine-tuned (LP-FT, torch AdamW)"
    how = ", gradual unfreezing" if gradual else ""
    return (
        f"{name}: all layers fine-tuned, discriminative LRs /{config.lr_decay:g} per block"
        f"{how} (torch AdamW)"
    )


BOTH = ("text", "image")
register(Strategy.PARTIAL_FINETUNE, PartialFinetuneConfig, run_partial, BOTH, predict_saved)
register(Strategy.FULL_FINETUNE, FullFinetuneConfig, run_full, BOTH, predict_saved)
register(Strategy.LP_FT, LPFTConfig, run_lp_ft, BOTH, predict_saved)
