"""Run page: pick a strategy and a model, adjust the settings, queue the run, watch it train.

Runs go to the server's shared job queue and execute off the page thread; this page only submits,
shows progress (refreshed every second by a fragment while a job is active) and offers Cancel.
"""

from __future__ import annotations

import json

import streamlit as st

from tladvisor import catalog, charts, estimate, ui_state
from tladvisor.strategies import LABELS, Strategy, applicable, get

ui_state.page_setup()

CUSTOM = "custom"

st.title("Run a strategy")
dataset = st.session_state.dataset
if dataset is None:
    st.info("Load a data set on the **Upload & profile** page first; runs train on it.")
    st.page_link("views/upload.py", label="Go to Upload & profile", icon=":material/upload_file:")
    st.stop()
user = ui_state.current_user()
if not user:
    st.info("Tell tladvisor who you are in the sidebar first: your name goes on every run.")
    st.stop()

path = ui_state.db_path()
st.caption(
    f"On **{ui_state.plain(dataset.name)}** ({dataset.modality}, {len(dataset):,} examples, "
    f"{len(dataset.classes)} classes) as **{ui_state.plain(user)}**."
)

# -- strategy -------------------------------------------------------------------------------------
strategies = applicable(dataset.modality)
wanted = st.session_state.run_strategy or st.session_state.get("recommended")
if wanted in strategies and (st.session_state.run_strategy or "run_pick" not in st.session_state):
    st.session_state.run_pick = wanted  # preselect what the Advise page handed over
st.session_state.run_strategy = None
if st.session_state.get("run_pick") not in strategies:
    st.session_state.run_pick = strategies[0]
recommended = st.session_state.get("recommended")
strategy = Strategy(
    st.selectbox(
        "Strategy",
        strategies,
        key="run_pick",
        format_func=lambda v: LABELS[Strategy(v)] + ("  (recommended)" if v == recommended else ""),
        help=f"Only the strategies that apply to {dataset.modality} data are listed.",
    )
)
spec = get(strategy)

# -- model ----------------------------------------------------------------------------------------
wants_lm = strategy is Strategy.PROMPTING
models = [
    m
    for m in catalog.list_models()
    if m.modality == dataset.modality and (m.kind == catalog.INSTRUCTION_LM) == wants_lm
]
names = {m.name: f"{m.name}: {m.description}" for m in models}
handed = st.session_state.run_model  # the Advise page's model, once
st.session_state.run_model = None
if handed in names:
    st.session_state[f"run_model_{strategy.value}"] = handed
picked = st.selectbox(
    "Model",
    [*names, CUSTOM],
    key=f"run_model_{strategy.value}",
    format_func=lambda n: names.get(n, "A model of your own (hf: or clip: name)"),
)
if picked == CUSTOM:
    model = st.text_input(
        "Model name",
        key="run_custom_model",
        placeholder="hf:/path/to/hf-text-encoder  or  clip:/path/to/clip-folder",
        help="A Hugging Face text encoder folder (hf:...) or a transformers CLIP folder (clip:...) "
        "that is already on this machine: nothing is downloaded.",
    ).strip()
else:
    model = picked
    ok, why = catalog.installed(picked)
    if not ok:
        st.warning(f"{ui_state.plain(picked)} is not installed here: {ui_state.plain(why)}")

# -- settings -------------------------------------------------------------------------------------
fields = ui_state.setting_fields(spec.config_cls)
values, problems = {}, []
with st.expander("Advanced settings", expanded=False):
    st.caption("Defaults are the strategy's own; change only what you have a reason to.")
    for f in fields:
        key = f"run_cfg_{strategy.value}_{f.name}"
        if f.kind == "bool":
            raw = st.checkbox(f.name, value=bool(f.default), help=f.help, key=key)
        elif f.kind == "int":
            raw = st.number_input(f.name, value=f.default, step=1, help=f.help, key=key)
        elif f.kind == "float":
            raw = st.number_input(f.name, value=f.default, format="%g", help=f.help, key=key)
        elif f.kind == "str":
            raw = st.text_input(f.name, value=f.default or "", help=f.help, key=key) or None
        else:
            shown = "" if f.default is None else json.dumps(f.default)
            raw = st.text_input(f.name, value=shown, help=f.help + " (JSON)", key=key)
        try:
            values[f.name] = ui_state.parse_setting(f, raw)
        except ValueError as exc:
            problems.append(str(exc))
overrides = {
    name: value
    for name, value in values.items()
    if value != next(f.default for f in fields if f.name == name)
}
if picked != CUSTOM or model:
    overrides["model"] = model


# -- expected cost --------------------------------------------------------------------------------
@st.cache_data(ttl=120, show_spinner=False)
def device_speed(device: str) -> estimate.DeviceSpeed:
    """The device's speed against the cost calibration (a short matmul probe), kept two minutes."""
    return estimate.DeviceSpeed.measure(device)


@st.cache_data(show_spinner=False, max_entries=8)
def data_stats(fingerprint: str, _dataset: object) -> estimate.DataStats:
    return estimate.DataStats.from_dataset(_dataset)


expected = None
try:
    expected = estimate.estimate_run(
        strategy,
        data_stats(dataset.fingerprint, dataset),
        overrides,
        device_speed(catalog.select_device()),
    )
except (OSError, ValueError, TypeError) as exc:
    st.caption(f"No time estimate for these settings: {ui_state.plain(exc)}")
confirmed = True
if expected is not None:
    st.markdown(f"**Expected on this device:** {expected.summary()}")
    st.caption(f"From {expected.basis}.")
    if expected.needs_confirmation:
        minutes = max(1, round(expected.seconds / 60))
        st.warning(
            f"This run is expected to take about {minutes} minutes, during which the device "
            "runs nothing else. Lower max_train or epochs (Advanced settings) for a quicker one."
        )
        confirmed = st.checkbox(
            f"Yes, start a run of about {minutes} minutes", key=f"run_confirm_{strategy.value}"
        )

if st.button(
    "Start run",
    type="primary",
    key="run_submit",
    disabled=(picked == CUSTOM and not model) or not confirmed,
):
    if problems:
        st.error(ui_state.plain(" ".join(problems)))
    else:
        try:
            run_id = ui_state.job_queue().submit(dataset, strategy, overrides, user=user)
        except ValueError as exc:
            st.error(f"These settings cannot run: {ui_state.plain(exc)}")
        else:
            st.session_state.my_runs.append(run_id)
            ui_state.refresh()
            st.rerun()

# -- every strategy -------------------------------------------------------------------------------
with st.expander("Run every strategy", expanded=False):
    st.caption(
        f"Queue each of the {len(strategies)} strategies that apply to {dataset.modality} data, "
        "on its default model and settings, so the Compare page sets them side by side (and "
        "shows negative transfer where the from-scratch baseline wins). The queue runs them one "
        "after another (all at once on a Ray cluster)."
    )
    each = {}
    for name in strategies:
        try:
            each[name] = estimate.estimate_run(
                name,
                data_stats(dataset.fingerprint, dataset),
                {},
                device_speed(catalog.select_device()),
            ).seconds
        except (OSError, ValueError, TypeError):
            each[name] = None
    known = [v for v in each.values() if v is not None]
    total = sum(known)
    st.markdown(
        f"**Expected on this device, in all:** about {estimate.format_duration(total)}"
        + ("" if len(known) == len(each) else f" ({len(each) - len(known)} without an estimate)")
    )
    every_confirmed = True
    if total > estimate.CONFIRM_ABOVE_SECONDS:
        every_confirmed = st.checkbox(
            f"Yes, queue about {estimate.format_duration(total)} of runs", key="run_every_confirm"
        )
    if st.button("Queue every strategy", key="run_every", disabled=not every_confirmed):
        refused = []
        for name in strategies:
            try:
                st.session_state.my_runs.append(
                    ui_state.job_queue().submit(dataset, Strategy(name), {}, user=user)
                )
            except ValueError as exc:
                refused.append(f"{LABELS[Strategy(name)]}: {exc}")
        if refused:
            st.error(ui_state.plain("Not queued: " + "; ".join(refused)))
        else:
            ui_state.refresh()
            st.rerun()

# -- jobs -----------------------------------------------------------------------------------------
st.divider()
queue = ui_state.job_queue()
busy = bool(queue.active())


@st.fragment(run_every=1.0 if busy else None)
def jobs_panel() -> None:
    """Active jobs of everyone, then this session's recent runs; a live curve chart."""
    active = queue.active()
    st.subheader("Queued and running")
    if queue.ray_address:
        st.caption(
            f"Runs go to the Ray cluster at {ui_state.plain(queue.ray_address)}, all at once; "
            "the cluster schedules them."
        )
    if not active:
        st.caption("Nothing is queued or running.")
    for state in active:
        cols = st.columns([5, 1])
        cols[0].progress(
            state.fraction,
            text=f"**{state.strategy}** for {ui_state.plain(state.user)} · {state.status} · "
            f"{ui_state.plain(state.message)}",
        )
        cols[1].button(
            "Cancel",
            key=f"run_cancel_{state.run_id}",
            on_click=queue.cancel,
            args=(state.run_id,),
            disabled=state.user != user,
            help="Stop this run"
            if state.user == user
            else f"Only {ui_state.plain(state.user)} can cancel it",
        )
    recent = list(reversed(st.session_state.my_runs[-len(strategies) :]))
    active_ids = {s.run_id for s in active}
    finished = [r for r in recent if r not in active_ids]
    if finished:
        st.subheader("Your recent runs")
    for run_id in finished:
        run = ui_state.get_run(path, run_id)
        if run is None:
            continue
        what = f"{run['strategy']} on {ui_state.plain(run['model'])} (run {run_id[:8]})"
        if run["status"] == "done":
            accuracy = run["metrics"].get("accuracy", float("nan"))
            st.success(f"{what} finished: test accuracy {accuracy:.3f}.")
            st.page_link(
                "views/detail.py",
                label="See the run's details",
                icon=":material/receipt_long:",
                query_params={"run": run_id, "user": user},
            )
        elif run["status"] in ("failed", "interrupted"):
            st.error(f"{what} {run['status']}: {ui_state.plain(run['error'])}")
        elif run["status"] == "cancelled":
            st.warning(f"{what} was cancelled.")
    shown = [s.run_id for s in active] + finished
    curves = ui_state.get_curves(path, tuple(shown)) if shown else None
    if curves is not None and not curves.empty:
        runs = ui_state.list_runs(path)
        labels = charts.run_labels(runs[runs["id"].isin(shown)])
        st.altair_chart(charts.learning_curves(curves, labels))
    if busy and not active:
        ui_state.refresh()
        st.rerun()  # the last job ended: redraw the page once, without the timer


jobs_panel()
