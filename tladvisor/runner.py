"""Execute one strategy on one data set and record everything about it in the store.

The runner owns what every run shares, so the strategy modules only train and predict:
the store rows (queued -> running -> done/failed/cancelled), the split, device and precision,
wall time and peak memory, test-set scoring (accuracy, macro-F1, per-class scores, confusion
matrix), transferability scores from cached embeddings, forgetting, library versions, and limits
on a run's time and memory.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tladvisor.data import DataError, Dataset, TaskData, split_dataset
from tladvisor.data.splits import Split, evaluation_split, split_problem
from tladvisor.strategies import Strategy, get
from tladvisor.strategies.base import Cancelled, RunContext, StrategyConfig
from tladvisor.users import clean_user_name


class RunLimitExceeded(RuntimeError):
    """A run went past the configured time or memory cap."""


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


def _limits() -> tuple[float | None, float | None]:
    """Per-run caps from the environment: seconds and resident memory in MB (None = no cap)."""

    def read(name: str) -> float | None:
        value = os.environ.get(name, "").strip()
        return float(value) if value else None

    return read("TLADVISOR_MAX_RUN_SECONDS"), read("TLADVISOR_MAX_RUN_MEMORY_MB")


def _rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class _MemorySampler:
    """Samples RSS every 50 ms in a thread: the peak of the run, not of the process lifetime."""

    def __init__(self) -> None:
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


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


def transferability_scores(task: TaskData, model_name: str, device: str) -> dict[str, float]:
    """LogME, H-score, kNN (and LEEP/NCE with an ImageNet head) on the training split's embeddings."""
    from tladvisor import catalog, embeddings, transferability

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
    if feats.source_logits is not None:
        z = feats.source_logits[train]
        z = np.exp(z - z.max(1, keepdims=True))
        source_probs = z / z.sum(1, keepdims=True)
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
        store.start_run(run_id, device=device, precision=precision)
        _run_and_record(
            store,
            dataset,
            strategy,
            config,
            report,
            progress,
            should_stop,
            artifact_root,
            with_transferability,
        )
    except Cancelled as exc:
        report.status, report.error = "cancelled", str(exc)
        store.fail_run(run_id, str(exc), status="cancelled")
    except Exception as exc:  # stored with its message; the caller shows it in plain words
        report.status, report.error = "failed", _plain_error(exc)
        store.fail_run(run_id, report.error, status="failed")
    return report


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
    if isinstance(exc, MemoryError):
        return "the run ran out of memory; lower --max-train or the batch size"
    return (
        f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, ValueError | RuntimeError)
        else str(exc)
    )


def _run_and_record(
    store: Any,
    dataset: Dataset,
    strategy: Strategy,
    config: StrategyConfig,
    report: RunReport,
    progress: Any,
    should_stop: Any,
    artifact_root: Path | None,
    with_transferability: bool,
) -> None:
    import torch

    max_seconds, max_mem_mb = _limits()
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

    with _MemorySampler() as memory:

        def stop_requested() -> bool:
            elapsed = time.perf_counter() - started
            if max_seconds and elapsed > max_seconds:
                raise RunLimitExceeded(
                    f"the run passed its time limit of {max_seconds:.0f} s "
                    "(TLADVISOR_MAX_RUN_SECONDS); lower --max-train or --epochs"
                )
            if max_mem_mb and memory.peak > max_mem_mb:
                raise RunLimitExceeded(
                    f"the run passed its memory limit of {max_mem_mb:.0f} MB "
                    "(TLADVISOR_MAX_RUN_MEMORY_MB); lower the batch size or --max-train"
                )
            return bool(should_stop and should_stop())

        curves: list[tuple[int, str, float]] = []

        def log_curve(step: int, name: str, value: float) -> None:
            curves.append((step, name, float(value)))
            store.log_curve(report.run_id, step, name, float(value))

        ctx = RunContext(
            device=report.device,
            precision=report.precision,
            artifact_dir=artifact_dir,
            progress=progress or (lambda fraction, message: None),
            log_curve=log_curve,
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
            try:
                report.transferability = transferability_scores(task, outcome.model, report.device)
            except Exception as exc:  # scores are a bonus: a failure is noted, not fatal
                report.notes.append(f"transferability scores skipped: {exc}")

    scores = score_predictions(task.y("test"), np.asarray(outcome.test_pred), task.classes)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20) if cuda else memory.peak
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
    store.finish_run(
        report.run_id, metrics=rows, backend=outcome.backend, details=details, model=outcome.model
    )
    report.status = "done"
    ctx.progress(1.0, "done")
