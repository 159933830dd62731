"""The run store: every SQL statement in tladvisor, over one DuckDB file.

DuckDB lets one process at a time hold a file, so a ``Store`` holds it only for one operation:
each public method opens a connection (per thread), does its work and closes it, and an open that
finds another process holding the file retries with backoff for up to ``TLADVISOR_DB_LOCK_TIMEOUT``
seconds (30 by default). The dashboard, the CLI, the benchmark and the Ray submitter thus share one
file, taking turns (measured here: 20-30 ms an operation on this file, most of it opening and the
checkpoint on close). Writes go through a transaction under an in-process lock: DuckDB's optimistic
concurrency would otherwise abort one of two transactions that touch the same run (say, a cancel
racing a finish) with a conflict error.

The schema is a numbered list of migrations, applied in order and recorded in
``schema_migrations`` (the pattern of simonw/llm's ``migrations.py``). Timestamps are UTC: stored
as naive ``TIMESTAMP`` (DuckDB's ``TIMESTAMPTZ`` needs pytz to read back) and returned tz-aware.

Opening reads every table through before anything is written, so a truncated, foreign, unreadable
or unwritable file raises ``DatabaseUnavailable`` (the file, what is wrong, the fix) and is left
as it was. A data set's name is per person (``dataset_aliases``): a run shows the name its owner
gave, and nobody's upload renames anyone else's runs.
"""

from __future__ import annotations

import enum
import functools
import json
import numbers
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd

RUN_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FAILED_STATUSES = ("failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")

# Columns of a run as the API returns them; metric columns in list_runs must not shadow these.
RUN_COLUMNS = (
    "id",
    "user_name",
    "dataset_fingerprint",
    "dataset_name",
    "created_at",
    "started_at",
    "finished_at",
    "status",
    "strategy",
    "model",
    "backend",
    "config",
    "device",
    "precision",
    "seed",
    "error",
    "details",
    "executor",
)
# The run columns (RUN_COLUMNS, in order) with the data set's name as the run's owner gave it (else
# the first name it was recorded under); callers append WHERE/ORDER BY.
_SELECT_RUNS = (
    "SELECT r.id, r.user_name, r.dataset_fingerprint, coalesce(a.name, d.name) AS dataset_name,"
    " r.created_at, r.started_at, r.finished_at, r.status, r.strategy, r.model, r.backend,"
    " r.config, r.device, r.precision, r.seed, r.error, r.details, r.executor"
    " FROM runs r LEFT JOIN datasets d ON d.fingerprint = r.dataset_fingerprint"
    " LEFT JOIN dataset_aliases a"
    "  ON a.fingerprint = r.dataset_fingerprint AND a.user_name = r.user_name"
)
_TIME_COLUMNS = ("created_at", "started_at", "finished_at")
# Split-free metrics (seconds, trainable_params, ...) use split '' and sit beside the test ones.
_PLAIN_SPLITS = ("test", "")


# What to do about a file that cannot be used; docs/deploy.md section 4 is the backup procedure.
RESTORE_FIX = (
    "Restore it from a backup (docs/deploy.md, section 4: stop tladvisor, copy the backup over the "
    "file, check it with `tladvisor check --db FILE`), or point tladvisor at another file with "
    "--db PATH (the dashboard: TLADVISOR_DB=PATH or `tladvisor serve --db PATH`). Nothing was "
    "written to it."
)
ELSEWHERE_FIX = (
    "Or point tladvisor at another file with --db PATH (the dashboard: TLADVISOR_DB=PATH or "
    "`tladvisor serve --db PATH`)."
)


class StoreError(RuntimeError):
    """The database file cannot be used as it is; the message names the file and the fix."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file (DuckDB allows one writing process per file)."""


class StoreSchemaError(StoreError):
    """The file's schema is newer than this tladvisor, or a migration failed."""


class DatabaseUnavailable(StoreError):
    """The file is damaged (truncated, corrupt), not a DuckDB database, a folder, or cannot be
    read or written by this process. ``path``, ``problem`` and ``fix`` are also attributes."""

    def __init__(self, path: str | Path, problem: str, fix: str = RESTORE_FIX) -> None:
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"cannot use the database file {self.path}: {problem}. {fix}")


class UnknownRunError(LookupError):
    """No run has the given id."""


class RunStateError(RuntimeError):
    """The run's status does not allow the requested change (e.g. finishing a run twice)."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "core tables: datasets, runs, metrics, curves",
        (
            """
            CREATE TABLE datasets (
                fingerprint VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                modality VARCHAR NOT NULL,
                n_rows BIGINT NOT NULL,
                n_classes INTEGER NOT NULL,
                class_counts JSON NOT NULL,
                source VARCHAR NOT NULL DEFAULT '',
                created_at TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE runs (
                id VARCHAR PRIMARY KEY,
                user_name VARCHAR NOT NULL,
                dataset_fingerprint VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                started_at TIMESTAMP,
                finished_at TIMESTAMP,
                status VARCHAR NOT NULL,
                strategy VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                backend VARCHAR,
                config JSON NOT NULL,
                device VARCHAR,
                precision VARCHAR,
                seed INTEGER NOT NULL,
                error VARCHAR,
                details JSON
            )
            """,
            # One value per (run, metric, split): a duplicate in finish_run fails the whole batch.
            """
            CREATE TABLE metrics (
                run_id VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value DOUBLE,
                split VARCHAR NOT NULL DEFAULT '',
                PRIMARY KEY (run_id, name, split)
            )
            """,
            # No key on curves: it is an append-only trace written every few steps.
            """
            CREATE TABLE curves (
                run_id VARCHAR NOT NULL,
                step INTEGER NOT NULL,
                name VARCHAR NOT NULL,
                value DOUBLE
            )
            """,
        ),
    ),
    Migration(
        2,
        "run_events: a timeline of each run's status changes and progress notes",
        (
            # The sequence orders events that share a timestamp (one transaction, same now).
            "CREATE SEQUENCE run_events_seq",
            """
            CREATE TABLE run_events (
                seq BIGINT NOT NULL DEFAULT nextval('run_events_seq'),
                run_id VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                status VARCHAR NOT NULL,
                message VARCHAR NOT NULL
            )
            """,
        ),
    ),
    Migration(
        3,
        "dataset_aliases: the name each person gave a data set",
        (
            """
            CREATE TABLE dataset_aliases (
                fingerprint VARCHAR NOT NULL,
                user_name VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                source VARCHAR NOT NULL DEFAULT '',
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (fingerprint, user_name)
            )
            """,
            # Finished runs recorded the name they ran under: it gives back each person's name
            # where a teammate's upload of the same rows had renamed the data set.
            """
            INSERT INTO dataset_aliases (fingerprint, user_name, name, created_at)
            SELECT dataset_fingerprint, user_name,
                   arg_max(details->>'dataset_name', created_at), min(created_at)
            FROM runs
            WHERE details->>'dataset_name' IS NOT NULL AND details->>'dataset_name' <> ''
            GROUP BY dataset_fingerprint, user_name
            """,
        ),
    ),
    Migration(
        4,
        "runs.owner and runs.executor: which process records a run, and where it ran",
        (
            # host:pid:start of the process that records the run, so another process sharing the
            # file can tell a run that is still going from one whose process died.
            "ALTER TABLE runs ADD COLUMN owner VARCHAR",
            # {"kind": "local"} or {"kind": "ray", "node": ..., "address": ...}
            "ALTER TABLE runs ADD COLUMN executor JSON",
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version
# Each table and the migration that creates it; opening reads them all through, `check` counts them.
TABLES: tuple[tuple[str, int], ...] = (
    ("schema_migrations", 0),
    ("datasets", 1),
    ("runs", 1),
    ("metrics", 1),
    ("curves", 1),
    ("run_events", 2),
    ("dataset_aliases", 3),
)
# Hashing whole rows makes DuckDB read every column block; table names cannot be parameters, so
# the statements are built once from the constant names above.
_READ_THROUGH = {
    table: "SELECT count(*), max(hash(t)) FROM " + table + " AS t" for table, _ in TABLES
}
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB file, after the header's checksum


def default_db_path() -> Path:
    """``$TLADVISOR_DB`` if set, else ``<repo>/data/tladvisor.duckdb``; the parent folder is created."""
    env = os.environ.get("TLADVISOR_DB")
    path = (
        Path(env).expanduser()
        if env
        else Path(__file__).resolve().parent.parent / "data" / "tladvisor.duckdb"
    )
    # A folder that cannot be created is reported by Store(), with the file and the fix.
    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to the connected database (0 for a blank one)."""
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    (version,) = connection.execute(
        "SELECT coalesce(max(version), 0) FROM schema_migrations"
    ).fetchone()
    return int(version)


def migrate(connection: duckdb.DuckDBPyConnection, *, target: int | None = None) -> list[int]:
    """Apply the migrations above the database's version, up to ``target`` (default: the latest).

    Each migration runs in its own transaction together with its ``schema_migrations`` row, so a
    failure leaves the database at the previous version. Returns the versions applied now.
    """
    target = LATEST_VERSION if target is None else target
    current = schema_version(connection)
    if current > LATEST_VERSION:
        raise StoreSchemaError(
            f"the database has schema version {current} but this tladvisor only knows up to "
            f"{LATEST_VERSION}: a newer tladvisor wrote it. Upgrade tladvisor, or use another "
            "database file with --db PATH or TLADVISOR_DB=PATH."
        )
    applied = []
    for migration in MIGRATIONS:
        if not current < migration.version <= target:
            continue
        connection.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                [migration.version, migration.description, _now()],
            )
        except BaseException as exc:
            connection.execute("ROLLBACK")
            if not isinstance(exc, duckdb.Error):
                raise
            raise StoreSchemaError(
                f"migration {migration.version} ({migration.description}) failed and was rolled "
                f"back; the database stays at version {current}: {exc}"
            ) from exc
        connection.execute("COMMIT")
        current = migration.version
        applied.append(migration.version)
    return applied


def read_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The schema version of a database without writing to it (0: no ``schema_migrations``)."""
    if "schema_migrations" not in table_names(connection):
        return 0
    (version,) = connection.execute(
        "SELECT coalesce(max(version), 0) FROM schema_migrations"
    ).fetchone()
    return int(version)


def table_names(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables of the connected file's main schema."""
    rows = connection.execute(
        "SELECT table_name FROM duckdb_tables()"
        " WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open ``path`` after checking it can be used, and read every tladvisor table through.

    Raises ``DatabaseUnavailable`` (a folder, not a DuckDB file, unreadable, unwritable unless
    ``read_only``, truncated or corrupt) or ``StoreLockedError``; the file is not written to.
    A missing file is created, unless ``read_only``.
    """
    _check_file(path, read_only=read_only)
    con = open_waiting(path, read_only=read_only)
    try:
        present = table_names(con)
        for table, _ in TABLES:
            if table in present:
                con.execute(_READ_THROUGH[table]).fetchone()
    except duckdb.Error as exc:
        con.close()
        raise DatabaseUnavailable(
            path,
            "part of it cannot be read, so it is damaged: truncated by an interrupted copy or a "
            f"full disk, or corrupted (DuckDB said: {_first_line(exc)})",
        ) from exc
    return con


DEFAULT_LOCK_TIMEOUT = 30.0  # seconds; a long import or a migration holds the file a few seconds


def lock_timeout() -> float:
    """How long an operation waits for another process to let go of the file
    (``TLADVISOR_DB_LOCK_TIMEOUT`` seconds, default 30)."""
    raw = os.environ.get("TLADVISOR_DB_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(
            f"TLADVISOR_DB_LOCK_TIMEOUT must be a number of seconds >= 0, got {raw!r}; unset it "
            f"for the default ({DEFAULT_LOCK_TIMEOUT:.0f} s)"
        )
    return value


def _is_busy(exc: BaseException) -> bool:
    """Another process holds the file, or this process holds it open in another mode (a
    read-only and a writable Store on one file): both pass once the other operation ends."""
    low = str(exc).lower()
    return bool(re.search(r"\block\b", low)) or "different configuration" in low


def wait_for_file(action: Callable[[], Any], path: Path) -> Any:
    """``action()``, retried with jittered exponential backoff while another process holds
    ``path``; ``StoreLockedError`` once it has waited ``lock_timeout()`` seconds."""
    limit = lock_timeout()
    started = time.monotonic()
    delay = 0.005
    while True:
        try:
            return action()
        except duckdb.Error as exc:
            waited = time.monotonic() - started
            if not _is_busy(exc) or waited >= limit:
                raise _open_error(path, exc, waited=waited if _is_busy(exc) else None) from exc
            # Jitter keeps two waiting processes from retrying in step.
            time.sleep(min(delay * random.uniform(0.5, 1.5), max(limit - waited, 0.001)))
            delay = min(delay * 2, 0.25)


def open_waiting(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` on ``path``, waiting for another process to let go of it."""
    return wait_for_file(lambda: duckdb.connect(str(path), read_only=read_only), path)


def process_token(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (this one by default): the start time (clock ticks since
    boot, from /proc) tells a live process from a later one that reuses the pid."""
    pid = os.getpid() if pid is None else pid
    start = ""
    with suppress(OSError, IndexError):
        # Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces, so split after it.
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    return f"{socket.gethostname()}:{pid}:{start}"


def _owner_alive(owner: str | None) -> bool:
    """Whether the process that recorded a run (``process_token``) still runs on this host."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname():
        return True  # cannot be told from here: leave its runs alone
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        pass  # alive, under another account
    return process_token(int(pid)) == owner


def _operation(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a ``Store`` method on a connection opened for it (per thread; nested calls share it)
    and closed after it, so the file is free for other processes between operations."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        with self._connected():
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """The runs, metrics, curves and data sets of one DuckDB file.

    ``Store(path)`` opens (creating) the file and migrates it; ``None`` means ``default_db_path()``.
    ``read_only=True`` neither creates nor migrates nor writes (``tladvisor check``); the reads of
    a file at an older schema version are then limited to the tables it has.
    Use it as a context manager or call ``close()``. Safe to share between threads.
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.read_only = read_only
        self._closed = False
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self.owner = process_token()
        # The first open checks the file, reads it through and migrates it; later ones only open.
        con = connect(self.path, read_only=read_only)
        try:
            if not read_only:
                migrate(con)
            elif read_version(con) > LATEST_VERSION:
                raise StoreSchemaError(
                    f"{self.path} has schema version {read_version(con)} but this "
                    f"tladvisor only knows up to {LATEST_VERSION}: a newer tladvisor wrote it. "
                    "Upgrade tladvisor to read it."
                )
        finally:
            con.close()

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse further operations (each one closes its own connection); later calls raise."""
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    @_operation
    def schema_version(self) -> int:
        """The file's schema version (``LATEST_VERSION`` once opened for writing)."""
        return read_version(self._cursor())

    @_operation
    def table_rows(self) -> dict[str, int]:
        """Rows in each tladvisor table the file has (all of them were read through on opening)."""
        cur = self._cursor()
        present = table_names(cur)
        return {
            table: int(cur.execute(_READ_THROUGH[table]).fetchone()[0])
            for table, _ in TABLES
            if table in present
        }

    @_operation
    def artifact_paths(self) -> list[tuple[str, str]]:
        """``(run id, path)`` of every run that recorded a trained head or adapter, oldest first."""
        cur = self._cursor()
        if "runs" not in table_names(cur):
            return []
        return cur.execute(
            "SELECT id, details->>'artifact_path' FROM runs"
            " WHERE coalesce(details->>'artifact_path', '') <> '' ORDER BY created_at, id"
        ).fetchall()

    @_operation
    def run_ids_starting(self, prefix: str) -> list[str]:
        """Ids of the runs whose id starts with ``prefix`` (the dashboard shows 8 characters)."""
        rows = (
            self._cursor()
            .execute("SELECT id FROM runs WHERE starts_with(id, ?) ORDER BY id", [prefix])
            .fetchall()
        )
        return [run_id for (run_id,) in rows]

    @_operation
    def set_artifact_path(self, run_id: str, path: str | None) -> None:
        """Record where a run's artefact now is (copied on import), or that it has none."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE runs SET details = json_merge_patch(coalesce(details, '{}'), ?) WHERE id = ?",
                [_dumps({"artifact_path": path}), run_id],
            )

    @contextmanager
    def _connected(self) -> Iterator[None]:
        """Hold this thread's connection for the block (opened on first use, see ``_cursor``)."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new Store to use {self.path}")
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1
            if local.depth == 0 and getattr(local, "con", None) is not None:
                con, local.con = local.con, None
                con.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's connection for the current operation (public methods are ``@_operation``)."""
        local = self._local
        if getattr(local, "depth", 0) == 0:
            raise RuntimeError(
                "Store._cursor() used outside an operation: decorate the method with @_operation"
            )
        if getattr(local, "con", None) is None:
            local.con = open_waiting(self.path, read_only=self.read_only)
        return local.con

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connected():
            cursor = self._cursor()
            with self._write_lock:
                cursor.execute("BEGIN TRANSACTION")
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")

    # -- data sets -------------------------------------------------------------------------------

    @_operation
    def upsert_dataset(
        self,
        fingerprint: str,
        name: str,
        modality: str,
        n_rows: int,
        class_counts: dict[str, int],
        source: str = "",
        *,
        user: str | None = None,
    ) -> None:
        """Record a data set, and the name ``user`` gives it.

        The same rows again (same fingerprint) add no row and rename nothing: the data set keeps
        the name it was first recorded under, and ``user``'s name (and source) for it goes to
        ``dataset_aliases``, which only that person's runs show. Re-recording it under a new name
        renames it for ``user`` alone.
        """
        _require_text("fingerprint", fingerprint)
        _require_text("name", name)
        _require_text("modality", modality)
        if user is not None:
            _require_text("user", user)
        if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0:
            raise ValueError(f"n_rows must be a non-negative int, got {n_rows!r}")
        counts = {str(label): int(count) for label, count in class_counts.items()}
        now = _now()
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO datasets"
                " (fingerprint, name, modality, n_rows, n_classes, class_counts, source, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                [fingerprint, name, modality, n_rows, len(counts), _dumps(counts), source, now],
            )
            if user is not None:
                cur.execute(
                    "INSERT INTO dataset_aliases (fingerprint, user_name, name, source, created_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint, user_name)"
                    " DO UPDATE SET name = excluded.name, source = excluded.source",
                    [fingerprint, user, name, source, now],
                )

    @_operation
    def get_dataset(self, fingerprint: str) -> dict[str, Any] | None:
        """One data set as a dict (``class_counts`` parsed), or None if it was never recorded."""
        cur = self._cursor().execute(
            "SELECT fingerprint, name, modality, n_rows, n_classes, class_counts, source, created_at"
            " FROM datasets WHERE fingerprint = ?",
            [fingerprint],
        )
        row = cur.fetchone()
        if row is None:
            return None
        record = dict(zip([d[0] for d in cur.description], row, strict=True))
        record["class_counts"] = json.loads(record["class_counts"])
        record["created_at"] = _aware(record["created_at"])
        return record

    @_operation
    def list_datasets(self) -> pd.DataFrame:
        """All data sets, newest first, with ``class_counts`` parsed into dicts."""
        df = (
            self._cursor()
            .execute(
                "SELECT fingerprint, name, modality, n_rows, n_classes, class_counts, source,"
                " created_at FROM datasets ORDER BY created_at DESC, fingerprint"
            )
            .df()
        )
        df["class_counts"] = df["class_counts"].map(json.loads).astype(object)
        df["created_at"] = df["created_at"].dt.tz_localize("UTC")
        return df

    @_operation
    def list_dataset_aliases(self) -> pd.DataFrame:
        """The name each person gave each data set: fingerprint, user_name, name, source,
        created_at (UTC); sorted by fingerprint, then person."""
        aliases = (
            self._cursor()
            .execute(
                "SELECT fingerprint, user_name, name, source, created_at FROM dataset_aliases"
                " ORDER BY fingerprint, user_name"
            )
            .df()
        )
        aliases["created_at"] = aliases["created_at"].dt.tz_localize("UTC")
        return aliases

    # -- a run's life ----------------------------------------------------------------------------

    @_operation
    def create_run(
        self,
        *,
        user: str,
        dataset_fingerprint: str,
        strategy: str,
        model: str,
        config: dict[str, Any],
        seed: int,
        device: str = "cpu",
    ) -> str:
        """Queue a run and return its id (a uuid4 hex)."""
        _require_text("user", user)
        _require_text("dataset_fingerprint", dataset_fingerprint)
        _require_text("model", model)
        strategy = _text(strategy)
        _require_text("strategy", strategy)
        run_id = uuid.uuid4().hex
        now = _now()
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO runs (id, user_name, dataset_fingerprint, created_at, status, strategy,"
                " model, config, device, seed, owner) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    user,
                    dataset_fingerprint,
                    now,
                    strategy,
                    model,
                    _dumps(config),
                    device,
                    seed,
                    self.owner,
                ],
            )
            _add_event(cur, run_id, "queued", f"{strategy} on {model} for {user}", now)
        return run_id

    @_operation
    def start_run(
        self,
        run_id: str,
        *,
        device: str,
        precision: str,
        executor: dict[str, Any] | None = None,
    ) -> None:
        """Mark a queued run as running on ``device`` with ``precision`` (e.g. 'fp32', 'bf16'),
        executed by ``executor`` (``{"kind": "local"}`` by default; a Ray run names its node)."""
        executor = executor or {"kind": "local"}
        where = f" on ray node {executor['node']}" if executor.get("node") else ""
        now = _now()
        with self._transaction() as cur:
            _expect_status(cur, run_id, ("queued",), "start")
            cur.execute(
                "UPDATE runs SET status = 'running', started_at = ?, device = ?, precision = ?,"
                " executor = ? WHERE id = ?",
                [now, device, precision, _dumps(executor), run_id],
            )
            _add_event(cur, run_id, "running", f"started on {device} ({precision}){where}", now)

    def log_curve(self, run_id: str, step: int, name: str, value: float) -> None:
        """Append one point of a training curve (loss, val_accuracy, ...)."""
        self.log_curves(run_id, [(step, name, value)])

    @_operation
    def log_curves(self, run_id: str, rows: Sequence[tuple[int, str, float]]) -> None:
        """Append many curve points ``(step, name, value)`` in one transaction."""
        params = [[run_id, int(step), name, _number(value)] for step, name, value in rows]
        if not params:
            return
        with self._transaction() as cur:
            _status_of(cur, run_id)
            cur.executemany(
                "INSERT INTO curves (run_id, step, name, value) VALUES (?, ?, ?, ?)", params
            )

    @_operation
    def log_event(self, run_id: str, message: str) -> None:
        """Add a progress note (e.g. 'epoch 2/3') to the run's timeline."""
        with self._transaction() as cur:
            _add_event(cur, run_id, _status_of(cur, run_id), message, _now())

    @_operation
    def finish_run(
        self,
        run_id: str,
        *,
        metrics: Sequence[tuple[str, float, str]],
        backend: str,
        details: dict[str, Any],
        model: str | None = None,
    ) -> None:
        """Store the run's metrics ``(name, value, split)`` and mark it done, all or nothing.

        If any metric cannot be stored, the transaction is rolled back (no metric of the run
        remains, its status is unchanged) and the error is re-raised.
        """
        rows = [_metric_row(run_id, metric) for metric in metrics]
        now = _now()
        with self._transaction() as cur:
            _expect_status(cur, run_id, ACTIVE_STATUSES, "finish")
            cur.execute(
                "UPDATE runs SET status = 'done', finished_at = ?, backend = ?, details = ?,"
                " model = coalesce(?, model) WHERE id = ?",
                [now, backend, _dumps(details), model, run_id],
            )
            if rows:
                cur.executemany(
                    "INSERT INTO metrics (run_id, name, value, split) VALUES (?, ?, ?, ?)", rows
                )
            _add_event(cur, run_id, "done", f"finished with {len(rows)} metrics ({backend})", now)

    @_operation
    def fail_run(self, run_id: str, error: str, status: str = "failed") -> None:
        """End a run as failed, cancelled or interrupted; its metrics go, its curves stay as a trace."""
        if status not in FAILED_STATUSES:
            raise ValueError(
                f"status must be one of {', '.join(FAILED_STATUSES)}, got {status!r}; "
                "use finish_run() for a run that succeeded"
            )
        now = _now()
        with self._transaction() as cur:
            current = _status_of(cur, run_id)
            if current == "done":
                raise RunStateError(
                    f"run {run_id} already finished (status 'done'); a finished run cannot be "
                    "marked failed. Delete it with delete_run() if its results are wrong."
                )
            cur.execute("DELETE FROM metrics WHERE run_id = ?", [run_id])
            cur.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                [status, error, now, run_id],
            )
            _add_event(cur, run_id, status, error, now)

    @_operation
    def mark_interrupted(
        self,
        reason: str = "the tladvisor process running it stopped before the run finished "
        "(restart, crash or Ctrl+C); start the run again",
    ) -> int:
        """Turn runs left queued or running by a dead process into 'interrupted'; return how many.

        Runs recorded by another live process on this host (the dashboard, while the CLI opens
        the file) are left alone. Call it at start-up only: a run still active in this process
        would be marked too.
        """
        now = _now()
        with self._transaction() as cur:
            owners = cur.execute(
                "SELECT DISTINCT owner FROM runs WHERE status IN ('queued', 'running')"
            ).fetchall()
            live = [o for (o,) in owners if o and o != self.owner and _owner_alive(o)]
            ids = cur.execute(
                "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ?"
                " WHERE status IN ('queued', 'running')"
                " AND NOT list_contains(?::VARCHAR[], coalesce(owner, '')) RETURNING id",
                [reason, now, live],
            ).fetchall()
            if ids:
                cur.execute(
                    "DELETE FROM metrics WHERE list_contains(?::VARCHAR[], run_id)",
                    [[run_id for (run_id,) in ids]],
                )
                cur.executemany(
                    "INSERT INTO run_events (run_id, created_at, status, message)"
                    " VALUES (?, ?, 'interrupted', ?)",
                    [[run_id, now, reason] for (run_id,) in ids],
                )
        return len(ids)

    @_operation
    def delete_run(self, run_id: str, *, user: str) -> None:
        """Delete a run with its metrics, curves and events; only its owner may."""
        with self._transaction() as cur:
            row = cur.execute(
                "SELECT user_name, status FROM runs WHERE id = ?", [run_id]
            ).fetchone()
            if row is None:
                raise UnknownRunError(f"no run with id {run_id!r} in {self.path}")
            owner, status = row
            if owner != user:
                raise PermissionError(
                    f"run {run_id} belongs to {owner!r}, not {user!r}: only its owner can delete "
                    f"it. Ask {owner!r} to delete it, or work as {owner!r}."
                )
            if status in ACTIVE_STATUSES:
                raise RunStateError(
                    f"run {run_id} is still {status}; cancel it first, then delete it"
                )
            for statement in (
                "DELETE FROM metrics WHERE run_id = ?",
                "DELETE FROM curves WHERE run_id = ?",
                "DELETE FROM run_events WHERE run_id = ?",
                "DELETE FROM runs WHERE id = ?",
            ):
                cur.execute(statement, [run_id])

    # -- merging files ---------------------------------------------------------------------------

    @_operation
    def import_runs(self, source: str | Path) -> ImportSummary:
        """Copy the finished runs of another tladvisor DuckDB file into this one, all or nothing.

        Runs already here (same id) are left as they are, so importing twice adds nothing; runs
        still queued or running in the source are skipped (their process owns them). Their data
        sets, metrics, curves and timelines come along. The source is opened read-only.
        """
        src_path = Path(source)
        if not src_path.is_file():
            raise FileNotFoundError(
                f"no database file at {src_path}; give the path of a .duckdb file"
            )
        if src_path.resolve() == self.path.resolve():
            raise ValueError(f"{src_path} is this store's own file; import from another file")
        alias = f"import_{uuid.uuid4().hex}"
        cur = self._cursor()
        with self._write_lock:
            try:
                # ATTACH takes no parameters: the path is a quoted literal. Another tladvisor
                # process lets go of the source between its operations: wait for that.
                literal = str(src_path).replace("'", "''")
                wait_for_file(
                    lambda: cur.execute(f"ATTACH '{literal}' AS {alias} (READ_ONLY)"), src_path
                )
            except StoreLockedError as exc:
                raise StoreLockedError(
                    f"cannot read {src_path}: another process has it open for writing and did not "
                    f"let go. Stop that process, then import again. ({exc})"
                ) from exc
            except StoreError as exc:
                raise StoreSchemaError(
                    f"{src_path} is not a DuckDB database tladvisor can read (DuckDB said: {exc})"
                ) from exc
            try:
                _check_import_schema(cur, alias, src_path)
                with self._transaction() as tx:
                    return _copy_runs(tx, alias)
            except duckdb.Error as exc:  # e.g. a truncated copy: its tables fail half-way
                raise StoreError(
                    f"importing {src_path} into {self.path} failed and nothing was imported "
                    f"(DuckDB said: {_first_line(exc)}). `tladvisor check --db {src_path}` "
                    "tells whether that file is damaged; ask for a fresh copy of it."
                ) from exc
            finally:
                cur.execute(f"DETACH {alias}")

    # -- reading runs ----------------------------------------------------------------------------

    @_operation
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run as a dict, or None.

        ``config`` and ``details`` are parsed; ``metrics`` maps name to value for the test split
        (plus split-free metrics such as ``seconds``); ``metrics_by_split`` maps split to
        ``{name: value}`` for every split. ``dataset_name`` is the name the run's owner gave.
        """
        cur = self._cursor()
        cur.execute(
            _SELECT_RUNS + " WHERE r.id = ?",
            [run_id],
        )
        row = cur.fetchone()
        if row is None:
            return None
        run = dict(zip([d[0] for d in cur.description], row, strict=True))
        for column in _TIME_COLUMNS:
            run[column] = _aware(run[column])
        run["config"] = _loads(run["config"])
        run["details"] = _loads(run["details"])
        run["executor"] = _loads(run["executor"])
        by_split: dict[str, dict[str, float]] = {}
        for name, value, split in cur.execute(
            "SELECT name, value, split FROM metrics WHERE run_id = ? ORDER BY split, name",
            [run_id],
        ).fetchall():
            by_split.setdefault(split, {})[name] = value
        run["metrics"] = {**by_split.get("", {}), **by_split.get("test", {})}
        run["metrics_by_split"] = by_split
        return run

    @_operation
    def list_runs(
        self,
        *,
        user: str | Iterable[str] | None = None,
        dataset: str | Iterable[str] | None = None,
        strategy: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
        status: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Runs newest first, one row each: the run columns then one column per metric.

        A metric of the test split (or a split-free one) is a column named after it; other splits
        are ``name@split`` (``accuracy@val``). Each filter takes a value or a list of values;
        ``dataset`` matches a fingerprint or a run's ``dataset_name`` (the name its owner gave).
        """
        cur = self._cursor()
        runs = cur.execute(
            _SELECT_RUNS
            + " WHERE ($user::VARCHAR[] IS NULL OR list_contains($user::VARCHAR[], r.user_name))"
            " AND ($dataset::VARCHAR[] IS NULL"
            "  OR list_contains($dataset::VARCHAR[], r.dataset_fingerprint)"
            "  OR list_contains($dataset::VARCHAR[], coalesce(a.name, d.name)))"
            " AND ($strategy::VARCHAR[] IS NULL OR list_contains($strategy::VARCHAR[], r.strategy))"
            " AND ($model::VARCHAR[] IS NULL OR list_contains($model::VARCHAR[], r.model))"
            " AND ($status::VARCHAR[] IS NULL OR list_contains($status::VARCHAR[], r.status))"
            " ORDER BY r.created_at DESC, r.id",
            {
                "user": _values(user),
                "dataset": _values(dataset),
                "strategy": _values(strategy),
                "model": _values(model),
                "status": _values(status),
            },
        ).df()
        for column in _TIME_COLUMNS:
            runs[column] = runs[column].dt.tz_localize("UTC")
        for column in ("config", "details", "executor"):
            runs[column] = runs[column].map(_loads).astype(object)
        if runs.empty:
            return runs
        metrics = cur.execute(
            "SELECT run_id, name, value, split FROM metrics WHERE list_contains(?::VARCHAR[], run_id)",
            [runs["id"].tolist()],
        ).df()
        if metrics.empty:
            return runs
        plain = metrics["split"].isin(_PLAIN_SPLITS)
        metrics["column"] = metrics["name"].where(plain, metrics["name"] + "@" + metrics["split"])
        # A test value wins over a split-free value of the same name.
        metrics = metrics.assign(is_test=metrics["split"] == "test").sort_values("is_test")
        metrics = metrics.drop_duplicates(["run_id", "column"], keep="last")
        wide = metrics.pivot(index="run_id", columns="column", values="value")
        wide.columns.name = None
        return runs.merge(wide, left_on="id", right_index=True, how="left")

    @_operation
    def get_curves(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """The curve points of the given runs: columns run_id, step, name, value."""
        return (
            self._cursor()
            .execute(
                "SELECT run_id, step, name, value FROM curves"
                " WHERE list_contains(?::VARCHAR[], run_id) ORDER BY run_id, name, step",
                [list(run_ids)],
            )
            .df()
        )

    @_operation
    def get_events(self, run_id: str) -> pd.DataFrame:
        """The run's timeline, oldest first: columns created_at (UTC), status, message."""
        events = (
            self._cursor()
            .execute(
                "SELECT created_at, status, message FROM run_events WHERE run_id = ? ORDER BY seq",
                [run_id],
            )
            .df()
        )
        events["created_at"] = events["created_at"].dt.tz_localize("UTC")
        return events

    @_operation
    def users(self) -> list[str]:
        """Everyone who has created a run, sorted."""
        rows = (
            self._cursor()
            .execute("SELECT DISTINCT user_name FROM runs ORDER BY user_name")
            .fetchall()
        )
        return [name for (name,) in rows]


# -- opening a file --------------------------------------------------------------------------------


def _check_file(path: Path, *, read_only: bool) -> None:
    """Refuse, before DuckDB touches it, a path tladvisor cannot use; create a missing folder."""
    folder = path.parent
    if path.is_dir():
        raise DatabaseUnavailable(
            path,
            "it is a folder, not a database file",
            f"Give the path of a .duckdb file, e.g. --db {path / 'tladvisor.duckdb'}.",
        )
    if not path.exists():
        if read_only:
            raise DatabaseUnavailable(
                path,
                "there is no such file",
                "Give the path of an existing tladvisor database (check the spelling and the "
                "folder; `tladvisor runs --db FILE` creates a new one).",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(
                path,
                f"its folder {folder} cannot be created ({exc.strerror or exc})",
                f"Create that folder, writable by {_who()}. {ELSEWHERE_FIX}",
            ) from exc
    else:
        _check_header(path)
    if read_only:
        return
    if path.exists() and not os.access(path, os.W_OK):
        raise DatabaseUnavailable(
            path,
            f"it is read-only to {_who()} (file permissions, or an immutable file), and tladvisor "
            "writes to it: runs, and its schema on upgrade",
            f"Make it writable (`chmod u+w {path}` as its owner; an immutable file: "
            f"`chattr -i {path}` as root), or copy it somewhere writable. "
            f"`tladvisor check --db {path}` reads it without writing. {ELSEWHERE_FIX}",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnavailable(
            path,
            f"its folder {folder} is read-only to {_who()}, and DuckDB writes its journal "
            f"({path.name}.wal) beside the file",
            f"Make the folder writable (`chmod u+w {folder}` as its owner), or move the file to a "
            f"writable folder. {ELSEWHERE_FIX}",
        )


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as exc:
        raise DatabaseUnavailable(
            path,
            f"{_who()} cannot read it ({exc.strerror or exc})",
            f"Give {_who()} read and write access (`chmod u+rw {path}` as its owner). "
            + ELSEWHERE_FIX,
        ) from exc
    if not head:
        raise DatabaseUnavailable(
            path, "it is empty (0 bytes), not a DuckDB database: a copy that never finished?"
        )
    if head[8:12] != _DUCKDB_MAGIC:
        raise DatabaseUnavailable(
            path,
            "it is not a DuckDB database (it does not start with DuckDB's header): another kind "
            "of file, or one overwritten",
        )


def _open_error(path: Path, exc: duckdb.Error, *, waited: float | None = None) -> StoreError:
    """The error to raise when ``duckdb.connect`` refuses a file that passed ``_check_file``;
    ``waited``: the seconds spent waiting for another process to let go of it."""
    said = _first_line(exc)
    low = said.lower()
    if waited is not None or re.search(r"\block\b", low):  # not "block at location"
        return StoreLockedError(
            f"cannot open {path}: another process has held it for {waited or 0:.1f} s without "
            "letting go. tladvisor processes (the dashboard, the CLI) take turns on a file, one "
            "operation at a time, so the holder is probably another program (the duckdb shell, "
            "a notebook) or an older tladvisor: close it, wait for a long import to end "
            "(TLADVISOR_DB_LOCK_TIMEOUT=SECONDS waits longer), or point this one at another file "
            f"with --db PATH or TLADVISOR_DB=PATH. (DuckDB said: {said})"
        )
    if any(word in low for word in ("permission denied", "not permitted", "read-only file")):
        return DatabaseUnavailable(
            path,
            f"{_who()} may not open it (DuckDB said: {said})",
            f"Make the file and its folder readable and writable by {_who()} (`chmod u+rw`; an "
            f"immutable file: `chattr -i {path}` as root). {ELSEWHERE_FIX}",
        )
    if "not a valid duckdb database" in low:
        return DatabaseUnavailable(path, f"it is not a valid DuckDB database (DuckDB said: {said})")
    if "version" in low:
        return DatabaseUnavailable(
            path,
            f"it was written by another DuckDB version than this one, {duckdb.__version__} "
            f"(DuckDB said: {said})",
            "Install the DuckDB version that wrote it (`pip install -U duckdb` for a newer one). "
            + ELSEWHERE_FIX,
        )
    return DatabaseUnavailable(
        path, f"DuckDB cannot open it, so it is damaged (DuckDB said: {said})"
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _who() -> str:
    """The account this process runs as, for messages about permissions."""
    try:
        import pwd

        return f"user {pwd.getpwuid(os.geteuid()).pw_name}"
    except (ImportError, KeyError, AttributeError):
        return "this user"


# -- helpers ---------------------------------------------------------------------------------------


def _now() -> datetime:
    """UTC now, naive, as the TIMESTAMP columns hold it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _loads(value: str | None) -> Any:
    return None if value is None or pd.isna(value) else json.loads(value)


def _text(value: Any) -> str:
    # A str-valued enum (Strategy.LORA) is stored as its value, not as 'Strategy.LORA'.
    return value.value if isinstance(value, enum.Enum) else value


def _values(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, enum.Enum)):
        return [_text(value)]
    return [_text(v) for v in value]


def _number(value: Any) -> Any:
    # DuckDB binds Python floats but not numpy scalars; anything else is left for DuckDB to reject.
    return float(value) if isinstance(value, numbers.Real) else value


def _require_text(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")


def _metric_row(run_id: str, metric: Sequence[Any]) -> list[Any]:
    if len(metric) != 3:
        raise ValueError(f"each metric must be (name, value, split), got {metric!r}")
    name, value, split = metric
    _require_text("metric name", name)
    if "@" in name or name in RUN_COLUMNS:
        raise ValueError(
            f"metric name {name!r} would clash with a list_runs column: it must not contain '@' "
            f"nor be one of {', '.join(RUN_COLUMNS)}"
        )
    if not isinstance(split, str):
        raise ValueError(
            f"split of metric {name!r} must be a string ('test', 'val', ''), got {split!r}"
        )
    return [run_id, name, _number(value), split]


@dataclass(frozen=True)
class ImportSummary:
    """What ``Store.import_runs`` did."""

    runs_added: int
    runs_present: int  # already in this store (same id): left untouched
    runs_active: int  # queued or running in the source: skipped
    datasets_added: int


def _check_import_schema(cur: duckdb.DuckDBPyConnection, alias: str, path: Path) -> None:
    tables = {
        name
        for (name,) in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [alias]
        ).fetchall()
    }
    if "schema_migrations" not in tables or "runs" not in tables:
        raise StoreSchemaError(f"{path} holds no tladvisor runs (it has no runs table)")
    (version,) = cur.execute(f"SELECT max(version) FROM {alias}.schema_migrations").fetchone()
    if version != LATEST_VERSION:
        newer = (version or 0) > LATEST_VERSION
        raise StoreSchemaError(
            f"{path} has schema version {version}, this tladvisor {LATEST_VERSION}: "
            + (
                "it was written by a newer tladvisor; upgrade this one to import it"
                if newer
                else "open it once with this tladvisor (e.g. `tladvisor runs --db "
                f"{path}`) to migrate it, then import again"
            )
        )


def _copy_runs(cur: duckdb.DuckDBPyConnection, alias: str) -> ImportSummary:
    cur.execute(
        f"CREATE TEMP TABLE import_ids AS SELECT s.id FROM {alias}.runs s"
        " WHERE s.status NOT IN ('queued', 'running')"
        " AND s.id NOT IN (SELECT id FROM runs)"
    )
    try:
        (present,) = cur.execute(
            f"SELECT count(*) FROM {alias}.runs WHERE id IN (SELECT id FROM runs)"
        ).fetchone()
        (active,) = cur.execute(
            f"SELECT count(*) FROM {alias}.runs s WHERE s.status IN ('queued', 'running')"
            " AND s.id NOT IN (SELECT id FROM runs)"
        ).fetchone()
        (datasets,) = cur.execute(
            f"INSERT INTO datasets SELECT * FROM {alias}.datasets"
            " WHERE fingerprint NOT IN (SELECT fingerprint FROM datasets)"
        ).fetchone()
        (added,) = cur.execute(
            f"INSERT INTO runs SELECT * FROM {alias}.runs WHERE id IN (SELECT id FROM import_ids)"
        ).fetchone()
        # Each person's names come along; a name someone already gave here stays.
        cur.execute(
            "INSERT INTO dataset_aliases (fingerprint, user_name, name, source, created_at)"
            f" SELECT fingerprint, user_name, name, source, created_at FROM {alias}.dataset_aliases"
            " ON CONFLICT (fingerprint, user_name) DO NOTHING"
        )
        for table, columns in (
            ("metrics", "run_id, name, value, split"),
            ("curves", "run_id, step, name, value"),
        ):
            cur.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {alias}.{table}"
                " WHERE run_id IN (SELECT id FROM import_ids)"
            )
        # Events get fresh sequence numbers here, in their original order.
        cur.execute(
            "INSERT INTO run_events (run_id, created_at, status, message)"
            f" SELECT run_id, created_at, status, message FROM {alias}.run_events"
            " WHERE run_id IN (SELECT id FROM import_ids) ORDER BY seq"
        )
    finally:
        cur.execute("DROP TABLE import_ids")
    return ImportSummary(int(added), int(present), int(active), int(datasets))


def _status_of(cur: duckdb.DuckDBPyConnection, run_id: str) -> str:
    row = cur.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise UnknownRunError(f"no run with id {run_id!r}; create it with create_run() first")
    return row[0]


def _expect_status(
    cur: duckdb.DuckDBPyConnection, run_id: str, allowed: tuple[str, ...], action: str
) -> None:
    status = _status_of(cur, run_id)
    if status not in allowed:
        raise RunStateError(
            f"cannot {action} run {run_id}: its status is {status!r}, and only a run that is "
            f"{' or '.join(allowed)} can be {action}ed"
        )


def _add_event(
    cur: duckdb.DuckDBPyConnection, run_id: str, status: str, message: str, when: datetime
) -> None:
    cur.execute(
        "INSERT INTO run_events (run_id, created_at, status, message) VALUES (?, ?, ?, ?)",
        [run_id, when, status, message],
    )
