"""Run detail page: everything recorded about one run, its model as a download that loads
elsewhere, predictions on a new file (queued behind the runs), and delete.

The run comes from the URL (``?run=ID``) or the picker, so a link to a run can be shared. Only the
teammate who ran it can delete it; for anyone else the button is disabled and says why.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tladvisor import artifacts, charts, downloads, export, predict, ui_state
from tladvisor.data import DataError
from tladvisor.data.unlabelled import load_unlabelled
from tladvisor.strategies.base import MissingArtifact

ui_state.page_setup()


@st.fragment(run_every=1.0)
def prediction_progress(task_id: str, file_name: str) -> None:
    """The queued prediction's progress, refreshed each second; when it ends, the page once."""
    state = ui_state.job_queue().state(task_id)
    if state is not None and state.status in ("queued", "running"):
        st.progress(state.fraction, text=f"Predicting {ui_state.plain(file_name)}: {state.message}")
    else:
        st.rerun()  # the whole page, which draws the result outside this timer


def show_prediction(task_id: str, file_name: str) -> None:
    """The prediction's progress while it runs, then its result and file.

    The download button stays out of the timed fragment: a fragment redrawn every second
    replaced the button between the click and the browser's request for the file, and the
    download never came (a CI run waited 240 s for it)."""
    state = ui_state.job_queue().state(task_id)
    if state is None:
        return
    if state.status in ("queued", "running"):
        prediction_progress(task_id, file_name)
    elif state.status == "failed":
        st.error(f"Prediction failed: {ui_state.plain(state.message)}")
    elif state.result is None:  # cancelled, or ended without a result
        st.warning(f"The prediction {state.status}: {ui_state.plain(state.message)}")
    else:
        result = state.result
        said = f"{len(result.ids)} rows predicted"
        if result.accuracy is not None:
            said += f"; accuracy on the file's labels {result.accuracy:.3f}"
        st.success(said)
        for note in result.notes:
            st.caption(ui_state.plain(note))
        st.download_button(
            "Download the predictions (CSV)", downloads.on_click(result.to_csv),
            f"predictions_{task_id[5:13]}.csv", "text/csv", key="detail_predictions",
            on_click="ignore",
        )  # fmt: skip


st.title("Run detail")
path = ui_state.db_path()
runs = ui_state.list_runs(path)
if runs.empty:
    st.info("No runs yet. Start one on the **Run** page.")
    st.stop()

labels = charts.run_labels(runs)
wanted = st.query_params.get("run")
if wanted != st.session_state.get("detail_from_url"):  # a link was opened: follow it once
    st.session_state.detail_from_url = wanted
    if wanted in labels:
        st.session_state.detail_pick = wanted
    elif wanted:
        st.warning(
            f"There is no run {ui_state.plain(repr(wanted))} (it may have been deleted); "
            "pick one below."
        )
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="detail_pick")
st.query_params["run"] = st.session_state.detail_from_url = run_id
run = ui_state.get_run(path, run_id)
if run is None:
    st.info("That run was just deleted; pick another.")
    st.stop()

details = run["details"] or {}
metrics, by_split = run["metrics"], run["metrics_by_split"]
st.markdown(
    f"**{run['strategy']}** on **{ui_state.plain(run['model'])}** · data set "
    f"**{ui_state.plain(run['dataset_name'])}** · "
    f"by **{ui_state.plain(run['user_name'])}** · {run['status']} · created {run['created_at']:%Y-%m-%d %H:%M} UTC"
)
if run["status"] in ("failed", "interrupted"):
    st.error(f"This run {run['status']}: {ui_state.plain(run['error'])}")
elif run["status"] == "cancelled":
    st.warning(f"This run was cancelled: {ui_state.plain(run['error'])}")
elif run["status"] in ("queued", "running"):
    st.info("This run has not finished yet; follow it on the Run page.")

if metrics:
    shown = [m for m in ("accuracy", "macro_f1", "seconds", "peak_mem_mb", "trainable_params")]
    for col, name in zip(st.columns(len(shown)), shown, strict=True):
        value = metrics.get(name)
        col.metric(charts.label(name), "n/a" if value is None else f"{value:,.4g}")

curves = ui_state.get_curves(path, (run_id,))
if not curves.empty:
    st.altair_chart(charts.learning_curves(curves, {run_id: labels[run_id]}))

left, right = st.columns(2)
with left:
    if details.get("per_class"):
        st.subheader("Per-class scores")
        st.dataframe(pd.DataFrame(details["per_class"]), hide_index=True, key="detail_per_class")
    transfer = by_split.get("train", {})
    if transfer:
        st.subheader("Transferability (training split)")
        st.dataframe(
            pd.Series(transfer, name="score").rename(lambda k: charts.label(f"{k}@train")),
            key="detail_transfer",
        )
    forgetting = by_split.get("reference", {})
    if forgetting:
        st.subheader("Forgetting (reference sets)")
        st.dataframe(
            pd.Series(forgetting, name="value").rename(lambda k: charts.label(f"{k}@reference")),
            key="detail_forgetting",
        )
with right:
    if details.get("confusion"):
        st.altair_chart(charts.confusion_matrix(details["classes"], details["confusion"]))

with st.expander("All metrics by split"):
    table = pd.DataFrame(
        [
            {"split": s or "(none)", "metric": k, "value": v}
            for s, m in by_split.items()
            for k, v in m.items()
        ]
    )
    st.dataframe(table, hide_index=True, key="detail_all_metrics")
with st.expander("Configuration"):
    st.json(run["config"])
with st.expander("Environment: device, precision, versions, split"):
    st.markdown(
        f"Device **{ui_state.plain(run['device'] or 'n/a')}**, precision "
        f"**{ui_state.plain(run['precision'] or 'n/a')}**, backend "
        f"{ui_state.plain(run['backend'] or 'n/a')}, seed {run['seed']}; memory measured as "
        f"{ui_state.plain(details.get('memory', 'n/a'))}."
    )
    st.json({"versions": details.get("versions", {}), "split": details.get("split", {})})
notes = details.get("notes") or []
if notes:
    st.subheader("Notes")
    st.markdown("\n".join(f"- {ui_state.plain(note)}" for note in notes))
with st.expander("Timeline"):
    st.dataframe(ui_state.get_events(path, run_id), hide_index=True, key="detail_events")

st.subheader("Use this model")
try:
    stored = predict.load_run(ui_state.store(), run_id)
    stored.check_artifact()
except (predict.PredictError, MissingArtifact) as exc:
    stored = None
    st.caption(f"This run cannot predict or be exported: {ui_state.plain(exc)}")
if stored is not None:
    st.download_button(
        "Download the model (ZIP that loads without tladvisor)",
        downloads.on_click(lambda: export.export_zip(ui_state.store(), run_id)),
        f"tladvisor_{run_id[:8]}_{run['strategy']}.zip", "application/zip", key="detail_download",
        on_click="ignore",
    )  # fmt: skip
    st.caption(
        "sentence-transformers, peft or safetensors files with a README.md model card: the data "
        "set, metrics, forgetting and the code that loads them."
    )
    kind = "a CSV with a text column" if stored.modality == "text" else "a ZIP of images"
    upload = st.file_uploader(
        f"Predict on a new file: {kind} (a label column, or class folders, adds accuracy)",
        type=["csv", "tsv", "txt"] if stored.modality == "text" else ["zip"],
        key="detail_predict_file",
    )
    if upload is not None and st.button("Predict", key="detail_predict"):
        try:
            rows = load_unlabelled(upload, stored.modality)
        except DataError as exc:
            st.error(ui_state.plain(exc))
        else:
            task = ui_state.job_queue().submit_task(
                "predict", predict.prediction_task(ui_state.store(), run_id, rows),
                user=ui_state.current_user() or "anonymous",
            )  # fmt: skip
            st.session_state.detail_predict_task = (run_id, task, upload.name)
    pending = st.session_state.get("detail_predict_task")
    if pending and pending[0] == run_id:
        show_prediction(pending[1], pending[2])

user = ui_state.current_user()
owner = run["user_name"]
if user == owner:
    why = "Delete this run with its metrics and curves, for everyone."
elif user:
    why = (
        f"Only {ui_state.plain(owner)} can delete this run; you are working as "
        f"{ui_state.plain(user)}."
    )
else:
    why = f"Say who you are in the sidebar; only {ui_state.plain(owner)} can delete this run."
if st.button("Delete run", key="detail_delete", disabled=user != owner, help=why):
    try:
        artifacts.delete_run(ui_state.store(), run_id, user=user)
    except (PermissionError, LookupError, RuntimeError) as exc:
        st.error(ui_state.plain(exc))
    else:
        ui_state.refresh()
        del st.query_params["run"]
        st.session_state.pop("detail_pick", None)
        st.toast(f"Deleted run {run_id[:8]}.")
        st.rerun()
if user != owner:
    st.caption(why)
