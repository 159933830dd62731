"""Altair chart builders for the dashboard: pandas DataFrames from the store in, charts out.

Each builder takes the frame ``Store.list_runs`` (or ``get_curves``) returns, keeps only the
columns it draws, and returns an ``alt.Chart`` (or layer) with tooltips naming the run: who ran
it, which strategy and model, and its id. No Streamlit here, so every chart is testable alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

METRIC_LABELS = {
    "accuracy": "Accuracy (test)",
    "macro_f1": "Macro-F1 (test)",
    "seconds": "Wall time (s)",
    "peak_mem_mb": "Peak memory (MB)",
    "trainable_params": "Trainable parameters",
    "total_params": "Total parameters",
    "logme@train": "LogME",
    "knn_accuracy@train": "kNN accuracy",
    "linear_probe_accuracy@train": "Linear-probe accuracy",
    "h_score@train": "H-score",
    "leep@train": "LEEP",
    "nce@train": "NCE",
    "cka@reference": "CKA to the pretrained model (1 = unchanged)",
    "weight_drift@reference": "Weight drift (relative L2)",
    "reference_drop@reference": "Drop on the reference task",
    "train_per_class": "Labelled examples per class (train)",
    "n_train": "Training examples",
}
COST_METRICS = ("seconds", "peak_mem_mb", "trainable_params")
TRANSFER_METRICS = ("logme@train", "knn_accuracy@train", "h_score@train", "leep@train", "nce@train")
FORGETTING_METRICS = ("cka@reference", "weight_drift@reference", "reference_drop@reference")
# Training-free strategies: drawn as horizontal rules on the data-efficiency chart.
TRAINING_FREE = ("zero_shot", "prompting")
TOOLTIP_COLUMNS = ("user_name", "strategy", "model", "dataset_name", "id")
# Pixels per bar of a horizontal bar chart. Discrete axes are sized by step: Streamlit's "fit"
# autosizing would squeeze a fixed pixel height (title and axes included) to a sliver.
BAR_STEP = 26


def label(metric: str) -> str:
    """The axis title of a metric column (its own name when unknown)."""
    return METRIC_LABELS.get(metric, metric)


def _tooltips(extra: Sequence[str]) -> list[alt.Tooltip]:
    tips = [
        alt.Tooltip("user_name:N", title="user"),
        alt.Tooltip("strategy:N", title="strategy"),
        alt.Tooltip("model:N", title="model"),
        alt.Tooltip("dataset_name:N", title="data set"),
        alt.Tooltip("id:N", title="run id"),
    ]
    return tips + [alt.Tooltip(f"{c}:Q", title=label(c), format=".4g") for c in extra]


def _frame(runs: pd.DataFrame, numeric: Sequence[str]) -> pd.DataFrame:
    """The tooltip columns plus ``numeric`` (missing ones as NaN), rows with any NaN dropped."""
    out = pd.DataFrame(index=runs.index)
    for column in TOOLTIP_COLUMNS:
        out[column] = runs[column].astype(str) if column in runs else ""
    for column in numeric:
        out[column] = (
            pd.to_numeric(runs[column], errors="coerce") if column in runs else float("nan")
        )
    return out.dropna(subset=list(numeric)).reset_index(drop=True)


def metric_by_strategy(runs: pd.DataFrame, metric: str = "accuracy") -> alt.LayerChart:
    """Mean ``metric`` per strategy as bars, every run as a point on top (hover for details)."""
    df = _frame(runs, [metric])
    x = alt.X("strategy:N", title="Strategy", sort="-y", axis=alt.Axis(labelAngle=-30))
    bars = (
        alt.Chart(df)
        .mark_bar(opacity=0.35)
        .encode(x=x, y=alt.Y(f"mean({metric}):Q", title=label(metric)), color="strategy:N")
    )
    points = (
        alt.Chart(df)
        .mark_circle(size=70)
        .encode(
            x=alt.X("strategy:N", sort="-y"),
            y=alt.Y(f"{metric}:Q"),
            color=alt.Color("strategy:N", legend=None),
            tooltip=_tooltips([metric]),
        )
    )
    return alt.layer(bars, points).properties(title=f"{label(metric)} by strategy", height=320)


def pareto_front(df: pd.DataFrame, cost: str, metric: str) -> pd.DataFrame:
    """Rows no other row beats: none has lower-or-equal cost and strictly higher ``metric``
    (or equal metric at strictly lower cost). Sorted by cost; ties keep one row each."""
    data = df.dropna(subset=[cost, metric]).sort_values([cost, metric], ascending=[True, False])
    keep, best = [], float("-inf")
    for index, value in data[metric].items():
        if value > best:
            keep.append(index)
            best = value
    return data.loc[keep]


def cost_vs_accuracy(
    runs: pd.DataFrame, cost: str = "seconds", metric: str = "accuracy"
) -> alt.LayerChart:
    """``metric`` against ``cost`` on a log axis, with the Pareto front as a step line.

    A log scale cannot show a cost of 0 (training-free runs have no trainable parameters); those
    runs are left out and the subtitle says how many.
    """
    df = _frame(runs, [cost, metric])
    hidden = int((df[cost] <= 0).sum())
    df = df[df[cost] > 0]
    front = pareto_front(df, cost, metric)
    x = alt.X(f"{cost}:Q", title=f"{label(cost)} (log scale)", scale=alt.Scale(type="log"))
    y = alt.Y(
        f"{metric}:Q",
        title=label(metric),
        scale=alt.Scale(zero=False),
        axis=alt.Axis(format=".3~f"),
    )
    points = (
        alt.Chart(df)
        .mark_circle(size=80)
        .encode(x=x, y=y, color="strategy:N", tooltip=_tooltips([metric, cost]))
    )
    line = (
        alt.Chart(front)
        .mark_line(interpolate="step-after", color="#444", strokeDash=[4, 3])
        .encode(x=x, y=y)
    )
    subtitle = ["Dashed: the Pareto front (nothing is both cheaper and more accurate)"]
    if hidden:
        subtitle.append(f"{hidden} run(s) with {label(cost).lower()} = 0 not shown on a log axis")
    title = alt.Title(f"{label(metric)} vs {label(cost).lower()}", subtitle=subtitle)
    return alt.layer(line, points).properties(title=title, height=340)


def transferability_vs_accuracy(
    runs: pd.DataFrame, score: str = "logme@train", metric: str = "accuracy"
) -> alt.Chart:
    """A transferability score against the accuracy the run then reached, with Spearman's rho
    over the runs in the subtitle (does the score rank the strategies/models as they turned out?)."""
    df = _frame(runs, [score, metric])
    rho = df[score].corr(df[metric], method="spearman") if len(df) >= 3 else float("nan")
    subtitle = (
        f"Spearman rank correlation {rho:.2f} over {len(df)} runs"
        if rho == rho
        else f"{len(df)} run(s): a rank correlation needs 3 or more"
    )
    return (
        alt.Chart(df)
        .mark_circle(size=80)
        .encode(
            x=alt.X(
                f"{score}:Q",
                title=label(score),
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".3~g"),
            ),
            y=alt.Y(
                f"{metric}:Q",
                title=label(metric),
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".3~f"),
            ),
            color="strategy:N",
            shape="model:N",
            tooltip=_tooltips([score, metric]),
        )
        .properties(title=alt.Title(f"{label(score)} vs {label(metric)}", subtitle=subtitle))
        .properties(height=340)
    )


def accuracy_gain(
    runs: pd.DataFrame, baseline: str = "feature_extraction", metric: str = "accuracy"
) -> pd.DataFrame:
    """Each run's ``metric`` minus the best ``baseline`` run on the same data set (column
    ``gain``); runs of data sets without a baseline run are dropped."""
    if runs.empty or metric not in runs:
        return runs.assign(gain=pd.Series(dtype=float))
    base = runs[runs["strategy"] == baseline].groupby("dataset_name")[metric].max()
    out = runs[runs["dataset_name"].isin(base.index)].copy()
    # A dict, not the Series: pandas' string dtype would keep the mapped values as strings.
    best = out["dataset_name"].map(base.to_dict()).astype(float)
    out["gain"] = pd.to_numeric(out[metric], errors="coerce") - best
    return out


def learning_vs_forgetting(
    runs: pd.DataFrame,
    forgetting: str = "weight_drift@reference",
    baseline: str = "feature_extraction",
    metric: str = "accuracy",
) -> alt.Chart:
    """Accuracy gained over the baseline strategy (y) against a forgetting measure (x)."""
    gained = accuracy_gain(runs, baseline, metric)
    df = _frame(gained, [forgetting, "gain", metric])
    return (
        alt.Chart(df)
        .mark_circle(size=80)
        .encode(
            x=alt.X(f"{forgetting}:Q", title=label(forgetting), scale=alt.Scale(zero=False)),
            y=alt.Y("gain:Q", title=f"{label(metric)} gain over {baseline}"),
            color="strategy:N",
            tooltip=_tooltips(["gain", forgetting, metric]),
        )
        .properties(
            title=alt.Title(
                "Learning vs forgetting",
                subtitle=f"gain = run minus the best {baseline} run on the same data set",
            ),
            height=340,
        )
    )


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """A short readable name per run id: 'strategy · model · user · id[:6]'."""
    return {
        row.id: f"{row.strategy} · {row.model} · {row.user_name} · {row.id[:6]}"
        for row in runs[["id", "strategy", "model", "user_name"]].itertuples(index=False)
    }


def learning_curves(curves: pd.DataFrame, labels: Mapping[str, str] | None = None) -> alt.Chart:
    """One panel per curve name (loss, val_accuracy, ...), one line per run, by step."""
    df = curves[["run_id", "step", "name", "value"]].copy()
    df["run"] = df["run_id"].map(dict(labels or {})).fillna(df["run_id"].str[:8])
    return (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="Step (epoch)"),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("run:N", title="Run"),
            tooltip=["run:N", "name:N", "step:Q", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(width=320, height=220)
        .facet(column=alt.Column("name:N", title=None))
        .resolve_scale(y="independent")
    )


def labels_per_class(runs: pd.DataFrame) -> pd.Series:
    """Labelled examples per class each run learned from: ``train_per_class`` for the training
    strategies, the demonstrations per class for prompting (its training rows are only a pool to
    draw them from), 0 for zero-shot."""
    if "train_per_class" in runs:
        used = pd.to_numeric(runs["train_per_class"], errors="coerce")
    else:  # no run recorded it (runs stored before it was, or imported): unknown for all
        used = pd.Series(float("nan"), index=runs.index)
    configs = runs["config"] if "config" in runs else pd.Series([None] * len(runs), runs.index)
    shots = configs.map(lambda c: float(c.get("shots", 0)) if isinstance(c, dict) else 0.0)
    used = used.where(runs["strategy"] != "prompting", shots)
    return used.where(runs["strategy"] != "zero_shot", 0.0)


def seed_summary(df: pd.DataFrame, by: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean, standard deviation (0 for one run), count and mean ± std of ``metric`` per group:
    repeated seeds of one setting become one point with an error bar."""
    grouped = df.groupby(list(by), dropna=False)[metric]
    out = grouped.agg(mean="mean", std="std", n="size").reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["low"], out["high"] = out["mean"] - out["std"], out["mean"] + out["std"]
    return out


def data_efficiency(runs: pd.DataFrame, metric: str = "accuracy") -> alt.LayerChart:
    """``metric`` against labelled examples per class (log axis): per strategy the mean over
    seeds as a line with ± one standard deviation as error bars, each run as a faint dot; runs that
    used no labels (zero-shot, zero-shot prompting) as dashed horizontal rules at their mean."""
    df = _frame(runs.assign(labels_per_class=labels_per_class(runs)), [metric, "labels_per_class"])
    free = df[df["labels_per_class"] <= 0]
    trained = df[df["labels_per_class"] > 0]
    keys = ["dataset_name", "strategy"]
    points = seed_summary(trained, [*keys, "labels_per_class"], metric)
    x = alt.X(
        "labels_per_class:Q",
        title="Labelled examples per class (log scale; prompting: demonstrations)",
        scale=alt.Scale(type="log"),
    )
    y_title = f"{label(metric)}, mean ± std over seeds"
    y_axis = alt.Axis(format=".3~f")
    summary_tips = [
        alt.Tooltip("strategy:N"),
        alt.Tooltip("dataset_name:N", title="data set"),
        alt.Tooltip("labels_per_class:Q", title="per class"),
        alt.Tooltip("mean:Q", title=f"mean {metric}", format=".3f"),
        alt.Tooltip("std:Q", title="std", format=".3f"),
        alt.Tooltip("n:Q", title="runs"),
    ]
    color = alt.Color("strategy:N")
    lines = (
        alt.Chart(points)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("mean:Q", title=y_title, scale=alt.Scale(zero=False), axis=y_axis),
            color=color,
            detail="dataset_name:N",
            tooltip=summary_tips,
        )
    )
    spread = (
        alt.Chart(points)
        .mark_errorbar(ticks=True)
        .encode(x=x, y=alt.Y("low:Q", title=y_title), y2="high:Q", color=color)
    )
    dots = (
        alt.Chart(trained)
        .mark_circle(size=20, opacity=0.35)
        .encode(
            x=x,
            y=alt.Y(f"{metric}:Q", title=y_title),
            color=color,
            tooltip=_tooltips(["labels_per_class", metric]),
        )
    )
    rules = (
        alt.Chart(seed_summary(free, keys, metric))
        .mark_rule(strokeDash=[6, 4], size=2)
        .encode(
            y=alt.Y("mean:Q", title=y_title),
            color=color,
            tooltip=summary_tips[:2] + summary_tips[3:],
        )
    )
    title = alt.Title(
        "Data efficiency",
        subtitle="Dashed rules: strategies that used no labels (zero-shot, 0-shot prompting)",
    )
    return alt.layer(lines, spread, dots, rules).properties(title=title, height=340)


def confusion_matrix(classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> alt.LayerChart:
    """Heat map of true (rows) against predicted (columns) counts, with the count in each cell."""
    rows = [
        {"true": t, "predicted": p, "count": int(matrix[i][j])}
        for i, t in enumerate(classes)
        for j, p in enumerate(classes)
    ]
    df = pd.DataFrame(rows, columns=["true", "predicted", "count"])
    order = list(classes)
    base = alt.Chart(df).encode(
        x=alt.X("predicted:N", sort=order, title="Predicted"),
        y=alt.Y("true:N", sort=order, title="True"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), title="Count"),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    high = float(df["count"].max()) / 2 if len(df) else 0.0
    text = base.mark_text().encode(
        text="count:Q",
        color=alt.condition(alt.datum.count > high, alt.value("white"), alt.value("black")),
    )
    # Step sizes, not pixel totals: Streamlit's "fit" autosizing squashes discrete axes.
    step = max(18, min(48, 480 // max(len(order), 1)))
    return alt.layer(cells, text).properties(
        width=alt.Step(step), height=alt.Step(step), title="Confusion matrix"
    )


def class_balance(class_counts: Mapping[str, int]) -> alt.Chart:
    """Examples per class as horizontal bars, largest first."""
    df = pd.DataFrame({"class": list(class_counts), "examples": list(class_counts.values())})
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("examples:Q", title="Examples"),
            y=alt.Y("class:N", sort="-x", title="Class"),
            tooltip=["class:N", "examples:Q"],
        )
        .properties(title="Class balance", height=alt.Step(BAR_STEP))
    )


def recommendation_scores(alternatives: Sequence[Mapping[str, Any]], chosen: str) -> alt.Chart:
    """The advisor's score per feasible strategy, the recommended one highlighted."""
    df = pd.DataFrame(
        [
            {"strategy": a["strategy"], "score": a["score"], "summary": a.get("summary", "")}
            for a in alternatives
        ],
        columns=["strategy", "score", "summary"],
    )
    df["recommended"] = df["strategy"] == chosen
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X(
                "score:Q",
                title="Score (0.5 = no rule for or against)",
                scale=alt.Scale(domain=[0, 1]),
            ),
            y=alt.Y("strategy:N", sort="-x", title=None),
            color=alt.condition(alt.datum.recommended, alt.value("#2e7d32"), alt.value("#9e9e9e")),
            tooltip=["strategy:N", alt.Tooltip("score:Q", format=".3f"), "summary:N"],
        )
        .properties(title="Ranked alternatives", height=alt.Step(BAR_STEP))
    )


def expected_outcomes(alternatives: Sequence[Mapping[str, Any]], chosen: str) -> alt.LayerChart:
    """Expected accuracy (80% interval as a bar) against expected time on this device.

    ``alternatives`` are ``Recommendation.to_dict()["alternatives"]``; those without a cost
    estimate sit at 1 s so they still show, and the tooltip says the cost is unknown.
    """
    rows = []
    for a in alternatives:
        e = a.get("expected_accuracy")
        if not e:
            continue
        cost = a.get("expected_cost") or {}
        seconds = cost.get("seconds")
        rows.append(
            {
                "strategy": a["strategy"],
                "accuracy": e["point"],
                "low": e["low"],
                "high": e["high"],
                "seconds": max(float(seconds), 1.0) if seconds is not None else 1.0,
                "time": f"{seconds:.0f} s" if seconds is not None else "not estimated",
                "basis": e.get("basis", ""),
                "recommended": a["strategy"] == chosen,
            }
        )
    df = pd.DataFrame(
        rows,
        columns=["strategy", "accuracy", "low", "high", "seconds", "time", "basis", "recommended"],
    )
    base = alt.Chart(df).encode(
        x=alt.X(
            "seconds:Q", title="Expected time on this device (s, log)", scale=alt.Scale(type="log")
        ),
        color=alt.condition(alt.datum.recommended, alt.value("#2e7d32"), alt.value("#616161")),
    )
    tooltip = [
        "strategy:N",
        alt.Tooltip("accuracy:Q", format=".2f", title="expected accuracy"),
        alt.Tooltip("low:Q", format=".2f", title="80% interval from"),
        alt.Tooltip("high:Q", format=".2f", title="to"),
        alt.Tooltip("time:N", title="expected time"),
        "basis:N",
    ]
    interval = base.mark_rule(strokeWidth=2).encode(
        y=alt.Y("low:Q", title="Expected accuracy (80% interval)", scale=alt.Scale(zero=False)),
        y2="high:Q",
        tooltip=tooltip,
    )
    points = base.mark_point(filled=True, size=90).encode(y="accuracy:Q", tooltip=tooltip)
    names = base.mark_text(align="left", dx=7, dy=-7, fontSize=11).encode(
        y="accuracy:Q", text="strategy:N"
    )
    return (interval + points + names).properties(
        title="Expected accuracy against expected time", height=320
    )


def per_class_scores(per_class: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Precision, recall and F1 per class as grouped bars."""
    df = pd.DataFrame(list(per_class))
    long = df.melt(
        id_vars=["class", "support"], value_vars=["precision", "recall", "f1"], var_name="score"
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("score:N", title=None),
            row=alt.Row("class:N", title=None),
            color="score:N",
            tooltip=["class:N", "score:N", alt.Tooltip("value:Q", format=".3f"), "support:Q"],
        )
        .properties(width=320, height=60, title="Per-class scores")
    )


def advice_check(check: pd.DataFrame) -> alt.FacetChart:
    """The advisor's pick against the best strategy measured, per budget (``advice_check``
    frame): a filled dot for the best mean accuracy, a ring for the advised strategy's, a line
    between them (the accuracy lost); red where the advice lost more than a point."""
    df = check.dropna(subset=["best_accuracy"]).copy()
    df["verdict"] = "advised strategy not run here"
    df.loc[df["lost"] <= 0.01, "verdict"] = "within 1 point of the best"
    df.loc[df["lost"] > 0.01, "verdict"] = "lost more than 1 point"
    x = alt.X("per_class:O", title="Labelled examples per class")
    tips = [
        alt.Tooltip("dataset_name:N", title="data set"),
        alt.Tooltip("per_class:O", title="per class"),
        alt.Tooltip("best:N", title="best measured"),
        alt.Tooltip("best_accuracy:Q", title="its accuracy", format=".3f"),
        alt.Tooltip("advised:N", title="advisor's pick"),
        alt.Tooltip("advised_accuracy:Q", title="its accuracy", format=".3f"),
        alt.Tooltip("lost:Q", title="accuracy lost", format=".3f"),
    ]
    verdicts = [
        "within 1 point of the best",
        "lost more than 1 point",
        "advised strategy not run here",
    ]
    color = alt.Color(
        "verdict:N",
        title=None,
        scale=alt.Scale(domain=verdicts, range=["#2ca02c", "#d62728", "#9e9e9e"]),
        legend=alt.Legend(labelLimit=320),
    )
    base = alt.Chart(df).encode(x=x, tooltip=tips)
    y = alt.Y("best_accuracy:Q", title="Accuracy (test)", scale=alt.Scale(zero=False))
    gap = base.mark_rule(size=2).encode(y=y, y2="advised_accuracy:Q", color=color)
    best = base.mark_circle(size=90).encode(y=y, color=color)
    advised = base.mark_point(size=90, shape="diamond", filled=False).encode(
        y="advised_accuracy:Q", color=color
    )
    title = alt.Title(
        "Was the advice right?",
        subtitle="Dot: best strategy measured. Diamond: the advisor's pick at that budget.",
    )
    return (
        alt.layer(gap, best, advised)
        .properties(width=alt.Step(40), height=300)
        .facet(column=alt.Column("dataset_name:N", title=None))
        .properties(title=title)
    )


def model_scores(candidates: Sequence[Mapping[str, Any]], chosen: str | None) -> alt.LayerChart:
    """Each ranked model's LogME against feature extraction's cost an item (log), labelled.

    ``candidates`` are rows of ``scoring.rank_models`` (those with an ``error`` are left out).
    """
    rows = [
        {
            "model": c["model"],
            "logme": c["scores"].get("logme"),
            "probe": c["scores"].get("linear_probe_accuracy"),
            "ms_per_item": max(float(c["cost"].get("ms_per_item") or 0.0), 0.01),
            "advised": c["model"] == chosen,
        }
        for c in candidates
        if "error" not in c and c.get("scores")
    ]
    df = pd.DataFrame(rows, columns=["model", "logme", "probe", "ms_per_item", "advised"])
    base = alt.Chart(df).encode(
        x=alt.X(
            "ms_per_item:Q",
            title="Feature extraction cost on this device (ms an item, log)",
            scale=alt.Scale(type="log"),
        ),
        y=alt.Y(
            "logme:Q", title="LogME on your data (higher is better)", scale=alt.Scale(zero=False)
        ),
    )
    points = base.mark_circle(size=120).encode(
        color=alt.condition(alt.datum.advised, alt.value("#2e7d32"), alt.value("#616161")),
        tooltip=[
            "model:N",
            alt.Tooltip("logme:Q", format=".3f", title="LogME"),
            alt.Tooltip("probe:Q", format=".2f", title="linear probe (cross-validated)"),
            alt.Tooltip("ms_per_item:Q", format=".1f", title="ms an item"),
        ],
    )
    labels = base.mark_text(align="left", dx=8, fontSize=11).encode(text="model:N")
    return (points + labels).properties(
        height=260, title="Score against cost: up and left is better"
    )
