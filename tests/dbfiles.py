"""Real database files for the tests of a damaged or unusable store: a filled one, a truncated
copy, and one this process cannot write. Shared by test_store, test_cli and test_db_check."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from tladvisor.store import Store


def filled(path: Path) -> dict[str, str]:
    """Write a store with two people's finished runs on one data set; returns their run ids."""
    with Store(path) as store:
        store.upsert_dataset("fp-rt", "reviews.csv", "text", 8, {"neg": 4, "pos": 4}, user="ana")
        runs = {}
        for user in ("ana", "bo"):
            run_id = store.create_run(
                user=user, dataset_fingerprint="fp-rt", strategy="lora", model="minilm",
                config={"r": 8}, seed=0,
            )  # fmt: skip
            store.start_run(run_id, device="cpu", precision="fp32")
            store.log_curves(run_id, [(step, "loss", 1.0 / (step + 1)) for step in range(50)])
            store.finish_run(run_id, metrics=[("accuracy", 0.8, "test")], backend="t", details={})
            runs[user] = run_id
    return runs


def digest(path: Path) -> str:
    """The file's SHA-256, to show that a failure wrote nothing to it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def truncated_copy(source: Path, target: Path, fraction: float = 0.5) -> Path:
    """``source`` cut to ``fraction`` of its bytes, as an interrupted copy leaves it. Asserts
    that DuckDB itself can no longer read all of it (else the test would prove nothing)."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    con = None
    try:
        con = duckdb.connect(str(target), read_only=True)
        for table in ("runs", "curves", "run_events", "schema_migrations"):
            con.execute(f"SELECT max(hash(t)) FROM {table} AS t").fetchone()
    except duckdb.Error:
        return target
    finally:
        if con is not None:
            con.close()
    raise AssertionError(f"{target} cut to {fraction:.0%} still reads back whole; cut it shorter")


@contextmanager
def unwritable(path: Path) -> Iterator[Path]:
    """``path`` (a file or a folder) made unwritable to this process for the block.

    As a normal user ``chmod a-w`` does it. Root ignores permission bits, so as root the file is
    made immutable (``chattr +i``), which stops root too; where chattr is missing or not allowed
    (a container without CAP_LINUX_IMMUTABLE) the test is skipped: nothing else stops root.
    """
    mode = path.stat().st_mode
    if os.geteuid() != 0:
        path.chmod(mode & ~0o222)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root, where chmod does not stop writes, and chattr is missing")
    made = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(
            f"running as root, where chmod does not stop writes; chattr +i failed: {made.stderr}"
        )
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def hostile(db: Path, pixel: str, tag: str, statuses: tuple[str, ...], **done: object) -> dict:
    """Write a store whose data set, user, model, class names, notes and errors are markup (as an
    older version, an import or the CLI could have left them): one run per status, in order, the
    finished one with ``done`` added to its details. Returns status -> run id."""
    runs = {}
    with Store(db) as store:
        store.upsert_dataset("fp-hostile", pixel, "text", 4, {pixel: 2, tag: 2}, "test")
        for status in statuses:
            run_id = store.create_run(
                user=pixel, dataset_fingerprint="fp-hostile", strategy="feature_extraction",
                model=f"hf:{pixel}", config={}, seed=0,
            )  # fmt: skip
            store.start_run(run_id, device="cpu", precision="fp32")
            if status == "done":
                store.finish_run(
                    run_id,
                    metrics=[("accuracy", 0.75, "test"), ("macro_f1", 0.7, "test"),
                             ("seconds", 3.0, ""), ("peak_mem_mb", 100.0, "")],
                    backend="test",
                    details={"classes": [pixel, tag], "confusion": [[1, 1], [0, 2]],
                             "per_class": [{"class": pixel, "f1": 0.5}], **done},
                )  # fmt: skip
            else:
                store.fail_run(run_id, f"could not load {pixel} {tag}", status=status)
            runs[status] = run_id
    return runs
