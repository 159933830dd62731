"""Do transferability scores rank candidates the way the accuracy they reach does? (issue #7, part 3)

tladvisor ships one encoder per modality, so ranking "models" means ranking the candidate
feature sources it can actually read: every layer of MiniLM (embeddings + 6 blocks) for Rotten
Tomatoes, five depths of EfficientNet-Lite0 for MNIST digits, and each backbone with random weights
as a control (the question of which layer to score is LogME issue #2). For every candidate the
score is computed on the training split's features and the accuracy actually reached is the
project's linear probe (``fit_linear_probe``) on the shared test split; Kendall's tau-b and the
weighted tau of the LogME paper compare the two rankings. A second table uses the stored
(strategy, budget) runs of ``bench/data_efficiency.py`` with their transferability scores.
Timing: each metric against the fine-tuning run it replaces (same benchmark session).

    python bench/transferability.py          # ~3-5 min on 2 shared CPU cores
    python bench/transferability.py --quick
"""

from __future__ import annotations

import time

import common  # noqa: F401  (sets offline mode and sys.path first)
import numpy as np
from common import (
    log,
    machine_info,
    max_train_for,
    parse_args,
    read_efficiency,
    subsample,
    write_json,
)

NAME = "transferability"
METRICS = ("logme", "h_score", "knn_accuracy", "linear_probe_accuracy")
IMAGE_TAPS = (
    3,
    7,
    11,
    15,
)  # EfficientNet-Lite0 MBConv blocks (0-15); "final" is after the head conv
IMAGE_PER_CLASS = 40  # 400 digits at 224 px, two networks: a few minutes on a loaded CPU
BUDGETS = (16, None)


def _mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).float()
    return (hidden.float() * m).sum(1) / m.sum(1).clamp(min=1)


def text_candidates(ds) -> dict[str, np.ndarray]:
    """Mean-pooled hidden states of every MiniLM layer, plus a randomly initialised MiniLM."""
    import torch

    from tladvisor import catalog

    enc = catalog.load("minilm", device="cpu")
    texts = list(ds.items)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    random_module = enc.random_module().eval()
    feats: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            idx = order[start : start + 64]
            batch = enc.tokenize([texts[i] for i in idx])
            hidden = enc.model(**batch, output_hidden_states=True).hidden_states
            for layer, h in enumerate(hidden):
                name = "minilm/embeddings" if layer == 0 else f"minilm/layer{layer}"
                feats.setdefault(name, np.zeros((len(texts), h.shape[-1]), np.float32))
                feats[name][idx] = _mean_pool(h, batch["attention_mask"]).numpy()
            h = random_module(**batch).last_hidden_state
            feats.setdefault(
                "minilm-random/layer6", np.zeros((len(texts), h.shape[-1]), np.float32)
            )
            feats["minilm-random/layer6"][idx] = _mean_pool(h, batch["attention_mask"]).numpy()
    return feats


def image_candidates(ds) -> dict[str, np.ndarray]:
    """Spatially pooled outputs of EfficientNet-Lite0 blocks, its final features, a random copy."""
    import torch

    from tladvisor import catalog
    from tladvisor.backbones import images_to_tensor

    model = catalog.load("efficientnet-lite0", device="cpu")
    body, random_body = model.body, model.random_module().eval()
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        body.net._blocks[i].register_forward_hook(
            lambda _m, _i, out, i=i: captured.__setitem__(f"efficientnet/block{i}", out)
        )
        for i in IMAGE_TAPS
    ]
    parts: dict[str, list[np.ndarray]] = {}
    try:
        with torch.inference_mode():
            for start in range(0, len(ds), 64):
                x = images_to_tensor(ds.items[start : start + 64])
                captured["efficientnet/final"] = body.features(x)
                captured["efficientnet-random/final"] = random_body.features(x)
                for name, t in captured.items():
                    pooled = t.mean((2, 3)) if t.dim() == 4 else t
                    parts.setdefault(name, []).append(pooled.float().numpy())
    finally:
        for h in hooks:
            h.remove()
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def score_candidates(ds, feats: dict[str, np.ndarray], budgets) -> list[dict]:
    """Every metric (timed) and the probe's test accuracy, per candidate and budget."""
    from tladvisor.data import split_dataset
    from tladvisor.strategies.feature_extraction import fit_linear_probe
    from tladvisor.transferability import h_score, knn_accuracy, linear_probe_accuracy, logme

    functions = {
        "logme": logme,
        "h_score": h_score,
        "knn_accuracy": knn_accuracy,
        "linear_probe_accuracy": linear_probe_accuracy,
    }
    y = ds.label_ids()
    rows = []
    for k in budgets:
        split = split_dataset(ds, seed=0, max_train=max_train_for(k, len(ds.classes)))
        for name, f in feats.items():
            row = {"candidate": name, "per_class": "all" if k is None else str(k)}
            x_train, y_train = f[split.train], y[split.train]
            for metric, fn in functions.items():
                t0 = time.perf_counter()
                row[metric] = float(fn(x_train, y_train))
                row[f"{metric}_seconds"] = time.perf_counter() - t0
            probe = fit_linear_probe(x_train, y_train, f[split.val], y[split.val], len(ds.classes))
            row["accuracy"] = float(np.mean(probe.proba(f[split.test]).argmax(1) == y[split.test]))
            rows.append(row)
    return rows


def taus(rows: list[dict], metrics=METRICS) -> dict[str, dict[str, float]]:
    """Kendall tau-b and weighted tau (hyperbolic weights, as in the LogME paper) per metric."""
    from scipy.stats import kendalltau, weightedtau

    acc = np.array([r["accuracy"] for r in rows], dtype=float)
    out = {}
    for metric in metrics:
        vals = np.array([r.get(metric, np.nan) for r in rows], dtype=float)
        ok = np.isfinite(vals) & np.isfinite(acc)
        if ok.sum() < 3 or np.ptp(vals[ok]) == 0 or np.ptp(acc[ok]) == 0:
            continue
        out[metric] = {
            "kendall_tau": float(kendalltau(vals[ok], acc[ok]).statistic),
            "weighted_tau": float(weightedtau(vals[ok], acc[ok]).statistic),
            "n": int(ok.sum()),
        }
    return out


def runs_table(out) -> list[dict]:
    """Tau over the stored (strategy, budget) runs of bench/data_efficiency.py, per data set."""
    data = read_efficiency(out)
    if not data:
        return []
    tables = []
    names = sorted({r["dataset"] for r in data["rows"]})
    for name in names:
        rows = [
            {"accuracy": r["accuracy"], **r["transferability"]}
            for r in data["rows"]
            if r["dataset"] == name and r["status"] == "done" and r.get("transferability")
        ]
        metrics = sorted({k for r in rows for k in r if k != "accuracy"})
        if len(rows) >= 3:
            tables.append({"dataset": name, "n_runs": len(rows), "taus": taus(rows, metrics)})
    return tables


def finetune_seconds(out, dataset: str) -> dict[str, float]:
    """Run seconds of the slowest-budget fine-tuning runs of this session, per strategy."""
    data = read_efficiency(out) or {"rows": []}
    best: dict[str, tuple[int, float]] = {}
    for r in data["rows"]:
        if r["dataset"] != dataset or r["status"] != "done" or r["seconds"] is None:
            continue
        if r["strategy"] in ("full_finetune", "partial_finetune", "lora", "feature_extraction"):
            k = 10**9 if r["per_class"] == "all" else int(r["per_class"])
            if r["strategy"] == "feature_extraction" and r["seed"] != 0:
                continue
            if r["strategy"] not in best or k > best[r["strategy"]][0]:
                best[r["strategy"]] = (k, r["seconds"])
    return {s: v[1] for s, v in best.items()}


def run(quick: bool, db, out) -> dict:
    from tladvisor.data import load_sample

    rt, mnist = load_sample("rotten_tomatoes"), load_sample("mnist_digits")
    rt = subsample(rt, 30) if quick else rt
    mnist = subsample(mnist, 8 if quick else IMAGE_PER_CLASS)
    budgets = (4, None) if quick else BUDGETS
    result = {"quick": quick, "machine": machine_info(), "datasets": []}
    for ds, extract in ((rt, text_candidates), (mnist, image_candidates)):
        log(f"transferability: features of every candidate for {ds.name}")
        t0 = time.perf_counter()
        feats = extract(ds)
        extract_s = time.perf_counter() - t0
        log(f"transferability: scoring {len(feats)} candidates")
        rows = score_candidates(ds, feats, budgets)
        by_budget = {
            b: taus([r for r in rows if r["per_class"] == b])
            for b in sorted({r["per_class"] for r in rows})
        }
        source = "rotten_tomatoes" if ds.modality == "text" else "mnist_digits"
        metric_s = {
            m: float(np.median([r[f"{m}_seconds"] for r in rows if r["per_class"] == "all"]))
            for m in METRICS
        }
        result["datasets"].append(
            {
                "dataset": ds.name,
                "source": source,
                "n": len(ds),
                "candidates": sorted(feats),
                "rows": rows,
                "taus": by_budget,
                "extract_seconds": extract_s,
                "metric_seconds": metric_s,
                "run_seconds": finetune_seconds(out, source),
            }
        )
        write_json(out, NAME, result)
    result["runs"] = runs_table(out)
    write_json(out, NAME, result)
    return result


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    run(args.quick, args.db, args.out)
