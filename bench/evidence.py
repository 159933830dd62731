"""Turn the measured crossover points into advisor evidence (``data/evidence.json``).

Reads ``bench/out/data_efficiency.json`` and, for each bundled sample, writes entries that the
decision engine turns into ``measured.<name>`` reasons citing BENCHMARKS.md (schema: the
docstring of ``tladvisor.evidence``). Only the bundled samples feed the file: the evidence schema
keys on modality and label counts, not on unusualness, so findings on the unusual variants would
misfire on ordinary data; they are reported in BENCHMARKS.md instead. Every entry is derived from
the measurements; nothing is typed in.

    python bench/evidence.py             # writes data/evidence.json (and bench/out/evidence.json)
    python bench/evidence.py --quick     # writes only bench/out/ (never the advisor's file)
"""

from __future__ import annotations

import common  # noqa: F401  (sets offline mode and sys.path first)
from analysis import MARGIN, crossovers, curves, first_k_from_which
from common import ROOT, log, parse_args, read_efficiency, write_json
from regret import unusualness_scores

NAME = "evidence"
EVIDENCE_PATH = ROOT / "data" / "evidence.json"
BUNDLED = {"rotten_tomatoes": ("text", "MiniLM"), "mnist_digits": ("image", "EfficientNet-Lite0")}
STRONG_GAP = 0.05  # a gap this large (5 points) is a strong rule (weight 2), else an ordinary one


def _weight(gap: float) -> float:
    return 2.0 if abs(gap) >= STRONG_GAP else 1.0


def _finetune_bands(name: str, modality: str, c: dict, kt: int) -> dict[str, dict]:
    """Fine-tuning ahead of the probe from ``kt`` on: one entry per band of budgets, weight 1
    while the gap is under STRONG_GAP and 2 from the budget where it stays at or above it."""
    gaps = c["tuned_minus_fe"]
    ks = sorted(k for k in gaps if k >= kt)
    strong = next((k for k in ks if all(gaps[j] >= STRONG_GAP for j in ks if j >= k)), None)
    bands = [(kt, strong), (strong, None)] if strong not in (None, kt) else [(kt, None)]
    entries = {}
    for lo, hi in bands:
        if lo is None:
            continue
        inside = [k for k in ks if k >= lo and (hi is None or k < hi)]
        best = c["best_tuned_strategy"][inside[-1]]
        low, high = min(gaps[k] for k in inside), max(gaps[k] for k in inside)
        spread = f"{100 * low:.1f}" + (f"-{100 * high:.1f}" if high > low else "")
        key = f"{modality}_finetune_beats_probe" + ("_widely" if lo == strong else "")
        where = (
            f"from {lo} examples per class on"
            if hi is None
            else f"between {lo} and {inside[-1]} examples per class"
        )
        entries[key] = {
            "text": f"On the bundled {name} sample fine-tuning ({best} best) beat the linear "
            f"probe by {spread} points {where}.",
            "favour": best,
            "weight": _weight(low),
            "modality": modality,
            "per_class_min": lo,
            "per_class_max": None if hi is None else hi - 1,  # the bands meet: no gap between
        }
    return entries


def derive(data: dict) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    all_curves = curves(data)
    for name, (modality, model) in BUNDLED.items():
        curve = all_curves.get(name)
        if not curve or "feature_extraction" not in curve:
            continue
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
            entries[f"{modality}_probe_beats_{free}"] = {
                "text": f"On the bundled {name} sample a linear probe on frozen {model} features "
                f"beat {free} ({free_acc:.2f}) from {k} labelled examples per class on "
                f"({fe[k]['mean']:.2f} at {k}, mean of {fe[k]['n']} seeds).",
                "favour": free,
                "weight": -_weight(fe[k]["mean"] - free_acc),
                "modality": modality,
                "per_class_min": k,
            }
            below = [j for j in ks if j < k]
            if below:
                entries[f"{modality}_training_free_beats_few_shot_probe"] = {
                    "text": f"On the bundled {name} sample {free} ({free_acc:.2f}) was more "
                    f"accurate than a linear probe trained on up to {below[-1]} examples per "
                    f"class ({fe[below[-1]]['mean']:.2f}).",
                    "favour": free,
                    "weight": _weight(free_acc - fe[below[-1]]["mean"]),
                    "modality": modality,
                    "per_class_max": below[-1],
                }
        elif zs is not None:
            entries[f"{modality}_zero_shot_beats_probe"] = {
                "text": f"On the bundled {name} sample zero-shot ({zs:.2f}) beat a linear probe "
                f"at every budget measured, up to {ks[-1]} examples per class.",
                "favour": "zero_shot",
                "weight": 2.0,
                "modality": modality,
                "per_class_max": ks[-1],
            }
        gaps = c.get("tuned_minus_fe") or {}
        if gaps:
            lo, hi = min(gaps), max(gaps)
            kt = c.get("tuned_over_fe")
            if kt is None or all(g <= MARGIN for g in gaps.values()):
                worst = max(gaps.values())
                entries[f"{modality}_finetune_no_better_than_probe"] = {
                    "text": f"On the bundled {name} sample, with short CPU schedules, the best of "
                    "partial/full fine-tuning and LoRA "
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
                }
            else:
                entries.update(_finetune_bands(name, modality, c, kt))
        ks_scratch = c.get("scratch_minus_fe") or {}
        ahead = sorted(k for k, g in ks_scratch.items() if g > MARGIN)
        if ahead:
            # The run of consecutive budgets, from the first one ahead, where scratch stays ahead.
            measured = sorted(ks_scratch)
            last = ahead[0]
            for k in measured[measured.index(ahead[0]) :]:
                if ks_scratch[k] <= MARGIN:
                    break
                last = k
            entries[f"{modality}_scratch_beats_probe"] = {
                "text": f"On the bundled {name} sample the no-transfer baseline beat the "
                f"{model} probe by {100 * ks_scratch[ahead[0]]:.1f} points at {ahead[0]} examples "
                f"per class and stayed ahead up to {last}: the pretrained features are not an "
                "advantage there.",
                "favour": "scratch",
                "weight": _weight(ks_scratch[ahead[0]]),
                "modality": modality,
                "per_class_min": ahead[0],
                "per_class_max": None if last == measured[-1] else last,
            }
    return entries


def _scope_by_unusualness(entries: dict[str, dict], scores: dict[str, float | None]) -> None:
    """Scope each entry to the kind of domain its sample measured as (familiar or unusual): the
    reviews' findings misfired on ROT13 text, which the advisor can tell apart."""
    from tladvisor.decision import UNUSUAL_THRESHOLD

    for name, (modality, _model) in BUNDLED.items():
        u = scores.get(name)
        if u is None:
            continue
        for entry in entries.values():
            if entry["modality"] == modality and f"bundled {name} sample" in entry["text"]:
                entry["unusual"] = u >= UNUSUAL_THRESHOLD


def run(quick: bool, out, write_advisor_file: bool = True) -> dict:
    data = read_efficiency(out)
    if not data:
        raise SystemExit(
            "run bench/data_efficiency.py first: bench/out/data_efficiency.json is missing"
        )
    entries = derive(data)
    _scope_by_unusualness(entries, unusualness_scores(data, quick, out))
    write_json(out, NAME, entries)
    if write_advisor_file and not quick:
        import json

        from tladvisor.evidence import Evidence

        for name, entry in entries.items():  # fail here, not in the advisor
            Evidence.from_dict(name, entry)
        EVIDENCE_PATH.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {len(entries)} evidence entries to {EVIDENCE_PATH}")
    return entries


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    run(args.quick, args.out)
