"""What the strategies and the project's pipelines cost (issue #7, part 4).

1. LoRA vs full vs partial fine-tuning on the same model (MiniLM) and data (Rotten Tomatoes, 128
   examples a class): seconds per training epoch, peak resident memory and trainable parameters.
   Each strategy runs in a fresh process so one's peak memory is not another's.
2. Feature-extraction throughput: the project's encoder (length-sorted batches of 32) and its
   embedding cache against a plain ``SentenceTransformer.encode`` at default settings; for images,
   the project's EfficientNet pass against a plain batched forward.
3. Time from upload to first advice: CSV / ZIP bytes -> load -> profile -> recommendation, in a
   fresh process (model loading counts).
4. LogME at 10,000 x 1,280 against a straightforward reference (tllib's algorithm, transcribed).

Speed is reported as ratios of timings taken in the same run, alternating the contenders.

    python bench/cost.py            # ~5 min on 2 shared CPU cores
    python bench/cost.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (sets offline mode and sys.path first)
import numpy as np
from common import DB_PATH, ROOT, log, machine_info, parse_args, read_json, timed, write_json

NAME = "cost"
TUNED = ("partial_finetune", "full_finetune", "lora")
# MiniLM (23M) and all-mpnet-base-v2 (109M): on the small one the optimizer state and gradients
# that LoRA avoids are a small part of the process, on the large one they should show.
TUNED_MODELS = ("minilm", "mpnet")


# ── 1. fine-tuning variants ──────────────────────────────────────────────────────────────────────
class _TimingStore:
    """Wraps a Store to timestamp each logged curve point (train_loss is logged after each epoch)."""

    def __init__(self, store) -> None:
        self._store = store
        self.curves: list[tuple[float, int, str]] = []

    def log_curve(self, run_id, step, name, value) -> None:
        self.curves.append((time.perf_counter(), int(step), name))
        self._store.log_curve(run_id, step, name, value)

    def __getattr__(self, name):
        return getattr(self._store, name)


class PhaseMemory:
    """Samples this process's resident memory every 20 ms under the run's latest progress message
    (each training step's message counts as "training"): where a run's peak memory is reached."""

    def __init__(self) -> None:
        import threading

        self.phase = "starting"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def progress(self, message: str) -> None:
        self.phase = "training" if message.startswith("epoch ") else message

    def _sample(self) -> None:
        from tladvisor.run_limits import rss_mb

        while not self._stop.wait(0.02):
            mb = rss_mb()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), mb)

    def __enter__(self) -> PhaseMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_finetune(
    strategy: str, quick: bool, db: Path, model: str = "minilm", extra: dict | None = None
) -> dict:
    """Run one fine-tuning strategy of ``model`` in this (fresh) process and time its epochs."""
    from common import open_store, subsample

    from tladvisor import runner
    from tladvisor.data import load_sample

    rss_before = runner._rss_mb()
    load_before = round(os.getloadavg()[0], 2)  # other work on the cores slows the epochs
    ds = load_sample("rotten_tomatoes")
    if quick:
        ds = subsample(ds, 20)
    epochs = 1 if quick else 2
    config = {
        "model": model,
        "seed": 0,
        "epochs": epochs,
        "max_train": 16 if quick else 256,
        "measure_forgetting": False,
        "patience": epochs,  # no early stop: every epoch is timed
        **(extra or {}),
    }
    phases = PhaseMemory()
    starts: dict[int, float] = {}

    def progress(fraction: float, message: str) -> None:
        phases.progress(message)
        if message.startswith("epoch "):
            epoch = int(message.split()[1].split("/")[0])
            starts.setdefault(epoch, time.perf_counter())

    store = open_store(db)
    timing = _TimingStore(store)
    try:
        with phases:
            report = runner.execute(
                timing,
                ds,
                strategy,
                config,
                user="bench",
                device="cpu",
                progress=progress,
                with_transferability=False,
            )
    finally:
        store.close()
    # An epoch runs from the previous epoch's last validation log to its own train_loss log.
    # The first epoch has no such mark (model loading and tokenising come before it), so it is
    # timed only when it is the only one, from its first step's report (one step short).
    ends = {step: t for t, step, name in timing.curves if name == "train_loss"}
    val_end = {step: t for t, step, name in timing.curves if name != "train_loss"}
    epoch_s = [ends[e] - val_end[e - 1] for e in sorted(ends) if e - 1 in val_end]
    if not epoch_s and 1 in ends and 1 in starts:
        epoch_s = [ends[1] - starts[1]]
    return {
        "run_id": report.run_id,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": load_before,
        "model": model,
        "strategy": strategy,
        "status": report.status,
        "error": report.error,
        "accuracy": report.metrics.get("accuracy"),
        "epoch_seconds": epoch_s,
        "run_seconds": report.cost.get("seconds"),
        "peak_mem_mb": report.cost.get("peak_mem_mb"),
        "rss_before_mb": rss_before,
        "phase_peaks_mb": {k: round(v, 1) for k, v in phases.peaks.items()},
        "config_extra": extra or {},
        **(
            {"lora_dropout": config.get("dropout", _lora_default_dropout())}
            if strategy == "lora"
            else {}
        ),  # fmt: skip
        "trainable_params": report.cost.get("trainable_params"),
        "total_params": report.cost.get("total_params"),
        "n_train": config["max_train"],
        "epochs": epochs,
    }


def _lora_default_dropout() -> float:
    from tladvisor.strategies.lora import LoraStrategyConfig

    return LoraStrategyConfig().dropout


def step_memory(model_name: str, strategy: str, dropout: float | None = None) -> dict:
    """What one training step of ``strategy`` on ``model_name`` keeps, counted tensor by tensor
    rather than read off the process's resident set (which the allocator's free lists blur): the
    activations autograd saves for the backward pass (16 Rotten Tomatoes reviews), the gradients,
    and the AdamW state after one step. LoRA is built as ``strategies/lora.py`` builds it, at the
    strategy's default adapter dropout unless ``dropout`` is given."""
    import torch

    from tladvisor import catalog
    from tladvisor.data import load_sample
    from tladvisor.strategies.lora import LoraStrategyConfig
    from tladvisor.strategies.training import Inputs, build_classifier

    wrapper = catalog.load(model_name, device="cpu")
    model = build_classifier(wrapper, 2, seed=0)
    if strategy == "lora":
        from tladvisor.strategies.lora import adapt

        cfg = LoraStrategyConfig() if dropout is None else LoraStrategyConfig(dropout=dropout)
        dropout = cfg.dropout
        model, _, _ = adapt(model, wrapper, cfg)
    model.train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:  # a frozen weight is referenced, not copied
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    texts = list(load_sample("rotten_tomatoes").items[:16])
    batch = Inputs(wrapper, texts, 224).batch(np.arange(len(texts)))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        logits = model(batch)
    torch.nn.functional.cross_entropy(logits, torch.zeros(len(texts), dtype=torch.long)).backward()
    optimizer.step()
    mb = 2**20
    state = sum(
        v.nbytes for st in optimizer.state.values() for v in st.values() if torch.is_tensor(v)
    )
    return {
        "model": model_name,
        "strategy": strategy,
        "lora_dropout": dropout,
        "tokens": list(batch["input_ids"].shape),
        "saved_activations_mb": round(sum(saved.values()) / mb, 1),
        "gradients_mb": round(sum(p.grad.nbytes for p in trainable if p.grad is not None) / mb, 1),
        "optimizer_state_mb": round(state / mb, 1),
        "weights_mb": round(sum(p.nbytes for p in model.parameters()) / mb, 1),
    }


def step_memories(quick: bool) -> list[dict]:
    """Full fine-tuning against LoRA at the default adapter dropout and at 0.05, per model."""
    rows = []
    for model in TUNED_MODELS[:1] if quick else TUNED_MODELS:
        log(f"cost: one training step's memory on {model}")
        rows += [step_memory(model, "full_finetune"), step_memory(model, "lora")]
        rows.append(step_memory(model, "lora", dropout=0.05))
    return rows


def finetune_costs(quick: bool, db: Path, models: tuple[str, ...] = TUNED_MODELS) -> list[dict]:
    rows = []
    for model in models[:1] if quick else models:
        for strategy in TUNED[-1:] if quick else TUNED:  # quick: LoRA alone, the smoke test
            log(f"cost: {model} {strategy} in a fresh process")
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
                target = tmp.name
            cmd = [sys.executable, __file__, "--one", strategy, "--model", model,
                   "--result", target, "--db", str(db)]  # fmt: skip
            if quick:
                cmd.append("--quick")
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
            if proc.returncode != 0:
                rows.append({"model": model, "strategy": strategy, "status": "failed",
                             "error": proc.stderr[-800:]})  # fmt: skip
                continue
            rows.append(json.loads(Path(target).read_text()))
            os.unlink(target)
    return rows


# ── 2. feature-extraction throughput ─────────────────────────────────────────────────────────────
def text_throughput(quick: bool) -> dict:
    from sentence_transformers import SentenceTransformer

    from tladvisor import catalog, embeddings
    from tladvisor.data import load_sample

    ds = load_sample("rotten_tomatoes")
    texts = list(ds.items)[: 64 if quick else None]
    project = catalog.load("minilm", device="cpu")
    plain = SentenceTransformer(str(catalog.minilm_path()), device="cpu")
    repeats = 1 if quick else 2
    t_project, t_plain = [], []
    for _ in range(repeats):  # alternate so a load spike hits both
        t0 = time.perf_counter()
        ours = project.encode(texts)
        t_project.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs = plain.encode(texts)
        t_plain.append(time.perf_counter() - t0)
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    agree = float(np.min(np.sum(ours * theirs, axis=1)))

    # The cache: compute once into a temporary folder, then read back from disk and from memory.
    sub = ds if not quick else _first(ds, 64)
    old = os.environ.get("TLADVISOR_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TLADVISOR_CACHE"] = tmp
        try:
            embeddings.clear_memory()
            t0 = time.perf_counter()
            embeddings.encode(sub, "minilm", device="cpu")
            cold = time.perf_counter() - t0
            embeddings.clear_memory()
            disk, _ = timed(lambda: _disk_hit(embeddings, sub), 3)
            mem, _ = timed(lambda: embeddings.encode(sub, "minilm", device="cpu"), 3)
        finally:
            if old is None:
                os.environ.pop("TLADVISOR_CACHE", None)
            else:
                os.environ["TLADVISOR_CACHE"] = old
            embeddings.clear_memory()
    return {
        "n_texts": len(texts),
        "project_seconds": min(t_project),
        "plain_seconds": min(t_plain),
        "speedup_vs_plain": min(t_plain) / min(t_project),
        "min_cosine_project_vs_plain": agree,
        "cache_cold_seconds": cold,
        "cache_disk_seconds": disk,
        "cache_memory_seconds": mem,
        "cache_disk_speedup": cold / disk,
        "plain_batch_size": 32,
        "project_batch_size": 32,
    }


def _disk_hit(embeddings, ds):
    embeddings.clear_memory()
    return embeddings.encode(ds, "minilm", device="cpu")


def _first(ds, n):
    from common import _derived

    return _derived(ds.name + f"_first{n}", ds.modality, ds.items[:n], ds.labels[:n], ds.source)


def image_throughput(quick: bool) -> dict:
    import torch

    from tladvisor import catalog
    from tladvisor.backbones import images_to_tensor
    from tladvisor.data import load_sample

    images = list(load_sample("mnist_digits").items)[: 16 if quick else 256]
    model = catalog.load("efficientnet-lite0", device="cpu")

    def plain() -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(images), 32):
                x = images_to_tensor(images[start : start + 32])
                out.append(model.body.net._fc(model.body.features(x)).numpy())
        return np.concatenate(out)

    t_project, t_plain = [], []
    for _ in range(1 if quick else 2):
        t0 = time.perf_counter()
        model.forward_batches(images)
        t_project.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain()
        t_plain.append(time.perf_counter() - t0)
    return {
        "n_images": len(images),
        "project_seconds": min(t_project),
        "plain_seconds": min(t_plain),
        "speedup_vs_plain": min(t_plain) / min(t_project),
    }


# ── 3. upload to first advice ────────────────────────────────────────────────────────────────────
def one_advice(sample: str) -> dict:
    """In a fresh process: the bytes of a bundled sample -> Dataset -> profile -> recommendation."""
    t0 = time.perf_counter()
    from tladvisor import decision
    from tladvisor.data import load_any, sample_path

    data = sample_path(sample).read_bytes()
    ds = load_any(data)
    t_load = time.perf_counter() - t0
    try:
        from tladvisor.profile import measure_profile

        profile = measure_profile(ds).to_task_profile()
        how = "tladvisor.profile.measure_profile (with its probe)"
    except ImportError:
        profile = _fallback_profile(ds)
        how = "unusualness.measure + counts (tladvisor.profile not available)"
    t_profile = time.perf_counter() - t0
    rec = decision.recommend(profile)
    return {
        "sample": sample,
        "seconds": time.perf_counter() - t0,
        "load_seconds": t_load,
        "profile_seconds": t_profile - t_load,
        "strategy": rec.strategy.value,
        "profiled_with": how,
    }


def _fallback_profile(ds):
    from collections import Counter

    from tladvisor import decision, unusualness

    counts = Counter(ds.labels)
    measured = unusualness.measure(list(ds.items), ds.modality, device="cpu")
    return decision.TaskProfile(
        modality=ds.modality,
        n_labeled=len(ds),
        n_classes=len(counts),
        min_per_class=min(counts.values()),
        domain_unusualness=None if measured is None else measured.score,
        unusualness_measured=measured is not None,
        gpu_memory_gb=0.0,
    )


def time_to_advice(quick: bool) -> list[dict]:
    rows = []
    for sample in ("rotten_tomatoes",) if quick else ("rotten_tomatoes", "mnist_digits"):
        log(f"cost: upload to advice for {sample} in a fresh process")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--advice", sample],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            rows.append({"sample": sample, "error": proc.stderr[-800:]})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["process_seconds"] = wall  # includes starting Python and importing tladvisor
        rows.append(row)
    return rows


# ── 4. LogME speed ───────────────────────────────────────────────────────────────────────────────
def reference_logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME as thuml tllib ``ranking/logme.py`` computes it (MIT licence), transcribed: one SVD of
    F^T F, at most 11 fixed-point steps per class, stop at 1% change of alpha / beta."""
    f = features.astype(np.float64)
    fh = f
    f = f.T
    d, n = f.shape
    v, s, vh = np.linalg.svd(f @ fh, full_matrices=True)
    evidences = []
    for c in range(int(labels.max()) + 1):
        y = (labels == c).astype(np.float64)
        eps, alpha, beta = 1e-5, 1.0, 1.0
        lam = alpha / beta
        tmp = vh @ (f @ y)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + eps)
            beta_de = ((y - fh @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + eps)
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (
            d / 2.0 * np.log(alpha)
            + n / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * s))
            - beta / 2.0 * (beta_de + eps)
            - alpha / 2.0 * (alpha_de + eps)
            - n / 2.0 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def logme_speed(quick: bool) -> dict:
    from tladvisor.transferability import logme

    n, d, classes = (500, 64, 5) if quick else (10_000, 1_280, 10)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d))
    features = (centres[labels] + 2.0 * rng.normal(size=(n, d))).astype(np.float32)
    repeats = 1 if quick else 3
    t_project, t_reference = [], []
    for _ in range(repeats):  # alternate
        t0 = time.perf_counter()
        ours = logme(features, labels)
        t_project.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = reference_logme(features, labels)
        t_reference.append(time.perf_counter() - t0)
    return {
        "n": n,
        "d": d,
        "classes": classes,
        "project_seconds": min(t_project),
        "reference_seconds": min(t_reference),
        "speedup_vs_reference": min(t_reference) / min(t_project),
        "project_score": ours,
        "reference_score": ref,
        "abs_difference": abs(ours - ref),
    }


def run(quick: bool, db: Path, out: Path) -> dict:
    # DuckDB lets one process hold a file: the fine-tuning runs measured here go to their own
    # database, so this script can run beside bench/data_efficiency.py.
    db = db.with_name("cost.duckdb") if db == DB_PATH else db
    previous = read_json(out, NAME) or {}
    result = {"quick": quick, "machine": machine_info()}
    if previous.get("quick") == quick and previous.get("logme") and not quick:
        result["logme"] = previous["logme"]  # a resumed run keeps the 10,000 x 1,280 timing
    else:
        log("cost: LogME speed")
        result["logme"] = logme_speed(quick)
    write_json(out, NAME, result)
    result["finetune"] = finetune_costs(quick, db)
    result["step_memory"] = step_memories(quick)
    write_json(out, NAME, result)
    log("cost: text throughput")
    result["text_throughput"] = text_throughput(quick)
    log("cost: image throughput")
    result["image_throughput"] = image_throughput(quick)
    write_json(out, NAME, result)
    result["advice"] = time_to_advice(quick)
    write_json(out, NAME, result)
    return result


if __name__ == "__main__":
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("--one", help=argparse.SUPPRESS),
            p.add_argument("--model", default="minilm", help=argparse.SUPPRESS),
            p.add_argument(
                "--only-finetune",
                action="store_true",
                help="only the fine-tuning table (both models), merged into the existing cost.json",
            ),
            p.add_argument(
                "--only-step-memory",
                action="store_true",
                help="only the one-step memory table, merged into the existing cost.json",
            ),
            p.add_argument("--result", help=argparse.SUPPRESS),
            p.add_argument("--advice", help=argparse.SUPPRESS),
        ),
    )
    if args.one:
        row = one_finetune(args.one, args.quick, args.db, args.model)
        Path(args.result).write_text(json.dumps(row))
    elif args.only_finetune or args.only_step_memory:
        result = read_json(args.out, NAME) or {"quick": args.quick, "machine": machine_info()}
        if args.only_finetune:
            result["finetune"] = finetune_costs(args.quick, args.db.with_name("cost.duckdb"))
        result["step_memory"] = step_memories(args.quick)
        write_json(args.out, NAME, result)
        if not args.quick:
            import report
            from lodo import write_section

            if args.only_finetune:
                text = "\n".join([report.FINETUNE_START, *report.finetune_lines(result),
                                  report.FINETUNE_END])  # fmt: skip
                write_section(
                    ROOT / "BENCHMARKS.md", text, report.FINETUNE_START, report.FINETUNE_END
                )
            text = "\n".join([report.STEP_START, *report.step_memory_lines(result["step_memory"]),
                              report.STEP_END])  # fmt: skip
            write_section(ROOT / "BENCHMARKS.md", text, report.STEP_START, report.STEP_END)
    elif args.advice:
        print(json.dumps(one_advice(args.advice)))
    else:
        run(args.quick, args.db, args.out)
