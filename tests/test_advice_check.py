"""The dashboard's advice check: the advisor's pick per budget against the stored runs."""

from __future__ import annotations

import pandas as pd
import pytest

from tladvisor import charts
from tladvisor.advice_check import check_advice
from tladvisor.decision import TaskProfile, recommend

DATASETS = {"rt": {"modality": "text", "class_counts": {"neg": 300, "pos": 300}}}


def _runs() -> pd.DataFrame:
    rows = [
        # strategy, status, accuracy, train per class, shots, probe accuracy (cross-validated)
        ("feature_extraction", "done", 0.70, 8, None, 0.66),
        ("feature_extraction", "done", 0.74, 8, None, 0.70),
        ("lora", "done", 0.80, 8, None, None),
        ("lora", "failed", None, 8, None, None),
        ("feature_extraction", "done", 0.85, 64, None, 0.84),
        ("scratch", "done", 0.60, 64, None, None),
        ("zero_shot", "done", 0.65, 300, None, None),
        ("prompting", "done", 0.90, 300, 4, None),
        ("prompting", "done", 0.95, 300, 16, None),  # needs 16 a class: not a choice at 8
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "strategy", "status", "accuracy", "train_per_class", "shots",
            "linear_probe_accuracy@train",
        ],
    )  # fmt: skip
    df["config"] = [{} if pd.isna(s) else {"shots": int(s)} for s in df.pop("shots")]
    df["dataset_name"] = "rt"
    return df


def test_best_and_advised_per_budget_known_answers():
    check = check_advice(_runs(), DATASETS, gpu_memory_gb=0.0, evidence={}).set_index("per_class")
    assert list(check.index) == [8, 64]
    at8 = check.loc[8]
    assert (at8["best"], at8["best_accuracy"]) == ("prompting", 0.90)
    assert at8["probe_accuracy"] == pytest.approx(0.68)  # mean over the two probe runs
    assert at8["strategies_measured"] == 4  # feature_extraction, lora, zero_shot, prompting
    expected = recommend(
        TaskProfile("text", 16, 2, min_per_class=8, gpu_memory_gb=0.0, probe_accuracy=0.68),
        evidence={},
    ).strategy.value
    assert at8["advised"] == expected
    means = {"feature_extraction": 0.72, "lora": 0.80, "zero_shot": 0.65, "prompting": 0.90}
    assert at8["advised_accuracy"] == pytest.approx(means[expected])
    assert at8["lost"] == pytest.approx(0.90 - means[expected])
    at64 = check.loc[64]
    assert (at64["best"], at64["best_accuracy"]) == ("prompting", 0.95)  # 16-shot counts here


def test_unknown_data_sets_and_empty_frames_give_no_rows():
    assert check_advice(_runs(), {}).empty
    assert check_advice(pd.DataFrame(), DATASETS).empty
    assert list(check_advice(pd.DataFrame(), DATASETS).columns) == list(
        check_advice(_runs(), DATASETS).columns
    )


def test_advice_check_chart_colours_each_verdict():
    frame = pd.DataFrame(
        {
            "dataset_name": ["rt", "rt", "rt"],
            "per_class": [1, 8, 64],
            "best": ["prompting", "lora", "lora"],
            "best_accuracy": [0.9, 0.8, 0.85],
            "advised": ["prompting", "feature_extraction", "full_finetune"],
            "advised_accuracy": [0.9, 0.7, float("nan")],
            "lost": [0.0, 0.1, float("nan")],
        }
    )
    chart = charts.advice_check(frame)
    verdicts = chart.data.set_index("per_class")["verdict"].to_dict()
    assert verdicts == {
        1: "within 1 point of the best",
        8: "lost more than 1 point",
        64: "advised strategy not run here",
    }
    assert chart.to_dict()["facet"]["column"]["field"] == "dataset_name"


def test_model_ranking_check_puts_logme_ranks_beside_measured_ranks():
    from tladvisor.advice_check import model_ranking_check

    runs = pd.DataFrame(
        [
            ("rt", "feature_extraction", "minilm", -0.64, 0.75),
            ("rt", "feature_extraction", "minilm", -0.62, 0.73),
            ("rt", "feature_extraction", "mpnet", -0.51, 0.77),
            ("rt", "feature_extraction", "smollm2", -0.60, 0.65),
            ("rt", "lora", "minilm", -0.64, 0.80),  # one model only: not a ranking
        ],
        columns=["dataset_name", "strategy", "model", "logme@train", "accuracy"],
    )
    table = model_ranking_check(runs)
    assert list(table["model"]) == ["mpnet", "smollm2", "minilm"]
    assert list(table["score_rank"]) == [1, 2, 3]
    assert list(table["accuracy_rank"]) == [1, 3, 2]
    minilm = table[table["model"] == "minilm"].iloc[0]
    assert minilm["runs"] == 2 and minilm["accuracy"] == pytest.approx(0.74)
    assert model_ranking_check(runs.drop(columns=["logme@train"])).empty
