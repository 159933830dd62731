"""Was the advice right? The advisor's pick at each label budget against the stored runs.

For every data set and labelled-examples-per-class budget among the runs, this asks the decision
engine what it would recommend for a task of that size, and compares the pick with the best
strategy the runs measured there (mean test accuracy over seeds). It is the dashboard's version
of ``bench/regret.py``, built from stored runs only: the profile holds the counts and, when a
feature-extraction run at that budget logged it, the probe accuracy cross-validated on its
training rows (what the profiler measures; never the test split). Domain unusualness and the
no-transfer baseline are not stored with runs, so the rules that need them stay silent here.

A training-free run (zero-shot, 0-shot prompting) competes at every budget; k-shot prompting at
every budget of k or more examples per class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from tladvisor.charts import labels_per_class
from tladvisor.decision import TaskProfile, recommend
from tladvisor.evidence import Evidence

COLUMNS = [
    "dataset_name", "per_class", "best", "best_accuracy", "advised", "advised_accuracy",
    "lost", "strategies_measured", "probe_accuracy",
]  # fmt: skip
TRAINING_FREE = ("zero_shot", "prompting")


def check_advice(
    runs: pd.DataFrame,
    datasets: Mapping[str, Mapping[str, Any]],
    *,
    gpu_memory_gb: float | None = None,
    evidence: Mapping[str, Evidence] | None = None,
    metric: str = "accuracy",
) -> pd.DataFrame:
    """One row per (data set, budget) with at least one training run: best vs advised.

    ``runs`` is ``Store.list_runs()`` output (finished runs); ``datasets`` maps a data set name
    to its stored row (``modality``, ``class_counts``). ``advised_accuracy`` and ``lost`` are NaN
    where the advised strategy was not run at that budget.
    """
    if runs.empty or metric not in runs:
        return pd.DataFrame(columns=COLUMNS)
    df = runs[runs["status"] == "done"].assign(k=labels_per_class(runs))
    df = df.dropna(subset=["k", metric])
    rows = []
    for name, group in df.groupby("dataset_name"):
        info = datasets.get(str(name))
        if info is None:
            continue
        free = group[group["strategy"].isin(TRAINING_FREE)]
        trained = group[~group["strategy"].isin(TRAINING_FREE)]
        for k in sorted(trained["k"].unique()):
            measured = _means(trained[trained["k"] == k], free[free["k"] <= k], metric)
            probe = _probe_accuracy(trained[trained["k"] == k])
            profile = _profile(info, int(k), probe, gpu_memory_gb)
            advised = recommend(profile, evidence=evidence).strategy.value
            best = max(measured, key=measured.get)
            got = measured.get(advised, float("nan"))
            rows.append(
                [name, int(k), best, measured[best], advised, got, measured[best] - got,
                 len(measured), probe]
            )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _means(trained: pd.DataFrame, free: pd.DataFrame, metric: str) -> dict[str, float]:
    """Mean ``metric`` per strategy; for training-free strategies the best shot count allowed."""
    means = trained.groupby("strategy")[metric].mean().to_dict()
    if not free.empty:
        per_setting = free.groupby(["strategy", "k"])[metric].mean()
        means.update(per_setting.groupby("strategy").max().to_dict())
    return {str(s): float(v) for s, v in means.items()}


def _probe_accuracy(at_budget: pd.DataFrame) -> float | None:
    column = "linear_probe_accuracy@train"
    if column not in at_budget:
        return None
    values = at_budget.loc[at_budget["strategy"] == "feature_extraction", column].dropna()
    return float(values.mean()) if len(values) else None


def _profile(
    info: Mapping[str, Any], k: int, probe: float | None, gpu_memory_gb: float | None
) -> TaskProfile:
    n_classes = len(info["class_counts"])
    return TaskProfile(
        modality=str(info["modality"]),
        n_labeled=k * n_classes,
        n_classes=n_classes,
        min_per_class=k,
        gpu_memory_gb=gpu_memory_gb,
        probe_accuracy=probe,
    )


RANKING_COLUMNS = [
    "dataset_name", "strategy", "model", "score", "score_rank", "accuracy", "accuracy_rank",
    "runs",
]  # fmt: skip


def model_ranking_check(
    runs: pd.DataFrame, score: str = "logme@train", metric: str = "accuracy"
) -> pd.DataFrame:
    """Did the transferability score rank the models as the runs measured them?

    For every data set and strategy run with two or more models: each model's mean ``score``
    (computed on the run's training rows) and mean ``metric`` on the test split, and both ranks
    (1 = best). Equal ranks in every row mean the score would have picked the best model.
    """
    if runs.empty or score not in runs or metric not in runs:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    done = runs.dropna(subset=[score, metric, "model"])
    rows = []
    for (dataset, strategy), group in done.groupby(["dataset_name", "strategy"]):
        per_model = group.groupby("model").agg(
            score=(score, "mean"), accuracy=(metric, "mean"), runs=(metric, "size")
        )
        if len(per_model) < 2:
            continue
        per_model["score_rank"] = per_model["score"].rank(ascending=False, method="min")
        per_model["accuracy_rank"] = per_model["accuracy"].rank(ascending=False, method="min")
        for model, r in per_model.sort_values("score_rank").iterrows():
            rows.append(
                {
                    "dataset_name": dataset,
                    "strategy": strategy,
                    "model": model,
                    "score": r["score"],
                    "score_rank": int(r["score_rank"]),
                    "accuracy": r["accuracy"],
                    "accuracy_rank": int(r["accuracy_rank"]),
                    "runs": int(r["runs"]),
                }  # fmt: skip
            )
    return pd.DataFrame(rows, columns=RANKING_COLUMNS)
