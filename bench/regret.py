"""The advisor's regret: its recommendation against the best strategy measured (issue #7, part 2).

For every (data set, labelled examples per class) of ``bench/data_efficiency.py`` the advisor gets
the profile a user's upload would give it on this CPU-only machine: the counts, the domain
unusualness measured by ``tladvisor.unusualness`` and, in the "profiled" mode, the probe accuracy
cross-validated on the training rows only (never the test split), the no-transfer baseline's on
the same rows and the zero-shot strategy's default on them. Its pick is compared with the
best mean accuracy measured at that budget: accuracy lost, how often it is within 1 point, and
the compute saved against running every strategy measured there. Each mode is scored twice: on
the seed rules alone, and with the measured evidence of ``data/evidence.json``.

    python bench/regret.py           # seconds once data_efficiency.json exists (+ ~1 min unusualness)
    python bench/regret.py --quick
"""

from __future__ import annotations

import time

import common  # noqa: F401  (sets offline mode and sys.path first)
from analysis import MARGIN, base_name, best_at, curves, per_class_number, seconds_at
from common import (
    load_datasets,
    log,
    max_train_for,
    parse_args,
    read_efficiency,
    read_json,
    write_json,
)

NAME = "regret"
MODES = ("counts", "profiled")


def unusualness_scores(data: dict, quick: bool, out) -> dict[str, float | None]:
    """Measured unusualness of each data set (cached in bench/out/unusualness.json)."""
    cached = read_json(out, "unusualness") or {}
    if quick:
        return {d["name"]: None for d in data["datasets"]}
    from common import load_datasets

    from tladvisor import unusualness

    missing = [d["name"] for d in data["datasets"] if d["name"] not in cached]
    if missing:
        for ds in load_datasets(quick=False):
            if ds.name in missing:
                log(f"regret: measuring unusualness of {ds.name}")
                m = unusualness.measure(list(ds.items), ds.modality, device="cpu")
                cached[ds.name] = None if m is None else float(m.score)
        write_json(out, "unusualness", cached)
    return cached


def probe_accuracies(data: dict) -> dict[tuple[str, int], float]:
    """Cross-validated probe accuracy on the training rows (seed 0 feature-extraction runs)."""
    out = {}
    for r in data["rows"]:
        if r["strategy"] == "feature_extraction" and r["seed"] == 0 and r["status"] == "done":
            acc = (r.get("transferability") or {}).get("linear_probe_accuracy")
            if acc is not None and acc == acc:
                out[(r["dataset"], per_class_number(data, r))] = float(acc)
    return out


def baseline_accuracies(data: dict, quick: bool) -> dict[tuple[str, int], float]:
    """Cross-validated accuracy of the no-transfer baseline (TF-IDF / pixels + logistic
    regression) on the same training rows as ``probe_accuracies``: what the profiler compares
    with the pretrained probe to detect negative transfer."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tladvisor.data import split_dataset
    from tladvisor.strategies.scratch import no_transfer_features

    wanted = set(probe_accuracies(data))
    out: dict[tuple[str, int], float] = {}
    for ds in load_datasets(quick):
        for name, k in sorted(w for w in wanted if w[0] == ds.name):
            split = split_dataset(ds, seed=0, max_train=max_train_for(k, len(ds.classes)))
            y = ds.label_ids()[split.train]
            items = [ds.items[i] for i in split.train]
            smallest = int(np.bincount(y).min())
            if smallest < 2:
                continue  # the probe's cross-validation has no score here either
            folds = StratifiedKFold(n_splits=min(5, smallest), shuffle=True, random_state=0)
            correct = 0
            for tr, te in folds.split(np.zeros(len(y)), y):
                x_tr, (x_te,) = no_transfer_features(
                    ds.modality, [items[i] for i in tr], [[items[i] for i in te]]
                )
                model = make_pipeline(
                    StandardScaler(with_mean=ds.modality != "text"),
                    LogisticRegression(C=1.0, max_iter=2000),
                )
                model.fit(x_tr, y[tr])
                correct += int(np.sum(model.predict(x_te) == y[te]))
            out[(name, k)] = correct / len(y)
    return out


def zero_shot_accuracies(data: dict, quick: bool) -> dict[tuple[str, int], float]:
    """What the profiler measures zero-shot with (the zero-shot strategy's default, no training)
    on the training rows of each budget; none below its ZERO_SHOT_MIN_ROWS."""
    import numpy as np

    from tladvisor import catalog, embeddings
    from tladvisor.data import split_dataset
    from tladvisor.profile import ZERO_SHOT_MIN_ROWS, zero_shot_predictions

    wanted = set(probe_accuracies(data))
    out: dict[tuple[str, int], float] = {}
    for ds in load_datasets(quick):
        model = catalog.default_model(ds.modality)
        encoded = embeddings.encode(ds, model, device="cpu")
        pred = zero_shot_predictions(ds.modality, model, encoded, ds.classes, "cpu")
        if pred is None:
            continue
        for name, k in sorted(w for w in wanted if w[0] == ds.name):
            rows = split_dataset(ds, seed=0, max_train=max_train_for(k, len(ds.classes))).train
            if len(rows) >= ZERO_SHOT_MIN_ROWS:
                out[(name, k)] = float(np.mean(pred[rows] == ds.label_ids()[rows]))
    return out


def evaluate(
    data: dict, unusual: dict, evidence_sets: dict[str, dict], quick: bool = False
) -> dict:
    from tladvisor.decision import TaskProfile, recommend

    info = {d["name"]: d for d in data["datasets"]}
    probes = probe_accuracies(data)
    baselines = baseline_accuracies(data, quick)
    zero_shots = zero_shot_accuracies(data, quick)
    rows = []
    for name, curve in curves(data).items():
        if name not in info:
            continue
        d = info[name]
        budgets = sorted(curve.get("feature_extraction", {}))
        for k in budgets:
            measured = best_at(curve, k)
            costs = seconds_at(curve, k)
            best = max(measured, key=measured.get)
            for mode in MODES:
                u = unusual.get(name)
                profile = TaskProfile(
                    modality=d["modality"],
                    n_labeled=k * d["n_classes"],
                    n_classes=d["n_classes"],
                    min_per_class=k,
                    domain_unusualness=u,
                    unusualness_measured=u is not None,
                    gpu_memory_gb=0.0,
                    probe_accuracy=probes.get((name, k)) if mode == "profiled" else None,
                    baseline_accuracy=baselines.get((name, k)) if mode == "profiled" else None,
                    zero_shot_accuracy=zero_shots.get((name, k)) if mode == "profiled" else None,
                )
                for label, evidence in evidence_sets.items():
                    t0 = time.perf_counter()
                    rec = recommend(profile, evidence=evidence)
                    advise_s = time.perf_counter() - t0
                    pick = rec.strategy.value
                    acc = measured.get(pick)
                    row = {
                        "dataset": name,
                        "per_class": k,
                        "mode": mode,
                        "rules": label,
                        "unusualness": u,
                        "best": best,
                        "best_accuracy": measured[best],
                        "recommended": pick,
                        "recommended_accuracy": acc,
                        "measured": acc is not None,
                        "lost": None if acc is None else measured[best] - acc,
                        "within_1pt": None if acc is None else measured[best] - acc <= MARGIN,
                        "seconds_all": sum(costs.values()),
                        "seconds_recommended": costs.get(pick),
                        "strategies_measured": sorted(measured),
                        "advise_seconds": advise_s,
                        "measured_rules": [
                            r.rule for r in rec.reasons if r.rule.startswith("measured.")
                        ],
                    }
                    rows.append(row)
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["mode"], r["rules"], r["dataset"]) for r in rows})
    for mode, rules in sorted({(m, r) for m, r, _ in keys}):
        for dataset in [None, *sorted({d for _, _, d in keys})]:
            sel = [
                r
                for r in rows
                if r["mode"] == mode
                and r["rules"] == rules
                and (dataset is None or r["dataset"] == dataset)
            ]
            done = [r for r in sel if r["measured"]]
            saved = [
                1 - r["seconds_recommended"] / r["seconds_all"]
                for r in done
                if r["seconds_all"] and r["seconds_recommended"] is not None
            ]
            out.append(
                {
                    "mode": mode,
                    "rules": rules,
                    "dataset": dataset or "all",
                    "cases": len(sel),
                    "measured": len(done),
                    "mean_lost": sum(r["lost"] for r in done) / len(done) if done else None,
                    "max_lost": max((r["lost"] for r in done), default=None),
                    "within_1pt": sum(r["within_1pt"] for r in done) / len(done) if done else None,
                    "picked_best": sum(r["recommended"] == r["best"] for r in sel),
                    "mean_compute_saved": sum(saved) / len(saved) if saved else None,
                }
            )
    return out


def run(quick: bool, db, out) -> dict:
    from tladvisor.evidence import load_evidence

    data = read_efficiency(out)
    if not data:
        raise SystemExit(
            "run bench/data_efficiency.py first: bench/out/data_efficiency.json is missing"
        )
    unusual = unusualness_scores(data, quick, out)
    evidence_sets = {"seed rules": {}}
    derived = read_json(out, "evidence")
    if derived:
        from tladvisor.evidence import Evidence

        evidence_sets["with evidence"] = {n: Evidence.from_dict(n, e) for n, e in derived.items()}
    else:
        evidence_sets["with evidence"] = load_evidence()
    result = evaluate(data, unusual, evidence_sets, quick)
    result["quick"] = quick
    result["unusualness"] = unusual
    result["subset_note"] = sorted(
        {base_name(r["dataset"]) for r in data["rows"] if r["dataset"] != base_name(r["dataset"])}
    )
    write_json(out, NAME, result)
    return result


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    run(args.quick, args.db, args.out)
