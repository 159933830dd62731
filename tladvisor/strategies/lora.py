"""LoRA: low-rank adapters on the frozen backbone (peft), with a fully trained linear head.

Text (MiniLM/BERT): adapters on every linear module of every transformer block (query, key, value,
attention output dense, intermediate dense, output dense), r = 8, alpha = 2r (Biderman et al. 2024,
"LoRA Learns Less and Forgets Less": target all linear modules, alpha = 2r).
Images (EfficientNet-Lite0): adapters on the pointwise (1x1) convolutions of the last
``image_blocks`` blocks, the head conv counting as one. peft's Conv2d LoRA handles 1x1 convs;
depthwise convs are left alone. The default of 2 blocks keeps the adapters near 1% of this
3.4M-parameter network; every pointwise conv would be about 3.5%.

The head is peft ``modules_to_save``, so ``save_pretrained`` writes one self-contained adapter
folder: ``PeftModel.from_pretrained(build_classifier(...), folder)`` restores the classifier.
Forgetting is measured on the merged weights (``merge_and_unload`` of a copy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from tladvisor.data import TaskData
from tladvisor.strategies import register
from tladvisor.strategies.base import Outcome, RunContext, StoredRun
from tladvisor.strategies.names import Strategy
from tladvisor.strategies.training import (
    Classifier,
    Inputs,
    TrainingConfig,
    Wrapper,
    build_classifier,
    fit,
    load_wrapper,
    measure_forgetting,
    predict_proba,
    prepare,
    used_param_count,
)


@dataclass
class LoraStrategyConfig(TrainingConfig):
    r: int = field(default=8, metadata={"help": "rank of each adapter"})
    alpha: int | None = field(
        default=None, metadata={"help": "LoRA scaling numerator; None uses 2r (Biderman et al.)"}
    )
    # 0, as peft's own default: dropout copies every adapted layer's input for the backward pass
    # (six per block), which on all-mpnet-base-v2 kept 1,068 MB of activations against full
    # fine-tuning's 708 MB for the same 16 reviews, more than the optimizer state LoRA saves
    # (bench/cost.py, "one training step"); at 0 LoRA keeps what full fine-tuning keeps.
    dropout: float = field(
        default=0.0, metadata={"help": "dropout on the adapter input (0: no copy of it is kept)"}
    )
    image_blocks: int = field(
        default=2,
        metadata={"help": "images: adapt the pointwise convs of this many top blocks"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1:
            raise ValueError(f"r must be at least 1, got {self.r}; try 8")
        if self.alpha is not None and self.alpha <= 0:
            raise ValueError(f"alpha must be positive or None, got {self.alpha}; try {2 * self.r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}; try 0 or 0.05")
        if self.image_blocks < 1:
            raise ValueError(f"image_blocks must be at least 1, got {self.image_blocks}; try 2")


def target_modules(model: Classifier, wrapper: Wrapper, image_blocks: int) -> list[str]:
    """Full names of the modules to adapt: block linears (text) or top-block 1x1 convs (images)."""
    blocks = wrapper.blocks(model.backbone)
    if model.modality == "image":
        blocks = blocks[-image_blocks:]
    wanted = {id(m) for block in blocks for m in block.modules() if _adaptable(m, model.modality)}
    names = [n for n, m in model.named_modules() if id(m) in wanted]
    if not names:
        raise ValueError(f"found no {model.modality} layers LoRA can adapt in {wrapper.name}")
    return names


def plain_pointwise_convs(model: nn.Module) -> nn.Module:
    """Swap EfficientNet's ``Conv2dStaticSamePadding`` 1x1 convs for plain ``nn.Conv2d``, in place.

    peft builds each adapter conv as ``type(base_layer)(...)``, which the padding subclass
    cannot be (it asserts an image size). A 1x1 conv pads nothing, so the swap changes no output
    and no state_dict key. Call it on a classifier before ``PeftModel.from_pretrained`` too.
    """
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not nn.Conv2d and _adaptable(child, "image"):
                plain = nn.Conv2d(
                    child.in_channels,
                    child.out_channels,
                    1,
                    stride=child.stride,
                    bias=child.bias is not None,
                ).to(child.weight.device)
                plain.load_state_dict(child.state_dict(), strict=False)
                plain.requires_grad_(child.weight.requires_grad)
                setattr(parent, child_name, plain)
    return model


def _adaptable(module: nn.Module, modality: str) -> bool:
    if modality == "text":
        return isinstance(module, nn.Linear)
    return isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def adapt(
    base: Classifier, wrapper: Wrapper, config: LoraStrategyConfig
) -> tuple[nn.Module, list[str], int]:
    """``base`` with LoRA adapters as ``config`` sets them: (peft model, adapted layers, alpha)."""
    from peft import LoraConfig, get_peft_model

    if base.modality == "image":
        plain_pointwise_convs(base)
    targets = target_modules(base, wrapper, config.image_blocks)
    alpha = config.alpha if config.alpha is not None else 2 * config.r
    lora_config = LoraConfig(
        r=config.r,
        lora_alpha=alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        modules_to_save=["classifier"],
    )
    return get_peft_model(base, lora_config), targets, alpha


def run(config: LoraStrategyConfig, data: TaskData, ctx: RunContext) -> Outcome:
    ctx.check_cancel()
    ctx.progress(0.01, "loading the model")
    name, wrapper = load_wrapper(config, data, ctx)
    prepared = prepare(wrapper, data, config)
    base = build_classifier(wrapper, len(data.classes), config.seed)
    model, targets, alpha = adapt(base, wrapper, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adapters = trainable - sum(p.numel() for p in base.classifier.parameters())
    # peft keeps the untrained head beside its trainable copy: count the classifier once.
    total = (
        used_param_count(base.backbone)
        + adapters
        + sum(p.numel() for p in base.classifier.parameters())
    )

    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr}]
    result = fit(model, groups, prepared, config, ctx)
    ctx.progress(0.88, "predicting the test split")
    proba = predict_proba(model, prepared.test, ctx)
    where = (
        "all linear layers of every block"
        if base.modality == "text"
        else (f"1x1 convs of the top {config.image_blocks} blocks")
    )
    outcome = Outcome.from_proba(
        proba,
        model=name,
        backend=f"{name} + LoRA r={config.r} alpha={alpha} on {where} (peft) + linear head",
        trainable_params=int(trainable),
        total_params=int(total),
        extra_metrics=result.metrics(),
        notes=list(prepared.notes) + result.notes + [f"LoRA adapters on {len(targets)} layers"],
    )
    if ctx.artifact_dir is not None:
        folder = ctx.artifact_dir / "adapter"
        model.save_pretrained(str(folder))
        outcome.artifact_path = str(folder)
    if config.measure_forgetting:
        ctx.progress(0.9, "measuring forgetting on the reference sets (merged weights)")
        merged = copy.deepcopy(model).merge_and_unload()
        outcome.forgetting = measure_forgetting(wrapper, merged.backbone, ctx, name)
    ctx.progress(0.95, "LoRA done")
    return outcome


def load_adapted(run: StoredRun, ctx: RunContext) -> tuple[nn.Module, Wrapper]:
    """The run's classifier with its saved adapter and head (peft ``PeftModel``), in eval mode."""
    from peft import PeftModel

    from tladvisor import catalog

    folder = run.artifact_file("adapter_config.json").parent
    wrapper = catalog.load(run.model, device=ctx.device)
    base = build_classifier(wrapper, len(run.classes), run.config.seed)
    if base.modality == "image":
        plain_pointwise_convs(base)
    return PeftModel.from_pretrained(base, str(folder)).eval(), wrapper


def predict(run: StoredRun, items: list, ctx: RunContext) -> np.ndarray:
    """Class probabilities of ``items`` under the run's adapter and head."""
    model, wrapper = load_adapted(run, ctx)
    return predict_proba(model, Inputs(wrapper, items, run.config.image_size), ctx)


register(Strategy.LORA, LoraStrategyConfig, run, ("text", "image"), predict)
