"""The CUDA path: mixed precision, device placement and CUDA peak memory (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from tladvisor import data
from tladvisor.runner import execute
from tladvisor.store import Store

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def reviews() -> data.Dataset:
    full = data.load_sample("rotten_tomatoes")
    return data.Dataset(
        "rt",
        "text",
        full.items[:400],
        full.labels[:400],
        data.fingerprint_of("text", full.items[:400], full.labels[:400]),
    )


@pytest.mark.parametrize("strategy", ["feature_extraction", "lora", "full_finetune"])
def test_runs_on_cuda_with_mixed_precision(tmp_path, reviews, strategy):
    store = Store(tmp_path / "gpu.duckdb")
    report = execute(store, reviews, strategy, {"epochs": 1}, user="gpu", device="cuda")
    assert report.status == "done", report.error
    assert report.device == "cuda" and report.precision in {"bf16", "fp16"}
    assert report.metrics["accuracy"] > 0.55
    assert report.cost["peak_mem_mb"] > 0  # torch.cuda.max_memory_allocated
