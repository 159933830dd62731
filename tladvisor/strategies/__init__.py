"""One module per adaptation path, registered once under its ``Strategy`` member.

``get(strategy)`` imports the strategy's module on first use, so importing this package (as the
advisor does for the enum) never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from tladvisor.strategies.names import LABELS, Strategy

__all__ = ["LABELS", "Strategy", "StrategySpec", "get", "register", "all_specs"]


@dataclass(frozen=True)
class StrategySpec:
    strategy: Strategy
    config_cls: type  # a StrategyConfig subclass
    run: Callable  # run(config, data: TaskData, ctx: RunContext) -> Outcome
    modalities: tuple[str, ...]  # ("text",), ("image",) or both
    # predict(run: StoredRun, items: list, ctx: RunContext) -> (n, n_classes) probabilities,
    # from what ``run`` saved: the strategy that writes an artefact is the one that reads it.
    predict: Callable | None = None

    def supports(self, modality: str) -> bool:
        return modality in self.modalities


_REGISTRY: dict[Strategy, StrategySpec] = {}

# Which module defines which strategy; finetune.py holds the three full/partial/lp_ft variants.
_MODULES = {
    Strategy.PROMPTING: "prompting",
    Strategy.ZERO_SHOT: "zero_shot",
    Strategy.FEATURE_EXTRACTION: "feature_extraction",
    Strategy.PARTIAL_FINETUNE: "finetune",
    Strategy.FULL_FINETUNE: "finetune",
    Strategy.LP_FT: "finetune",
    Strategy.LORA: "lora",
    Strategy.SCRATCH: "scratch",
}


def register(
    strategy: Strategy,
    config_cls: type,
    run: Callable,
    modalities: tuple[str, ...],
    predict: Callable | None = None,
) -> None:
    """Called once by each strategy module at import; a second registration is a bug."""
    if strategy in _REGISTRY:
        raise ValueError(f"strategy {strategy.value!r} is already registered")
    _REGISTRY[strategy] = StrategySpec(strategy, config_cls, run, modalities, predict)


def get(strategy: Strategy | str) -> StrategySpec:
    strategy = Strategy.parse(strategy)
    if strategy not in _REGISTRY:
        importlib.import_module(f"tladvisor.strategies.{_MODULES[strategy]}")
    return _REGISTRY[strategy]


def all_specs() -> list[StrategySpec]:
    return [get(s) for s in Strategy]


def applicable(modality: str) -> list[str]:
    """The strategies that run on ``modality`` data, in the registry's order (cheap to dear)."""
    return [s.value for s in Strategy if get(s).supports(modality)]
