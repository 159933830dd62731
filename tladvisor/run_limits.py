"""Caps on one run's wall time and memory (``TLADVISOR_MAX_RUN_SECONDS``, ``TLADVISOR_MAX_RUN_MEMORY_MB``).

The memory cap is enforced twice, because a run can blow past it inside one C call (a 5 GB matrix
product, say), where no check in Python runs until it returns:

- A hard ceiling. While a run executes on the CPU, the soft ``RLIMIT_DATA`` of the process is
  lowered so the run can add at most (cap - RSS at its start) MB of data (heap and private
  writable mappings, Linux >= 4.7). An allocation past that is refused at once (numpy raises
  ``MemoryError``, torch a ``RuntimeError``: "can't allocate memory"), so the kernel's OOM killer
  never has to step in and the run is stored as failed with a message naming the cap. The
  previous limit is restored when the run ends. It is not set for CUDA runs, whose driver maps
  large host regions of its own.
- Resident memory (RSS, which also counts mapped model files), sampled every 50 ms by a thread and
  compared with the cap by ``RunGuard.check()`` at every training step and between a run's phases;
  the time cap is checked there too.

Both count the whole process, as RSS always did: in the dashboard, the server and the models it
holds are part of what the cap bounds, and for the run's duration the ceiling applies to every
thread of the process.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from types import TracebackType

try:
    import resource
except ImportError:  # Windows: only the RSS check applies there
    resource = None  # type: ignore[assignment]

SECONDS_VAR = "TLADVISOR_MAX_RUN_SECONDS"
MEMORY_VAR = "TLADVISOR_MAX_RUN_MEMORY_MB"
# Often enough to catch a fast-growing loop within a few hundred MB; cheap (one /proc read).
SAMPLE_SECONDS = 0.05
# A run that fails with its data this close to the ceiling failed for want of memory, whatever the
# error says: the small allocations of Python objects and imports are refused first.
NEAR_CEILING_MB = 64


class RunLimitExceeded(RuntimeError):
    """A run went past the configured time or memory cap."""


@dataclass(frozen=True)
class Limits:
    """Per-run caps: seconds and memory in MB (None = no cap)."""

    seconds: float | None = None
    memory_mb: float | None = None

    @classmethod
    def from_env(cls) -> Limits:
        return cls(_read(SECONDS_VAR), _read(MEMORY_VAR))


def _read(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}; unset it for no cap") from None
    if not number > 0:
        raise ValueError(f"{name} must be positive, got {value!r}; unset it for no cap")
    return number


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def data_mb() -> float:
    """What ``RLIMIT_DATA`` counts for this process (VmData) in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def memory_message(cap_mb: float) -> str:
    return (
        f"the run used more than its memory limit of {cap_mb:.0f} MB ({MEMORY_VAR}); lower "
        "--max-train or the batch size, use a smaller model, or raise the cap"
    )


def time_message(cap_seconds: float) -> str:
    return (
        f"the run passed its time limit of {cap_seconds:.0f} s ({SECONDS_VAR}); "
        "lower --max-train or --epochs, or raise the cap"
    )


# How a refused host allocation reads when it is not a MemoryError: torch's CPU allocator, the C
# library (ENOMEM), DuckDB. A CUDA out-of-memory error is not one: the cap bounds host memory.
_ALLOCATION_FAILURES = ("can't allocate memory", "cannot allocate memory", "out of memory error")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a refused host allocation (MemoryError, or one of its library forms)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "cuda" not in text and any(words in text for words in _ALLOCATION_FAILURES)


class RunGuard:
    """Enforces ``limits`` on the code run inside ``with RunGuard(...)``.

    ``peak`` is the largest RSS seen (MB), sampled every ``SAMPLE_SECONDS``. ``check()`` raises
    ``RunLimitExceeded`` once a cap has been passed (the strategies call it at every step). On
    leaving the block, a failed allocation under the memory cap is re-raised as
    ``RunLimitExceeded`` with a message naming the cap.
    """

    def __init__(self, limits: Limits, *, hard_memory: bool = True) -> None:
        self.limits = limits
        self.hard_memory = hard_memory and limits.memory_mb is not None and resource is not None
        self.peak = rss_mb()
        self.breach: str | None = None
        self.ceiling_mb: float | None = None  # the data ceiling in force, if any
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tladvisor-run-guard", daemon=True)
        self._previous: tuple[int, int] | None = None

    def __enter__(self) -> RunGuard:
        cap = self.limits.memory_mb
        if cap is not None and self.peak > cap:
            raise RunLimitExceeded(
                f"the process already uses {self.peak:.0f} MB before the run starts, over the "
                f"memory limit of {cap:.0f} MB ({MEMORY_VAR}); raise the cap above what the "
                "idle process uses, or restart it to free the models it holds"
            )
        self._started = time.perf_counter()
        if self.hard_memory:
            self._lower_ceiling(cap)
        self._thread.start()
        return self

    def _lower_ceiling(self, cap: float) -> None:
        """Let the run add at most (cap - RSS now) MB of data. Counting from the data already
        mapped, not from zero, leaves out address space reserved but never touched (pyarrow's
        allocator reserves 1 GB at its first array), which RLIMIT_DATA counts and RSS does not."""
        previous = resource.getrlimit(resource.RLIMIT_DATA)
        soft, hard = previous
        ceiling = int((data_mb() + cap - self.peak) * 2**20)
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        if soft == resource.RLIM_INFINITY or ceiling < soft:  # only ever lower it
            resource.setrlimit(resource.RLIMIT_DATA, (ceiling, hard))
            self._previous = previous
            self.ceiling_mb = ceiling / 2**20

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Measured before anything is freed: the failing run's memory is still held by ``tb``.
        at_ceiling = self.ceiling_mb is not None and data_mb() > self.ceiling_mb - NEAR_CEILING_MB
        if self._previous is not None:  # first: nothing below may run under the lowered ceiling
            resource.setrlimit(resource.RLIMIT_DATA, self._previous)
            self._previous = None
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
        ours = isinstance(exc, RunLimitExceeded)
        if self.ceiling_mb is None or not isinstance(exc, Exception) or ours:  # or Ctrl-C
            return
        # A refused allocation reads as MemoryError, or as whatever the library that asked makes
        # of it (an import fails with SystemError, say): near the ceiling, it is the ceiling.
        if is_out_of_memory(exc) or at_ceiling:
            self.breach = memory_message(self.limits.memory_mb)
            raise RunLimitExceeded(self.breach) from exc

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def check(self) -> None:
        """Raise ``RunLimitExceeded`` if a cap has been passed (cheap: called at every step)."""
        seconds, cap = self.limits.seconds, self.limits.memory_mb
        if self.breach is None and seconds is not None and self.elapsed() > seconds:
            self.breach = time_message(seconds)
        if self.breach is None and cap is not None and self.peak > cap:
            self.breach = memory_message(cap)
        if self.breach is not None:
            raise RunLimitExceeded(self.breach)

    def _watch(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, rss_mb())
