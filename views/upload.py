"""Upload & profile page: load a labelled data set (upload or bundled sample), preview it and
measure its profile. The loaded ``Dataset`` and its profile go to session state for the other pages.

Loading never writes anything; bad input shows the loader's own message (what was wrong, the fix).
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from tladvisor import charts, data, ui_state
from tladvisor.unusualness import SIGNAL_LABELS

ui_state.page_setup()

SOURCES = {
    "sample": "A bundled sample",
    "text": "Text CSV",
    "image_csv": "Images: CSV + ZIP",
    "image_zip": "Images: folder-per-class ZIP",
}
SAMPLE_LABELS = {
    "rotten_tomatoes": "Rotten Tomatoes: 2,000 movie-review snippets, positive / negative (text)",
    "mnist_digits": "MNIST digits: 5,000 handwritten digits, 10 classes (images)",
}


def draw_profile(p: dict) -> None:
    """The measured profile: balance, duplicates, lengths or sizes, unusualness, probe, notes."""
    st.subheader("Measured profile")
    dup = p["duplicates"]
    cols = st.columns(4)
    cols[0].metric(
        "Imbalance (largest / smallest)", f"{p['imbalance_ratio']:.2f}",
        help="1 means balanced; above 3, watch macro-F1 rather than accuracy.",
    )  # fmt: skip
    cols[1].metric(
        "Duplicate rows", f"{dup['duplicate_rows']:,}",
        help=f"{dup['duplicate_items']:,} items appear more than once; duplicates can leak "
        "between the training and test splits and flatter the scores.",
    )  # fmt: skip
    cols[2].metric(
        "Items with conflicting labels", f"{dup['conflicting_items']:,}",
        help=f"The same item labelled differently ({dup['conflicting_rows']:,} rows): label noise.",
    )  # fmt: skip
    if p["text_lengths"]:
        t = p["text_lengths"]
        tokens = "" if t["tokens_mean"] is None else f", {t['tokens_mean']:.0f} tokens"
        cols[3].metric(
            "Mean text length", f"{t['chars_mean']:.0f} chars{tokens}",
            help=f"95th percentile: {t['chars_p95']:.0f} characters"
            + ("" if t["tokens_p95"] is None else f", {t['tokens_p95']:.0f} tokens"),
        )  # fmt: skip
        if t["n_truncated"]:
            st.warning(
                f"{t['n_truncated']:,} texts are longer than the encoder's "
                f"{t['context_tokens']} tokens and will be cut when encoded."
            )
    elif p["image_sizes"]:
        s = p["image_sizes"]
        cols[3].metric(
            "Mean image size", f"{s['width_mean']:.0f} x {s['height_mean']:.0f}",
            help=f"Smallest side {s['min_side']} px; {s['greyscale_fraction']:.0%} greyscale.",
        )  # fmt: skip

    u = p["unusualness"]
    if u is None:
        st.caption(
            "Domain unusualness was not measured (tick 'Also measure with the pretrained models' "
            "and load again); the advice then treats it as unknown."
        )
    else:
        st.markdown(f"**Domain unusualness: {u['score']:.2f} ({u['level']})**")
        st.progress(min(max(u["score"], 0.0), 1.0))
        ordinary = "ordinary English" if p["modality"] == "text" else "natural photos"
        st.caption(
            f"0 means the data looks like what the pretrained models learnt from ({ordinary}); "
            "1 means it looks like the unusual reference sets. Above about 0.6 the advice leans "
            "towards adapting the backbone (fine-tuning, domain pre-training) rather than "
            "freezing it."
        )
        with st.expander("How it was measured"):
            st.markdown(u["explanation"])
            st.dataframe(
                [
                    {"signal": SIGNAL_LABELS.get(k, k), "measured": v,
                     "scaled 0-1": u["scaled"].get(k)}
                    for k, v in u["signals"].items()
                ],
                hide_index=True, key="upload_signals",
            )  # fmt: skip
    probe = p["probe"]
    if probe:
        intervals = probe.get("intervals") or {}

        def interval(name: str) -> str:
            low_high = intervals.get(name)
            return f" (80% interval {low_high[0]:.2f}-{low_high[1]:.2f})" if low_high else ""

        st.markdown(
            f"**Few-shot probe** on {probe['model']} features, {probe['shots_per_class']} "
            f"examples a class: kNN {probe['knn_accuracy']:.2f}, logistic regression "
            f"{probe['linear_accuracy']:.2f}; best{interval('probe')} (majority class: "
            f"{probe['chance']:.2f}, "
            + (
                f"cross-validated over {probe['n_eval']} rows)."
                if probe.get("cross_validated")
                else f"{probe['n_eval']} held-out rows)."
            )
        )
        all_rows = probe["n_eval"] + (0 if probe.get("cross_validated") else probe["n_train"])
        measured = []
        if probe.get("baseline_accuracy") is not None:
            measured.append(
                f"a no-transfer baseline (TF-IDF words or raw pixels) on the same rows scored "
                f"{probe['baseline_accuracy']:.2f}{interval('baseline')}"
            )
        if probe.get("zero_shot_accuracy") is not None:
            measured.append(
                f"zero-shot (no labels used: label-name similarity for text, ConSE for images) "
                f"scored {probe['zero_shot_accuracy']:.2f}{interval('zero_shot')} on all "
                f"{all_rows} probed rows"
            )
        if probe.get("prompting_accuracy") is not None:
            measured.append(
                f"prompting the packaged language model (no labels used) scored "
                f"{probe['prompting_accuracy']:.2f}{interval('prompting')} on "
                f"{probe['prompting_rows']} of them"
            )
        if measured:
            st.markdown("For comparison, " + "; ".join(measured) + ".")
    for note in p["notes"]:
        st.caption(f"Note: {ui_state.plain(note)}")


st.title("Upload and profile a data set")
hint = st.empty()  # filled at the end, once it is known whether a data set got loaded

source = st.radio(
    "Where is the data?", list(SOURCES), format_func=SOURCES.get, horizontal=True,
    key="upload_source",
)  # fmt: skip
load = None  # a function that loads the chosen data, set when the user presses a Load button

if source == "sample":
    name = st.selectbox(
        "Sample", data.sample_names(), key="upload_sample",
        format_func=lambda n: SAMPLE_LABELS.get(n, n),
    )  # fmt: skip
    if st.button("Load sample", type="primary", key="upload_load_sample"):
        load = partial(data.load_sample, name)
elif source == "text":
    file = st.file_uploader(
        "A CSV with one text column and one label column (header row first)",
        type=["csv", "tsv", "txt"], key="upload_text_file",
    )  # fmt: skip
    if file is not None:
        try:
            columns = ui_state.csv_columns(file)
        except data.DataError as exc:
            st.error(ui_state.plain(exc))
            st.stop()
        left, right = st.columns(2)
        text_col = left.selectbox(
            "Text column", columns, index=ui_state.guess_column(columns, data.TEXT_NAMES),
            key=f"upload_text_col_{file.file_id}",
        )  # fmt: skip
        label_col = right.selectbox(
            "Label column", columns,
            index=ui_state.guess_column(columns, data.LABEL_NAMES, exclude=text_col),
            key=f"upload_label_col_{file.file_id}",
        )  # fmt: skip
        if st.button("Load", type="primary", key="upload_load_text"):
            load = partial(data.load_text_csv, file, text_col=text_col, label_col=label_col)
elif source == "image_csv":
    left, right = st.columns(2)
    table = left.file_uploader(
        "CSV: an image file-name column and a label column", type=["csv", "tsv", "txt"],
        key="upload_image_table",
    )  # fmt: skip
    images = right.file_uploader(
        "ZIP with the images the CSV names", type=["zip"], key="upload_image_archive"
    )
    if table is not None and images is not None:
        try:
            columns = ui_state.csv_columns(table)
        except data.DataError as exc:
            st.error(ui_state.plain(exc))
            st.stop()
        left, right = st.columns(2)
        image_col = left.selectbox(
            "Image file-name column", columns,
            index=ui_state.guess_column(columns, data.IMAGE_NAMES),
            key=f"upload_image_col_{table.file_id}",
        )  # fmt: skip
        label_col = right.selectbox(
            "Label column", columns,
            index=ui_state.guess_column(columns, data.LABEL_NAMES, exclude=image_col),
            key=f"upload_image_label_{table.file_id}",
        )  # fmt: skip
        if st.button("Load", type="primary", key="upload_load_image_csv"):
            load = partial(
                data.load_image_csv, table, images, image_col=image_col, label_col=label_col
            )
else:
    archive = st.file_uploader(
        "ZIP with one folder per class (cats/001.jpg, dogs/002.jpg, ...)", type=["zip"],
        key="upload_image_zip",
    )  # fmt: skip
    if archive is not None and st.button("Load", type="primary", key="upload_load_image_zip"):
        load = partial(data.load_image_zip, archive)

with_models = st.checkbox(
    "Also measure with the pretrained models: domain unusualness and a few-shot probe (loads "
    "MiniLM and SmolLM2; from seconds to a few minutes on a CPU the first time)",
    value=True, key="upload_with_models",
)  # fmt: skip

if load is not None:
    try:
        with st.spinner("Reading the data..."):
            dataset = load()
    except data.DataError as exc:
        st.error(ui_state.plain(exc))
        st.stop()
    with st.spinner("Measuring the data set (counts, balance, duplicates, domain unusualness)..."):
        measured = ui_state.measured_profile(dataset.fingerprint, with_models, dataset)
    st.session_state.dataset, st.session_state.measured = dataset, measured
    st.session_state.run_strategy = None

dataset, measured = st.session_state.dataset, st.session_state.measured
if dataset is None:
    hint.info(
        "New here? Load the **Rotten Tomatoes** sample below to see the whole journey, or upload "
        "your own labelled data."
    )
    st.stop()

st.divider()
st.header(ui_state.plain(dataset.name))
cols = st.columns(4)
counts = dataset.class_counts
cols[0].metric("Examples", f"{len(dataset):,}")
cols[1].metric("Classes", len(counts))
cols[2].metric("Smallest class", f"{min(counts.values()):,}")
cols[3].metric("Kind", dataset.modality)
for note in dataset.notes:
    st.caption(f"Note: {ui_state.plain(note)}")
lookalikes = any("differ only by case" in note for note in dataset.notes)
if lookalikes and st.button("Merge look-alike labels", key="upload_merge_labels"):
    dataset = data.merge_lookalikes(dataset)
    with st.spinner("Measuring the merged data set..."):
        measured = ui_state.measured_profile(dataset.fingerprint, with_models, dataset)
    st.session_state.dataset, st.session_state.measured = dataset, measured
    st.rerun()

left, right = st.columns([3, 2])
with left:
    st.subheader("Preview")
    if dataset.modality == "text":
        st.dataframe(
            {"text": dataset.items[:8], "label": dataset.labels[:8]},
            hide_index=True, key="upload_preview",
        )  # fmt: skip
    else:
        first = {}
        for index, label in enumerate(dataset.labels):
            first.setdefault(label, index)
        shown = list(first.values())[:8]
        st.image(
            [dataset.items[i] for i in shown],
            caption=[ui_state.plain(dataset.labels[i]) for i in shown],
            width=96,
        )
with right:
    st.altair_chart(charts.class_balance(counts), width="stretch")

if measured is not None:
    draw_profile(measured.to_dict())

st.page_link("views/advise.py", label="Get advice for this data set", icon=":material/lightbulb:")
