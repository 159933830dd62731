"""What every strategy module shares: its config base class, the run context and the outcome.

A strategy module defines a config dataclass (subclass of ``StrategyConfig``) and
``run(config, data, ctx) -> Outcome``, and registers both once with ``register(...)``.
The runner (``tladvisor.runner``) owns everything around it: the store rows, timing, peak memory,
test-set scoring, transferability and forgetting. A strategy only trains and predicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class Cancelled(Exception):
    """Raised inside a strategy when the user cancels the run."""


@dataclass
class StrategyConfig:
    """Settings common to every strategy. Subclasses add their own fields with ``metadata["help"]``."""

    model: str | None = field(
        default=None, metadata={"help": "catalogue name; None picks the default for the modality"}
    )
    seed: int = field(default=0, metadata={"help": "seed for the split, init and batching"})
    epochs: int = field(
        default=3, metadata={"help": "training epochs (ignored by training-free paths)"}
    )
    batch_size: int = field(default=32, metadata={"help": "examples per step; halved on CUDA OOM"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate of the head / adapters"})
    max_train: int | None = field(
        default=None, metadata={"help": "cap on training examples (stratified); None uses all"}
    )
    patience: int = field(
        default=2, metadata={"help": "early stopping: epochs without validation gain"}
    )

    # Fields a strategy does not use are hidden from the dashboard's advanced panel.
    ignored_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}; try 3")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}; try 32")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}; try 1e-3 for a head")
        if self.max_train is not None and self.max_train < 2:
            raise ValueError(f"max_train must be at least 2 or None, got {self.max_train}")
        if self.patience < 0:
            raise ValueError(f"patience must be 0 or more, got {self.patience}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StrategyConfig:
        """Build from a dict, rejecting unknown keys with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)


@dataclass
class RunContext:
    """What the runner hands a strategy: device, progress, curves, cancellation, a folder."""

    device: str = "cpu"  # "cpu" or "cuda[:N]"
    precision: str = "fp32"  # "fp32", "bf16" or "fp16" (autocast on CUDA)
    artifact_dir: Path | None = None  # where to save a head / adapter the user can download
    progress: Callable[[float, str], None] = lambda fraction, message: None
    log_curve: Callable[[int, str, float], None] = lambda step, name, value: None
    should_stop: Callable[[], bool] = lambda: False

    def check_cancel(self) -> None:
        if self.should_stop():
            raise Cancelled("run cancelled by the user")


@dataclass
class Outcome:
    """What a strategy returns: test-set predictions and what it cost and used."""

    test_pred: np.ndarray  # predicted class index for every test item, in TaskData order
    model: str  # catalogue name actually used
    backend: str  # e.g. "minilm + logistic regression", "ConSE(efficientnet-lite0, minilm)"
    trainable_params: int = 0
    total_params: int = 0
    test_proba: np.ndarray | None = None  # (n_test, n_classes) when available
    extra_metrics: dict[str, float] = field(default_factory=dict)  # e.g. val accuracy, calibration
    forgetting: dict[str, float] = field(default_factory=dict)  # filled by weight-changing paths
    artifact_path: str | None = None  # saved head / adapter
    # Said to the user, e.g. "truncated to 256 tokens".
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_proba(cls, proba: np.ndarray, **fields: Any) -> Outcome:
        """An outcome whose predictions are the most probable class of each row of ``proba``."""
        return cls(test_pred=proba.argmax(axis=1), test_proba=proba, **fields)


class MissingArtifact(Exception):
    """A finished run whose saved head, adapter, weights or prompt cannot be used to predict."""


@dataclass
class StoredRun:
    """What predicting with (or exporting) a finished run needs: its settings and what it saved.

    Built by ``tladvisor.predict.load_run`` from the store; a strategy's ``predict`` reads
    ``artifact`` (the path the run recorded) and never the database.
    """

    run_id: str
    strategy: str
    config: StrategyConfig
    model: str
    modality: str
    classes: list[str]
    artifact: Path | None  # file or folder the run saved; None for zero-shot

    def check_artifact(self) -> None:
        """``MissingArtifact`` unless what the run saved is on disk (zero-shot saves nothing)."""
        if self.strategy == "zero_shot":
            return
        if self.artifact is None:
            self.artifact_file("")  # says the run saved nothing
        if not self.artifact.exists():
            raise MissingArtifact(
                f"run {self.run_id} ({self.strategy}) recorded its artefact at {self.artifact}, "
                "but it is not there (deleted or moved). Run it again, or restore the artefacts "
                "folder beside the database."
            )

    def artifact_file(self, name: str) -> Path:
        """``name`` inside the run's artefact folder, or ``MissingArtifact`` saying why not."""
        if self.artifact is None:
            raise MissingArtifact(
                f"run {self.run_id} ({self.strategy}) saved nothing to predict with: it ran before "
                "runs kept their weights and prompts. Run it again to get a run that can predict."
            )
        folder = self.artifact if self.artifact.is_dir() else self.artifact.parent
        path = folder / name
        if not path.exists():
            raise MissingArtifact(
                f"run {self.run_id} ({self.strategy}) recorded its artefact at {folder}, but "
                f"{path.name} is not there (deleted or moved). Run it again, or restore the "
                "artefacts folder beside the database."
            )
        return path
