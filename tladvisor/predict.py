"""Label new data with a stored run: ``tladvisor predict RUN_ID DATA -o OUT.csv``.

The run's strategy module reads back what it saved (a head, fine-tuned weights, a LoRA adapter,
a TF-IDF baseline, a prompt with its calibration; zero-shot keeps only its settings) through the
registry's ``predict``, so the writer and the reader of each artefact sit in one module. Every
failure a user can cause or meet (an unknown run, a run with nothing saved, text given to an
image run, a model that no longer loads) is a ``PredictError`` whose message says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tladvisor.data import DataError
from tladvisor.data.unlabelled import Unlabelled
from tladvisor.strategies import Strategy, get
from tladvisor.strategies.base import Cancelled, MissingArtifact, RunContext, StoredRun


class PredictError(ValueError):
    """A prediction that cannot be made, with the reason and the fix."""


def resolve_run_id(store: Any, run_id: str) -> str:
    """The full id of ``run_id``, which may be the 8-character prefix the dashboard shows."""
    matches = store.run_ids_starting(run_id.strip()) if run_id.strip() else []
    if run_id in matches:
        return run_id
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PredictError(
            f"no run {run_id!r} in {store.path}; `tladvisor runs` lists the runs (or pass --db)"
        )
    raise PredictError(f"{run_id!r} matches {len(matches)} runs; give more of the id")


def load_run(store: Any, run_id: str) -> StoredRun:
    """The finished run ``run_id`` as ``StoredRun``; ``PredictError`` when it cannot predict."""
    run_id = resolve_run_id(store, run_id)
    run = store.get_run(run_id)
    if run["status"] != "done":
        raise PredictError(
            f"run {run_id} is {run['status']}; only a finished run can predict. Pick a run whose "
            "status is done (`tladvisor runs --status done`)."
        )
    details = run["details"] or {}
    spec = get(Strategy.parse(run["strategy"]))
    dataset = store.get_dataset(run["dataset_fingerprint"]) or {}
    artifact = details.get("artifact_path")
    return StoredRun(
        run_id=run_id,
        strategy=spec.strategy.value,
        config=spec.config_cls.from_dict(run["config"] or {}),
        model=run["model"],
        modality=dataset.get("modality") or _modality_of(run["model"]),
        classes=list(details.get("classes") or []),
        artifact=Path(artifact) if artifact else None,
    )


def _modality_of(model: str) -> str:
    from tladvisor import catalog

    return catalog.get_spec(model).modality


@dataclass
class Predictions:
    """One row per input row, in order: its id, the predicted class and every class's probability."""

    run_id: str
    ids: list[str]
    id_column: str
    classes: list[str]
    proba: np.ndarray  # (n, n_classes)
    labels: list[str] | None = None  # the input's labels, when it had a label column
    notes: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> list[str]:
        return [self.classes[i] for i in self.proba.argmax(axis=1)]

    @property
    def accuracy(self) -> float | None:
        """Share of rows whose label is the prediction (None without labels)."""
        if self.labels is None or not self.labels:
            return None
        hits = sum(p == y for p, y in zip(self.predicted, self.labels, strict=True))
        return hits / len(self.labels)

    def frame(self) -> Any:
        import pandas as pd

        columns = {self.id_column: self.ids, "prediction": self.predicted}
        columns.update({f"p_{c}": self.proba[:, i] for i, c in enumerate(self.classes)})
        return pd.DataFrame(columns)

    def to_csv(self) -> bytes:
        return self.frame().to_csv(index=False).encode("utf-8")


def predict(
    store: Any,
    run_id: str,
    rows: Unlabelled,
    *,
    device: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Predictions:
    """Predict ``rows`` with the stored run ``run_id``."""
    from tladvisor import catalog

    run = load_run(store, run_id)
    if rows.modality != run.modality:
        raise PredictError(
            f"run {run.run_id} classifies {run.modality}, but the file holds {rows.modality}; "
            f"give {'a CSV with a text column' if run.modality == 'text' else 'images'}"
        )
    if not len(rows):
        raise PredictError("the file holds no rows to predict")
    notes = list(rows.notes)
    unknown = sorted(set(rows.labels or ()) - set(run.classes))
    if unknown:
        notes.append(
            f"labels the run never saw count as wrong: {', '.join(map(repr, unknown[:5]))} "
            f"(its classes: {', '.join(map(repr, run.classes))})"
        )
    device = catalog.select_device(device)
    ctx = RunContext(
        device=device,
        precision=catalog.precision_for(device),
        progress=progress or (lambda fraction, message: None),
        should_stop=should_stop or (lambda: False),
    )
    try:
        proba = get(run.strategy).predict(run, rows.items, ctx)
    except (MissingArtifact, DataError, catalog.ModelUnavailable) as exc:
        raise PredictError(str(exc)) from exc
    except Cancelled:
        raise
    except Exception as exc:  # a model or file that no longer loads: said plainly, not a traceback
        raise PredictError(
            f"run {run.run_id}'s {run.model} model could not be loaded or run "
            f"({type(exc).__name__}: {exc}). Check that the model is still installed "
            "(`tladvisor models`), or run the strategy again."
        ) from exc
    return Predictions(
        run.run_id,
        list(rows.ids),
        rows.id_column,
        run.classes,
        np.asarray(proba, dtype=np.float64),
        rows.labels,
        notes,
    )


def prediction_task(store: Any, run_id: str, rows: Unlabelled) -> Callable[..., Predictions]:
    """``predict`` as work for the job queue (``JobQueue.submit_task``): it waits its turn on the
    device behind the runs, reports progress and stops when asked."""

    def work(progress: Callable[[float, str], None], should_stop: Callable[[], bool]):
        return predict(store, run_id, rows, progress=progress, should_stop=should_stop)

    return work
