"""Tests for tladvisor.store on real DuckDB files: migrations, a run's life, filters, concurrency,
failures, ownership, the lock held by a second process, damaged or unwritable files, and the name
each person gives a data set."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from dbfiles import digest, filled, truncated_copy, unwritable

from tladvisor import data
from tladvisor import store as store_module
from tladvisor.runner import record_queued_run
from tladvisor.store import (
    LATEST_VERSION,
    MIGRATIONS,
    DatabaseUnavailable,
    RunStateError,
    Store,
    StoreLockedError,
    StoreSchemaError,
    UnknownRunError,
    default_db_path,
    migrate,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.duckdb"


@pytest.fixture
def store(db_path: Path):
    with Store(db_path) as s:
        s.upsert_dataset("fp-sst", "sst2-mini", "text", 30, {"neg": 14, "pos": 16}, source="x.csv")
        s.upsert_dataset("fp-img", "shapes", "image", 12, {"circle": 6, "square": 6})
        yield s


def _finished_run(
    s: Store,
    *,
    user: str = "ana",
    dataset: str = "fp-sst",
    strategy: str = "feature_extraction",
    model: str = "minilm",
    accuracy: float = 0.8,
) -> str:
    run_id = s.create_run(
        user=user, dataset_fingerprint=dataset, strategy=strategy, model=model, config={}, seed=0
    )
    s.start_run(run_id, device="cpu", precision="fp32")
    s.finish_run(run_id, metrics=[("accuracy", accuracy, "test")], backend="torch", details={})
    return run_id


def _count(path: Path, table: str) -> int:
    # Reads back with a raw connection once the store is closed, to see what is really on disk.
    con = duckdb.connect(str(path))
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


# -- paths and migrations --------------------------------------------------------------------------


def test_default_db_path_follows_env_and_creates_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("TLADVISOR_DB", str(tmp_path / "nested" / "mine.duckdb"))
    assert default_db_path() == tmp_path / "nested" / "mine.duckdb"
    assert (tmp_path / "nested").is_dir()

    monkeypatch.delenv("TLADVISOR_DB")
    assert default_db_path() == REPO / "data" / "tladvisor.duckdb"


def test_migrations_from_blank_file(db_path):
    with Store(db_path) as s:
        assert s.schema_version == LATEST_VERSION
    con = duckdb.connect(str(db_path))
    rows = con.execute(
        "SELECT version, description FROM schema_migrations ORDER BY version"
    ).fetchall()
    tables = {
        t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    con.close()
    assert rows == [(m.version, m.description) for m in MIGRATIONS]
    assert len(MIGRATIONS) >= 2
    assert {
        "datasets", "runs", "metrics", "curves", "run_events", "schema_migrations",
        "dataset_aliases",
    } <= tables  # fmt: skip


def test_migrations_from_previous_schema_keep_data(db_path):
    con = duckdb.connect(str(db_path))
    assert migrate(con, target=1) == [1]
    # What a version-1 tladvisor would have written.
    con.execute(
        "INSERT INTO datasets VALUES ('fp-old', 'old', 'text', 4, 2, '{\"a\": 2, \"b\": 2}', '',"
        " TIMESTAMP '2024-01-01 00:00:00')"
    )
    con.execute(
        "INSERT INTO runs (id, user_name, dataset_fingerprint, created_at, status, strategy, model,"
        " config, seed) VALUES ('r1', 'ana', 'fp-old', TIMESTAMP '2024-01-01 00:00:01', 'done',"
        " 'lora', 'minilm', '{\"rank\": 8}', 3)"
    )
    con.execute("INSERT INTO metrics VALUES ('r1', 'accuracy', 0.75, 'test')")
    tables = {
        t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    con.close()
    assert "run_events" not in tables

    with Store(db_path) as s:
        assert s.schema_version == LATEST_VERSION
        run = s.get_run("r1")
        assert run["config"] == {"rank": 8}
        assert run["metrics"] == {"accuracy": 0.75}
        assert run["dataset_name"] == "old"
        assert run["created_at"] == datetime(2024, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
        assert s.get_dataset("fp-old")["class_counts"] == {"a": 2, "b": 2}
        assert s.get_events("r1").empty  # the new table works for old runs
        s.log_event("r1", "seen after the upgrade")
        assert s.get_events("r1")["message"].tolist() == ["seen after the upgrade"]


def test_reopening_applies_nothing_twice(db_path):
    with Store(db_path) as s:
        s.upsert_dataset("fp-sst", "d", "text", 2, {"a": 2})
        run_id = _finished_run(s)
    for _ in range(2):
        with Store(db_path) as s:
            assert s.get_run(run_id)["status"] == "done"
    con = duckdb.connect(str(db_path))
    assert migrate(con) == []
    con.close()
    assert _count(db_path, "schema_migrations") == len(MIGRATIONS)


def test_newer_schema_is_refused_with_advice(db_path):
    Store(db_path).close()
    con = duckdb.connect(str(db_path))
    con.execute(
        "INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [LATEST_VERSION + 1]
    )
    con.close()
    with pytest.raises(StoreSchemaError, match="Upgrade tladvisor"):
        Store(db_path)


def test_failed_migration_rolls_back_and_names_it(db_path, monkeypatch):
    broken = store_module.Migration(
        LATEST_VERSION + 1, "broken", ("CREATE TABLE t (a INT)", "NOT SQL")
    )
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(store_module, "LATEST_VERSION", broken.version)
    with pytest.raises(StoreSchemaError, match=r"migration \d+ \(broken\) failed"):
        Store(db_path)
    con = duckdb.connect(str(db_path))
    tables = {
        t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    (version,) = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    con.close()
    assert "t" not in tables
    assert version == MIGRATIONS[-1].version


# -- a run's life ----------------------------------------------------------------------------------


def test_run_round_trip(store):
    run_id = store.create_run(
        user="ana",
        dataset_fingerprint="fp-sst",
        strategy="lora",
        model="minilm",
        config={"rank": 8, "lr": 1e-3, "when": datetime(2024, 5, 1)},
        seed=7,
    )
    queued = store.get_run(run_id)
    assert queued["status"] == "queued" and queued["started_at"] is None
    assert queued["config"] == {"rank": 8, "lr": 1e-3, "when": "2024-05-01 00:00:00"}

    store.start_run(run_id, device="cuda", precision="bf16")
    store.log_curves(run_id, [(0, "loss", 1.0), (1, "loss", 0.5)])
    store.log_curve(run_id, 1, "val_accuracy", 0.7)
    store.finish_run(
        run_id,
        metrics=[
            ("accuracy", 0.9, "test"),
            ("macro_f1", 0.85, "test"),
            ("accuracy", 0.8, "val"),
            ("seconds", 12.5, ""),
        ],
        backend="torch",
        details={"epochs": 3},
        model="minilm-l6",
    )

    run = store.get_run(run_id)
    assert run["status"] == "done"
    assert (run["device"], run["precision"], run["backend"], run["model"]) == (
        "cuda",
        "bf16",
        "torch",
        "minilm-l6",
    )
    assert run["details"] == {"epochs": 3}
    assert run["dataset_name"] == "sst2-mini"
    assert run["metrics"] == {"accuracy": 0.9, "macro_f1": 0.85, "seconds": 12.5}
    assert run["metrics_by_split"]["val"] == {"accuracy": 0.8}
    assert run["created_at"].tzinfo == timezone.utc
    assert run["created_at"] <= run["started_at"] <= run["finished_at"]
    assert store.get_events(run_id)["status"].tolist() == ["queued", "running", "done"]

    table = store.list_runs()
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["accuracy"], row["macro_f1"], row["accuracy@val"], row["seconds"]) == (
        0.9,
        0.85,
        0.8,
        12.5,
    )
    assert row["config"]["rank"] == 8
    assert str(table["created_at"].dt.tz) == "UTC"

    curves = store.get_curves([run_id])
    assert list(curves.columns) == ["run_id", "step", "name", "value"]
    assert curves[curves["name"] == "loss"]["value"].tolist() == [1.0, 0.5]
    assert store.get_curves([]).empty


def test_list_runs_filters_and_order(store):
    from tladvisor.strategies.names import Strategy

    first = _finished_run(store, user="ana", strategy="lora", accuracy=0.7)
    second = _finished_run(store, user="ben", strategy="scratch", dataset="fp-img", model="effnet")
    third = _finished_run(store, user="ana", strategy="feature_extraction")
    queued = store.create_run(
        user="ben", dataset_fingerprint="fp-sst", strategy="lora", model="minilm", config={}, seed=1
    )

    assert store.list_runs()["id"].tolist() == [queued, third, second, first]
    assert store.list_runs(user="ana")["id"].tolist() == [third, first]
    assert store.list_runs(strategy=["lora", "scratch"])["id"].tolist() == [queued, second, first]
    assert store.list_runs(strategy=Strategy.LORA)["id"].tolist() == [queued, first]
    assert store.list_runs(dataset="shapes")["id"].tolist() == [second]
    assert store.list_runs(dataset="fp-img", model="effnet")["id"].tolist() == [second]
    assert store.list_runs(status="queued", user="ben")["id"].tolist() == [queued]
    assert store.list_runs(user="nobody").empty
    # The queued run has no metrics: its cell is missing, not zero.
    table = store.list_runs(user="ben").set_index("id")
    assert table.loc[second, "accuracy"] == 0.8
    assert table["accuracy"].isna().tolist() == [True, False]
    assert store.users() == ["ana", "ben"]


def test_dataset_with_same_fingerprint_is_one_row_and_keeps_its_first_name(store):
    store.upsert_dataset(
        "fp-sst", "sst2-renamed", "text", 30, {"neg": 14, "pos": 16}, source="y.csv"
    )
    datasets = store.list_datasets()
    assert sorted(datasets["fingerprint"]) == ["fp-img", "fp-sst"]
    record = store.get_dataset("fp-sst")
    assert (record["name"], record["source"], record["n_classes"]) == ("sst2-mini", "x.csv", 2)
    assert record["class_counts"] == {"neg": 14, "pos": 16}
    assert store.get_dataset("missing") is None
    with pytest.raises(ValueError, match="n_rows"):
        store.upsert_dataset("fp-x", "x", "text", -1, {})


def test_concurrent_writers_from_eight_threads(db_path):
    threads, runs_each, metrics_each = 8, 10, 3
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    with Store(db_path) as s:
        s.upsert_dataset("fp", "d", "text", 10, {"a": 5, "b": 5})

        def writer(worker: int) -> None:
            try:
                barrier.wait()
                for i in range(runs_each):
                    run_id = s.create_run(
                        user=f"user{worker}",
                        dataset_fingerprint="fp",
                        strategy="lora",
                        model="minilm",
                        config={"i": i},
                        seed=i,
                    )
                    s.start_run(run_id, device="cpu", precision="fp32")
                    s.log_curves(run_id, [(step, "loss", 1.0 / (step + 1)) for step in range(5)])
                    metrics = [
                        (f"m{k}", float(worker * 100 + i), "test") for k in range(metrics_each)
                    ]
                    s.finish_run(run_id, metrics=metrics, backend="torch", details={"w": worker})
            except BaseException as exc:  # surfaced by the main thread below
                errors.append(exc)

        def reader() -> None:
            barrier.wait()
            for _ in range(runs_each):
                s.list_runs(status="done")

        pool = [threading.Thread(target=writer, args=(w,)) for w in range(threads)]
        pool.append(threading.Thread(target=reader))
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=60)
        assert not errors, errors
        done = s.list_runs(status="done")
        assert len(done) == threads * runs_each
        assert done[[f"m{k}" for k in range(metrics_each)]].notna().all().all()
        assert len(s.users()) == threads
    assert _count(db_path, "metrics") == threads * runs_each * metrics_each
    assert _count(db_path, "curves") == threads * runs_each * 5


def test_cancel_racing_finish_ends_each_run_once(store):
    # A user cancelling while the worker finishes: one call wins, the other gets a RunStateError,
    # never a DuckDB write conflict and never a 'cancelled' run with metrics.
    outcomes: list[str] = []

    def attempt(start: threading.Barrier, action) -> None:
        start.wait()
        try:
            action()
            outcomes.append("ok")
        except RunStateError:
            outcomes.append("refused")
        except BaseException as exc:  # reported by the assertion below
            outcomes.append(repr(exc))

    run_ids = []
    for seed in range(15):
        run_id = store.create_run(
            user="ana",
            dataset_fingerprint="fp-sst",
            strategy="lora",
            model="m",
            config={},
            seed=seed,
        )
        store.start_run(run_id, device="cpu", precision="fp32")
        run_ids.append(run_id)

        def finish(r: str = run_id) -> None:
            store.finish_run(r, metrics=[("accuracy", 0.5, "test")], backend="torch", details={})

        def cancel(r: str = run_id) -> None:
            store.fail_run(r, "cancelled by ana", status="cancelled")

        start = threading.Barrier(2)
        pair = [threading.Thread(target=attempt, args=(start, f)) for f in (finish, cancel)]
        for t in pair:
            t.start()
        for t in pair:
            t.join(timeout=30)
    assert sorted(outcomes) == ["ok"] * 15 + ["refused"] * 15, outcomes
    for run_id in run_ids:
        run = store.get_run(run_id)
        assert run["status"] in ("done", "cancelled")
        assert bool(run["metrics"]) == (run["status"] == "done")


# -- failures --------------------------------------------------------------------------------------


def test_fail_run_keeps_curves_and_drops_metrics(store):
    run_id = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=0
    )
    store.start_run(run_id, device="cpu", precision="fp32")
    store.log_curve(run_id, 0, "loss", 2.0)
    store.fail_run(run_id, "CUDA out of memory")
    run = store.get_run(run_id)
    assert (run["status"], run["error"], run["metrics"]) == ("failed", "CUDA out of memory", {})
    assert run["finished_at"] is not None
    assert len(store.get_curves([run_id])) == 1

    with pytest.raises(ValueError, match="finish_run"):
        store.fail_run(run_id, "x", status="done")
    done = _finished_run(store)
    with pytest.raises(RunStateError, match="already finished"):
        store.fail_run(done, "too late")
    assert store.get_run(done)["metrics"] == {"accuracy": 0.8}


def test_cancel_a_queued_run(store):
    run_id = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=0
    )
    store.fail_run(run_id, "cancelled by ana", status="cancelled")
    assert store.get_run(run_id)["status"] == "cancelled"
    with pytest.raises(RunStateError, match="only a run that is queued"):
        store.start_run(run_id, device="cpu", precision="fp32")


def test_finish_run_that_fails_midway_writes_nothing(store, db_path):
    run_id = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=0
    )
    store.start_run(run_id, device="cpu", precision="fp32")
    bad = [("accuracy", 0.9, "test"), ("macro_f1", 0.8, "test"), ("seconds", "not a number", "")]
    with pytest.raises(duckdb.ConversionException):
        store.finish_run(run_id, metrics=bad, backend="torch", details={})
    duplicated = [("accuracy", 0.9, "test"), ("accuracy", 0.8, "test")]
    with pytest.raises(duckdb.ConstraintException):
        store.finish_run(run_id, metrics=duplicated, backend="torch", details={})

    run = store.get_run(run_id)
    assert (run["status"], run["finished_at"], run["backend"]) == ("running", None, None)
    assert run["metrics_by_split"] == {}

    # The rolled-back rows left nothing behind that would clash with a good finish.
    store.finish_run(run_id, metrics=[("accuracy", 0.9, "test")], backend="torch", details={})
    assert store.get_run(run_id)["metrics"] == {"accuracy": 0.9}
    with pytest.raises(RunStateError, match="status is 'done'"):
        store.finish_run(run_id, metrics=[], backend="torch", details={})


def test_finish_run_rejects_metric_names_that_clash(store):
    run_id = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=0
    )
    with pytest.raises(ValueError, match="clash"):
        store.finish_run(run_id, metrics=[("status", 1.0, "test")], backend="t", details={})
    with pytest.raises(ValueError, match="clash"):
        store.finish_run(run_id, metrics=[("acc@val", 1.0, "test")], backend="t", details={})
    assert store.get_run(run_id)["status"] == "queued"


def test_unknown_run_is_named(store):
    with pytest.raises(UnknownRunError, match="no run with id 'nope'"):
        store.start_run("nope", device="cpu", precision="fp32")
    with pytest.raises(UnknownRunError):
        store.log_curve("nope", 0, "loss", 1.0)
    assert store.get_run("nope") is None


def test_mark_interrupted(store):
    queued = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=0
    )
    running = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=1
    )
    store.start_run(running, device="cpu", precision="fp32")
    done = _finished_run(store)

    assert store.mark_interrupted("server restarted") == 2
    for run_id in (queued, running):
        run = store.get_run(run_id)
        assert (run["status"], run["error"]) == ("interrupted", "server restarted")
    assert store.get_run(done)["status"] == "done"
    assert store.get_events(running)["status"].tolist()[-1] == "interrupted"
    assert store.mark_interrupted() == 0


# -- ownership and processes -----------------------------------------------------------------------


def test_only_the_owner_deletes(store):
    run_id = _finished_run(store, user="ana")
    store.log_curve(run_id, 0, "loss", 1.0)
    with pytest.raises(PermissionError, match="belongs to 'ana', not 'ben'"):
        store.delete_run(run_id, user="ben")
    assert store.get_run(run_id) is not None

    store.delete_run(run_id, user="ana")
    assert store.get_run(run_id) is None
    assert store.get_curves([run_id]).empty
    assert store.get_events(run_id).empty
    assert store.list_runs().empty
    with pytest.raises(UnknownRunError):
        store.delete_run(run_id, user="ana")

    active = store.create_run(
        user="ana", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=0
    )
    with pytest.raises(RunStateError, match="cancel it first"):
        store.delete_run(active, user="ana")


def test_closed_store_says_so(db_path):
    s = Store(db_path)
    s.close()
    s.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="is closed"):
        s.list_runs()


@contextmanager
def _held_by_another_process(path: Path) -> Iterator[None]:
    """A second Python process holding ``path`` open with plain DuckDB (as the duckdb shell or a
    notebook would) until the block ends; a tladvisor Store lets go between operations."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                import duckdb
                con = duckdb.connect({str(path)!r})
                print("ready", flush=True)
                sys.stdin.read()
                con.close()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.communicate("", timeout=30)


def test_a_file_held_past_the_lock_timeout_gets_a_clear_error(db_path, monkeypatch):
    Store(db_path).close()
    monkeypatch.setenv("TLADVISOR_DB_LOCK_TIMEOUT", "0.5")
    with _held_by_another_process(db_path):
        with pytest.raises(StoreLockedError) as caught:
            Store(db_path)
        message = str(caught.value)
        assert str(db_path) in message
        assert "another process has held it for" in message and "without letting go" in message
        assert "TLADVISOR_DB" in message and "--db" in message
    # Once the other process has stopped, the file opens again.
    with Store(db_path) as s:
        assert s.schema_version == LATEST_VERSION


# -- importing another file ------------------------------------------------------------------------


def test_import_runs_copies_finished_runs_once(store, tmp_path):
    mine = _finished_run(store, user="ana", accuracy=0.8)
    other_path = tmp_path / "teammate.duckdb"
    with Store(other_path) as other:
        other.upsert_dataset("fp-sst", "sst2-mini", "text", 30, {"neg": 14, "pos": 16})
        other.upsert_dataset("fp-new", "reviews", "text", 40, {"a": 20, "b": 20})
        theirs = _finished_run(other, user="bo", dataset="fp-new", strategy="lora", accuracy=0.7)
        other.log_curves(theirs, [(0, "loss", 1.0), (1, "loss", 0.4)])
        other.log_event(theirs, "epoch 1/1")
        failed = other.create_run(
            user="bo", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=1
        )
        other.fail_run(failed, "out of memory")
        still_running = other.create_run(
            user="bo", dataset_fingerprint="fp-sst", strategy="lora", model="m", config={}, seed=2
        )
        other.start_run(still_running, device="cpu", precision="fp32")

    summary = store.import_runs(other_path)
    assert (summary.runs_added, summary.runs_present, summary.runs_active) == (2, 0, 1)
    assert summary.datasets_added == 1  # fp-sst was here already
    imported = store.get_run(theirs)
    assert imported["user_name"] == "bo" and imported["dataset_name"] == "reviews"
    assert imported["metrics"] == {"accuracy": 0.7}
    assert store.get_curves([theirs])["value"].tolist() == [1.0, 0.4]
    assert store.get_events(theirs)["message"].tolist()[-1] == "epoch 1/1"
    assert store.get_run(failed)["error"] == "out of memory"
    assert store.get_run(still_running) is None
    assert store.get_run(mine)["metrics"] == {"accuracy": 0.8}  # ours untouched
    assert store.users() == ["ana", "bo"]

    again = store.import_runs(other_path)
    assert (again.runs_added, again.runs_present, again.datasets_added) == (0, 2, 0)
    assert len(store.list_runs()) == 3
    # The source was only read: its running run is still its own.
    with Store(other_path) as other:
        assert other.get_run(still_running)["status"] == "running"


def test_import_runs_refuses_bad_sources_and_changes_nothing(store, db_path, tmp_path):
    _finished_run(store)
    with pytest.raises(FileNotFoundError, match="no database file"):
        store.import_runs(tmp_path / "missing.duckdb")
    with pytest.raises(ValueError, match="own file"):
        store.import_runs(db_path)
    not_duckdb = tmp_path / "runs.csv"
    not_duckdb.write_text("a,b\n1,2\n")
    with pytest.raises(StoreSchemaError, match="not a DuckDB database"):
        store.import_runs(not_duckdb)
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE things (x INTEGER)")
    con.close()
    with pytest.raises(StoreSchemaError, match="no tladvisor runs"):
        store.import_runs(foreign)
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    migrate(con, target=1)
    con.close()
    with pytest.raises(StoreSchemaError, match="migrate it"):
        store.import_runs(old)
    assert len(store.list_runs()) == 1
    assert store.schema_version == LATEST_VERSION  # still usable after every refusal


def test_import_from_a_file_another_process_writes_is_refused_clearly(store, tmp_path, monkeypatch):
    busy = tmp_path / "busy.duckdb"
    Store(busy).close()
    monkeypatch.setenv("TLADVISOR_DB_LOCK_TIMEOUT", "0.5")
    with (
        _held_by_another_process(busy),
        pytest.raises(StoreLockedError, match="another process has it open"),
    ):
        store.import_runs(busy)
    assert store.import_runs(busy).runs_added == 0  # readable once it is free


# -- the name each person gives a data set ---------------------------------------------------------


def _rows(name: str) -> data.Dataset:
    items = [f"{word} film" for word in ("fine", "dull", "odd", "bold", "calm", "grim")] * 2
    labels = ["pos", "neg"] * 6
    return data.Dataset(name, "text", items, labels, data.fingerprint_of("text", items, labels))


def test_reupload_under_another_name_renames_nobody_elses_runs(db_path):
    # ana runs on ana.csv; bob uploads the same rows as bob.csv; each sees the name they gave.
    with Store(db_path) as s:
        ana_run, _ = record_queued_run(s, _rows("ana.csv"), "scratch", None, user="ana")
    with Store(db_path) as s:
        bob_run, _ = record_queued_run(s, _rows("bob.csv"), "scratch", None, user="bob")
    fingerprint = _rows("x").fingerprint
    with Store(db_path) as s:  # a fresh open of the file: what every teammate reads
        assert s.get_run(ana_run)["dataset_name"] == "ana.csv"
        assert s.get_run(bob_run)["dataset_name"] == "bob.csv"
        assert len(s.list_datasets()) == 1 and s.get_dataset(fingerprint)["name"] == "ana.csv"
        assert s.list_runs(dataset="ana.csv")["id"].tolist() == [ana_run]
        assert set(s.list_runs(dataset=fingerprint)["id"]) == {ana_run, bob_run}
        aliases = s.list_dataset_aliases()
        assert list(zip(aliases["user_name"], aliases["name"], strict=True)) == [
            ("ana", "ana.csv"),
            ("bob", "bob.csv"),
        ]
        # A person renaming their own upload renames it for them alone.
        s.upsert_dataset(fingerprint, "ana-v2.csv", "text", 12, {"pos": 6, "neg": 6}, user="ana")
        assert s.get_run(ana_run)["dataset_name"] == "ana-v2.csv"
        assert s.get_run(bob_run)["dataset_name"] == "bob.csv"
        assert s.get_dataset(fingerprint)["name"] == "ana.csv"


def test_migration_3_from_previous_schema_gives_each_person_their_name_back(db_path):
    con = duckdb.connect(str(db_path))
    assert migrate(con, target=2) == [1, 2]
    # What a version-2 tladvisor left: bob's upload renamed the data set ana had run on; the
    # finished runs recorded the name they ran under; cara's queued run recorded none.
    con.execute(
        "INSERT INTO datasets VALUES ('fp', 'bob.csv', 'text', 4, 2, '{\"a\": 2, \"b\": 2}',"
        " '', TIMESTAMP '2024-01-01 00:00:00')"
    )
    for run_id, user, details in (
        ("r-ana", "ana", '{"dataset_name": "ana.csv"}'),
        ("r-bob", "bob", '{"dataset_name": "bob.csv"}'),
        ("r-cara", "cara", None),
    ):
        con.execute(
            "INSERT INTO runs (id, user_name, dataset_fingerprint, created_at, status, strategy,"
            " model, config, seed, details) VALUES (?, ?, 'fp', TIMESTAMP '2024-01-02 00:00:00',"
            " 'done', 'lora', 'minilm', '{}', 0, ?)",
            [run_id, user, details],
        )
    con.close()

    with Store(db_path) as s:
        assert s.schema_version == LATEST_VERSION >= 3
        names = {r: s.get_run(r)["dataset_name"] for r in ("r-ana", "r-bob", "r-cara")}
        assert names == {"r-ana": "ana.csv", "r-bob": "bob.csv", "r-cara": "bob.csv"}
        s.upsert_dataset("fp", "cara.csv", "text", 4, {"a": 2, "b": 2}, user="cara")
        assert s.get_run("r-cara")["dataset_name"] == "cara.csv"
        assert s.get_run("r-ana")["dataset_name"] == "ana.csv"


def test_import_brings_each_persons_names_and_keeps_ours(store, tmp_path):
    store.upsert_dataset("fp-sst", "ana-sst.csv", "text", 30, {"neg": 14, "pos": 16}, user="ana")
    mine = _finished_run(store, user="ana")
    other_path = tmp_path / "teammate.duckdb"
    with Store(other_path) as other:
        other.upsert_dataset("fp-sst", "bo-sst.csv", "text", 30, {"neg": 14, "pos": 16}, user="bo")
        other.upsert_dataset("fp-sst", "theirs.csv", "text", 30, {"neg": 14, "pos": 16}, user="ana")
        theirs = _finished_run(other, user="bo")
    store.import_runs(other_path)
    assert store.get_run(theirs)["dataset_name"] == "bo-sst.csv"
    assert store.get_run(mine)["dataset_name"] == "ana-sst.csv"


# -- damaged and unusable files --------------------------------------------------------------------


def _refused(path: Path, *words: str, read_only: bool = False) -> DatabaseUnavailable:
    """Opening ``path`` raises DatabaseUnavailable naming the file, the ``words`` and a fix; the
    file is left byte for byte as it was, and no journal is written beside it."""
    before = digest(path) if path.is_file() else None
    with pytest.raises(DatabaseUnavailable) as caught:
        Store(path, read_only=read_only)
    message = str(caught.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    assert "--db" in message or "chmod" in message, message
    if before is not None:
        assert digest(path) == before
    assert not Path(f"{path}.wal").exists()
    return caught.value


def test_truncated_copy_is_refused_with_the_backup_fix_and_left_unchanged(tmp_path):
    good = tmp_path / "good.duckdb"
    runs = filled(good)
    # Half the bytes: DuckDB still opens it, but the runs' blocks are gone.
    half = truncated_copy(good, tmp_path / "half.duckdb")
    error = _refused(half, "damaged", "Restore it from a backup", "docs/deploy.md")
    assert error.path == half
    # Only the header left: DuckDB refuses it on opening.
    _refused(truncated_copy(good, tmp_path / "head.duckdb", 0.002), "damaged")
    _refused(half, "damaged", read_only=True)
    with Store(good) as s:  # the original is untouched and still whole
        assert s.get_run(runs["ana"])["metrics"] == {"accuracy": 0.8}


@pytest.mark.parametrize(
    "content, words",
    [
        (b"text,label\nfine,pos\n" * 200, "not a DuckDB database"),
        (b"", "empty (0 bytes)"),
        (b"\x00" * 8 + b"DUCK" + b"\xff" * 5000, "damaged"),
    ],
    ids=["csv", "empty", "bad-header"],
)
def test_a_file_that_is_not_a_database_is_refused_and_left_unchanged(tmp_path, content, words):
    path = tmp_path / "runs.duckdb"
    path.write_bytes(content)
    _refused(path, words, "--db")


def test_a_folder_or_an_uncreatable_folder_is_refused(tmp_path):
    folder = tmp_path / "runs.duckdb"
    folder.mkdir()
    _refused(folder, "it is a folder", str(folder / "tladvisor.duckdb"))
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder")
    _refused(blocker / "runs.duckdb", "cannot be created")
    _refused(tmp_path / "missing.duckdb", "no such file", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_an_unwritable_file_is_refused_but_can_be_read_only(tmp_path):
    path = tmp_path / "runs.duckdb"
    runs = filled(path)
    with unwritable(path):
        _refused(path, "read-only", "chmod u+w", "tladvisor check")
        with Store(path, read_only=True) as s:  # what `tladvisor check` does: reads, no writes
            assert s.get_run(runs["bo"])["dataset_name"] == "reviews.csv"
            assert s.table_rows()["runs"] == 2
        with pytest.raises(duckdb.Error):  # and it writes nothing
            s2 = Store(path, read_only=True)
            try:
                s2.create_run(
                    user="x", dataset_fingerprint="fp-rt", strategy="lora", model="m",
                    config={}, seed=0,
                )  # fmt: skip
            finally:
                s2.close()
    with Store(path) as s:
        assert len(s.list_runs()) == 2


def test_an_unwritable_folder_is_refused(tmp_path):
    folder = tmp_path / "team"
    folder.mkdir()
    path = folder / "runs.duckdb"
    filled(path)
    with unwritable(folder):
        _refused(path, "folder", "read-only", ".wal")
    with Store(path) as s:
        assert len(s.list_runs()) == 2


def test_migration_4_from_previous_schema_records_owners_and_executors(db_path):
    con = duckdb.connect(str(db_path))
    assert migrate(con, target=3) == [1, 2, 3]
    # A version-3 file with a run left running by a process that is gone, and a finished run.
    for run_id, status in (("left", "running"), ("old", "done")):
        con.execute(
            "INSERT INTO runs (id, user_name, dataset_fingerprint, created_at, status, strategy,"
            " model, config, seed) VALUES (?, 'ana', 'fp', TIMESTAMP '2024-01-01', ?, 'lora', 'm',"
            " '{}', 0)",
            [run_id, status],
        )
    con.close()

    with Store(db_path) as s:
        assert s.schema_version == LATEST_VERSION >= 4
        assert s.get_run("old")["executor"] is None  # where it ran was never recorded
        assert s.mark_interrupted("gone") == 1  # no owner recorded: nobody can still run it
        fresh = s.create_run(
            user="bo", dataset_fingerprint="fp", strategy="scratch", model="m", config={}, seed=0
        )
        s.start_run(fresh, device="cpu", precision="fp32")
        assert s.get_run(fresh)["executor"] == {"kind": "local"}
        assert s.list_runs().set_index("id").loc[fresh, "executor"] == {"kind": "local"}
    assert Store(db_path).mark_interrupted("x") == 1  # this live process's own run: marked

    owner = Store(db_path).owner  # a live process on this host, as another process would see it
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store(db_path) as s:
            theirs = s.create_run(
                user="cy", dataset_fingerprint="fp", strategy="scratch", model="m", config={},
                seed=0,
            )  # fmt: skip
            other = store_module.process_token(alive.pid)
            assert other != owner and store_module._owner_alive(other)
            con = duckdb.connect(str(db_path))
            con.execute("UPDATE runs SET owner = ? WHERE id = ?", [other, theirs])
            con.close()
            assert s.mark_interrupted("x") == 0  # another live process's run is left alone
    finally:
        alive.kill()
        alive.wait()
    assert not store_module._owner_alive(other)
    assert Store(db_path).mark_interrupted("x") == 1  # its process is gone: now it is marked
