"""Choose a model page: the zoo ranked on the loaded data set, and the top candidates queued.

Ranking encodes up to ``advice.RANK_ROWS`` rows with every installed candidate (a minute or so
on a CPU for the large text encoder), so it runs on a click and is kept for the session; the
Advise page then names the model from it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tladvisor import advice as advising
from tladvisor import charts, ui_state
from tladvisor.model_choice import KINDS_FOR, choose_model
from tladvisor.strategies import LABELS, Strategy, get

ui_state.page_setup()

st.title("Choose a model")
dataset = st.session_state.dataset
if dataset is None:
    st.info("Load a data set on the **Upload & profile** page first.")
    st.page_link("views/upload.py", label="Go to Upload & profile", icon=":material/upload_file:")
    st.stop()

rankings = st.session_state.rankings
st.markdown(
    f"Every installed pretrained model for {dataset.modality} data is scored on up to "
    f"{advising.RANK_ROWS} of your rows by LogME, H-score, kNN and a cross-validated linear probe "
    "(LEEP and NCE for models with an ImageNet head), with no training. Higher is better."
)
if st.button("Rank the models", type="primary", key="models_rank"):
    with st.spinner("Encoding your rows with every candidate..."):
        rankings[dataset.fingerprint] = advising.rank_for_advice(dataset)
ranking = rankings.get(dataset.fingerprint)
if ranking is None:
    st.stop()

# The ranking speaks to strategies that train on pretrained features; the advised one first.
ranked_for = [s for s in Strategy if s.value in KINDS_FOR and get(s).supports(dataset.modality)]
advised = st.session_state.get("recommended")
strategy = st.selectbox(
    "Strategy to choose the model for",
    ranked_for,
    index=next((i for i, s in enumerate(ranked_for) if s.value == advised), 0),
    format_func=lambda s: LABELS[s] + ("  (advised)" if s.value == advised else ""),
    key="models_strategy",
)
best_accuracy = st.session_state.get("advise_best_accuracy", False)
choice = choose_model(ranking, strategy.value, "accuracy" if best_accuracy else "balanced")
scored = [r for r in ranking if "error" not in r]
table = pd.DataFrame(
    [
        {
            "rank": r["rank"],
            "model": r["model"],
            **{k: round(v, 4) for k, v in r["scores"].items()},
            "ms an item": r["cost"]["ms_per_item"],
            "parameters (M)": round((r["cost"]["params"] or 0) / 1e6, 1),
            "scoring seconds": r["seconds"]["total"],
        }
        for r in scored
    ]
)
st.dataframe(table, hide_index=True, width="stretch")
for r in ranking:
    if "error" in r:
        st.caption(f"{ui_state.plain(r['model'])} was not scored: {ui_state.plain(r['error'])}")
st.altair_chart(charts.model_scores(scored, choice.model), width="stretch")

st.subheader(f"For {LABELS[strategy]}")
if choice.model:
    st.success(f"Advised model: **{ui_state.plain(choice.model)}**")
for line in choice.reasons:
    st.markdown(f"- {line}")
st.caption(choice.source)

fits = [c["model"] for c in choice.to_dict()["candidates"]]
if fits:
    k = st.number_input("Candidates to run", 1, len(fits), min(2, len(fits)), key="models_k")
    if st.button(f"Queue the top {k} with {LABELS[strategy]}", key="models_queue"):
        user = st.session_state.user or "anonymous"
        for name in fits[: int(k)]:
            run_id = ui_state.job_queue().submit(dataset, strategy, {"model": name}, user=user)
            st.session_state.my_runs.append(run_id)
        ui_state.refresh()
        st.success(
            f"Queued {int(k)} run(s). The Compare page shows their measured accuracy beside this "
            "ranking once they finish."
        )
        st.page_link("views/compare.py", label="Go to Compare", icon=":material/monitoring:")
