"""Leave-one-data-set-out (LODO) evaluation of the advice, and the shipped outcome model.

From the measurements of ``bench/advice_suite.py`` (committed under ``bench/results/``): for each
real data set of the suite, the outcome model (``tladvisor.outcomes``) is fitted on every *other*
set (a synthetic shift is left out together with the set it was made from, so nothing about the
held-out data leaks in) and the advisor is scored on the held-out set at every label budget:

- regret: the best strategy's measured mean accuracy minus that of the advisor's pick;
- interval coverage: the share of measured runs whose accuracy fell inside the 80% interval
  that was predicted for them;
- compute saved: 1 - (profiling + the pick's run) / (running every strategy measured there).

The advisor sees what a user uploading that budget's training rows would give it (the profile
measured on exactly those rows) and, as cost, the estimate of ``tladvisor.estimate`` when it
exists (else the run times measured on the *other* sets, scaled by rows). In-sample figures (the
model fitted on everything, scored on everything) are written beside them, labelled as such. The
model fitted on the whole suite is written to ``data/outcome_model.json``: what the advisor ships.

    python bench/lodo.py          # seconds
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import common  # noqa: F401  (sets offline mode and sys.path first)
import suite
from advice_suite import PROFILES_FILE, RESULTS, RUNS_FILE, read_lines
from common import OUT_DIR, ROOT, log, write_json

from tladvisor import decision, outcomes
from tladvisor.decision import TaskProfile, recommend
from tladvisor.strategies.names import Strategy

NAME = "lodo"
MODEL_PATH = ROOT / "data" / "outcome_model.json"
WITHIN = 0.01  # "within 1 point"


def group_of(dataset: str) -> str:
    """The real set a data set belongs to (a shift belongs to its base)."""
    try:
        return suite.base_of(suite.get(dataset)).name
    except KeyError:
        return dataset


def load_results(results: Path) -> tuple[list[dict], dict[tuple[str, str], dict]]:
    runs, seen = [], set()
    for r in read_lines(results / RUNS_FILE):
        key = (r["dataset"], r["strategy"], r["budget"], r["seed"])
        if r.get("status") == "done" and key not in seen:  # two processes may both have run it
            seen.add(key)
            runs.append(r)
    profiles = {(p["dataset"], p["budget"]): p for p in read_lines(results / PROFILES_FILE)}
    return runs, profiles


def cells(runs: list[dict], profiles: dict) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(dataset, budget) -> strategy -> runs; training-free runs count at every profiled budget."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    budgets_of: dict[str, set[str]] = defaultdict(set)
    for ds, b in profiles:
        budgets_of[ds].add(b)
    for r in runs:
        if r["strategy"] in ("zero_shot", "prompting"):
            for b in budgets_of[r["dataset"]]:
                out[(r["dataset"], b)][r["strategy"]].append(r)
        elif (r["dataset"], r["budget"]) in profiles:
            out[(r["dataset"], r["budget"])][r["strategy"]].append(r)
    return out


def task_profile(p: dict) -> TaskProfile:
    return TaskProfile(
        modality=suite.get(p["dataset"]).modality,
        n_labeled=int(round(p["n_labeled"] / outcomes.TRAIN_SHARE)),
        n_classes=p["n_classes"],
        min_per_class=None,
        probe_accuracy=p["probe_accuracy"],
        baseline_accuracy=p["baseline_accuracy"],
        zero_shot_accuracy=p["zero_shot_accuracy"],
        probe_rows=p["probe_rows"],
        probe_shots=p["probe_shots"],
        zero_shot_rows=p["zero_shot_rows"],
        prompting_accuracy=p.get("prompting_accuracy"),
        prompting_rows=p.get("prompting_rows"),
        probe_truncated_accuracy=p.get("probe_truncated_accuracy"),
        truncated_share=p.get("truncated_share"),
        gpu_memory_gb=0.0,
    )


def observations(table: dict, profiles: dict) -> list[outcomes.Observation]:
    """One observation a run (not a mean over seeds): a user gets one run, so the intervals must
    hold the seed-to-seed spread too (on seed means they covered fewer of the single runs)."""
    from tladvisor.decision import anchors_of

    obs = []
    for (ds, b), by_strategy in table.items():
        profile = task_profile(profiles[(ds, b)])
        anchors = anchors_of(profile)
        for strategy, rows in by_strategy.items():
            obs += [
                outcomes.Observation(
                    ds, profile.modality, Strategy(strategy), r["accuracy"], anchors, group_of(ds)
                )
                for r in rows
            ]
    return obs


def mean_seconds(rows: list[dict]) -> float:
    return statistics.fmean(r["seconds"] or 0.0 for r in rows)


_STATS: dict[str, Any] = {}


def estimated_costs(dataset: str, budget: str, n_classes: int) -> dict[Strategy, dict[str, Any]]:
    """What the advisor is told a run costs: ``tladvisor.estimate`` for the suite's run at this
    budget (its settings, the calibrated CPU), never the seconds measured on the held-out set."""
    from advice_suite import SHORT_SCHEDULE, overrides_for

    from tladvisor import estimate

    if dataset not in _STATS:
        # As a user's first run sees it: nothing cached (this machine's embedding cache would
        # make the figures depend on what ran here before).
        stats = estimate.DataStats.from_dataset(suite.load(dataset))
        _STATS[dataset] = dataclasses.replace(stats, cached_embeddings=())
    stats = _STATS[dataset]
    k = None if budget == "all" else int(budget)
    out = {}
    for s in Strategy:
        over = overrides_for(s.value, k, 0, n_classes, stats.modality)
        over.pop("seed", None)
        for key in SHORT_SCHEDULE[stats.modality]:
            over.pop(key, None)
        try:
            seconds = estimate.estimate_run(s, stats, over, with_transferability=False).seconds
        except (ValueError, KeyError):
            continue
        out[s] = {"seconds": seconds}
    return out


def score_cases(
    table: dict,
    profiles: dict,
    model: outcomes.OutcomeModel,
    cases: list[tuple[str, str]],
    preference: str = "balanced",
    evidence: dict | None = None,
) -> list[dict[str, Any]]:
    """The advisor's pick and its regret, and the interval coverage, on each (dataset, budget)."""
    out = []
    for ds, b in cases:
        by_strategy = table[(ds, b)]
        if len(by_strategy) < 2:
            continue
        profile = task_profile(profiles[(ds, b)])
        means = {
            s: statistics.fmean(r["accuracy"] for r in rows) for s, rows in by_strategy.items()
        }
        seconds = {s: mean_seconds(rows) for s, rows in by_strategy.items()}
        estimated = estimated_costs(ds, b, profile.n_classes)
        # Strategies not measured here cannot be scored: they are given an infinite cost and
        # skipped if they come out on top.
        costs = {
            s: estimated[s]
            if s.value in by_strategy and s in estimated
            else {"seconds": float("inf")}
            for s in Strategy
        }
        costs.update(
            {
                Strategy(s): {"seconds": seconds[s]}
                for s in by_strategy
                if Strategy(s) not in estimated
            }
        )
        rec = recommend(
            profile, outcome_model=model, costs=costs, preference=preference, evidence=evidence
        )
        pick = next(a.strategy.value for a in rec.alternatives if a.strategy.value in means)
        best = max(means, key=means.get)
        covered, total = 0, 0
        for a in rec.alternatives:
            for r in by_strategy.get(a.strategy.value, []):
                if a.expected is not None and a.expected.known:
                    total += 1
                    covered += a.expected.low <= r["accuracy"] <= a.expected.high
        everything = sum(seconds.values())
        spent = seconds[pick] + (profiles[(ds, b)].get("seconds") or 0.0)
        out.append(
            {
                "dataset": ds,
                "group": group_of(ds),
                "budget": b,
                "pick": pick,
                "best": best,
                "decided_by": rec.decided_by,
                "pick_accuracy": means[pick],
                "best_accuracy": means[best],
                "regret": means[best] - means[pick],
                "covered": covered,
                "predicted_runs": total,
                "compute_saved": 1 - spent / everything if everything else 0.0,
                "expected": {
                    a.strategy.value: a.expected.to_dict()
                    for a in rec.alternatives
                    if a.expected is not None
                },
                "measured": means,
            }
        )
    return out


def summary(rows: list[dict]) -> dict[str, Any]:
    if not rows:
        return {"cases": 0}
    regrets = [r["regret"] for r in rows]
    covered = sum(r["covered"] for r in rows)
    total = sum(r["predicted_runs"] for r in rows)
    return {
        "cases": len(rows),
        "datasets": len({r["dataset"] for r in rows}),
        "mean_regret": statistics.fmean(regrets),
        "worst_regret": max(regrets),
        "within_1_point": sum(x <= WITHIN + 1e-9 for x in regrets) / len(regrets),
        "coverage": covered / total if total else None,
        "predicted_runs": total,
        "compute_saved": statistics.fmean(r["compute_saved"] for r in rows),
    }


@functools.cache  # the same held-out set is asked for by every LODO variant
def evidence_without(results: Path, held_out: str | None) -> dict:
    """The suite's evidence (``bench/evidence.py``) derived without ``held_out``: the rules that
    decide when nothing was measured must not have seen the held-out set either."""
    import evidence

    from tladvisor.evidence import Evidence

    entries = evidence.derive(evidence.suite_pools(results, exclude=held_out))
    return {name: Evidence.from_dict(name, entry) for name, entry in entries.items()}


def lodo(
    table: dict, profiles: dict, preference: str, results: Path, fitted: bool = True
) -> list[dict]:
    """Every real set held out in turn (with its shifts): model and evidence from the others."""
    groups = sorted({group_of(ds) for ds, _ in table})
    rows: list[dict] = []
    for held_out in groups:
        train = [(k, v) for k, v in table.items() if group_of(k[0]) != held_out]
        model = (
            outcomes.fit(observations(dict(train), profiles), source=f"all but {held_out}")
            if fitted
            else outcomes.OutcomeModel()
        )
        cases = sorted(k for k in table if group_of(k[0]) == held_out)
        found = evidence_without(results, held_out)
        rows += score_cases(table, profiles, model, cases, preference, found)
    return rows


def evaluate(results: Path) -> dict[str, Any]:
    runs, profiles = load_results(results)
    table = cells(runs, profiles)
    everything = outcomes.fit(observations(table, profiles), source="the whole advice suite")
    out: dict[str, Any] = {
        "runs": len(runs),
        "profiles": len(profiles),
        "datasets": sorted({ds for ds, _ in table}),
        "lodo": lodo(table, profiles, "balanced", results),
        "lodo_best_accuracy": lodo(table, profiles, "accuracy", results),
        "in_sample": score_cases(
            table, profiles, everything, sorted(table), evidence=evidence_without(results, None)
        ),
        "rules_only": lodo(table, profiles, "balanced", results, fitted=False),
        "model": everything.to_dict(),
        "trade_sweep": sweep_table(table, profiles, results, "trade_max", list(TRADE_VALUES)),
    }
    for key in ("lodo", "lodo_best_accuracy", "in_sample", "rules_only"):
        out[f"{key}_summary"] = summary(out[key])
    return out


MARK_START = "<!-- advice:start (bench/lodo.py writes this section) -->"
MARK_END = "<!-- advice:end -->"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def section(data: dict[str, Any]) -> str:
    """The headline section of BENCHMARKS.md: LODO figures first, in-sample beside, labelled."""
    from advice_suite import BUDGETS, CHEAP, EXPENSIVE, PROMPTING_SINCE, SKIPPED

    from tladvisor.profile import PROFILER_VERSION

    rows = []
    for key, label in (
        ("lodo", "**leave-one-data-set-out** (headline)"),
        ("lodo_best_accuracy", "leave-one-data-set-out, 'best accuracy whatever the cost'"),
        ("in_sample", "in-sample (fitted and scored on the same sets: not evidence)"),
        ("rules_only", "the framework's rules alone (no predictions)"),
    ):
        sm = data.get(f"{key}_summary") or {}
        rows.append(
            f"| {label} | {sm.get('cases', 0)} | {_pts(sm.get('mean_regret'))} | "
            f"{_pts(sm.get('worst_regret'))} | {_pct(sm.get('within_1_point'))} | "
            f"{_pct(sm.get('coverage'))} ({sm.get('predicted_runs', 0)} runs) | "
            f"{_pct(sm.get('compute_saved'))} |"
        )
    per_set: dict[str, list[dict]] = defaultdict(list)
    for r in data.get("lodo", []):
        per_set[r["dataset"]].append(r)
    detail = []
    for ds in sorted(per_set):
        cases = per_set[ds]
        sm = summary(cases)
        ordered = sorted(
            cases,
            key=lambda c: (c["budget"] == "all", int(c["budget"]) if c["budget"] != "all" else 0),
        )
        picks = ", ".join(f"{c['budget']}: {c['pick']}" for c in ordered)
        measured = sorted({s for c in cases for s in c["measured"]})
        detail.append(
            f"| {ds} | {len(cases)} | {_pts(sm['mean_regret'])} | {_pts(sm['worst_regret'])} | "
            f"{_pct(sm['coverage'])} | {picks} | {', '.join(measured)} |"
        )
    expensive = "; ".join(f"{m}: {', '.join(v)}" for m, v in EXPENSIVE.items())
    skipped = "; ".join(f"{m}: {', '.join(v)}" for m, v in SKIPPED.items() if v)
    budgets = ", ".join("all" if b is None else str(b) for b in BUDGETS)
    lines = [
        MARK_START,
        "## Advice on data it has never seen (leave-one-data-set-out)",
        "",
        f"Reproduce: `python bench/advice_suite.py` (resumable; measurements are committed under "
        f"`bench/results/`), then `python bench/lodo.py` (seconds). {data.get('runs', 0)} runs and "
        f"{data.get('profiles', 0)} profiles over {len(data.get('datasets', []))} data sets of "
        "`bench/suite.py` (real sets and synthetic shifts). For each real set, the outcome model "
        "and the rules' evidence (`data/evidence.json`'s findings) are derived from every other set "
        "(a shift is held out with the set it was made from) and the "
        "advisor, given the profile of exactly the training rows at that label budget, is scored "
        "on the held-out set: regret is the best measured strategy's mean accuracy minus the "
        "pick's, coverage the share of measured runs inside the 80% interval predicted for them, "
        "compute saved 1 - (profiling + the pick) / (every strategy measured there).",
        "",
        f"Profiles by profiler version {PROFILER_VERSION}; on text their prompting accuracy is "
        f"carried over from version {PROMPTING_SINCE} (its measurement has not changed since; "
        "`bench/advice_suite.py`). The suite's LoRA runs used adapter dropout 0.05, the "
        "default until 2026-12-03 (now 0: `tladvisor/strategies/lora.py`).",
        "",
        "Settings chosen after reading these cases (so the held-out sets are not fully unseen by "
        "them): `outcomes.MIN_ANCHOR_ROWS` (`--sweep` compares values), the curves' ranges "
        "`outcomes.BETA_RANGE` (a slope never rises with more labels) and `GAMMA_RANGE` (a "
        "measurement is never amplified), and `decision.TRADE_MAX`, the most accuracy 'balanced' "
        "gives up for a cheaper path (table below). Each is a constraint, not a fitted value; "
        "the curves themselves are fitted without the held-out set.",
        "",
        "| advisor | cases | mean regret (points) | worst | within 1 point | interval coverage "
        "| compute saved |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *trade_lines(data.get("trade_sweep") or []),
        f"Budgets (examples per class): {budgets}; {', '.join(CHEAP)} at every budget with 3 "
        f"seeds, zero-shot once, {expensive} at 8 and 128 a class (1 seed), zero-shot prompting once "
        "a text set, on the same test split. Not measured here (no curve, so never "
        f"picked by prediction): {skipped}. The suite resumes where it stopped; the "
        "last column says what each set has so far, and a strategy missing there is skipped, "
        "not scored.",
        "",
        "Per held-out set (leave-one-data-set-out):",
        "",
        "| held-out set | cases | mean regret | worst | coverage | pick by budget | strategies "
        "measured so far |",
        "|---|---|---|---|---|---|---|",
        *detail,
        MARK_END,
    ]
    return "\n".join(lines)


def trade_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The 'balanced' preference at each trade tolerance, leave-one-data-set-out."""
    if not rows:
        return []
    body = [
        f"| {100 * r['trade_max']:.0f}{' (chosen)' if r['chosen'] else ''} | "
        f"{_pts(r['lodo'].get('mean_regret'))} | {_pts(r['lodo'].get('worst_regret'))} | "
        f"{_pct(r['lodo'].get('within_1_point'))} | {_pct(r['lodo'].get('compute_saved'))} |"
        for r in rows
    ]
    return [
        "'Balanced' recommends the cheapest path expected within the best one's interval and "
        "at most `decision.TRADE_MAX` below it. Leave-one-data-set-out at each tolerance (0 is "
        "'best accuracy whatever the cost' but for ties): the chosen 1 point is the target's own "
        "tolerance.",
        "",
        "| trade at most (points) | mean regret | worst | within 1 point | compute saved |",
        "|---|---|---|---|---|",
        *body,
        "",
    ]


def write_section(target: Path, text: str, start: str = MARK_START, end: str = MARK_END) -> None:
    """Put ``text`` between the markers ``start`` and ``end`` of ``target`` (before the summary
    the first time)."""
    doc = target.read_text(encoding="utf-8") if target.is_file() else "# Benchmarks\n"
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        tail = rest.split(end, 1)[1]
        doc = head + text + tail
    else:
        anchor = "\n## Summary"
        doc = (
            doc.replace(anchor, "\n" + text + "\n" + anchor, 1)
            if anchor in doc
            else doc + "\n" + text + "\n"
        )
    target.write_text(doc, encoding="utf-8")


def run(quick: bool, out: Path) -> dict[str, Any]:
    """``make bench``'s step: evaluate, write ``lodo.json`` and (not quick) the shipped model."""
    from advice_suite import RESULTS as results

    data = evaluate(out / "advice_results" if quick else results)
    write_json(out, NAME, data)
    if not quick:
        MODEL_PATH.write_text(json.dumps(data["model"], indent=2) + "\n", encoding="utf-8")
    log(f"lodo: {json.dumps(data['lodo_summary'])}")
    return data


# Settings chosen on this benchmark, and the module that holds each.
SWEEPS = {"min_anchor_rows": (outcomes, "MIN_ANCHOR_ROWS"), "trade_max": (decision, "TRADE_MAX")}
TRADE_VALUES = (0.0, 0.01, 0.02, 0.03)  # "balanced" trade tolerances BENCHMARKS.md tabulates


def sweep(results: Path, setting: str, values: list[float]) -> list[dict[str, Any]]:
    """LODO at each value of one chosen setting (``SWEEPS``): how it was chosen, in figures."""
    runs, profiles = load_results(results)
    return sweep_table(cells(runs, profiles), profiles, results, setting, values)


def sweep_table(
    table: dict, profiles: dict, results: Path, setting: str, values: list[float]
) -> list[dict[str, Any]]:
    module, name = SWEEPS[setting]
    chosen = getattr(module, name)
    out = []
    try:
        for value in values:
            setattr(module, name, value)
            evidence_without.cache_clear()
            out.append(
                {
                    setting: value,
                    "chosen": value == chosen,
                    "lodo": summary(lodo(table, profiles, "balanced", results)),
                    "rules_only": summary(lodo(table, profiles, "balanced", results, False)),
                }
            )
    finally:
        setattr(module, name, chosen)
        evidence_without.cache_clear()
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--model", type=Path, default=MODEL_PATH, help="where the fit goes")
    parser.add_argument(
        "--report",
        type=Path,
        nargs="?",
        const=ROOT / "BENCHMARKS.md",
        help="also write the section",
    )
    parser.add_argument("--sweep", help="comma-separated MIN_ANCHOR_ROWS values to compare")
    parser.add_argument(
        "--sweep-trade", help="comma-separated decision.TRADE_MAX values to compare (0.01,0.02)"
    )
    args = parser.parse_args()
    if args.sweep or args.sweep_trade:
        setting, raw = (
            ("min_anchor_rows", args.sweep) if args.sweep else ("trade_max", args.sweep_trade)
        )
        cast = int if setting == "min_anchor_rows" else float
        for row in sweep(args.results, setting, [cast(v) for v in raw.split(",")]):
            log(json.dumps(row))
        return
    data = evaluate(args.results)
    write_json(args.out, NAME, data)
    args.model.write_text(json.dumps(data["model"], indent=2) + "\n", encoding="utf-8")
    if args.report:
        write_section(args.report, section(data))
        log(f"wrote the advice section of {args.report}")
    for key in ("lodo", "lodo_best_accuracy", "in_sample", "rules_only"):
        log(f"{key}: {json.dumps(data[f'{key}_summary'])}")


if __name__ == "__main__":
    main()
