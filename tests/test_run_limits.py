"""The per-run caps: a real allocation past the memory cap is refused, and the error names the cap."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest

from tladvisor.run_limits import (
    Limits,
    RunGuard,
    RunLimitExceeded,
    data_mb,
    is_out_of_memory,
    rss_mb,
)


def _cap_above_now(headroom_mb: float) -> float:
    """A cap ``headroom_mb`` above this process's resident memory now."""
    return rss_mb() + headroom_mb


def test_an_allocation_past_the_cap_is_refused_before_it_happens():
    before = resource.getrlimit(resource.RLIMIT_DATA)
    cap = _cap_above_now(200)
    data_at_start = data_mb()
    with pytest.raises(RunLimitExceeded) as caught, RunGuard(Limits(memory_mb=cap)) as guard:
        np.ones(600 * 2**20 // 8)  # 600 MB in one call: no Python check could run in between
    message = str(caught.value)
    assert f"memory limit of {cap:.0f} MB (TLADVISOR_MAX_RUN_MEMORY_MB)" in message
    assert "raise the cap" in message and "--max-train" in message
    assert guard.peak < cap  # refused, not allocated then noticed
    assert guard.ceiling_mb == pytest.approx(data_at_start + 200, abs=8)
    assert resource.getrlimit(resource.RLIMIT_DATA) == before  # restored for what follows
    assert np.ones(600 * 2**20 // 8).sum() > 0  # the same allocation succeeds after the run


def test_torch_allocations_are_refused_too():
    torch = pytest.importorskip("torch")
    cap = _cap_above_now(200)
    with (
        pytest.raises(RunLimitExceeded, match="TLADVISOR_MAX_RUN_MEMORY_MB"),
        RunGuard(Limits(memory_mb=cap)),
    ):
        torch.empty(600 * 2**20 // 4, dtype=torch.float32).fill_(1.0)


def test_a_run_within_the_cap_is_left_alone():
    cap = _cap_above_now(400)
    with RunGuard(Limits(memory_mb=cap)) as guard:
        block = np.ones(100 * 2**20 // 8)  # 100 MB, well within
        guard.check()
    assert block.sum() == block.size
    assert guard.peak >= rss_mb() - 1 and guard.breach is None


def test_a_process_already_over_the_cap_is_refused_at_the_start():
    guard = RunGuard(Limits(memory_mb=1))
    with pytest.raises(RunLimitExceeded, match=r"already uses \d+ MB .* memory limit of 1 MB"):
        guard.__enter__()
    assert guard.ceiling_mb is None  # nothing was lowered


def test_time_cap_is_reported_by_check():
    with RunGuard(Limits(seconds=0.05)) as guard:
        guard.check()
        time.sleep(0.1)
        with pytest.raises(
            RunLimitExceeded, match=r"time limit of 0 s \(TLADVISOR_MAX_RUN_SECONDS\)"
        ):
            guard.check()


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_malformed_cap_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("TLADVISOR_MAX_RUN_MEMORY_MB", value)
    with pytest.raises(ValueError, match="TLADVISOR_MAX_RUN_MEMORY_MB"):
        Limits.from_env()


def test_out_of_memory_forms():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: 3 GB"))
    assert not is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(ValueError("bad label"))
