"""Advise page: the recommended strategy for the loaded data set, with every reason and source.

The measured profile answers what the data can; the questions below answer what it cannot. Each
change reruns ``tladvisor.decision.recommend``, which is pure and fast, so the advice is live.
"""

from __future__ import annotations

import streamlit as st

from tladvisor import advice as advising
from tladvisor import charts, ui_state
from tladvisor.decision import TRADE_MAX
from tladvisor.strategies import LABELS, Strategy

ui_state.page_setup()

UNKNOWN = "Don't know"
TRI_STATE = {UNKNOWN: None, "Yes": True, "No": False}

st.title("Advice")
dataset, measured = st.session_state.dataset, st.session_state.measured
if dataset is None or measured is None:
    st.info("Load and profile a data set on the **Upload & profile** page first.")
    st.page_link("views/upload.py", label="Go to Upload & profile", icon=":material/upload_file:")
    st.stop()

answers = st.session_state.answers


def tri_state(name: str, question: str, help: str) -> None:
    current = next(k for k, v in TRI_STATE.items() if v == answers[name])
    picked = st.radio(
        question, list(TRI_STATE), index=list(TRI_STATE).index(current), horizontal=True,
        help=help, key=f"advise_{name}",
    )  # fmt: skip
    answers[name] = TRI_STATE[picked]


with st.expander("What the data cannot tell: your answers update the advice", expanded=True):
    first, second = st.columns(2)
with first:
    tri_state(
        "format_critical",
        "Is format or style consistency of the output critical?",
        "Seed 003: yes points to fine-tuning (LoRA for LLMs); no means prompting may be enough.",
    )
    tri_state(
        "frequent_updates",
        "Will you update the model often?",
        "Seed 003: yes keeps it modular (one LoRA adapter per use case).",
    )
with second:
    answers["needs_new_knowledge"] = st.checkbox(
        "The task needs facts the model never saw",
        value=answers["needs_new_knowledge"],
        key="advise_needs_new_knowledge",
        help="Seed 004: fine-tuning does not add knowledge; retrieval does.",
    )
    answers["latency_sensitive"] = st.checkbox(
        "Inference latency or cost matters",
        value=answers["latency_sensitive"],
        key="advise_latency_sensitive",
        help="Seed 003: long prompts are slow and costly at inference; a trained model is not.",
    )
    if dataset.modality == "image":
        answers["has_clip"] = st.checkbox(
            "A CLIP checkpoint is on this machine",
            value=answers["has_clip"],
            key="advise_has_clip",
            help="Zero-shot image classification is much stronger with CLIP than with ConSE.",
        )
    detected = ui_state.gpu_memory_gb()
    if answers["gpu_memory_gb"] is None:
        answers["gpu_memory_gb"] = detected
    answers["gpu_memory_gb"] = st.number_input(
        "GPU memory for training (GiB, 0 = CPU only)",
        min_value=0.0,
        max_value=1024.0,
        value=float(answers["gpu_memory_gb"]),
        step=8.0,
        format="%g",
        key="advise_gpu_memory_gb",
        help=f"This server sees {detected:g} GiB of GPU memory."
        if detected
        else "This server has no GPU.",
    )

best_accuracy = st.toggle(
    "Best accuracy whatever the cost",
    key="advise_best_accuracy",
    help="Off (default): when a cheaper strategy's expected accuracy lies within the interval of "
    f"the most accurate one and at most {100 * TRADE_MAX:g} point below it, recommend the "
    "cheaper one. On: always the most accurate.",
)
profile = measured.to_task_profile(**answers)
costs_key = f"advise_costs_{dataset.fingerprint}"
if costs_key not in st.session_state:  # estimates load no model, but tokenise a sample
    st.session_state[costs_key] = advising.strategy_costs(dataset)
rec = advising.advise(
    profile,
    preference="accuracy" if best_accuracy else "balanced",
    costs=st.session_state[costs_key],
    ranking=st.session_state.rankings.get(dataset.fingerprint),
)
st.session_state.recommended = rec.strategy.value
advice = rec.to_dict()

st.success(f"### Recommended: {advice['label']} with {ui_state.plain(advice['model'])}")
if advice["model_reasons"]:
    for line in advice["model_reasons"]:
        st.caption(line)
else:
    st.caption(
        "The model is the strategy's default: rank the zoo on your data on the Choose a model "
        "page and the advice names the model that suits it."
    )
    st.page_link("views/models.py", label="Choose a model", icon=":material/model_training:")
expected, cost = advice["expected_accuracy"], advice["expected_cost"]
if expected:
    seconds = f", about {cost['seconds']:.0f} s on this device" if cost else ""
    st.markdown(
        f"Expected accuracy **{expected['point']:.2f}** (80% interval {expected['low']:.2f}-"
        f"{expected['high']:.2f}){seconds}. "
        + (
            "Decided by the measurements on your data."
            if advice["decided_by"] == "predictions"
            else "Decided by the framework's rules: nothing measured could be read on a curve."
        )
    )
if advice["expected_accuracy_note"]:
    st.caption(advice["expected_accuracy_note"])
if st.button("Run the recommended strategy", type="primary", key="advise_run"):
    st.session_state.run_strategy = rec.strategy.value
    st.session_state.run_model = advice["model"]
    st.switch_page("views/run.py")

left, right = st.columns([3, 2])
with left:
    st.subheader("Why")
    for reason in advice["reasons"]:
        st.markdown(f"- {reason['text']}  \n  `{reason['rule']}` · _{reason['source']}_")
with right:
    st.altair_chart(
        charts.expected_outcomes(advice["alternatives"], advice["strategy"]), width="stretch"
    )
    st.altair_chart(
        charts.recommendation_scores(advice["alternatives"], advice["strategy"]), width="stretch"
    )
    for alt in advice["alternatives"][1:4]:
        st.caption(
            f"**{LABELS[Strategy(alt['strategy'])]}** ({alt['score']:.2f}): {alt['summary']}"
        )

if advice["advice"]:
    st.subheader("Also consider (not a run)")
    for item in advice["advice"]:
        with st.expander(item["title"]):
            st.markdown(item["text"])
            st.caption(f"`{item['key']}` · {item['source']}")

st.subheader("How much data this task needs")
st.markdown(advice["data_needs"])
