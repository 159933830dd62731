"""Turn the advice suite's measurements into advisor evidence (``data/evidence.json``).

Reads ``bench/results/advice_runs.jsonl`` (``bench/advice_suite.py``, the whole suite) and, per
modality, pools the curves of the suite's real data sets that have results: at each budget of
examples per class, the mean over sets of each set's mean over seeds, kept only where every
pooled set has that strategy measured. The crossovers of the pooled curves become entries that
the decision engine turns into ``measured.<name>`` reasons citing BENCHMARKS.md (schema: the
docstring of ``tladvisor.evidence``). An entry is written only when its finding also holds on a
majority of the pooled sets one by one, and its text says on how many it held: a mean pulled up
by one set is not a finding.

Budgets: zero-shot and prompting are training-free (budget "all" in the runs file) and count as
budget 0. A trained strategy's "all" run differs per set and stays off the pooled curve, except
where a set is too small for a budget: then, as ``advice_suite.plan`` ran it, the "all" run is
that budget's run (the profiles' training-row count says which budgets collapsed).

Scope: the real sets span familiar and unusual domains, so entries are not scoped by
unusualness. The synthetic shifts are left out: the advisor scopes ``unusual`` by the measured
unusualness score, which does not track the constructed shifts (plain digits measure more unusual
than pixel-permuted ones), and three variants of one or two base sets are not independent
evidence; they stay held out for the regret and leave-one-data-set-out scores.
Every entry is derived from the measurements; nothing is typed in.

    python bench/evidence.py             # writes data/evidence.json (and bench/out/evidence.json)
    python bench/evidence.py --results DIR --evidence /tmp/e.json   # other results / target
    python bench/evidence.py --quick     # writes only --out: the quick advice suite's results
                                         # (OUT/advice_results), else data_efficiency.json
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common  # noqa: F401  (sets offline mode and sys.path first)
import suite
from advice_suite import PROFILES_FILE, RESULTS, RUNS_FILE, read_lines
from analysis import MARGIN, TRAINING_FREE, TUNED, crossovers, curves, first_k_from_which
from common import ROOT, log, mean_std, parse_args, read_efficiency, write_json

NAME = "evidence"
EVIDENCE_PATH = ROOT / "data" / "evidence.json"
MODALITIES = ("text", "image")
MODELS = {"text": "MiniLM", "image": "EfficientNet-Lite0"}  # the suite's default backbones
# The fallback without advice-suite results (``--quick`` before the quick advice suite has run).
BUNDLED = {"rotten_tomatoes": "text", "mnist_digits": "image"}
STRONG_GAP = 0.05  # a gap this large (5 points) is a strong rule (weight 2), else an ordinary one

Curve = dict[str, dict[int, dict[str, Any]]]  # strategy -> examples per class -> {mean, std, n}


@dataclass
class Pool:
    """The curves one modality's entries are derived from: ``curve`` is the mean over ``sets``
    (each a data set's own curve, for the consistency guard); ``where`` opens every entry text."""

    modality: str
    where: str
    curve: Curve
    sets: dict[str, Curve]
    unusual: bool | None = None


# ── Curves from the advice suite's results ────────────────────────────────────────────────────────
def suite_curves(runs: list[dict], profiles: dict[tuple[str, str], dict]) -> dict[str, Curve]:
    """data set -> its curves: mean over seeds at each numeric budget (training-free at 0)."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    all_runs: dict[tuple[str, str], list[dict]] = {}
    seen: set[tuple] = set()
    for row in runs:
        if row.get("status") != "done" or row.get("accuracy") is None:
            continue
        ds, strategy, budget = row["dataset"], row["strategy"], str(row["budget"])
        if (ds, strategy, budget, row["seed"]) in seen:  # one run per seed: a repeat is no spread
            continue
        seen.add((ds, strategy, budget, row["seed"]))
        if budget == "all" and strategy not in TRAINING_FREE:
            all_runs.setdefault((ds, strategy), []).append(row)
        else:
            groups.setdefault((ds, strategy, 0 if budget == "all" else int(budget)), []).append(row)
    budgets = sorted({k for _, _, k in groups if k})
    for (ds, strategy), rows in all_runs.items():
        p = profiles.get((ds, "all"))
        if not p:
            continue
        for k in budgets:  # advice_suite.plan: a budget past the data's size is the "all" run
            if k * p["n_classes"] >= p["n_labeled"]:
                groups.setdefault((ds, strategy, k), rows)
    out: dict[str, Curve] = {}
    for (ds, strategy, k), rows in groups.items():
        mean, std, n = mean_std(r["accuracy"] for r in rows)
        out.setdefault(ds, {}).setdefault(strategy, {})[k] = {"mean": mean, "std": std, "n": n}
    return out


def pool_curves(set_curves: dict[str, Curve]) -> Curve:
    """The mean over sets of each strategy's curve, at the budgets every set has measured."""
    pooled: Curve = {}
    values = list(set_curves.values())
    for strategy in set.intersection(*(set(c) for c in values)):
        for k in sorted(set.intersection(*(set(c[strategy]) for c in values))):
            mean, std, n = mean_std(c[strategy][k]["mean"] for c in values)
            pooled.setdefault(strategy, {})[k] = {"mean": mean, "std": std, "n": n}
    return pooled


def suite_pools(results: Path, exclude: str | None = None) -> list[Pool]:
    """One pool a modality over the suite's real sets that have a probe measured (``exclude``:
    a real set left out, as the leave-one-data-set-out evaluation needs)."""
    runs = read_lines(results / RUNS_FILE)
    profiles = {(p["dataset"], p["budget"]): p for p in read_lines(results / PROFILES_FILE)}
    all_curves = suite_curves(runs, profiles)
    pools = []
    for modality in MODALITIES:
        real = [e.name for e in suite.entries(modality, synthetic=False) if e.name != exclude]
        sets = {n: all_curves[n] for n in real if "feature_extraction" in all_curves.get(n, {})}
        missing = [n for n in real if n not in sets]
        if missing:
            log(f"evidence: no {modality} probe results yet for {', '.join(missing)}")
        if not sets:
            continue
        noun = "set" if len(sets) == 1 else "sets"
        names = ", ".join(sets) + ("" if len(sets) == 1 else "; mean over sets")
        where = f"Over {len(sets)} real {modality} {noun} of the suite ({names})"
        pools.append(Pool(modality, where, pool_curves(sets), sets))
    return pools


def bundled_pools(data: dict) -> list[Pool]:
    """Today's fallback: each bundled sample of ``data_efficiency.json`` a pool of its own."""
    all_curves = curves(data)
    return [
        Pool(modality, f"On the bundled {name} sample", all_curves[name], {name: all_curves[name]})
        for name, modality in BUNDLED.items()
        if name in all_curves
    ]


# ── Findings ──────────────────────────────────────────────────────────────────────────────────────
def _weight(gap: float) -> float:
    return 2.0 if abs(gap) >= STRONG_GAP else 1.0


def _fe(curve: Curve, k: int) -> float:
    return curve["feature_extraction"][k]["mean"]


def _free(curve: Curve, strategy: str) -> float:
    """A training-free path's accuracy on one curve (prompting: its best measured point)."""
    return max(v["mean"] for v in curve[strategy].values())


def _tuned_gap(curve: Curve, k: int, tuned: list[str]) -> float:
    return max(curve[s][k]["mean"] for s in tuned if k in curve.get(s, {})) - _fe(curve, k)


Check = Callable[[Curve], bool]  # whether a finding holds on one data set's curve


def _finetune_bands(pool: Pool, c: dict, kt: int) -> Iterator[tuple[str, dict, Check]]:
    """Fine-tuning ahead of the probe from ``kt`` on: one entry per band of budgets, weight 1
    while the gap is under STRONG_GAP and 2 from the budget where it stays at or above it."""
    gaps = c["tuned_minus_fe"]
    tuned = [s for s in TUNED if s in pool.curve]
    ks = sorted(k for k in gaps if k >= kt)
    strong = next((k for k in ks if all(gaps[j] >= STRONG_GAP for j in ks if j >= k)), None)
    bands = [(kt, strong), (strong, None)] if strong not in (None, kt) else [(kt, None)]
    for lo, hi in bands:
        if lo is None:
            continue
        inside = [k for k in ks if k >= lo and (hi is None or k < hi)]
        best = c["best_tuned_strategy"][inside[-1]]
        low, high = min(gaps[k] for k in inside), max(gaps[k] for k in inside)
        spread = f"{100 * low:.1f}" + (f"-{100 * high:.1f}" if high > low else "")
        widely = lo == strong
        where = (
            f"from {lo} examples per class on"
            if hi is None
            else f"between {lo} and {inside[-1]} examples per class"
        )
        entry = {
            "text": f"{pool.where}, fine-tuning ({best} best) beat the linear probe by {spread} "
            f"points {where}.",
            "favour": best,
            "weight": _weight(low),
            "modality": pool.modality,
            "per_class_min": lo,
            "per_class_max": None if hi is None else hi - 1,  # the bands meet: no gap between
        }

        def holds(s: Curve, inside: list[int] = inside, widely: bool = widely) -> bool:
            gaps_here = [_tuned_gap(s, k, tuned) for k in inside]
            return all(g >= STRONG_GAP if widely else g > 0 for g in gaps_here)

        yield f"{pool.modality}_finetune_beats_probe" + ("_widely" if widely else ""), entry, holds


def _candidates(pool: Pool) -> Iterator[tuple[str, dict, Check]]:
    """Each finding of the pooled curves: (key, entry, whether it holds on one set's curve)."""
    curve, modality, model = pool.curve, pool.modality, MODELS[pool.modality]
    if "feature_extraction" not in curve:
        return
    c = crossovers(curve)
    fe = curve["feature_extraction"]
    ks = sorted(fe)
    zs = c.get("zero_shot")
    # Compare the probe with the better of the training-free paths measured (on text,
    # prompting beat label-similarity zero-shot), not with zero-shot by default.
    prompt = c.get("prompting_best")
    free, free_acc = (
        ("prompting", prompt)
        if prompt is not None and zs is not None and prompt > zs
        else ("zero_shot", zs)
    )
    k = first_k_from_which(fe, lambda _, a=free_acc: a) if free_acc is not None else None
    if zs is not None and k is not None:
        # Counted against the training-free path, not for the probe: from k on, whether a
        # probe or a fine-tuned model is best is a separate finding (below).
        later = [j for j in ks if j >= k]
        yield (
            f"{modality}_probe_beats_{free}",
            {
                "text": f"{pool.where}, a linear probe on frozen {model} features beat {free} "
                f"({free_acc:.2f}) from {k} labelled examples per class on ({fe[k]['mean']:.2f} "
                f"at {k}).",
                "favour": free,
                "weight": -_weight(fe[k]["mean"] - free_acc),
                "modality": modality,
                "per_class_min": k,
            },
            lambda s: all(_fe(s, j) > _free(s, free) for j in later),
        )
        below = [j for j in ks if j < k]
        if below:
            yield (
                f"{modality}_training_free_beats_few_shot_probe",
                {
                    "text": f"{pool.where}, {free} ({free_acc:.2f}) was more accurate than a "
                    f"linear probe trained on up to {below[-1]} examples per class "
                    f"({fe[below[-1]]['mean']:.2f}).",
                    "favour": free,
                    "weight": _weight(free_acc - fe[below[-1]]["mean"]),
                    "modality": modality,
                    "per_class_max": below[-1],
                },
                lambda s: all(_free(s, free) > _fe(s, j) for j in below),
            )
    elif zs is not None and all(free_acc > fe[j]["mean"] for j in ks):
        yield (
            f"{modality}_{free}_beats_probe",
            {
                "text": f"{pool.where}, {free} ({free_acc:.2f}) beat a linear probe at every "
                f"budget measured, up to {ks[-1]} examples per class.",
                "favour": free,
                "weight": 2.0,
                "modality": modality,
                "per_class_max": ks[-1],
            },
            lambda s: all(_free(s, free) > _fe(s, j) for j in ks),
        )
    gaps = c.get("tuned_minus_fe") or {}
    tuned = [s for s in TUNED if s in curve]
    if gaps:
        lo, hi = min(gaps), max(gaps)
        kt = c.get("tuned_over_fe")
        if kt is None or all(g <= MARGIN for g in gaps.values()):
            worst = max(gaps.values())
            yield (
                f"{modality}_finetune_no_better_than_probe",
                {
                    "text": f"{pool.where}, with short CPU schedules, the best of the fine-tuning "
                    f"paths measured ({', '.join(tuned)}) "
                    + (
                        f"trailed a linear probe by at least {-100 * worst:.1f} points"
                        if worst < 0
                        else f"was at most {100 * worst:.1f} points above a linear probe"
                    )
                    + f" between {lo} and {hi} examples per class, at many times its cost.",
                    "favour": "feature_extraction",
                    "weight": 1.0 if worst > -STRONG_GAP else 2.0,
                    "modality": modality,
                    "per_class_min": lo,
                    "per_class_max": hi,
                },
                lambda s: all(_tuned_gap(s, j, tuned) <= max(worst, MARGIN) for j in gaps),
            )
        else:
            yield from _finetune_bands(pool, c, kt)
    ks_scratch = c.get("scratch_minus_fe") or {}
    ahead = sorted(j for j, g in ks_scratch.items() if g > MARGIN)
    if ahead:
        # The run of consecutive budgets, from the first one ahead, where scratch stays ahead.
        measured = sorted(ks_scratch)
        stay = []
        for j in measured[measured.index(ahead[0]) :]:
            if ks_scratch[j] <= MARGIN:
                break
            stay.append(j)
        yield (
            f"{modality}_scratch_beats_probe",
            {
                "text": f"{pool.where}, the no-transfer baseline beat the {model} probe by "
                f"{100 * ks_scratch[ahead[0]]:.1f} points at {ahead[0]} examples per class and "
                f"stayed ahead up to {stay[-1]}: the pretrained features are not an advantage "
                "there.",
                "favour": "scratch",
                "weight": _weight(ks_scratch[ahead[0]]),
                "modality": modality,
                "per_class_min": ahead[0],
                "per_class_max": None if stay[-1] == measured[-1] else stay[-1],
            },
            lambda s: all(s["scratch"][j]["mean"] - _fe(s, j) > MARGIN for j in stay),
        )


def derive(pools: list[Pool]) -> dict[str, dict]:
    """The entries of every pool whose finding holds on a majority of its sets one by one."""
    entries: dict[str, dict] = {}
    for pool in pools:
        m = len(pool.sets)
        for key, entry, holds in _candidates(pool):
            held = sum(1 for s in pool.sets.values() if holds(s))
            if 2 * held <= m:
                log(f"evidence: {key} left out: it held on {held} of {m} sets, not on most")
                continue
            if key in entries:
                raise ValueError(f"two pools derive the evidence entry {key!r}; give each a scope")
            if m > 1:
                entry["text"] += f" Held on {held} of {m} sets."
            if pool.unusual is not None:
                entry["unusual"] = pool.unusual
            entries[key] = entry
    return entries


# ── Running it ────────────────────────────────────────────────────────────────────────────────────
def run(
    quick: bool,
    out: Path,
    write_advisor_file: bool = True,
    results: Path | None = None,
    evidence_path: Path = EVIDENCE_PATH,
) -> dict:
    """Derive the entries into ``out/evidence.json`` and, unless quick, ``evidence_path``."""
    if results is None:
        results = out / "advice_results" if quick else RESULTS
    if (results / RUNS_FILE).is_file():
        pools = suite_pools(results)
    elif quick and read_efficiency(out):
        pools = bundled_pools(read_efficiency(out))
    elif quick:
        raise SystemExit(
            f"no results in {results} or {out}: run bench/advice_suite.py --quick --results "
            f"{results} (or bench/data_efficiency.py --quick --out {out}) first"
        )
    else:
        raise SystemExit(
            f"{results / RUNS_FILE} is missing: run python bench/advice_suite.py first "
            "(it resumes), or pass --results DIR"
        )
    entries = derive(pools)
    from tladvisor.evidence import Evidence

    for name, entry in entries.items():  # fail here, not in the advisor
        Evidence.from_dict(name, entry)
    write_json(out, NAME, entries)
    if write_advisor_file and not quick:
        evidence_path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {len(entries)} evidence entries to {evidence_path}")
    return entries


def _options(parser) -> None:
    parser.add_argument(
        "--results",
        type=Path,
        help="folder of advice_runs.jsonl / advice_profiles.jsonl (default: bench/results; "
        "with --quick: OUT/advice_results)",
    )
    parser.add_argument(
        "--evidence",
        type=Path,
        default=EVIDENCE_PATH,
        help="the advisor's evidence file to write (default: data/evidence.json)",
    )


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], _options)
    run(args.quick, args.out, results=args.results, evidence_path=args.evidence)
