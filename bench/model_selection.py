"""Model selection on the suite: the LogME paper's experiment on tladvisor's zoo (issue #15).

For every real set of ``bench/suite.py`` (and its shifts) and every installed candidate of the
modality (``tladvisor.scoring.candidate_models``: MiniLM, all-mpnet-base-v2 and SmolLM2's hidden
states for text; EfficientNet-Lite0/1/2 for images), this measures

- what running the candidate gives: feature extraction's test accuracy through the runner (the
  code a user's run takes) and, for images, where it takes seconds, full fine-tuning (64 px, two
  epochs, as in the advice suite);
- what scoring it costs and says: every transferability score on the training rows' features
  (``scoring.score_features``, each timed), and feature extraction's cost an item.

Rows are appended to ``bench/results/model_selection.jsonl`` (committed, resumable, a line never
measured twice). ``--report`` then writes BENCHMARKS.md's "Model selection" section: each score's
Kendall tau and weighted tau against the measured accuracies, per set and averaged (LogME
reported about 0.67 weighted tau over 9 vision sets, SFDA about 0.71), model-selection regret
(the best candidate's accuracy minus the top-scored one's), and the time of scoring against the
time of running every candidate.

    python bench/model_selection.py                 # measure what is missing (resumes)
    python bench/model_selection.py --report        # figures and the BENCHMARKS.md section
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import common  # noqa: F401  (sets offline mode and sys.path first)
import suite
from advice_suite import RESULTS, SHORT_SCHEDULE, append_line, read_lines
from common import OUT_DIR, ROOT, log, open_store, run_one, write_json

NAME = "model_selection"
FILE = "model_selection.jsonl"
CAP = 1000  # items a set: three text candidates on 2 cores cost minutes a set at this size
STRATEGIES = {"text": ("feature_extraction",), "image": ("feature_extraction", "full_finetune")}
SCORES = ("logme", "h_score", "knn_accuracy", "linear_probe_accuracy", "leep", "nce")
PUBLISHED = {"LogME": 0.67, "SFDA": 0.71}  # weighted tau over 9 vision sets (SFDA paper, 2022)
MARK_START = "<!-- model-selection:start (bench/model_selection.py writes this section) -->"
MARK_END = "<!-- model-selection:end -->"


def key(row: dict[str, Any]) -> tuple:
    return (row["dataset"], row["model"], row["kind"])


def score_row(ds: Any, model: str) -> dict[str, Any]:
    """Every score on the training rows' features (the features feature extraction ships)."""
    from tladvisor import embeddings, scoring

    split = suite.fixed_split(ds)
    train = list(split.train)
    share = embeddings.truncated_share([ds.items[i] for i in train], model, device="cpu")
    chunked = embeddings.should_chunk("auto", share)
    started = time.perf_counter()
    feats = embeddings.encode(ds, model, device="cpu", chunked=chunked)  # cached by the run
    encode_s = time.perf_counter() - started
    logits = None if feats.source_logits is None else feats.source_logits[train]
    y = ds.label_ids()[train]
    scores, seconds = scoring.score_features(feats.features[train], y, logits)
    per_item = scoring.item_cost_ms(ds, model, "cpu", chunked)
    return {
        "scores": scores,
        "seconds": seconds,
        "ms_per_item": per_item,
        # Scoring a candidate means encoding the training rows once, then the scores.
        "scoring_seconds": per_item * len(train) / 1000 + sum(seconds.values()),
        "cached_encode_seconds": encode_s,
        "train_rows": len(train),
        "chunked": chunked,
    }


def measure(names: list[str], results: Path, db: Path, minutes: float | None) -> int:
    from tladvisor import families
    from tladvisor.scoring import candidate_models

    path = results / FILE
    done = {key(r) for r in read_lines(path)}
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    store = open_store(db)
    count = 0
    try:
        for name in names:
            entry = suite.get(name)
            if suite.missing_requirement(entry):
                continue
            ds = suite.load(name, cap=CAP)
            for model in candidate_models(entry.modality):
                if not families.installed(model)[0]:
                    log(f"model selection: {model} not installed, skipped")
                    continue
                for kind in (*STRATEGIES[entry.modality], "scores"):
                    row_key = (ds.name, model, kind)
                    if row_key in done or (deadline and time.monotonic() > deadline):
                        continue
                    log(f"model selection: {name} {model} {kind}")
                    if kind == "scores":
                        row = score_row(ds, model)
                    else:
                        over: dict[str, Any] = {"model": model, "seed": 0}
                        if kind != "feature_extraction":
                            over.update(SHORT_SCHEDULE[entry.modality])
                        row = run_one(store, ds, kind, over)
                        row.pop("transferability", None)
                    row.update(dataset=ds.name, model=model, kind=kind)
                    append_line(path, row)
                    done.add(row_key)
                    count += 1
    finally:
        store.close()
    return count


# ── Analysis ──────────────────────────────────────────────────────────────────────────────────
def tables(rows: list[dict]) -> dict[str, dict[str, dict[str, Any]]]:
    """dataset -> model -> {strategy accuracies, scores, times}."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        cell = out[r["dataset"]][r["model"]]
        if r["kind"] == "scores":
            cell.update(scores=r["scores"], scoring_seconds=r["scoring_seconds"],
                        ms_per_item=r["ms_per_item"], rows=r.get("train_rows", 0))  # fmt: skip
        elif r.get("status") == "done" and r.get("accuracy") is not None:
            cell[r["kind"]] = r["accuracy"]
            cell[f"{r['kind']}_seconds"] = r.get("seconds") or 0.0
    return out


def taus(acc: list[float], score: list[float]) -> tuple[float | None, float | None]:
    """Kendall's tau and weighted tau (hyperbolic weights on rank, as in the SFDA/LogME
    evaluations) of ``score`` against ``acc``; None when either is constant."""
    from scipy.stats import kendalltau, weightedtau

    if len(set(acc)) < 2 or len(set(score)) < 2:
        return None, None
    return float(kendalltau(score, acc).statistic), float(weightedtau(score, acc).statistic)


def evaluate(rows: list[dict]) -> dict[str, Any]:
    from tladvisor.model_choice import choose_model

    per_set = []
    for ds, models in sorted(tables(rows).items()):
        modality = suite.get(ds).modality
        for strategy in STRATEGIES[modality]:
            ready = {m: c for m, c in models.items() if strategy in c and "scores" in c}
            if len(ready) < 2:
                continue
            names = sorted(ready)
            acc = [ready[m][strategy] for m in names]
            best = max(acc)
            entry: dict[str, Any] = {
                "dataset": ds,
                "modality": modality,
                "strategy": strategy,
                "models": names,
                "accuracy": dict(zip(names, acc, strict=True)),
                "tau": {},
                "weighted_tau": {},
                "regret": {},
                "scoring_seconds": sum(ready[m]["scoring_seconds"] for m in names),
                "running_seconds": sum(ready[m][f"{strategy}_seconds"] for m in names),
            }
            for score in SCORES:
                values = [ready[m]["scores"].get(score) for m in names]
                if any(v is None for v in values):
                    continue
                entry["tau"][score], entry["weighted_tau"][score] = taus(acc, values)
                top = names[max(range(len(names)), key=lambda i: values[i])]
                entry.setdefault("top", {})[score] = top
                entry["regret"][score] = best - ready[top][strategy]
            ranking = [
                {
                    "model": m,
                    "title": m,
                    "kind": _kind(m),
                    "scores": ready[m]["scores"],
                    "cost": {"ms_per_item": ready[m]["ms_per_item"]},
                    "rows": ready[m]["rows"],  # the linear probe's cross-validated rows
                }
                for m in names
            ]
            for preference in ("accuracy", "balanced"):
                picked = choose_model(ranking, strategy, preference).model
                entry["regret"][f"advice_{preference}"] = best - ready[picked][strategy]
            per_set.append(entry)
    return {"per_set": per_set, "summary": summarise(per_set)}


def _kind(model: str) -> str:
    from tladvisor import catalog

    return catalog.get_spec(model).kind


def summarise(per_set: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (modality, strategy), group in _groups(per_set).items():
        row: dict[str, Any] = {"sets": len(group)}
        for score in (*SCORES, "advice_accuracy", "advice_balanced"):
            regrets = [e["regret"][score] for e in group if score in e["regret"]]
            wt = [
                e["weighted_tau"][score] for e in group if e["weighted_tau"].get(score) is not None
            ]
            kt = [e["tau"][score] for e in group if e["tau"].get(score) is not None]
            if not regrets:
                continue
            row[score] = {
                "weighted_tau": statistics.fmean(wt) if wt else None,
                "tau": statistics.fmean(kt) if kt else None,
                "mean_regret": statistics.fmean(regrets),
                "worst_regret": max(regrets),
            }
        row["scoring_seconds"] = sum(e["scoring_seconds"] for e in group)
        row["running_seconds"] = sum(e["running_seconds"] for e in group)
        out[f"{modality}/{strategy}"] = row
    return out


def _groups(per_set: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in per_set:
        groups[(e["modality"], e["strategy"])].append(e)
    return groups


def _f(x: float | None, pts: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}" if pts else f"{x:.2f}"


def section(data: dict[str, Any], chart: str | None) -> str:
    lines = [
        MARK_START,
        "## Model selection (the LogME experiment on this zoo)",
        "",
        f"Reproduce: `python bench/model_selection.py` (resumable; rows under `bench/results/`), "
        f"then `python bench/model_selection.py --report`. Each suite set (capped at {CAP} items, "
        "its fixed split) is run with every installed candidate of its modality, and every "
        "transferability score is computed on the training rows' features. Per set, each score's "
        "Kendall tau and weighted tau against the measured test accuracies of the candidates; "
        "regret is the best candidate's accuracy minus that of the candidate the score (or the "
        "advice's model choice) ranks first. Published anchors (weighted tau averaged over 9 "
        "vision sets, about 15 candidate models): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
        + ". With 3 candidates a set, one swap moves tau by 2/3: read the means over sets.",
        "",
        "| modality / run | sets | score | mean weighted tau | mean tau | mean regret (points) "
        "| worst |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, row in sorted(data["summary"].items()):
        for score in (*SCORES, "advice_accuracy", "advice_balanced"):
            if score not in row:
                continue
            s = row[score]
            label = {
                "advice_accuracy": "the advice's model (best accuracy)",
                "advice_balanced": "the advice's model (balanced: cheaper within noise)",
            }.get(score, score)
            lines.append(
                f"| {group} | {row['sets']} | {label} | {_f(s['weighted_tau'])} | {_f(s['tau'])} "
                f"| {_f(s['mean_regret'], True)} | {_f(s['worst_regret'], True)} |"
            )
    lines += [""]
    for group, row in sorted(data["summary"].items()):
        logme = (row.get("logme") or {}).get("weighted_tau")
        if logme is None:
            continue
        best = max(
            (s for s in SCORES if (row.get(s) or {}).get("weighted_tau") is not None),
            key=lambda s: row[s]["weighted_tau"],
        )
        verdict = "above" if logme > PUBLISHED["LogME"] else "below"
        lines.append(
            f"- {group}: LogME's mean weighted tau is {logme:.2f}, {verdict} the published "
            f"{PUBLISHED['LogME']}; the best score here is {best} "
            f"({row[best]['weighted_tau']:.2f}). Picking by LogME loses "
            f"{100 * row['logme']['mean_regret']:.1f} points on average against the best "
            "candidate measured."
        )
    lines += ["", "Time: scoring every candidate against running every candidate:", ""]
    for group, row in sorted(data["summary"].items()):
        ratio = row["running_seconds"] / row["scoring_seconds"] if row["scoring_seconds"] else 0
        lines.append(
            f"- {group}: scoring {row['scoring_seconds']:.0f} s, running "
            f"{row['running_seconds']:.0f} s ({ratio:.1f}x the scoring)."
        )
    lines += ["", "Per set (test accuracy of each candidate; the top-scored by LogME in bold):", ""]
    lines += ["| set | run | accuracies | LogME tau | LogME regret |", "|---|---|---|---|---|"]
    for e in data["per_set"]:
        top = e.get("top", {}).get("logme")
        accs = ", ".join(
            f"**{m} {a:.3f}**" if m == top else f"{m} {a:.3f}"
            for m, a in sorted(e["accuracy"].items())
        )
        lines.append(
            f"| {e['dataset']} | {e['strategy']} | {accs} | {_f(e['tau'].get('logme'))} | "
            f"{_f(e['regret'].get('logme'), True)} |"
        )
    if chart:
        lines += ["", f"![Weighted tau of each score]({chart})"]
    lines.append(MARK_END)
    return "\n".join(lines)


def write_chart(data: dict[str, Any], folder: Path) -> Path | None:
    """Mean weighted tau of each score per modality, beside the published anchors (PNG)."""
    import plots

    rows = [
        {"group": group, "score": score, "weighted_tau": row[score]["weighted_tau"]}
        for group, row in data["summary"].items()
        for score in SCORES
        if score in row and row[score]["weighted_tau"] is not None
    ]
    if not rows:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return plots.model_selection_chart(rows, PUBLISHED, folder / "model_selection.png")


def report(results: Path, target: Path) -> dict[str, Any]:
    """Evaluate, write ``model_selection.json``, the chart and BENCHMARKS.md's section."""
    from common import CHART_DIR
    from lodo import write_section

    data = evaluate(read_lines(results / FILE))
    write_json(OUT_DIR, NAME, data)
    chart = write_chart(data, CHART_DIR)
    rel = None if chart is None else str(chart.relative_to(ROOT))
    write_section(target, section(data, rel), MARK_START, MARK_END)
    return data


def run(quick: bool, out: Path) -> dict[str, Any]:
    """``make bench``'s step: measure what is missing (not quick: the committed rows resume),
    then write ``model_selection.json`` and the chart; ``bench/report.py`` writes the section."""
    from common import CHART_DIR

    if not quick:
        measure([e.name for e in suite.entries()], RESULTS, out / "model_selection.duckdb", None)
    data = evaluate(read_lines(RESULTS / FILE))
    write_json(out, NAME, data)
    write_chart(data, out / "charts" if quick else CHART_DIR)
    return data


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated suite entries (default: all)")
    parser.add_argument("--minutes", type=float, help="stop starting new rows after this long")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--db", type=Path, default=OUT_DIR / "model_selection.duckdb")
    parser.add_argument("--report", action="store_true", help="only write the figures and section")
    args = parser.parse_args()
    if args.report:
        data = report(args.results, ROOT / "BENCHMARKS.md")
        log(f"model selection: {data['summary']}")
        return
    names = args.sets.split(",") if args.sets else [e.name for e in suite.entries()]
    n = measure(names, args.results, args.db, args.minutes)
    log(f"model selection: {n} rows measured")


if __name__ == "__main__":
    main()
