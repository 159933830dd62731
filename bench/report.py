"""Write ``BENCHMARKS.md`` from the JSON results in ``bench/out/`` (every number comes from there).

python bench/report.py
"""

from __future__ import annotations

from pathlib import Path

import common  # noqa: F401  (sets offline mode and sys.path first)
import estimate_check
import lodo
import model_selection
import sweep
from analysis import MARGIN, crossovers, curves
from common import ROOT, log, machine_info, parse_args, read_efficiency, read_json
from data_efficiency import PROMPT_PER_CLASS

TARGET = ROOT / "BENCHMARKS.md"
ORDER = (
    "zero_shot",
    "prompting",
    "feature_extraction",
    "partial_finetune",
    "full_finetune",
    "lora",
    "lp_ft",
    "scratch",
)


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def num(x: float | None, fmt: str = ".2f") -> str:
    return "–" if x is None else format(x, fmt)


def ratio(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _budget(k: int | None) -> str:
    return "never (in the budgets measured)" if k is None else f"{k} per class"


# ── sections ─────────────────────────────────────────────────────────────────────────────────────
def _schedules() -> str:
    from data_efficiency import TRAIN_OVERRIDES

    return "; ".join(
        f"{modality}: {o['epochs']} epochs"
        + (f" at {o['image_size']} px" if "image_size" in o else "")
        for modality, o in TRAIN_OVERRIDES.items()
    )


def _ordered(all_curves: dict, data: dict) -> list[str]:
    """Bundled samples first, then the unusual variants."""
    bundled = {d["name"] for d in data["datasets"] if d.get("source", "").startswith("sample:")}
    return sorted(all_curves, key=lambda n: (n not in bundled, n))


def machine_section(m: dict) -> str:
    return "\n".join(
        [
            "## The machine",
            "",
            table(
                ["date", "CPU", "nproc", "memory", "torch", "threads", "CUDA", "load average"],
                [
                    [
                        m["date"],
                        m["cpu"],
                        str(m["nproc"]),
                        m["memory"],
                        m["torch"],
                        str(m["torch_threads"]),
                        "yes" if m["cuda"] else "no",
                        " / ".join(str(x) for x in m["load_average"]),
                    ]
                ],
            ),
            "",
            "The cores were shared with other jobs while these ran (see the load average), so "
            "absolute seconds are context only; speed comparisons are ratios of timings taken in "
            "the same run, alternating the contenders.",
        ]
    )


def efficiency_section(data: dict, charts: dict[str, str]) -> str:
    out = [
        "## 1. Data efficiency",
        "",
        "Reproduce: `python bench/data_efficiency.py` (resumable; `--fresh` starts over). "
        "Test accuracy, mean ± standard deviation over seeds (n seeds in brackets); every run of a "
        "seed shares one test split. Zero-shot needs no labels (column 0); prompting's columns "
        "are the demonstrations per class in its prompt and it runs on a seeded subset "
        f"of {PROMPT_PER_CLASS} texts a class (marked *) because SmolLM2 scores every test item "
        f"on the CPU. Fine-tuning runs use short schedules ({_schedules()}).",
        "",
    ]
    all_curves = curves(data)
    info = {d["name"]: d for d in data["datasets"]}
    cross_rows = []
    for name in _ordered(all_curves, data):
        curve = all_curves[name]
        d = info.get(name, {})
        ks = sorted({k for pts in curve.values() for k in pts})
        header = ["strategy"] + [
            f"{k}" + (" (all)" if k == d.get("all_per_class") else "") for k in ks
        ]
        rows = []
        for strategy in [s for s in ORDER if s in curve]:
            pts = curve[strategy]
            cells = [strategy + ("*" if any(p["subset"] for p in pts.values()) else "")]
            for k in ks:
                p = pts.get(k)
                cells.append("" if p is None else f"{pct(p['mean'])} ± {pct(p['std'])} ({p['n']})")
            rows.append(cells)
        out += [
            f"### {name} ({d.get('modality', '?')}, {d.get('n', '?')} items, "
            f"{d.get('n_classes', '?')} classes, all = {d.get('all_per_class', '?')} per class)",
            "",
            table(header, rows),
            "",
        ]
        if name in charts:
            out += [f"![data efficiency on {name}]({charts[name]})", ""]
        c = crossovers(curve)
        cross_rows.append(
            [
                name,
                pct(c.get("zero_shot")),
                _budget(c.get("fe_over_zero_shot")) if "fe_over_zero_shot" in c else "–",
                _budget(c.get("fe_over_prompting")) if "fe_over_prompting" in c else "–",
                _budget(c.get("tuned_over_fe")) if "tuned_over_fe" in c else "–",
                ", ".join(
                    f"{k}: {100 * g:+.1f}"
                    for k, g in sorted((c.get("tuned_minus_fe") or {}).items())
                )
                or "–",
                _budget(c.get("scratch_catches_fe")) if "scratch_catches_fe" in c else "–",
            ]
        )
    out += [
        "### Crossover points",
        "",
        '"From k" means the first budget from which the curve stays above the other at every '
        "larger budget measured. Fine-tuning is the best of partial, full and LoRA at the budgets "
        f'where they ran; scratch "catches up" within {pct(MARGIN, 0)} point of the probe.',
        "",
        table(
            [
                "data set",
                "zero-shot acc.",
                "probe beats zero-shot from",
                "probe beats prompting from",
                "fine-tuning beats probe from",
                "fine-tuning − probe (points, per budget)",
                "scratch catches the probe from",
            ],
            cross_rows,
        ),
        "",
        "What the literature says, for comparison: CLIP zero-shot matches a 4-shot linear probe "
        "on average, with the shots needed ranging from under 1 to 184 (median 5.4; Radford et "
        "al. 2021); seed 002 puts feature extraction under ~1K examples and fine-tuning above "
        "500-10K; seed 000 puts scratch at ~1,280 images per class; SetFit finds 8 per class "
        "competitive (Tunstall et al. 2022).",
    ]
    return "\n".join(out)


def regret_section(regret: dict, chart: str | None) -> str:
    rows = []
    for s in regret["summary"]:
        rows.append(
            [
                s["mode"],
                s["rules"],
                s["dataset"],
                str(s["cases"]),
                str(s["measured"]),
                str(s["picked_best"]),
                pct(s["mean_lost"]),
                pct(s["max_lost"]),
                pct(s["within_1pt"], 0) + ("%" if s["within_1pt"] is not None else ""),
                pct(s["mean_compute_saved"], 0)
                + ("%" if s["mean_compute_saved"] is not None else ""),
            ]
        )
    detail = []
    for r in regret["rows"]:
        if r["mode"] != "profiled":
            continue
        detail.append(
            [
                r["dataset"],
                str(r["per_class"]),
                num(r["unusualness"]),
                r["rules"],
                f"{r['best']} ({pct(r['best_accuracy'])})",
                f"{r['recommended']} ({pct(r['recommended_accuracy'])})",
                pct(r["lost"]) if r["measured"] else "not measured",
                ", ".join(x.removeprefix("measured.") for x in r["measured_rules"]) or "–",
            ]
        )
    out = [
        "## 2. Advisor regret",
        "",
        "Reproduce: `python bench/evidence.py && python bench/regret.py` (after part 1). For "
        "every (data set, examples per class) of part 1 the advisor sees what an upload gives it "
        "on this CPU-only machine: the counts, the measured domain unusualness, and in "
        "`profiled` mode the probe accuracy cross-validated on the training rows only. Its pick "
        "is compared with the best mean accuracy measured at that budget (zero-shot counts at "
        "every budget; prompting with at most that many demonstrations). `seed rules` is the "
        "advisor without `data/evidence.json`; `with evidence` adds the entries derived from "
        "part 1 (section 5). Compute saved = 1 − seconds of the pick / seconds of running every "
        "strategy measured at that budget (one seed). A pick that was not run at that budget "
        "counts as not measured. The evidence is derived from the bundled samples' curves, so "
        "`with evidence` on rotten_tomatoes and mnist_digits is in-sample (it shows the rules "
        "now agree with what was measured); the unusual variants are held out (no entry is "
        "derived from them, and entries are scoped to the familiar or unusual kind of domain "
        "their sample measured as).",
        "",
        table(
            [
                "mode",
                "rules",
                "data set",
                "cases",
                "pick measured",
                "picked the best",
                "mean lost (points)",
                "max lost",
                "within 1 point",
                "compute saved",
            ],
            rows,
        ),
        "",
    ]
    if chart:
        out += [f"![advisor regret]({chart})", ""]
    out += [
        "<details><summary>Every case (profiled mode)</summary>",
        "",
        table(
            [
                "data set",
                "per class",
                "unusualness",
                "rules",
                "best (acc.)",
                "advisor (acc.)",
                "lost",
                "evidence fired",
            ],
            detail,
        ),
        "",
        "</details>",
    ]
    return "\n".join(out)


def _small_budget_notes(t: dict) -> list[str]:
    """Why a ranking fails where it does: how far apart the candidates' accuracies are."""
    notes = []
    for d in t["datasets"]:
        for budget, taus in d["taus"].items():
            tau = (taus.get("logme") or {}).get("kendall_tau")
            if tau is None or tau > 0:
                continue
            accs = [r["accuracy"] for r in d["rows"] if r["per_class"] == budget]
            pretrained = [
                r["accuracy"]
                for r in d["rows"]
                if r["per_class"] == budget and "random" not in r["candidate"]
            ]
            notes.append(
                f"At {budget} per class on {d['dataset']} LogME's tau is {num(tau)}: the "
                f"candidates' test accuracies span {pct(min(accs))}-{pct(max(accs))} "
                f"(pretrained depths {pct(min(pretrained))}-{pct(max(pretrained))}), so the "
                "ranking to recover is mostly noise, and with fewer training rows than feature "
                "dimensions the scores have little to measure. Rank candidates from the largest "
                "labelled set you have."
            )
    return [*notes, ""] if notes else []


def transfer_section(t: dict, chart: str | None, out: Path) -> str:
    from transferability import finetune_seconds, runs_table

    # The runs of part 1 may finish after this script: read them now, not when it ran.
    t = {**t, "runs": runs_table(out)}
    for d in t["datasets"]:
        d["run_seconds"] = finetune_seconds(out, d["source"])
    lit = {"logme": "0.67", "leep": "0.38", "nce": "0.47"}
    out = [
        "## 3. Transferability",
        "",
        "Reproduce: `python bench/transferability.py`. Candidates are the feature sources "
        "tladvisor can read: every MiniLM layer (Rotten Tomatoes), five EfficientNet-Lite0 "
        "depths (MNIST, 40 a class), each with a randomly initialised copy as a control. Scores "
        "use the training split; the accuracy is the project's linear probe on the shared test "
        "split. LEEP and NCE need the ImageNet head, which exists only at EfficientNet's last "
        "layer, so they cannot rank depths; they appear in the runs table below. Literature "
        "(weighted tau, 9 data sets x 10 ImageNet models, LogME paper): "
        + ", ".join(f"{k} {v}" for k, v in lit.items())
        + ".",
        "",
    ]
    rows = []
    for d in t["datasets"]:
        for budget, taus in d["taus"].items():
            for metric, v in taus.items():
                rows.append(
                    [
                        d["dataset"],
                        budget,
                        metric,
                        str(v["n"]),
                        num(v["kendall_tau"]),
                        num(v["weighted_tau"]),
                        lit.get(metric, "–"),
                    ]
                )
    out += [
        table(
            [
                "data set",
                "per class",
                "metric",
                "candidates",
                "Kendall tau-b",
                "weighted tau",
                "published (weighted)",
            ],
            rows,
        ),
        "",
    ]
    out += _small_budget_notes(t)
    if chart:
        out += [f"![LogME against accuracy]({chart})", ""]
    runs = t.get("runs") or []
    if runs:
        rrows = []
        for r in runs:
            for metric, v in r["taus"].items():
                rrows.append([r["dataset"], metric, str(v["n"]), num(v["kendall_tau"])])
        out += [
            "Over the stored runs of part 1 (seed 0: every strategy and budget with scores; a "
            "run's scores come from its model's features on its own training rows, so this "
            "mostly measures whether a score tracks the label budget):",
            "",
            table(["data set", "metric", "runs", "Kendall tau-b"], rrows),
            "",
        ]
    trows = []
    for d in t["datasets"]:
        runs_s = d.get("run_seconds", {})
        for metric, s in d["metric_seconds"].items():
            trows.append(
                [
                    d["dataset"],
                    metric,
                    num(s, ".3f"),
                    ratio(runs_s["full_finetune"] / s)
                    if runs_s.get("full_finetune") and s
                    else "–",
                    ratio(runs_s["lora"] / s) if runs_s.get("lora") and s else "–",
                    ratio(runs_s["feature_extraction"] / s)
                    if runs_s.get("feature_extraction") and s
                    else "–",
                ]
            )
    out += [
        "Time of each metric (all training rows, median over the candidates) against "
        "the runs it replaces, timed in this benchmark session (fine-tuning at its largest "
        "budget, with short schedules and no hyper-parameter search: the LogME paper's ~3000x "
        "counts a search over hyper-parameters, so these ratios are lower bounds of that one):",
        "",
        table(
            [
                "data set",
                "metric",
                "seconds (context)",
                "full fine-tune / metric",
                "LoRA / metric",
                "feature extraction run / metric",
            ],
            trows,
        ),
    ]
    return "\n".join(out)


def finetune_lines(c: dict) -> list[str]:
    """The fine-tuning cost table (both models) and what did not finish."""
    out: list[str] = []
    ft = [r for r in c.get("finetune", []) if r.get("status") == "done"]
    if ft:
        rows = []
        for r in ft:
            model = r.get("model", "minilm")
            full = next(
                (
                    x
                    for x in ft
                    if x["strategy"] == "full_finetune" and x.get("model", "minilm") == model
                ),
                None,
            )
            ep = sum(r["epoch_seconds"]) / len(r["epoch_seconds"]) if r["epoch_seconds"] else None
            full_ep = (
                sum(full["epoch_seconds"]) / len(full["epoch_seconds"])
                if full and full["epoch_seconds"]
                else None
            )
            rows.append(
                [
                    model,
                    r["strategy"],
                    num(ep, ".1f"),
                    num(ep / full_ep, ".2f") if ep and full_ep else "–",
                    num(r["peak_mem_mb"], ".0f"),
                    num(r["peak_mem_mb"] - r["rss_before_mb"], ".0f"),
                    f"{int(r['trainable_params']):,}",
                    pct(r["trainable_params"] / r["total_params"], 2) + "%",
                    pct(r["accuracy"]),
                ]
            )
        n, e = ft[0]["n_train"], ft[0]["epochs"]
        out += [
            f"Fine-tuning MiniLM (23M parameters) and all-mpnet-base-v2 (109M) on Rotten "
            f"Tomatoes ({n} training examples, {e} epochs, batch 16, each strategy in a fresh "
            "process; memory is the process's peak resident set sampled every 50 ms, and its "
            "rise over the process before the run; epoch time and memory are compared with "
            "full fine-tuning of the same model):",
            "",
            table(
                [
                    "model",
                    "strategy",
                    "seconds / epoch (context)",
                    "epoch time vs full",
                    "peak RSS MB",
                    "rise MB",
                    "trainable params",
                    "trainable share",
                    "accuracy",
                ],
                rows,
            ),
            "",
        ]
    loads = [r["load_average"] for r in ft if r.get("load_average") is not None]
    if loads:
        out += [
            f"Measured {ft[0].get('measured_at', '')}; the 1-minute load average before each run "
            f"was {min(loads)}-{max(loads)} on {(c.get('machine') or {}).get('nproc')} cores "
            "(other work on the cores slows the epochs; ratios within one model less so).",
            "",
        ]
    lora = [r for r in ft if r["strategy"] == "lora"]
    if lora:
        dropouts = sorted({str(r.get("lora_dropout", "0.05 (the default before 2026-12-03)"))
                           for r in lora})  # fmt: skip
        out += [f"LoRA's adapter dropout in these runs: {', '.join(dropouts)}.", ""]
    failed = [r for r in c.get("finetune", []) if r.get("status") != "done"]
    for r in failed:
        out += [
            f"- {r.get('model', 'minilm')} {r['strategy']} did not finish: "
            f"`{(r.get('error') or '')[-200:]}`",
            "",
        ]
    return out


def step_memory_lines(rows: list[dict]) -> list[str]:
    """Where one training step's memory goes, tensor by tensor (bench/cost.py step_memory)."""
    if not rows:
        return []
    table_rows = []
    for r in rows:
        kept = r["saved_activations_mb"] + r["gradients_mb"] + r["optimizer_state_mb"]
        label = r["strategy"] + (
            f" (adapter dropout {r['lora_dropout']})" if r["strategy"] == "lora" else ""
        )
        table_rows.append([r["model"], label, num(r["saved_activations_mb"], ".0f"),
                           num(r["gradients_mb"], ".0f"), num(r["optimizer_state_mb"], ".0f"),
                           num(kept, ".0f"), num(r["weights_mb"], ".0f")])  # fmt: skip
    shape = " x ".join(str(x) for x in rows[0]["tokens"])
    return [
        "One training step, counted tensor by tensor instead of read off the resident set "
        f"(a batch of {shape} word pieces of Rotten Tomatoes reviews; activations are what "
        "autograd saves for the backward pass, frozen weights it only references are not "
        "counted; optimizer state is AdamW's after one step). The fine-tuning table above ran "
        "LoRA at adapter dropout 0.05 (its default until 2026-12-03) unless it says otherwise:",
        "",
        table(
            [
                "model",
                "strategy",
                "saved activations MB",
                "gradients MB",
                "optimizer state MB",
                "kept by training MB",
                "weights MB",
            ],
            table_rows,
        ),  # fmt: skip
        "",
    ]


FINETUNE_START = "<!-- cost-finetune:start (bench/cost.py --only-finetune rewrites this) -->"
FINETUNE_END = "<!-- cost-finetune:end -->"
STEP_START = "<!-- cost-step:start (bench/cost.py --only-step-memory rewrites this) -->"
STEP_END = "<!-- cost-step:end -->"


def cost_section(c: dict) -> str:
    out = ["## 4. Cost", "", "Reproduce: `python bench/cost.py`.", ""]
    out += [FINETUNE_START, *finetune_lines(c), FINETUNE_END, ""]
    out += [STEP_START, *step_memory_lines(c.get("step_memory") or []), STEP_END, ""]
    tt, it = c.get("text_throughput"), c.get("image_throughput")

    if tt:
        out += [
            "Feature extraction throughput (same texts, alternated, best of the repeats):",
            "",
            table(
                ["pipeline", "items", "speed vs plain", "agreement"],
                [
                    [
                        f"project `TextEncoder.encode` (length-sorted, batch {tt['project_batch_size']}) vs "
                        f"`SentenceTransformer.encode` defaults (batch {tt['plain_batch_size']})",
                        str(tt["n_texts"]),
                        ratio(tt["speedup_vs_plain"]),
                        f"min cosine {tt['min_cosine_project_vs_plain']:.4f}",
                    ],
                    [
                        "project embedding cache, read from disk vs computing",
                        str(tt["n_texts"]),
                        ratio(tt["cache_disk_speedup"]),
                        "same array",
                    ],
                ]
                + (
                    [
                        [
                            "project `forward_batches` (EfficientNet, batch 32, features + "
                            "logits) vs plain batched forward (batch 32)",
                            str(it["n_images"]),
                            ratio(it["speedup_vs_plain"]),
                            "–",
                        ]
                    ]
                    if it
                    else []
                ),
            ),
            "",
        ]
    adv = c.get("advice") or []
    if adv:
        rows = [
            [
                a["sample"],
                num(a.get("process_seconds"), ".1f"),
                num(a.get("profile_seconds"), ".1f"),
                a.get("strategy", "–"),
                a.get("profiled_with", a.get("error", "")[-120:]),
            ]
            for a in adv
        ]
        out += [
            "Time from upload to first advice (bytes of the bundled sample -> load -> profile -> "
            "recommendation, in a fresh process, so imports and model loading count; seconds are "
            "context on this loaded machine):",
            "",
            table(["sample", "seconds", "of which profiling", "advice", "profile"], rows),
            "",
        ]
    lg = c.get("logme")
    if lg:
        out += [
            f"LogME at {lg['n']:,} x {lg['d']:,} ({lg['classes']} classes, synthetic features), "
            "against a straightforward reference (tllib's `ranking/logme.py` algorithm, "
            "transcribed in `bench/cost.py`):",
            "",
            table(
                ["project vs reference", "project score", "reference score", "|difference|"],
                [
                    [
                        ratio(lg["speedup_vs_reference"]) + " faster",
                        num(lg["project_score"], ".5f"),
                        num(lg["reference_score"], ".5f"),
                        num(lg["abs_difference"], ".2e"),
                    ]
                ],
            ),
        ]
    return "\n".join(out)


def evidence_section(entries: dict) -> str:
    rows = [
        [
            f"`{name}`",
            e["favour"],
            num(e.get("weight", 1.0), ".1f"),
            e.get("modality") or "both",
            f"{e.get('per_class_min') or '–'} .. {e.get('per_class_max') or '–'}",
            {True: "unusual", False: "familiar"}.get(e.get("unusual"), "any"),
            e["text"],
        ]
        for name, e in entries.items()
    ]
    return "\n".join(
        [
            "## 5. What changed in the advisor",
            "",
            "Reproduce: `python bench/evidence.py` (writes `data/evidence.json` from the advice "
            "suite's results in `bench/results/`). Per modality, the curves of the suite's real "
            "data sets are pooled (at each budget, the mean over sets of each set's mean over "
            "seeds, where every set has the strategy measured) and their crossovers become "
            "entries; an entry is kept only when its finding also holds on a majority of those "
            "sets one by one, and its text says on how many. The synthetic shifts are left out. "
            "Each entry adds a `measured.<name>` reason, citing this file, to every "
            "recommendation it covers (by modality, smallest-class count and, where an entry is "
            "scoped, the kind of domain the profiler measured); weight 2 where the pooled gap is "
            "5 points or more, else 1 (negative weights count against).",
            "",
            table(
                [
                    "entry",
                    "favours",
                    "weight",
                    "modality",
                    "per class",
                    "domain",
                    "what was measured",
                ],
                rows,
            )
            if rows
            else "No entry: nothing measured contradicted the seed rules.",
        ]
    )


def summarise(data: dict, regret: dict | None, transfer: dict | None, cost: dict | None) -> dict:
    """Headline findings and commentary, each sentence computed from the results."""
    from tladvisor import decision

    summary, notes = [], []
    all_curves = curves(data)
    for name, constant, label in (
        ("rotten_tomatoes", "SETFIT_PER_CLASS", "the SetFit threshold"),
        ("mnist_digits", "CONSE_MATCH_SHOTS", "the advisor's ConSE crossover"),
    ):
        if name not in all_curves:
            continue
        c = crossovers(all_curves[name])
        k = c.get("fe_over_zero_shot")
        zs = c.get("zero_shot")
        assumed = getattr(decision, constant)
        if zs is not None and "fe_over_zero_shot" in c:
            where = (
                "never, within the budgets measured,"
                if k is None
                else f"from {k} examples per class"
            )
            cmp = (
                ""
                if k is None
                else " (later than"
                if k > assumed
                else " (in line with"
                if k == assumed
                else " (earlier than"
            )
            summary.append(
                f"- **{name}**: the linear probe overtakes zero-shot ({pct(zs)}%) {where}"
                + (
                    f"{cmp} {label}, `{constant} = {assumed:g}`; CLIP's average is 4 shots, median 5.4)."
                    if cmp
                    else "."
                )
            )
        gaps = c.get("tuned_minus_fe") or {}
        if gaps:
            best_k = max(gaps, key=gaps.get)
            verdict = (
                f"never beat the probe by more than {pct(MARGIN, 0)} point"
                if all(g <= MARGIN for g in gaps.values())
                else f"beat the probe by up to {100 * gaps[best_k]:.1f} points (at {best_k} per class)"
            )
            summary.append(
                f"- **{name}**: short fine-tuning (partial, full, LoRA at "
                f"{', '.join(str(k) for k in sorted(gaps))} per class) {verdict}."
            )
        prompts = all_curves[name].get("prompting", {})
        shots = {k: v["mean"] for k, v in prompts.items() if k > 0}
        if 0 in prompts and shots:
            zero, best = prompts[0]["mean"], max(shots, key=shots.get)
            summary.append(
                f"- **{name}**: prompting SmolLM2 with demonstrations ("
                + ", ".join(f"{k}: {pct(v)}%" for k, v in sorted(shots.items()))
                + f" per class) scored {'below' if shots[best] < zero else 'above'} zero-shot "
                f"prompting ({pct(zero)}%): "
                + (
                    "a 135M model copies the demonstrations' answers more than it reads them."
                    if shots[best] < zero
                    else "the demonstrations help."
                )
            )
        diff = c.get("scratch_minus_fe") or {}
        if diff:
            ahead = [k for k in sorted(diff) if diff[k] > MARGIN]
            top = max(diff)
            summary.append(
                f"- **{name}**: the no-transfer baseline "
                + (
                    f"is ahead of the probe at {', '.join(map(str, ahead))} per class and "
                    if ahead
                    else ""
                )
                + f"ends {abs(100 * diff[top]):.1f} points "
                + ("behind" if diff[top] < 0 else "ahead of")
                + f" the probe at {top} per class"
                + (
                    f"; it stays within 1 point from {c['scratch_catches_fe']} per class on."
                    if c.get("scratch_catches_fe") is not None
                    else "."
                )
            )
    if regret:
        rows = {(s["mode"], s["rules"], s["dataset"]): s for s in regret["summary"]}
        before = rows.get(("profiled", "seed rules", "all"))
        after = rows.get(("profiled", "with evidence", "all"))
        for label, s in (("seed rules", before), ("with the measured evidence", after)):
            if s:
                summary.append(
                    f"- **Advisor ({label}, profiled; in-sample on the two bundled samples, "
                    "not evidence: the headline is the leave-one-data-set-out section)**: "
                    "picked the best strategy in "
                    f"{s['picked_best']} of {s['cases']} cases; where its pick was measured "
                    f"({s['measured']}) it lost {pct(s['mean_lost'])} points on average "
                    f"(worst {pct(s['max_lost'])}), was within 1 point in "
                    f"{pct(s['within_1pt'], 0)}% and saved {pct(s['mean_compute_saved'], 0)}% of "
                    "the compute of running everything."
                )
        worst = sorted(
            (
                r
                for r in regret["rows"]
                if r["mode"] == "profiled"
                and r["rules"] == "seed rules"
                and r["lost"] is not None
                and r["lost"] > 0.05
            ),
            key=lambda r: -r["lost"],
        )
        if worst:
            notes.append(
                "Where the seed rules were wrong by more than 5 points (profiled mode): "
                + "; ".join(
                    f"{r['dataset']} at {r['per_class']}/class picked {r['recommended']} "
                    f"({pct(r['recommended_accuracy'])}) where {r['best']} reached "
                    f"{pct(r['best_accuracy'])}"
                    for r in worst[:8]
                )
                + "."
            )
        u = {k: v for k, v in (regret.get("unusualness") or {}).items() if v is not None}
        if u:
            notes.append(
                "Measured domain unusualness (tladvisor.unusualness): "
                + ", ".join(f"{k} {v:.2f}" for k, v in sorted(u.items()))
                + f". The advisor treats >= {decision.UNUSUAL_THRESHOLD} as unusual. Plain "
                "digits measure as more unusual than pixel-permuted ones, yet the pretrained probe "
                "wins on the first and the no-transfer baseline on the second: unusualness of the "
                "inputs does not predict negative transfer. So the advisor no longer concludes it "
                "from unusualness; it concludes it when the profiler's no-transfer baseline beats "
                f"the pretrained probe on the same shots by {decision.BASELINE_MARGIN:.2f} or more "
                "(rule profile.baseline_beats_probe), or when the probe is at chance on an "
                "unusual domain."
            )
        unmeasured = [r for r in regret["rows"] if r["mode"] == "profiled" and not r["measured"]]
        if unmeasured:
            picks = sorted({r["recommended"] for r in unmeasured})
            notes.append(
                f"{len(unmeasured)} profiled cases picked a strategy that part 1 did not run at "
                f"that budget ({', '.join(picks)}); they count as not measured rather than as "
                "right or wrong. The evidence schema keys on modality and label counts only, so "
                "the findings on the unusual variants (ROT13 text, permuted digits) could not be "
                "written as evidence without misfiring on ordinary data: an `unusualness_min` / "
                "`unusualness_max` bound in `tladvisor.evidence` would let them in."
            )
    if transfer:
        for d in transfer["datasets"]:
            t = d["taus"].get("all", {})
            if t:
                best = max(t, key=lambda m: t[m]["kendall_tau"])
                lm = t.get("logme", {}).get("kendall_tau")
                summary.append(
                    f"- **Transferability on {d['dataset']}** ({len(d['candidates'])} candidates): "
                    f"LogME's Kendall tau with the accuracy reached is {num(lm)} (published "
                    f"weighted tau 0.67 over ImageNet models); the best ranker here is {best} "
                    f"({num(t[best]['kendall_tau'])})."
                )
    if cost:
        for model, title in (("minilm", "MiniLM"), ("mpnet", "all-mpnet-base-v2")):
            ft = {
                r["strategy"]: r
                for r in cost.get("finetune", [])
                if r.get("status") == "done" and r.get("model", "minilm") == model
            }
            if "lora" in ft and "full_finetune" in ft and ft["full_finetune"]["epoch_seconds"]:
                lo, fu = ft["lora"], ft["full_finetune"]
                e_lo = sum(lo["epoch_seconds"]) / len(lo["epoch_seconds"])
                e_fu = sum(fu["epoch_seconds"]) / len(fu["epoch_seconds"])
                rise_lo = lo["peak_mem_mb"] - lo["rss_before_mb"]
                rise_fu = fu["peak_mem_mb"] - fu["rss_before_mb"]
                summary.append(
                    f"- **Cost ({title})**: LoRA trains "
                    f"{pct(lo['trainable_params'] / lo['total_params'], 2)}% of the parameters; "
                    f"its epoch takes {e_lo / e_fu:.2f}x the time of full fine-tuning's, its peak "
                    f"memory is {lo['peak_mem_mb'] / fu['peak_mem_mb']:.2f}x and the memory the "
                    f"run adds {rise_lo / rise_fu:.2f}x (on a CPU the frozen forward and backward "
                    "passes dominate the time)."
                )
        tt, lg = cost.get("text_throughput"), cost.get("logme")
        if tt:
            summary.append(
                f"- **Feature extraction**: the project's encoder runs at "
                f"{tt['speedup_vs_plain']:.2f}x the speed of plain `SentenceTransformer.encode`; "
                f"a cached data set loads {ratio(tt['cache_disk_speedup'])} faster than encoding it."
            )
        if lg:
            summary.append(
                f"- **LogME** at {lg['n']:,} x {lg['d']:,}: {ratio(lg['speedup_vs_reference'])} "
                f"the speed of the tllib-style reference, scores within {lg['abs_difference']:.1e}."
            )
    return {"summary": summary, "notes": notes}


def build(out: Path, charts_rel: str = "docs/bench") -> str:
    data = read_efficiency(out)
    regret = read_json(out, "regret")
    transfer = read_json(out, "transferability")
    cost = read_json(out, "cost")
    entries = read_json(out, "evidence") or {}
    commentary = summarise(data, regret, transfer, cost) if data else {}
    machine = (cost or transfer or {}).get("machine") or machine_info()
    parts = [
        "# Benchmarks",
        "",
        "Measured evidence for tladvisor's advice (issue #7), generated by `bench/report.py` from "
        "the JSON the scripts write to `bench/out/`: no number here is typed by hand. Run "
        "everything with `make bench` (`python bench/run_all.py`; about 2 hours on 2 CPU cores, most of it fine-tuning and prompting "
        "runs); every script also runs alone, and `--quick` runs it on a tiny budget. The "
        "runs are stored in `bench/out/bench.duckdb` (`make bench` imports the runs of scripts "
        "that ran on their own into it, as `tladvisor import` does): "
        "`TLADVISOR_DB=bench/out/bench.duckdb make run` shows the same views (data efficiency, transferability against accuracy, cost "
        "against accuracy) on the dashboard's compare page.",
        "",
        machine_section(machine),
    ]
    advice = read_json(out, "lodo")
    if advice:
        parts += ["", lodo.section(advice)]
    selection = read_json(out, "model_selection")
    if selection and selection.get("per_set"):
        parts += ["", model_selection.section(selection, f"{charts_rel}/model_selection.png")]
    if commentary.get("summary"):
        parts += ["", "## Summary", "", *commentary["summary"]]
    if data:
        charts = {name: f"{charts_rel}/data_efficiency_{name}.png" for name in curves(data)}
        parts += ["", efficiency_section(data, charts)]
    if regret:
        parts += ["", regret_section(regret, f"{charts_rel}/regret.png")]
    if transfer:
        parts += ["", transfer_section(transfer, f"{charts_rel}/transferability.png", out)]
    if cost:
        parts += ["", cost_section(cost)]
    parts += ["", evidence_section(entries)]
    estimated = read_json(out, "estimate_check")
    if estimated and not estimated.get("quick"):  # a quick result is a smoke test, not a figure
        parts += ["", estimate_check.section(estimated)]
    swept = read_json(out, "sweep")
    if swept and not quick_result(swept):
        parts += ["", sweep.section(swept)]
    if commentary.get("notes"):
        parts += ["", "## Commentary", "", *commentary["notes"]]
    return "\n".join(parts) + "\n"


def quick_result(swept: dict) -> bool:
    """A ``--quick`` sweep (two tiny runs) is a smoke test, not a figure for BENCHMARKS.md."""
    return len(swept.get("jobs", [])) < len(sweep.jobs(quick=False))


def run(quick: bool, out: Path) -> Path:
    target = out / "BENCHMARKS.md" if quick else TARGET
    target.write_text(build(out), encoding="utf-8")
    log(f"wrote {target}")
    return target


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    run(args.quick, args.out)
