"""Compare page: every teammate's runs side by side, filtered, charted and exportable.

All numbers come from the store through ``tladvisor.ui_state``'s cached reads; the charts are
built by ``tladvisor.charts``. Hover a point for who ran it, the strategy, the model and the run id.
"""

from __future__ import annotations

import streamlit as st

from tladvisor import advice_check, artifacts, charts, downloads, ui_state

ui_state.page_setup()

TABLE_COLUMNS = [
    "id", "user_name", "dataset_name", "strategy", "model", "status", "accuracy", "macro_f1",
    "seconds", "peak_mem_mb", "trainable_params", "train_per_class", "created_at",
]  # fmt: skip

st.title("Compare runs")
path = ui_state.db_path()
everything = ui_state.list_runs(path)
if everything.empty:
    st.info("No runs yet. Start one on the **Run** page; your teammates' runs appear here too.")
    st.page_link("views/run.py", label="Go to Run", icon=":material/play_circle:")
    st.stop()


def options(column: str) -> list[str]:
    return sorted(everything[column].dropna().astype(str).unique())


with st.container(border=True):
    cols = st.columns([2, 2, 2, 2, 1.3])
    datasets = cols[0].multiselect("Data set", options("dataset_name"), key="compare_dataset")
    people = cols[1].multiselect("Person", options("user_name"), key="compare_user")
    strategies = cols[2].multiselect("Strategy", options("strategy"), key="compare_strategy")
    models = cols[3].multiselect("Model", options("model"), key="compare_model")
    only_done = cols[4].checkbox(
        "Done only", value=True, key="compare_done", help="Only runs that finished"
    )

runs = ui_state.list_runs(
    path, tuple(people), tuple(datasets), tuple(strategies), tuple(models),
    ("done",) if only_done else (),
)  # fmt: skip
if runs.empty:
    st.info("No run matches these filters. Clear a filter above, or untick 'Done only'.")
    st.stop()
done = runs[runs["status"] == "done"]
used, holding = artifacts.disk_used(ui_state.store())
st.caption(
    f"{len(runs)} run(s) by {runs['user_name'].nunique()} person(s) on "
    f"{runs['dataset_name'].nunique()} data set(s); {len(done)} finished. Saved models take "
    f"{used / 2**20:,.1f} MB on disk ({holding} run(s)); deleting a run deletes its files."
)


def present(columns: tuple[str, ...]) -> list[str]:
    """The metric columns at least one shown run has."""
    return [c for c in columns if c in done and done[c].notna().any()]


if done.empty:
    st.info("None of these runs has finished yet, so there is nothing to chart.")
else:
    metric = st.radio(
        "Quality metric", ["accuracy", "macro_f1"], horizontal=True, key="compare_metric",
        format_func=charts.label,
    )  # fmt: skip
    left, right = st.columns(2)
    left.altair_chart(charts.metric_by_strategy(done, metric), width="stretch")
    with right:
        cost = st.selectbox(
            "Cost", present(charts.COST_METRICS) or ["seconds"], key="compare_cost",
            format_func=charts.label,
        )  # fmt: skip
        st.altair_chart(charts.cost_vs_accuracy(done, cost, metric), width="stretch")

    left, right = st.columns(2)
    with left:
        scores = present(charts.TRANSFER_METRICS)
        if scores:
            score = st.selectbox(
                "Transferability score", scores, key="compare_score", format_func=charts.label
            )
            st.altair_chart(
                charts.transferability_vs_accuracy(done, score, metric), width="stretch"
            )
        else:
            st.caption("No transferability scores among these runs.")
    with right:
        measures = present(charts.FORGETTING_METRICS)
        baselines = [s for s in ("feature_extraction", "scratch") if s in set(done["strategy"])]
        if measures and baselines:
            c1, c2 = st.columns(2)
            forgetting = c1.selectbox(
                "Forgetting measure", measures, key="compare_forgetting", format_func=charts.label
            )
            baseline = c2.selectbox("Baseline", baselines, key="compare_baseline")
            st.altair_chart(
                charts.learning_vs_forgetting(done, forgetting, baseline, metric), width="stretch"
            )
        else:
            st.caption(
                "Learning vs forgetting needs a run that changes the weights (fine-tuning, LoRA) "
                "and a feature-extraction or from-scratch baseline on the same data set."
            )

    left, right = st.columns(2)
    with left:
        if "train_per_class" in done:
            st.altair_chart(charts.data_efficiency(done, metric), width="stretch")
    with right:
        labels = charts.run_labels(done)
        picked = st.selectbox(
            "Confusion matrix of", list(labels), format_func=labels.get, key="compare_confusion"
        )
        details = done.set_index("id").at[picked, "details"] or {}
        if details.get("confusion"):
            st.altair_chart(charts.confusion_matrix(details["classes"], details["confusion"]))

    check = advice_check.check_advice(
        done, ui_state.datasets_by_name(path), gpu_memory_gb=ui_state.gpu_memory_gb(), metric=metric
    )
    if not check.empty and (check["strategies_measured"] > 1).any():
        st.altair_chart(charts.advice_check(check))
        st.caption(
            "The advisor's pick for a task of each size (its counts, and the probe accuracy a "
            "feature-extraction run logged there) against the best strategy these runs measured. "
            "Domain unusualness is not stored with runs, so the rules that need it are silent "
            "here; `make bench` measures the full version (BENCHMARKS.md, part 2)."
        )

    chosen = st.multiselect(
        "Learning curves of", list(labels), default=list(labels)[:3], format_func=labels.get,
        key="compare_curves",
    )  # fmt: skip
    curves = ui_state.get_curves(path, tuple(chosen)) if chosen else None
    if curves is not None and not curves.empty:
        st.altair_chart(charts.learning_curves(curves, labels))
    elif chosen:
        st.caption("These runs logged no curve (training-free and linear-probe runs have none).")

ranking = advice_check.model_ranking_check(done) if not done.empty else None
if ranking is not None and not ranking.empty:
    st.subheader("Did LogME rank the models right?")
    st.caption(
        "Data sets and strategies run with two or more models: each model's LogME on its "
        "training rows against its measured test accuracy (rank 1 = best). Where the ranks "
        "agree, scoring alone (Choose a model) would have picked the same model."
    )
    st.dataframe(ranking, hide_index=True, width="stretch", key="compare_model_ranking")

st.subheader("Runs")
shown = [c for c in TABLE_COLUMNS if c in runs]
st.dataframe(runs[shown], hide_index=True, key="compare_table")
left, right, _ = st.columns([1, 1, 4])
# Made on the click, for this signed-in session, and gone from the server soon after.
left.download_button(
    "Download CSV", downloads.on_click(lambda: ui_state.csv_bytes(runs)), "tladvisor_runs.csv",
    "text/csv", key="compare_csv", on_click="ignore",
)  # fmt: skip
right.download_button(
    "Download Parquet", downloads.on_click(lambda: ui_state.parquet_bytes(runs)),
    "tladvisor_runs.parquet", "application/vnd.apache.parquet", key="compare_parquet",
    on_click="ignore",
)  # fmt: skip
