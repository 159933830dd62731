"""Runs as Ray tasks, when ``TLADVISOR_RAY_ADDRESS`` (or ``--ray ADDRESS``) names a cluster.

The submitting process stays the only writer of its DuckDB file: it records the queued run, ships
the data set through Ray's object store (no shared filesystem assumed), and a task on some node
trains and scores it with the same runner code (``runner.measure``) and the same model catalogue.
The task is a streaming generator: it yields the node it started on, progress and curve points as
they happen, then the result (or the failure, in plain words), and the submitter records each.
Cancelling maps to ``ray.cancel``; a worker that dies mid-run gives a failed run naming why, and
its metrics are never written (they are only stored, all at once, from a finished result).

Resources follow the strategy: a GPU for fine-tuning, LoRA and prompting when the cluster has
GPUs, one CPU otherwise, and the memory the cost model expects (``tladvisor.estimate``), capped at
the largest node's so a run is never unschedulable for an estimate's sake.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tladvisor.data import Dataset
from tladvisor.runner import (
    RunReport,
    build_config,
    record_failure,
    record_queued_run,
    record_result,
)
from tladvisor.strategies import Strategy
from tladvisor.strategies.base import Cancelled, StrategyConfig

ADDRESS_ENV = "TLADVISOR_RAY_ADDRESS"
GPU_STRATEGIES = frozenset(
    {
        Strategy.FULL_FINETUNE,
        Strategy.PARTIAL_FINETUNE,
        Strategy.LP_FT,
        Strategy.LORA,
        Strategy.PROMPTING,
    }
)
# The worker reads models from its own installed packages and cache, never a hub.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
CONNECT_TIMEOUT_S = 5.0
_lock = threading.Lock()
_connected_to: str | None = None
_dataset_refs: dict[str, Any] = {}  # fingerprint -> ObjectRef: a sweep puts each data set once


class _WorkerFailed(RuntimeError):
    """The run failed on the worker; the message is already in plain words."""


class RayUnavailable(RuntimeError):
    """The configured Ray cluster cannot be reached or used; the message says what to do."""


def configured_address(explicit: str | None = None) -> str | None:
    """``explicit`` (``--ray``), else ``$TLADVISOR_RAY_ADDRESS``; None: run on this machine."""
    address = (explicit or os.environ.get(ADDRESS_ENV, "")).strip()
    return address or None


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``host:port`` of the head, or ``ray://host:10001``) once
    per process; ``RayUnavailable`` with the fix when nothing answers there."""
    global _connected_to
    with _lock:
        if _connected_to == address:
            return
        if _connected_to is not None:
            raise RayUnavailable(
                f"this process already uses the Ray cluster at {_connected_to}; restart it to "
                f"use {address}"
            )
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise RayUnavailable(
                f"no Ray cluster answers at {address} ({exc.strerror or exc}). Start one "
                f"(`ray start --head --port={port}`, docs/deploy.md section 7), fix {ADDRESS_ENV} "
                "or --ray, or unset it to run on this machine."
            ) from exc
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # not its network notes on stderr
        import ray

        options: dict[str, Any] = {
            "address": address,
            "logging_level": "ERROR",
            "log_to_driver": False,
            "runtime_env": {"env_vars": WORKER_ENV},
        }
        if host in ("127.0.0.1", "localhost") and not address.startswith("ray://"):
            options["_node_ip_address"] = "127.0.0.1"  # a loopback head: keep the driver there
        try:
            ray.init(**options)
        except Exception as exc:  # ray raises ConnectionError, RuntimeError or its own kinds
            raise RayUnavailable(
                f"could not join the Ray cluster at {address}: {exc}. Check that the head runs "
                f"the same Ray version ({ray.__version__}) and Python as this machine."
            ) from exc
        _connected_to = address


def _host_port(address: str) -> tuple[str, int]:
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RayUnavailable(
            f"{ADDRESS_ENV} / --ray must be HOST:PORT of a Ray head (e.g. 127.0.0.1:6379) or "
            f"ray://HOST:10001, got {address!r}"
        )
    return host, int(port)


def resources_for(
    dataset: Dataset, strategy: Strategy, config: StrategyConfig, device: str | None
) -> dict[str, Any]:
    """The task's resource request on the connected cluster (see ``request_for``)."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    largest = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n["Alive"]), default=0)
    on_gpu = wants_gpu(strategy, gpus, device)
    memory = _expected_memory_bytes(dataset, strategy, config, "cuda" if on_gpu else "cpu")
    return request_for(strategy, gpus, device, memory, largest)


def wants_gpu(strategy: Strategy, cluster_gpus: float, device: str | None) -> bool:
    return strategy in GPU_STRATEGIES and cluster_gpus >= 1 and device != "cpu"


def request_for(
    strategy: Strategy,
    cluster_gpus: float,
    device: str | None,
    memory_bytes: int | None,
    largest_node_memory: float,
) -> dict[str, Any]:
    """One GPU for the strategies that train or generate with a network when the cluster has a
    GPU (and ``--device cpu`` was not asked), else one CPU; the expected memory, capped at the
    largest node's so the task can always be placed."""
    on_gpu = wants_gpu(strategy, cluster_gpus, device)
    request: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1 if on_gpu else 0}
    if memory_bytes and largest_node_memory:
        request["memory"] = int(min(memory_bytes, largest_node_memory))
    return request


def _expected_memory_bytes(
    dataset: Dataset, strategy: Strategy, config: StrategyConfig, device: str
) -> int | None:
    from tladvisor import catalog, estimate

    try:
        est = estimate.estimate_for_dataset(
            dataset, strategy.value, config.to_dict(), device=device
        )
    except (OSError, ValueError, catalog.ModelUnavailable):
        return None  # no estimate: Ray schedules on CPUs alone
    return int(est.peak_memory_mb * 2**20)


def _dataset_ref(dataset: Dataset) -> Any:
    import ray

    with _lock:
        ref = _dataset_refs.get(dataset.fingerprint)
        if ref is None:
            ref = _dataset_refs[dataset.fingerprint] = ray.put(dataset)
        return ref


def execute(
    store: Any,
    dataset: Dataset,
    strategy: Strategy | str,
    config: StrategyConfig | dict[str, Any] | None = None,
    *,
    address: str,
    user: str = "anonymous",
    device: str | None = None,
    run_id: str | None = None,
    progress: Any = None,
    should_stop: Any = None,
    artifact_root: Path | None = None,
    with_transferability: bool = True,
) -> RunReport:
    """``runner.execute`` on the Ray cluster at ``address``: the same arguments and report, the
    run recorded here. Raises ``RayUnavailable`` before recording anything when the cluster
    cannot be reached; any later failure is stored and reported, never raised."""
    strategy = Strategy.parse(strategy)
    connect(address)
    if run_id is None:
        run_id, config = record_queued_run(store, dataset, strategy, config, user=user)
    elif not isinstance(config, StrategyConfig):
        config = build_config(strategy, config)
    report = RunReport(run_id=run_id, status="running", strategy=strategy.value)
    progress = progress or (lambda fraction, message: None)
    try:
        _drive(store, dataset, strategy, config, report, address, device, progress, should_stop,
               artifact_root, with_transferability)  # fmt: skip
    except Exception as exc:  # the cluster failed: recorded with why, nothing half-written
        record_failure(store, report, exc, _cluster_error(exc))
    return report


def _drive(
    store: Any,
    dataset: Dataset,
    strategy: Strategy,
    config: StrategyConfig,
    report: RunReport,
    address: str,
    device: str | None,
    progress: Any,
    should_stop: Any,
    artifact_root: Path | None,
    with_transferability: bool,
) -> None:
    import ray

    options = {**resources_for(dataset, strategy, config, device), "max_retries": 0}
    task = _remote().options(**options)
    stream = task.remote(
        _dataset_ref(dataset), strategy.value, config.to_dict(), device, with_transferability
    )
    while True:
        if should_stop and should_stop():
            ray.cancel(stream, force=True)  # kills the worker: nothing of the run survives it
            raise Cancelled("cancelled by the user")
        ready, _ = ray.wait([stream], timeout=0.5)
        if not ready:
            continue
        try:
            kind, payload = ray.get(next(stream))
        except StopIteration:
            raise RuntimeError("the Ray task ended without a result") from None
        if kind == "started":
            report.device, report.precision = payload["device"], payload["precision"]
            report.executor = {"kind": "ray", "address": address, **payload["where"]}
            store.start_run(
                report.run_id,
                device=report.device,
                precision=report.precision,
                executor=report.executor,
            )
        elif kind == "progress":
            progress(*payload)
        elif kind == "curve":
            store.log_curve(report.run_id, *payload)
        elif kind == "failed":
            status, error = payload
            if status == "cancelled":
                raise Cancelled(error)
            raise _WorkerFailed(error)
        elif kind == "result":
            worker_report, measured, files = payload
            _keep_artifacts(measured, files, artifact_root, report.run_id)
            for name in ("model", "backend", "metrics", "cost", "transferability", "forgetting"):
                setattr(report, name, getattr(worker_report, name))
            report.notes = worker_report.notes
            record_result(store, report, measured, progress)
            return


def _keep_artifacts(measured: Any, files: dict[str, bytes], root: Path | None, run_id: str) -> None:
    """Write the head/adapter files the worker sent back under this machine's artefact folder."""
    saved = measured.details.get("artifact_path")
    if not files or root is None or not saved:
        measured.details["artifact_path"] = None
        return
    folder = root / run_id
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    measured.details["artifact_path"] = str(folder / saved)


def _cluster_error(exc: Exception) -> str:
    from ray import exceptions as rex

    if isinstance(exc, _WorkerFailed):
        return str(exc)
    if isinstance(exc, rex.WorkerCrashedError | rex.NodeDiedError | rex.OwnerDiedError):
        return (
            "the Ray worker running it died before it finished (killed, out of memory, or its "
            f"node left the cluster), so nothing of it was stored: {type(exc).__name__}. "
            "Start the run again."
        )
    if isinstance(exc, rex.TaskCancelledError):
        return "the Ray task was cancelled"
    if isinstance(exc, rex.RayError):
        return f"the Ray cluster failed the run: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return f"{type(exc).__name__}: {exc}"


_REMOTE: Any = None


def _remote() -> Any:
    """The task, made remote once (importing ray only when a cluster is configured)."""
    global _REMOTE
    if _REMOTE is None:
        import ray

        _REMOTE = ray.remote(_run_task)
    return _REMOTE


def _run_task(
    dataset: Dataset,
    strategy_value: str,
    config_dict: dict[str, Any],
    device: str | None,
    with_transferability: bool,
) -> Any:
    """On a worker: run in a thread, yield its events as they come (a generator task streams)."""
    import queue

    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    worker = threading.Thread(
        target=_work,
        args=(dataset, strategy_value, config_dict, device, with_transferability, events, stop),
        daemon=True,
    )
    worker.start()
    try:
        while True:
            kind, payload = events.get()
            yield kind, payload
            if kind in ("result", "failed"):
                return
    finally:
        stop.set()  # the generator was cancelled or dropped: the run stops at its next step


def _work(
    dataset: Dataset,
    strategy_value: str,
    config_dict: dict[str, Any],
    device: str | None,
    with_transferability: bool,
    events: Any,
    stop: threading.Event,
) -> None:
    import ray

    from tladvisor import catalog
    from tladvisor.runner import _plain_error, measure

    strategy = Strategy.parse(strategy_value)
    try:
        config = build_config(strategy, config_dict)
        device = catalog.select_device(device)
        precision = catalog.precision_for(device)
        context = ray.get_runtime_context()
        where = {
            "node": ray.util.get_node_ip_address(),
            "node_id": context.get_node_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        }
        events.put(("started", {"device": device, "precision": precision, "where": where}))
        report = RunReport("remote", "running", strategy.value, device=device, precision=precision)
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.5 or fraction >= 1.0:  # at most two a second over the network
                last[0] = now
                events.put(("progress", (float(fraction), str(message))))

        with tempfile.TemporaryDirectory(prefix="tladvisor-run-") as tmp:
            root = Path(tmp)
            measured = measure(
                dataset,
                strategy,
                config,
                report,
                progress,
                stop.is_set,
                root,
                with_transferability,
                lambda step, name, value: events.put(("curve", (step, name, value))),
            )
            files = {}
            saved = measured.details.get("artifact_path")
            if saved:
                run_dir = root / report.run_id
                files = {
                    str(p.relative_to(run_dir)): p.read_bytes()
                    for p in run_dir.rglob("*")
                    if p.is_file()
                }
                measured.details["artifact_path"] = str(Path(saved).relative_to(run_dir))
        events.put(("result", (report, measured, files)))
    except Cancelled as exc:
        events.put(("failed", ("cancelled", str(exc))))
    except Exception as exc:
        events.put(("failed", ("failed", _plain_error(exc))))
