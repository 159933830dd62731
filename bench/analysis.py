"""Curves and crossover points from ``bench/out/data_efficiency.json`` (shared by evidence, regret,
plots and the report): mean and spread over seeds per (data set, strategy, budget)."""

from __future__ import annotations

from typing import Any

from common import effective_budget, mean_std

TRAINING_FREE = ("zero_shot", "prompting")
TUNED = ("partial_finetune", "full_finetune", "lora", "lp_ft")
MARGIN = 0.01  # "within 1 point"


def all_per_class(data: dict, dataset: str) -> int:
    for d in data["datasets"]:
        if d["name"] == dataset:
            return int(d["all_per_class"])
    raise KeyError(dataset)


def per_class_number(data: dict, row: dict) -> int:
    """A row's budget in examples per class; a budget that kept every training row is "all"."""
    pc = row["per_class"]
    if pc != "all":
        k = int(pc)
        info = next((d for d in data["datasets"] if d["name"] == row["dataset"]), {})
        if row["strategy"] == "prompting" or not k or "n_train" not in info:
            return k
        if effective_budget(k, info["n_classes"], info["n_train"]) is not None:
            return k
    return all_per_class(data, row["dataset"])


def base_name(name: str) -> str:
    """Prompting runs on a seeded subset (``<name>_<n>pc``): they belong to the parent data set."""
    stem, _, tail = name.rpartition("_")
    return stem if stem and tail.endswith("pc") and tail[:-2].isdigit() else name


def curves(data: dict) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """dataset -> strategy -> examples per class -> {mean, std, n, seconds}."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    seen: set[tuple] = set()
    for row in data["rows"]:
        if row["status"] != "done" or row["accuracy"] is None:
            continue
        ds = base_name(row["dataset"])
        k = per_class_number(data, row)
        if (ds, row["strategy"], k, row["seed"]) in seen:  # one run per seed: a repeat is no spread
            continue
        seen.add((ds, row["strategy"], k, row["seed"]))
        groups.setdefault((ds, row["strategy"], k), []).append(row)
    out: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for (ds, strategy, k), rows in groups.items():
        mean, std, n = mean_std(r["accuracy"] for r in rows)
        seconds, _, _ = mean_std(r["seconds"] for r in rows)
        out.setdefault(ds, {}).setdefault(strategy, {})[k] = {
            "mean": mean,
            "std": std,
            "n": n,
            "seconds": seconds,
            "subset": rows[0]["dataset"] != ds,
        }
    return out


def first_k_from_which(a: dict[int, dict], b_value, strict_margin: float = 0.0) -> int | None:
    """Smallest budget from which curve ``a`` stays above ``b_value(k)`` (+ margin) at every
    larger measured budget; None if it never does."""
    ks = sorted(k for k in a if b_value(k) is not None)
    found = None
    for k in reversed(ks):
        if a[k]["mean"] > b_value(k) + strict_margin:
            found = k
        else:
            break
    return found


def crossovers(curve: dict[str, dict[int, dict]]) -> dict[str, Any]:
    """The crossover points issue #7 asks for, on one data set's curves."""
    fe = curve.get("feature_extraction", {})
    zs = curve.get("zero_shot", {}).get(0)
    prompt0 = curve.get("prompting", {}).get(0)
    prompt_best = max((v["mean"] for v in curve.get("prompting", {}).values()), default=None)
    out: dict[str, Any] = {
        "zero_shot": zs["mean"] if zs else None,
        "prompting_zero_shot": prompt0["mean"] if prompt0 else None,
        "prompting_best": prompt_best,
    }
    if fe and zs:
        out["fe_over_zero_shot"] = first_k_from_which(fe, lambda k: zs["mean"])
    if fe and prompt_best is not None:
        out["fe_over_prompting"] = first_k_from_which(fe, lambda k: prompt_best)
    tuned = {s: curve[s] for s in TUNED if s in curve}
    if fe and tuned:
        best_tuned = {
            k: {"mean": max(c[k]["mean"] for c in tuned.values() if k in c)}
            for k in sorted({k for c in tuned.values() for k in c})
        }
        out["tuned_budgets"] = sorted(best_tuned)
        out["tuned_over_fe"] = first_k_from_which(
            best_tuned, lambda k: fe[k]["mean"] if k in fe else None
        )
        out["tuned_minus_fe"] = {
            k: best_tuned[k]["mean"] - fe[k]["mean"] for k in best_tuned if k in fe
        }
        out["best_tuned_strategy"] = {
            k: max((s for s in tuned if k in tuned[s]), key=lambda s: tuned[s][k]["mean"])
            for k in best_tuned
        }
    scratch = curve.get("scratch", {})
    if fe and scratch:
        out["scratch_catches_fe"] = first_k_from_which(
            scratch, lambda k: fe[k]["mean"] - MARGIN if k in fe else None
        )
        out["scratch_minus_fe"] = {
            k: scratch[k]["mean"] - fe[k]["mean"] for k in scratch if k in fe
        }
    return out


def best_at(curve: dict[str, dict[int, dict]], k: int) -> dict[str, float]:
    """Mean accuracy of every strategy usable with ``k`` labelled examples a class: trained ones
    measured at k, zero-shot always, prompting with at most k demonstrations."""
    usable: dict[str, float] = {}
    for strategy, points in curve.items():
        if strategy == "zero_shot" and 0 in points:
            usable[strategy] = points[0]["mean"]
        elif strategy == "prompting":
            shots = [s for s in points if s <= k]
            if shots:
                usable[strategy] = max(points[s]["mean"] for s in shots)
        elif k in points:
            usable[strategy] = points[k]["mean"]
    return usable


def seconds_at(curve: dict[str, dict[int, dict]], k: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for strategy, points in curve.items():
        if strategy == "zero_shot" and 0 in points:
            out[strategy] = points[0]["seconds"]
        elif strategy == "prompting":
            shots = [s for s in points if s <= k]
            if shots:
                out[strategy] = points[max(shots)]["seconds"]
        elif k in points:
            out[strategy] = points[k]["seconds"]
    return out
