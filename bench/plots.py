"""Charts of parts 1-3 as PNG files under ``docs/bench/`` (matplotlib, from the JSON in bench/out).

The dashboard draws the same views from the stored runs: point it at the benchmark database
(``TLADVISOR_DB=bench/out/bench.duckdb make run``) and open the compare page.

    python bench/plots.py
"""

from __future__ import annotations

from pathlib import Path

import common  # noqa: F401  (sets offline mode and sys.path first)
from analysis import curves
from common import CHART_DIR, log, parse_args, read_efficiency, read_json

STYLE = {
    "zero_shot": ("tab:gray", "--"),
    "prompting": ("tab:brown", ":"),
    "feature_extraction": ("tab:blue", "-"),
    "partial_finetune": ("tab:orange", "-"),
    "full_finetune": ("tab:red", "-"),
    "lora": ("tab:green", "-"),
    "lp_ft": ("tab:purple", "-"),
    "scratch": ("black", "-."),
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def data_efficiency_chart(data: dict, dataset: str, path: Path) -> Path:
    plt = _plt()
    curve = curves(data)[dataset]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for strategy, points in sorted(curve.items()):
        color, style = STYLE.get(strategy, ("tab:cyan", "-"))
        if strategy == "zero_shot" and 0 in points:
            p = points[0]
            ax.axhline(p["mean"], color=color, ls=style, label=f"zero_shot ({p['n']} seeds)")
            continue
        ks = sorted(k for k in points if k > 0 or strategy != "prompting")
        if strategy == "prompting":
            if 0 in points:
                ax.axhline(points[0]["mean"], color=color, ls=style, label="prompting, 0-shot")
            ks = [k for k in ks if k > 0]
            if not ks:
                continue
        means = [points[k]["mean"] for k in ks]
        stds = [points[k]["std"] for k in ks]
        n = max(points[k]["n"] for k in ks)
        ax.errorbar(
            ks,
            means,
            yerr=stds,
            color=color,
            ls=style,
            marker="o",
            ms=3,
            capsize=2,
            label=f"{strategy} ({n} seed{'s' if n > 1 else ''})",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("labelled examples per class (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Data efficiency: {dataset}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def regret_chart(regret: dict, path: Path) -> Path:
    plt = _plt()
    rows = [r for r in regret["rows"] if r["mode"] == "profiled"]
    labels = sorted({r["rules"] for r in rows})
    cases = sorted({(r["dataset"], r["per_class"]) for r in rows})
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        lost = []
        for case in cases:
            r = next(
                x for x in rows if (x["dataset"], x["per_class"]) == case and x["rules"] == label
            )
            lost.append(100 * r["lost"] if r["lost"] is not None else float("nan"))
        ax.bar([j + i * width for j in range(len(cases))], lost, width, label=label)
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(cases))])
    ax.set_xticklabels([f"{d}\n{k}/class" for d, k in cases], rotation=90, fontsize=6)
    ax.set_ylabel("accuracy lost vs best measured (points)")
    ax.set_title("Advisor regret (profiled mode; missing bar = pick not measured)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def model_selection_chart(rows: list[dict], published: dict[str, float], path: Path) -> Path:
    """Mean weighted tau of each score (rows: group, score, weighted_tau), published anchors as
    horizontal lines."""
    plt = _plt()
    groups = sorted({r["group"] for r in rows})
    scores = sorted({r["score"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(groups), 1)
    for i, group in enumerate(groups):
        values = [
            next((r["weighted_tau"] for r in rows if r["group"] == group and r["score"] == s),
                 float("nan"))
            for s in scores
        ]  # fmt: skip
        ax.bar([j + i * width for j in range(len(scores))], values, width, label=group)
    for i, (name, value) in enumerate(sorted(published.items(), key=lambda kv: kv[1])):
        ax.axhline(value, color="gray", linestyle=":", linewidth=1)
        ax.annotate(f"{name} (published) {value}", (len(scores) - 0.5, value), fontsize=7,
                    ha="right", va="top" if i == 0 else "bottom")  # fmt: skip
    ax.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(scores))])
    ax.set_xticklabels(scores, fontsize=8)
    ax.set_ylabel("mean weighted tau vs measured accuracy")
    ax.set_ylim(-1, 1)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title("Model selection on the suite: does the score rank the candidates right?")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def transferability_chart(result: dict, path: Path) -> Path:
    plt = _plt()
    sets = result["datasets"]
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4))
    axes = axes if len(sets) > 1 else [axes]
    for ax, d in zip(axes, sets, strict=True):
        rows = [r for r in d["rows"] if r["per_class"] == "all"]
        for r in rows:
            ax.scatter(r["logme"], r["accuracy"], color="tab:blue")
            ax.annotate(r["candidate"].split("/")[-1], (r["logme"], r["accuracy"]), fontsize=6)
        tau = d["taus"].get("all", {}).get("logme", {}).get("kendall_tau")
        ax.set_title(
            f"{d['dataset']}: LogME vs probe accuracy"
            + (f" (tau {tau:.2f})" if tau is not None else ""),
            fontsize=9,
        )
        ax.set_xlabel("LogME on the training split")
        ax.set_ylabel("linear-probe test accuracy")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(quick: bool, out, charts: Path = CHART_DIR) -> list[Path]:
    charts.mkdir(parents=True, exist_ok=True)
    made = []
    data = read_efficiency(out)
    if data:
        for name in sorted(curves(data)):
            made.append(data_efficiency_chart(data, name, charts / f"data_efficiency_{name}.png"))
    regret = read_json(out, "regret")
    if regret and regret["rows"]:
        made.append(regret_chart(regret, charts / "regret.png"))
    transfer = read_json(out, "transferability")
    if transfer and transfer.get("datasets"):
        made.append(transferability_chart(transfer, charts / "transferability.png"))
    for path in made:
        log(f"wrote {path}")
    return made


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    run(args.quick, args.out, args.out / "charts" if args.quick else CHART_DIR)
