"""Tests for tladvisor.charts on hand-made run frames: encodings, data and the Pareto front."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from tladvisor import charts


def _runs() -> pd.DataFrame:
    rows = [
        # id, user, strategy, model, accuracy, seconds, trainable, per class, logme, drift
        ("r1", "ada", "feature_extraction", "minilm", 0.70, 10.0, 770, 8, 0.1, None),
        ("r2", "ada", "feature_extraction", "minilm", 0.76, 12.0, 770, 64, 0.3, None),
        ("r3", "bob", "full_finetune", "minilm", 0.80, 100.0, 22_000_000, 64, 0.3, 0.12),
        ("r4", "bob", "lora", "minilm", 0.78, 60.0, 75_000, 64, 0.3, 0.01),
        ("r5", "cy", "zero_shot", "minilm", 0.60, 2.0, 0, 0, 0.2, None),
        ("r6", "cy", "scratch", "minilm", 0.55, 50.0, 1_000_000, 64, 0.3, 0.9),
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "id", "user_name", "strategy", "model", "accuracy", "seconds", "trainable_params",
            "train_per_class", "logme@train", "weight_drift@reference",
        ],
    )  # fmt: skip
    df["dataset_name"] = "rt"
    df["macro_f1"] = df["accuracy"] - 0.01
    return df


def _spec(chart: alt.TopLevelMixin) -> dict:
    return chart.to_dict()


def _layer_encodings(spec: dict) -> list[dict]:
    return [layer["encoding"] for layer in spec["layer"]]


def test_pareto_front_known_answer():
    df = pd.DataFrame(
        {
            "cost": [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0],
            "acc": [0.5, 0.7, 0.6, 0.65, 0.9, 0.9, 0.95],
        },
        index=list("abcdefg"),
    )
    front = charts.pareto_front(df, "cost", "acc")
    # c loses to b (same cost, lower acc), d to b (dearer, worse), f to e (dearer, equal).
    assert list(front.index) == ["a", "b", "e", "g"]


def test_pareto_front_ignores_missing_values():
    df = pd.DataFrame({"cost": [1.0, None, 3.0], "acc": [0.5, 0.99, 0.6]})
    assert list(charts.pareto_front(df, "cost", "acc").index) == [0, 2]


def test_metric_by_strategy_draws_mean_bars_and_run_points_with_run_tooltips():
    spec = _spec(charts.metric_by_strategy(_runs(), "macro_f1"))
    bars, points = _layer_encodings(spec)
    assert bars["y"]["field"] == "macro_f1" and bars["y"]["aggregate"] == "mean"
    assert points["x"]["field"] == "strategy"
    tips = {t["field"] for t in points["tooltip"]}
    assert {"user_name", "strategy", "model", "id", "macro_f1"} <= tips


def test_cost_vs_accuracy_uses_a_log_axis_hides_zero_cost_and_draws_the_front():
    chart = charts.cost_vs_accuracy(_runs(), "trainable_params", "accuracy")
    spec = _spec(chart)
    line, points = _layer_encodings(spec)
    assert points["x"]["field"] == "trainable_params"
    assert points["x"]["scale"]["type"] == "log"
    assert "1 run(s)" in " ".join(spec["title"]["subtitle"])  # the zero-shot run (0 params)
    front_ids = set(chart.layer[0].data["id"])
    # r1 (770 params, 0.70) ties r2 on cost; r2 is better; r4 and r3 buy accuracy with params.
    assert front_ids == {"r2", "r4", "r3"}
    assert "r5" not in set(chart.layer[1].data["id"])


def test_transferability_chart_reports_rank_correlation():
    spec = _spec(charts.transferability_vs_accuracy(_runs(), "logme@train"))
    assert spec["encoding"]["x"]["field"] == "logme@train"
    assert spec["encoding"]["y"]["field"] == "accuracy"
    assert "Spearman" in spec["title"]["subtitle"]


def test_accuracy_gain_is_relative_to_the_best_baseline_on_the_same_data_set():
    gained = charts.accuracy_gain(_runs(), "feature_extraction").set_index("id")["gain"]
    assert gained["r3"] == pytest.approx(0.80 - 0.76)
    assert gained["r6"] == pytest.approx(0.55 - 0.76)
    other = _runs().assign(dataset_name="other")
    assert charts.accuracy_gain(other[other["strategy"] != "feature_extraction"]).empty


def test_learning_vs_forgetting_plots_only_runs_with_a_forgetting_value():
    chart = charts.learning_vs_forgetting(_runs(), "weight_drift@reference")
    assert set(chart.data["id"]) == {"r3", "r4", "r6"}
    assert chart.to_dict()["encoding"]["y"]["field"] == "gain"


def test_learning_curves_facet_by_curve_name_and_label_runs():
    curves = pd.DataFrame(
        {
            "run_id": ["r3"] * 4,
            "step": [1, 2, 1, 2],
            "name": ["loss", "loss", "val_accuracy", "val_accuracy"],
            "value": [0.9, 0.5, 0.6, 0.7],
        }
    )
    chart = charts.learning_curves(curves, {"r3": "full · minilm · bob · r3"})
    spec = chart.to_dict()
    assert spec["facet"]["column"]["field"] == "name"
    assert spec["spec"]["encoding"]["color"]["field"] == "run"
    assert set(chart.data["run"]) == {"full · minilm · bob · r3"}


def test_data_efficiency_draws_training_free_runs_as_rules():
    chart = charts.data_efficiency(_runs())
    lines, spread, dots, rules = chart.layer
    assert "r5" not in set(dots.data["id"])
    assert rules.data.set_index("strategy")["mean"].to_dict() == {"zero_shot": 0.60}
    assert rules.to_dict()["mark"]["type"] == "rule"
    assert lines.to_dict()["encoding"]["x"]["scale"]["type"] == "log"
    assert spread.to_dict()["mark"]["type"] == "errorbar"


def test_data_efficiency_averages_seeds_and_places_prompting_at_its_shots():
    runs = pd.DataFrame(
        {
            "id": ["failed", "a", "b", "c", "p0", "p4a", "p4b"],
            "strategy": ["lora"] * 4 + ["prompting"] * 3,
            "accuracy": [None, 0.60, 0.70, 0.80, 0.72, 0.55, 0.65],
            "train_per_class": [8, 8, 8, 64, 325, 325, 325],
            "config": [{"seed": 2}, {"seed": 0}, {"seed": 1}, {"seed": 0}]
            + [{"shots": 0}, {"shots": 4, "seed": 0}, {"shots": 4, "seed": 1}],
            "user_name": "ada",
            "model": "m",
            "dataset_name": "rt",
        }
    )
    lines, _spread, dots, rules = charts.data_efficiency(runs).layer
    points = lines.data.set_index(["strategy", "labels_per_class"])
    assert points.loc[("lora", 8.0), "n"] == 2
    assert points.loc[("lora", 8.0), "mean"] == pytest.approx(0.65)
    assert points.loc[("lora", 8.0), "std"] == pytest.approx(0.0707107, rel=1e-5)  # sample std
    assert points.loc[("lora", 64.0), "std"] == 0.0  # one run: no spread
    # k-shot prompting sits at its demonstrations per class, not at its training pool's size.
    assert points.loc[("prompting", 4.0), "mean"] == pytest.approx(0.60)
    assert 325.0 not in set(dots.data["labels_per_class"])
    assert rules.data.set_index("strategy")["mean"].to_dict() == {"prompting": 0.72}


def test_confusion_matrix_cells_hold_the_counts():
    chart = charts.confusion_matrix(["neg", "pos"], [[5, 1], [2, 7]])
    cells = chart.data.set_index(["true", "predicted"])["count"]
    assert cells[("neg", "pos")] == 1 and cells[("pos", "neg")] == 2
    assert cells.sum() == 15


def test_recommendation_scores_highlight_the_chosen_strategy():
    alternatives = [
        {"strategy": "feature_extraction", "score": 0.8, "summary": "x"},
        {"strategy": "lora", "score": 0.4, "summary": "y"},
    ]
    chart = charts.recommendation_scores(alternatives, "feature_extraction")
    assert chart.data.set_index("strategy")["recommended"].to_dict() == {
        "feature_extraction": True,
        "lora": False,
    }


def test_expected_outcomes_draw_intervals_against_time():
    alternatives = [
        {
            "strategy": "scratch",
            "expected_accuracy": {"point": 0.9, "low": 0.85, "high": 0.94, "basis": "b"},
            "expected_cost": {"seconds": 2.0},
        },
        {
            "strategy": "lora",
            "expected_accuracy": {"point": 0.7, "low": 0.6, "high": 0.8, "basis": "b"},
            "expected_cost": None,
        },
    ]
    chart = charts.expected_outcomes(alternatives, "scratch")
    df = chart.data.set_index("strategy")
    assert df.loc["scratch", "recommended"] and not df.loc["lora", "recommended"]
    assert (df["low"] <= df["accuracy"]).all() and (df["accuracy"] <= df["high"]).all()
    assert df.loc["lora", "time"] == "not estimated"
    spec = chart.to_dict()
    assert spec["layer"][0]["encoding"]["y2"]["field"] == "high"


def test_class_balance_and_per_class_scores():
    balance = charts.class_balance({"a": 3, "b": 5})
    assert balance.to_dict()["encoding"]["x"]["field"] == "examples"
    per_class = [
        {"class": "a", "precision": 0.5, "recall": 1.0, "f1": 0.67, "support": 3},
        {"class": "b", "precision": 1.0, "recall": 0.8, "f1": 0.89, "support": 5},
    ]
    chart = charts.per_class_scores(per_class)
    assert len(chart.data) == 6 and set(chart.data["score"]) == {"precision", "recall", "f1"}


def test_missing_metric_columns_give_an_empty_chart_not_an_error():
    runs = _runs().drop(columns=["logme@train"])
    chart = charts.transferability_vs_accuracy(runs, "logme@train")
    assert chart.data.empty
