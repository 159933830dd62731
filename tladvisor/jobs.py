"""The run queue: runs execute off the page thread, one at a time per device, with live progress
and cancellation; with a Ray cluster configured (``TLADVISOR_RAY_ADDRESS``, ``serve --ray``) every
run goes to the cluster at once and this process only records them (``tladvisor.ray_runs``).

The dashboard keeps one ``JobQueue`` per server process (``st.cache_resource``); every teammate's
session submits to it, so two people starting runs at once get both runs queued and completed.
A queued run is a store row from the moment it is submitted, so every page sees it.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tladvisor.data import Dataset
from tladvisor.runner import RunReport, execute, record_queued_run
from tladvisor.strategies import Strategy


@dataclass
class JobState:
    run_id: str
    user: str
    strategy: str
    status: str = "queued"  # queued / running / done / failed / cancelled
    fraction: float = 0.0
    message: str = "waiting for the device"
    started: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    report: RunReport | None = None
    result: Any = None  # what a task (``submit_task``) returned, e.g. a predictions file


@dataclass
class _Job:
    state: JobState
    dataset: Dataset
    strategy: Strategy
    config: Any
    device: str | None


@dataclass
class _Task:
    """Work that is not a run but shares the device, e.g. predicting with a stored run."""

    state: JobState
    work: Any  # work(progress, should_stop) -> result


class JobQueue:
    """A FIFO of runs served by one worker thread (one run at a time on the device)."""

    def __init__(
        self, store: Any, *, artifact_root: Path | None = None, ray_address: str | None = None
    ) -> None:
        from tladvisor.ray_runs import configured_address

        self.store = store
        self.artifact_root = artifact_root
        # With a Ray cluster every job goes out at once and the cluster schedules them.
        self.ray_address = configured_address(ray_address)
        self._queue: queue.Queue[_Job | _Task | None] = queue.Queue()
        self._states: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._serve, name="tladvisor-runs", daemon=True)
        self._worker.start()

    def submit(
        self,
        dataset: Dataset,
        strategy: Strategy | str,
        overrides: dict[str, Any] | None = None,
        *,
        user: str,
        device: str | None = None,
    ) -> str:
        """Validate the settings, record a queued run and return its id (raises ValueError on bad
        settings before anything is written)."""
        strategy = Strategy.parse(strategy)
        run_id, config = record_queued_run(self.store, dataset, strategy, overrides, user=user)
        state = JobState(run_id=run_id, user=user, strategy=strategy.value)
        with self._lock:
            self._states[run_id] = state
        self._queue.put(_Job(state, dataset, strategy, config, device))
        return run_id

    def submit_task(self, name: str, work: Any, *, user: str) -> str:
        """Queue ``work(progress, should_stop)`` behind the runs; returns the task's id. Its
        result lands in ``state(id).result``; an exception fails it with its message."""
        task_id = f"task-{uuid.uuid4().hex}"
        state = JobState(run_id=task_id, user=user, strategy=name)
        with self._lock:
            self._states[task_id] = state
        self._queue.put(_Task(state, work))
        return task_id

    def state(self, run_id: str) -> JobState | None:
        with self._lock:
            return self._states.get(run_id)

    def active(self) -> list[JobState]:
        """Queued and running jobs, oldest first."""
        with self._lock:
            return [s for s in self._states.values() if s.status in ("queued", "running")]

    def cancel(self, run_id: str) -> bool:
        """Ask a queued or running job to stop; it is marked cancelled within a training step."""
        state = self.state(run_id)
        if state is None or state.status not in ("queued", "running"):
            return False
        state.cancel.set()
        return True

    def wait(self, run_id: str, timeout: float = 600.0) -> JobState:
        """Block until the job ends (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state is not None and state.status not in ("queued", "running"):
                return state
            time.sleep(0.1)
        raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f} s")

    def shutdown(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if isinstance(job, _Task):
                self._run_task(job)
            elif self.ray_address:
                name = f"tladvisor-ray-{job.state.run_id[:8]}"
                threading.Thread(target=self._run, args=(job,), name=name, daemon=True).start()
            else:
                self._run(job)

    def _run(self, job: _Job) -> None:
        """Execute one job on this machine or on the Ray cluster, updating its state."""
        state = job.state
        if state.cancel.is_set():
            state.status = "cancelled"
            self.store.fail_run(state.run_id, "cancelled before it started", status="cancelled")
            return
        state.status, state.started, state.message = "running", time.time(), "starting"

        def progress(fraction: float, message: str) -> None:
            state.fraction, state.message = max(0.0, min(1.0, fraction)), message

        run = execute
        if self.ray_address:
            from tladvisor import ray_runs

            run = functools.partial(ray_runs.execute, address=self.ray_address)
        try:
            report = run(
                self.store,
                job.dataset,
                job.strategy,
                job.config,
                user=state.user,
                device=job.device,
                run_id=state.run_id,
                progress=progress,
                should_stop=state.cancel.is_set,
                artifact_root=self.artifact_root,
            )
        except Exception as exc:  # execute records failures itself; this is a last guard
            report = RunReport(state.run_id, "failed", state.strategy, error=str(exc))
            self.store.fail_run(state.run_id, str(exc), status="failed")
        state.report = report
        state.status = report.status
        state.message = report.error or "done"
        state.fraction = 1.0

    def _run_task(self, task: _Task) -> None:
        state = task.state
        state.status, state.started, state.message = "running", time.time(), "starting"

        def progress(fraction: float, message: str) -> None:
            state.fraction, state.message = max(0.0, min(1.0, fraction)), message

        try:
            state.result = task.work(progress, state.cancel.is_set)
        except Exception as exc:  # the task's own errors are worded for the user
            state.status, state.message = "failed", str(exc)
        else:
            state.status, state.message = "done", "done"
        state.fraction = 1.0
