"""Execute one strategy on one data set and record everything about it in the store.

The runner owns what every run shares, so the strategy modules only train and predict:
the store rows (queued -> running -> done/failed/cancelled), the split, device and precision,
wall time and peak memory, test-set scoring (accuracy, macro-F1, per-class scores, confusion
matrix), transferability scores from cached embeddings, forgetting, library versions, and limits
on a run's time and memory.
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tladvisor.data import DataError, Dataset, TaskData, split_dataset
from tladvisor.data.splits import Split, evaluation_split, split_problem
from tladvisor.run_limits import (
    Limits,
    RunGuard,
    RunLimitExceeded,
    is_out_of_memory,
    memory_message,
    rss_mb,
)
from tladvisor.strategies import Strategy, get
from tladvisor.strategies.base import Cancelled, RunContext, StrategyConfig
from tladvisor.users import clean_user_name

_rss_mb = rss_mb  # bench/cost.py and scripts/calibrate_cost.py read it from here


@dataclass
class RunReport:
    run_id: str
    status: str  # done / failed / cancelled
    strategy: str
    model: str | None = None
    backend: str | None = None
    device: str | None = None
    precision: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    transferability: dict[str, float] = field(default_factory=dict)
    forgetting: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    # Where it ran: {"kind": "local"}, or {"kind": "ray", "node": ..., "address": ...}.
    executor: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def build_config(
    strategy: Strategy | str, overrides: dict[str, Any] | None = None
) -> StrategyConfig:
    """The strategy's config with ``overrides`` applied (unknown keys raise a clear ValueError)."""
    spec = get(strategy)
    values = {k: v for k, v in (overrides or {}).items() if v is not None}
    return spec.config_cls.from_dict(values)


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "sentence-transformers", "peft", "scikit-learn", "numpy"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[name] = md.version(name)
    return versions


def score_predictions(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support as prfs

    labels = list(range(len(classes)))
    p, r, f, s = prfs(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "per_class": [
            {
                "class": c,
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(classes)
        ],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def transferability_scores(
    task: TaskData, model_name: str, device: str, notes: list[str] | None = None
) -> dict[str, float]:
    """LogME, H-score, kNN (and LEEP/NCE with an ImageNet head) on the training split's embeddings.

    A note saying how many rows kNN and linear-probe accuracy were scored on is appended to
    ``notes`` when they are a sample (above ``transferability.knn.MAX_ROWS`` training rows).
    """
    from tladvisor import catalog, embeddings, transferability
    from tladvisor.transferability.knn import MAX_ROWS, sample_rows

    # Paths without an embedding of their own (the prompting LM, the TF-IDF/pixel baselines) are
    # scored with the modality's default encoder, so every run of a data set carries comparable numbers.
    if model_name not in catalog.CATALOG and not model_name.startswith(
        ("hf:", "clip:", "open_clip:")
    ):
        model_name = catalog.default_model(task.modality)
    if catalog.get_spec(model_name).kind == catalog.INSTRUCTION_LM:
        model_name = catalog.default_model(task.modality)
    feats = embeddings.encode(task.dataset, model_name, device=device)
    train = task.split.train
    source_probs = None
    if feats.source_logits is not None:  # softmax in place: (N, 1000) arrays are large
        source_probs = feats.source_logits[train].astype(np.float32)
        source_probs -= source_probs.max(1, keepdims=True)
        np.exp(source_probs, out=source_probs)
        source_probs /= source_probs.sum(1, keepdims=True)
    if notes is not None and len(train) > MAX_ROWS:
        sample = len(sample_rows(task.y("train"), MAX_ROWS))
        notes.append(
            f"kNN and linear-probe accuracy scored on a stratified sample of {sample:,} of the "
            f"{len(train):,} training rows (their cost grows faster than the rows); the other "
            "transferability scores use every row"
        )
    return transferability.score_all(feats.features[train], task.y("train"), source_probs)


def record_queued_run(
    store: Any,
    dataset: Dataset,
    strategy: Strategy | str,
    config: StrategyConfig | dict[str, Any] | None,
    *,
    user: str,
) -> tuple[str, StrategyConfig]:
    """Validate the settings against the strategy and the data, then write the data set and a
    queued run; returns (run id, config). Bad settings raise ValueError before anything is written."""
    strategy = Strategy.parse(strategy)
    spec = get(strategy)
    user = clean_user_name(user)  # the dashboard's rule, whoever calls (CLI, queue, scripts)
    if not isinstance(config, StrategyConfig):
        config = build_config(strategy, config)
    if not spec.supports(dataset.modality):
        raise ValueError(
            f"{strategy.value} does not apply to {dataset.modality} data; "
            f"it supports {', '.join(spec.modalities)}"
        )
    _check_splittable(dataset, strategy, config)
    store.upsert_dataset(
        dataset.fingerprint,
        dataset.name,
        dataset.modality,
        len(dataset),
        dataset.class_counts,
        dataset.source,
        user=user,  # the name this person gave it; nobody else's runs are renamed
    )
    run_id = store.create_run(
        user=user,
        dataset_fingerprint=dataset.fingerprint,
        strategy=strategy.value,
        model=config.model or _default_model_for(strategy, dataset.modality),
        config=config.to_dict(),
        seed=config.seed,
    )
    return run_id, config


def execute(
    store: Any,
    dataset: Dataset,
    strategy: Strategy | str,
    config: StrategyConfig | dict[str, Any] | None = None,
    *,
    user: str = "anonymous",
    device: str | None = None,
    run_id: str | None = None,
    progress: Any = None,
    should_stop: Any = None,
    artifact_root: Path | None = None,
    with_transferability: bool = True,
) -> RunReport:
    """Run ``strategy`` on ``dataset`` and record it; returns the report (never raises for a run
    that fails: the failure is stored and reported, so one bad run cannot take a server down)."""
    from tladvisor import catalog

    strategy = Strategy.parse(strategy)
    if run_id is None:
        run_id, config = record_queued_run(store, dataset, strategy, config, user=user)
    elif not isinstance(config, StrategyConfig):
        config = build_config(strategy, config)
    model = config.model or _default_model_for(strategy, dataset.modality)
    report = RunReport(run_id=run_id, status="running", strategy=strategy.value, model=model)
    try:
        device = catalog.select_device(device)
        precision = catalog.precision_for(device)
        report.device, report.precision = device, precision
        store.start_run(run_id, device=device, precision=precision, executor=report.executor)
        result = measure(
            dataset,
            strategy,
            config,
            report,
            progress,
            should_stop,
            artifact_root,
            with_transferability,
            lambda step, name, value: store.log_curve(run_id, step, name, value),
        )
        record_result(store, report, result, progress)
    except Exception as exc:  # stored with its message; the caller shows it in plain words
        record_failure(store, report, exc)
    return report


def record_result(store: Any, report: RunReport, result: Measured, progress: Any) -> None:
    """Store a finished run's metrics and mark it done (all or nothing, see ``finish_run``)."""
    store.finish_run(report.run_id, **result.finish_kwargs())
    report.status = "done"
    (progress or (lambda fraction, message: None))(1.0, "done")


def record_failure(store: Any, report: RunReport, exc: Exception, error: str | None = None) -> None:
    """Store a run as cancelled (``Cancelled``) or failed, with ``error`` or the plain reason."""
    status = "cancelled" if isinstance(exc, Cancelled) else "failed"
    report.status = status
    report.error = str(exc) if status == "cancelled" else (error or _plain_error(exc))
    store.fail_run(report.run_id, report.error, status=status)


def trains_on_data(strategy: Strategy, config: StrategyConfig) -> bool:
    """Whether the run takes anything from a training split: zero-shot never, prompting only for
    its demonstrations (``shots`` > 0), every other strategy for its weights."""
    if strategy is Strategy.ZERO_SHOT:
        return False
    if strategy is Strategy.PROMPTING:
        return getattr(config, "shots", 0) > 0
    return True


def _check_splittable(dataset: Dataset, strategy: Strategy, config: StrategyConfig) -> None:
    """Refuse, before anything is written, a run that must train on data that cannot be split."""
    problem = split_problem(dataset)
    if problem is None:
        return
    if len(dataset.classes) < 2:
        raise DataError(f"{problem}. Check the label column, or add examples of other classes.")
    if not trains_on_data(strategy, config):
        return
    training_free = "zero_shot or prompting" if dataset.modality == "text" else "zero_shot"
    if strategy is Strategy.PROMPTING:
        raise DataError(
            f"prompting with shots={config.shots} takes its demonstrations from a training "
            f"split, but {problem}. Set shots=0 to prompt without demonstrations (scored on "
            "every example), or add examples so that each class has several."
        )
    raise DataError(
        f"{strategy.value} trains on part of the data and tests on the rest, but {problem}. "
        f"Add examples so that each class has several (3 or more a class for a stratified "
        f"split), or run {training_free}, which trains on nothing and is scored on every example."
    )


def _split_for(dataset: Dataset, strategy: Strategy, config: StrategyConfig) -> tuple[Split, str]:
    """The run's split and a note on it: the shared seeded split, so every strategy on a data set
    is tested on the same rows; or, for a run that trains on nothing and data that cannot be
    split, every row as the test set."""
    problem = split_problem(dataset)
    if problem and len(dataset.classes) > 1 and not trains_on_data(strategy, config):
        note = (
            f"scored on all {len(dataset)} examples: {problem}, and {strategy.value} trains on "
            "none, so none were held out"
        )
        return evaluation_split(dataset, seed=config.seed), note
    return split_dataset(dataset, seed=config.seed, max_train=config.max_train), ""


def _default_model_for(strategy: Strategy, modality: str) -> str:
    from tladvisor import catalog

    if strategy is Strategy.PROMPTING:
        return "smollm2"
    return catalog.default_model(modality)


def _plain_error(exc: Exception) -> str:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return (
            "the GPU ran out of memory even at batch size 1; use a smaller model, LoRA, "
            "or run on the CPU (--device cpu)"
        )
    if is_out_of_memory(exc):
        cap = None
        with contextlib.suppress(ValueError):  # a malformed cap was reported when the run began
            cap = Limits.from_env().memory_mb
        if cap is not None:
            return memory_message(cap)
        return (
            "the run ran out of memory; lower --max-train or the batch size, or set "
            "TLADVISOR_MAX_RUN_MEMORY_MB so a run stops cleanly before the machine runs out"
        )
    return (
        f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, ValueError | RuntimeError)
        else str(exc)
    )


@dataclass
class Measured:
    """What a finished run stores: its metric rows, backend, details and model (``finish_run``)."""

    rows: list[tuple[str, float, str]]
    backend: str
    details: dict[str, Any]
    model: str

    def finish_kwargs(self) -> dict[str, Any]:
        return {
            "metrics": self.rows,
            "backend": self.backend,
            "details": self.details,
            "model": self.model,
        }


def measure(
    dataset: Dataset,
    strategy: Strategy,
    config: StrategyConfig,
    report: RunReport,
    progress: Any,
    should_stop: Any,
    artifact_root: Path | None,
    with_transferability: bool,
    log_curve: Any,
) -> Measured:
    """Train, predict and score one run without touching the store (a Ray worker has none):
    fills ``report`` and returns what ``finish_run`` stores; curve points go to ``log_curve``."""
    import torch

    limits = Limits.from_env()
    split, split_note = _split_for(dataset, strategy, config)
    if split_note:
        report.notes.append(split_note)
    task = TaskData(dataset, split)
    cuda = report.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    artifact_dir = (artifact_root / report.run_id) if artifact_root else None
    if artifact_dir:
        artifact_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    # On the CPU the memory cap is also a hard ceiling on allocations (see tladvisor.run_limits).
    with RunGuard(limits, hard_memory=not cuda) as guard:

        def stop_requested() -> bool:
            guard.check()
            return bool(should_stop and should_stop())

        ctx = RunContext(
            device=report.device,
            precision=report.precision,
            artifact_dir=artifact_dir,
            progress=progress or (lambda fraction, message: None),
            log_curve=lambda step, name, value: log_curve(step, name, float(value)),
            should_stop=stop_requested,
        )
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        outcome = get(strategy).run(config, task, ctx)
        seconds = time.perf_counter() - started
        if with_transferability and not len(split.train):
            report.notes.append("transferability scores skipped: they need training examples")
        elif with_transferability:
            ctx.progress(0.97, "transferability scores")
            guard.check()
            try:
                report.transferability = transferability_scores(
                    task, outcome.model, report.device, report.notes
                )
            except Exception as exc:  # scores are a bonus: a failure is noted, not fatal...
                if isinstance(exc, RunLimitExceeded) or is_out_of_memory(exc):
                    raise  # ...but a cap is not: the run as a whole went past it
                report.notes.append(f"transferability scores skipped: {exc}")
        guard.check()

    scores = score_predictions(task.y("test"), np.asarray(outcome.test_pred), task.classes)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20) if cuda else guard.peak
    report.model, report.backend = outcome.model, outcome.backend
    report.metrics = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
    report.cost = {
        "seconds": seconds,
        "peak_mem_mb": peak_mb,
        "trainable_params": float(outcome.trainable_params),
        "total_params": float(outcome.total_params),
    }
    report.forgetting = dict(outcome.forgetting)
    report.notes = list(dataset.notes) + list(outcome.notes) + report.notes
    rows = [(k, v, "test") for k, v in report.metrics.items()]
    rows += [(k, v, "") for k, v in report.cost.items()]
    rows += [(k, v, "train") for k, v in report.transferability.items()]
    rows += [(k, v, "reference") for k, v in report.forgetting.items()]
    rows += [(k, float(v), "val") for k, v in outcome.extra_metrics.items()]
    rows += [("n_train", float(len(split.train)), ""), ("n_test", float(len(split.test)), "")]
    per_class = np.bincount(task.y("train")).min() if len(split.train) else 0
    rows.append(("train_per_class", float(per_class), ""))
    details = {
        "classes": task.classes,
        "per_class": scores["per_class"],
        "confusion": scores["confusion"],
        "split": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
        "memory": "cuda max allocated" if cuda else "process RSS peak",
        "versions": library_versions(),
        "notes": report.notes,
        "artifact_path": outcome.artifact_path,
        "dataset_name": dataset.name,
    }
    return Measured(rows, outcome.backend, details, outcome.model)
