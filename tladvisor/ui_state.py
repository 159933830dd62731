"""What the dashboard pages share: session state, cached resources and cached store reads.

The store and the job queue are one per server process and database file (``st.cache_resource``),
so every teammate's session sees the same runs and submits to the same queue. Store reads are
``st.cache_data`` with every input an argument (the database path first) and a short time-to-live,
because runs change under the page as jobs finish; ``refresh()`` drops them after a write.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from typing import Any

import pandas as pd
import streamlit as st

from tladvisor.store import Store, StoreError, default_db_path
from tladvisor.users import MAX_NAME, clean_user_name  # noqa: F401  (the pages' import path)

# Questions the data cannot answer, with the defaults the advisor starts from ("don't know").
DEFAULT_ANSWERS: dict[str, Any] = {
    "format_critical": None,
    "frequent_updates": None,
    "needs_new_knowledge": False,
    "latency_sensitive": False,
    "gpu_memory_gb": None,  # None: what this server has (filled in on the Advise page)
    "has_clip": False,
}
STATE_DEFAULTS: dict[str, Any] = {
    "user": None,  # the teammate's name, also kept in the URL (?user=)
    "dataset": None,  # tladvisor.data.Dataset loaded on the Upload page
    "measured": None,  # its MeasuredProfile
    "answers": DEFAULT_ANSWERS,  # the Advise page's questions
    "recommended": None,  # the Advise page's latest recommendation (a strategy value)
    "run_strategy": None,  # strategy value handed to the Run page by "Run the recommended"
    "run_model": None,  # model handed to the Run page with it (the advised one)
    "rankings": {},  # data set fingerprint -> the zoo's ranking on it (Choose a model page)
    "my_runs": [],  # run ids submitted from this browser session, newest last
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def init_state() -> None:
    """Give each shared session key its default once (mutable defaults are copied)."""
    for key, value in STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, dict | list) else value


def page_setup() -> None:
    """The first call of every page: session defaults and the access gate.

    app.py does both before routing; each page repeats them so that no way of running a page
    file on its own (AppTest, a future launcher) can skip the gate.
    """
    from tladvisor import auth

    init_state()
    auth.require_access()
    require_store()


# ---------------------------------------------------------------- who am I


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """``text`` escaped for st.markdown / st.caption: user strings (labels, file and data set
    names, notes quoting them) show as typed and never become links, images or markup."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def set_user(name: str | None) -> None:
    """Remember who is working in this session and in the URL, so a reload or a shared link
    keeps it; ``None`` forgets it."""
    st.session_state.user = name
    if name:
        st.query_params["user"] = name
    elif "user" in st.query_params:
        del st.query_params["user"]


def current_user() -> str | None:
    return st.session_state.get("user")


# ---------------------------------------------------------------- cached resources


def db_path() -> str:
    """The database file of this server (``$TLADVISOR_DB`` or data/tladvisor.duckdb)."""
    return str(default_db_path())


@st.cache_resource(show_spinner=False)
def get_store(path: str) -> Store:
    """One store per server process and file. Runs a previous process left queued or running
    can never finish, so they are marked interrupted here, once, at server start."""
    store = Store(path)
    store.mark_interrupted(
        "the dashboard restarted before this run finished, so it was stopped; start it again"
    )
    return store


@st.cache_resource(show_spinner=False)
def get_queue(path: str) -> Any:
    """The job queue every session submits to; trained heads and adapters go beside the file."""
    from tladvisor.artifacts import default_root
    from tladvisor.jobs import JobQueue

    return JobQueue(get_store(path), artifact_root=default_root(path))


def store() -> Store:
    return get_store(db_path())


def require_store() -> Store:
    """The store, or, when its file cannot be used (damaged, not a database, read-only, held by
    another process), an error naming the file, what is wrong and the fix, and the page stops.
    Nothing is cached on failure, so the next page load tries again once the file is fixed."""
    try:
        return store()
    except StoreError as exc:
        st.error(f"The runs database cannot be opened. {exc}", icon=":material/database:")
        st.stop()


def job_queue() -> Any:
    return get_queue(db_path())


@st.cache_resource(show_spinner=False, max_entries=8)
def measured_profile(fingerprint: str, with_models: bool, _dataset: Any) -> Any:
    """The measured profile of a data set, shared by every session that loads the same data
    (keyed by its content fingerprint; ``_dataset`` is that data set, not hashed).
    ``with_models`` adds domain unusualness and the few-shot probe (slow: loads the models)."""
    from tladvisor.profile import measure_profile

    return measure_profile(_dataset, probe=with_models, unusualness=with_models)


@st.cache_resource(show_spinner=False)
def gpu_memory_gb() -> float:
    """Memory of this server's first CUDA GPU in GiB (0 without one), looked up once."""
    from tladvisor.profile import detect_gpu_memory_gb

    return detect_gpu_memory_gb() or 0.0


# ---------------------------------------------------------------- cached store reads


@st.cache_data(ttl=2, show_spinner=False)
def list_runs(
    path: str,
    users: tuple[str, ...] = (),
    datasets: tuple[str, ...] = (),
    strategies: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Runs newest first with their metrics; an empty tuple means no filter on that column."""
    return get_store(path).list_runs(
        user=list(users) or None,
        dataset=list(datasets) or None,
        strategy=list(strategies) or None,
        model=list(models) or None,
        status=list(statuses) or None,
    )


@st.cache_data(ttl=5, show_spinner=False)
def datasets_by_name(path: str) -> dict[str, dict[str, Any]]:
    """Stored data sets by every name a run shows for them (the first name each was recorded
    under, then the names people gave it), as plain dicts; of two with one name, the newest."""
    store_ = get_store(path)
    records = store_.list_datasets().to_dict("records")
    by_name = {row["name"]: row for row in reversed(records)}
    by_fingerprint = {row["fingerprint"]: row for row in records}
    for alias in store_.list_dataset_aliases().to_dict("records"):
        row = by_fingerprint.get(alias["fingerprint"])
        if row is not None:
            by_name.setdefault(alias["name"], {**row, "name": alias["name"]})
    return by_name


@st.cache_data(ttl=2, show_spinner=False)
def get_run(path: str, run_id: str) -> dict[str, Any] | None:
    return get_store(path).get_run(run_id)


@st.cache_data(ttl=1, show_spinner=False)
def get_curves(path: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return get_store(path).get_curves(list(run_ids))


@st.cache_data(ttl=2, show_spinner=False)
def get_events(path: str, run_id: str) -> pd.DataFrame:
    return get_store(path).get_events(run_id)


@st.cache_data(ttl=5, show_spinner=False)
def users(path: str) -> list[str]:
    return get_store(path).users()


def refresh() -> None:
    """Forget cached reads after this session wrote (a submit, a delete)."""
    for cached in (list_runs, get_run, get_curves, get_events, users):
        cached.clear()


# ---------------------------------------------------------------- uploads and downloads


def csv_columns(upload: Any) -> list[str]:
    """The column names of an uploaded CSV, parsed as ``tladvisor.data`` will parse it."""
    from tladvisor import data

    return data.read_columns(upload)


def guess_column(columns: list[str], names: tuple[str, ...], exclude: str | None = None) -> int:
    """Index of the first column with one of the usual ``names`` (case-insensitive), else 0."""
    lower = [c.lower() for c in columns]
    for name in names:
        if name in lower and columns[lower.index(name)] != exclude:
            return lower.index(name)
    return next((i for i, c in enumerate(columns) if c != exclude), 0)


def flat_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs frame with its dict columns (config, details) as JSON text, ready to export."""
    out = runs.copy()
    for column in ("config", "details"):
        if column in out:
            out[column] = out[column].map(lambda v: json.dumps(v, default=str))
    return out


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (=, +, -, @ first) get a leading quote."""
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v
            )
    return out


def csv_bytes(runs: pd.DataFrame) -> bytes:
    return neutralise_formulas(flat_table(runs)).to_csv(index=False).encode("utf-8")


def parquet_bytes(runs: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    flat_table(runs).to_parquet(buffer, index=False)
    return buffer.getvalue()


# ---------------------------------------------------------------- the advanced settings panel


@dataclasses.dataclass(frozen=True)
class SettingField:
    """One config dataclass field as the Run page's advanced panel draws it."""

    name: str
    kind: str  # "bool", "int", "float", "str" or "json" (lists and dicts)
    default: Any
    optional: bool  # None is allowed (an empty box)
    help: str


def setting_fields(config_cls: type) -> list[SettingField]:
    """The user-settable fields of a strategy config, from ``dataclasses.fields`` and their
    ``metadata["help"]``; the model (chosen above the panel), fields the strategy ignores and
    computed fields are left out."""
    ignored = set(getattr(config_cls, "ignored_fields", ())) | {"model"}
    out = []
    for f in dataclasses.fields(config_cls):
        if not f.init or f.name in ignored:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        hint = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if "list" in hint or "dict" in hint:
            kind = "json"
        else:
            kind = next((k for k in ("bool", "int", "float", "str") if k in hint), "json")
        out.append(SettingField(f.name, kind, default, "None" in hint, f.metadata.get("help", "")))
    return out


def parse_setting(field: SettingField, value: Any) -> Any:
    """The typed value of a widget's raw value (JSON text for lists and dicts); ValueError
    naming the field when it does not parse."""
    if field.kind != "json":
        return value
    text = (value or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{field.name}: {text!r} is not valid JSON ({exc.msg}); write it like "
            f"{json.dumps(field.default)}"
        ) from None
