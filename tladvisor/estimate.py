"""Expected cost of a run on this device before it starts: seconds (with a range) and peak memory.

Each strategy's time is counted in the units it spends it on, multiplied by per-unit costs
measured on this machine by ``scripts/calibrate_cost.py`` (``data/cost_calibration.json``):

* prompting: every validation and test text (and 3 content-free prompts) is one prompt; batches of
  ``batch_size`` prompts pad to their longest, and a batch costs
  w1 * tokens + w2 * tokens * context + w3 * label rows * extra label tokens * context
  + w4 * rows * shared prefix + w5, the weights fitted (non-negative least squares) to timings of
  the real ``LocalLMScorer.score``: so items x tokens x labels;
* training paths (partial / full fine-tuning, LP-FT, LoRA, scratch "same"): epochs x steps (at
  least ``min_steps_per_epoch``) x the cost of a real training step in that mode at the step's
  padded width (or images), plus a validation pass each epoch, the test pass, the forgetting
  measurement and model loading;
* feature extraction and zero-shot: one encoder pass over every row (nothing when the embeddings
  are cached on disk), then logistic regression (cost proportional to rows x dimension x classes)
  or cosine scores; scratch "linear": TF-IDF or pixels and logistic regression, per row;
* the runner's transferability scores: the default encoder's pass over every row, unless the run
  already made (or the disk holds) those embeddings.

Costs are stored in units of a one-thread numpy matmul probe (``matmul_seconds``) timed around
each calibration measurement, with the share of the cores other jobs took then divided out (the
1-minute load average, ``contention``). ``DeviceSpeed.measure()`` times the probe again and reads
the load now, so a slower CPU, or one busy with other jobs, scales every cost. A training step
costs c0 + c1 * tokens and an encoder batch c0 + c1 * tokens + c2 * tokens * length, fitted the
same way. CUDA devices are not calibrated: an assumed 20x speed-up with a range of 4x each way.

Memory is a sum of the parts a run holds at its peak: the process (Python, torch, transformers),
model weights, for training a trainable copy, its gradients and AdamW state and the best-epoch
copy, the activations of one step, and for prompting the logits of one batch (batch x width x
vocabulary x 8 bytes) and its key/value cache. On CUDA the process itself is left out (the runner
reports ``torch.cuda.max_memory_allocated`` there).

This module imports no torch and loads no model: the advisor calls it for every alternative.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tladvisor.strategies.names import Strategy

CALIBRATION = Path(__file__).resolve().parent.parent / "data" / "cost_calibration.json"
ENCODER_CONTEXT = 256  # TextEncoder.max_length: longer texts are cut
PREDICT_BATCH = 64  # training.predict_proba / extract_features
N_CONTENT_FREE = 3  # prompting.CONTENT_FREE
TRANSFER_SCORES_SECONDS = 1.0  # LogME, H-score, kNN on cached features: about a second
SPREAD = (0.6, 1.7)  # range around the estimate: the calibrated paths measured within it
# The calibration times EfficientNet's warm forward on 64 ready images; a real pass over a data
# set also decodes, converts and resizes every image and batches them: feature extraction on 300
# MNIST digits measured 1.83x and 2.08x that estimate on two quiet runs (bench/estimate_check.py
# measures it again).
IMAGE_PIPELINE_FACTOR = 1.9
CONFIRM_ABOVE_SECONDS = 600.0  # the dashboard asks before starting a run longer than this

# Defaults of the settings the estimate reads, as the strategies' config classes set them
# (tests/test_estimate.py checks they agree): importing those classes would import torch.
DEFAULTS: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 16,
    "patience": 2,
    "max_train": None,
    "min_steps_per_epoch": 20,
    "image_size": 224,
    "measure_forgetting": True,
    "unfreeze_blocks": 2,
    "architecture": "linear",
    "shots": 0,
    "max_query_chars": 2000,
    "max_demo_chars": 300,
    "c_values": [0.01, 0.1, 1.0, 10.0, 100.0],
}
STRATEGY_DEFAULTS: dict[Strategy, dict[str, Any]] = {
    Strategy.PROMPTING: {"batch_size": 16},
    Strategy.SCRATCH: {"epochs": 5},
    Strategy.FEATURE_EXTRACTION: {"batch_size": 32},
    Strategy.ZERO_SHOT: {"batch_size": 32},
}
TRAINING = {
    Strategy.PARTIAL_FINETUNE: "partial",
    Strategy.FULL_FINETUNE: "full",
    Strategy.LP_FT: "full",
    Strategy.LORA: "lora",
}


# ---------------------------------------------------------------- the probe


def matmul_seconds(size: int = 256, count: int = 10, repeats: int = 12) -> float:
    """Seconds of one ``size`` x ``size`` float32 matmul on one thread: the device's speed probe.

    The fastest of ``repeats`` runs of ``count`` back-to-back matmuls (each run ~3 ms, shorter
    than a scheduler slice), so other jobs on the cores barely move it: it measures the CPU, and
    ``contention`` measures the sharing. One thread, because a multi-threaded BLAS on busy cores
    spins and times itself 30x slower while torch slows about 3x.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    times = []
    with threadpool_limits(1):
        a @ b  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(count):
                a @ b
            times.append((time.perf_counter() - start) / count)
    return min(times)


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class DataStats:
    """What the estimate needs to know about a data set (texts: a sample of token lengths)."""

    modality: str  # "text" or "image"
    n_items: int
    n_classes: int
    # MiniLM word pieces of a sample of texts (special tokens included, before any cut) and the
    # characters of the same texts; empty for images.
    token_lengths: tuple[int, ...] = ()
    char_lengths: tuple[int, ...] = ()
    label_tokens: tuple[int, ...] = ()  # word pieces of each class name (the prompting answers)
    cached_embeddings: tuple[str, ...] = ()  # models whose embeddings of this data are on disk

    @classmethod
    def from_counts(
        cls,
        modality: str,
        n_items: int,
        n_classes: int,
        mean_tokens: float = 32.0,
        mean_chars: float | None = None,
    ) -> DataStats:
        """Stats from counts alone (every text ``mean_tokens`` long, labels of one token)."""
        if modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")
        if modality == "image":
            return cls("image", int(n_items), int(n_classes))
        chars = mean_chars if mean_chars is not None else 4.2 * mean_tokens
        return cls(
            "text",
            int(n_items),
            int(n_classes),
            (max(1, round(mean_tokens)),),
            (max(1, round(chars)),),
            (1,) * int(n_classes),
        )

    @classmethod
    def from_dataset(cls, ds: Any, sample: int = 256, seed: int = 0) -> DataStats:
        """Counts of ``ds`` and, for text, MiniLM token lengths of up to ``sample`` rows (its
        tokenizer file only: no model is loaded)."""
        from tladvisor import embeddings

        cached = []
        folder = embeddings.cache_dir()
        for model in ("minilm", "efficientnet-lite0"):
            if (folder / f"{ds.fingerprint}-{embeddings._safe(model)}.npz").exists():
                cached.append(model)
        if ds.modality != "text":
            return cls(ds.modality, len(ds), len(ds.classes), cached_embeddings=tuple(cached))
        rng = np.random.default_rng(seed)
        rows = rng.permutation(len(ds))[:sample]
        texts = [str(ds.items[i]) for i in rows]
        tokenizer = _minilm_tokenizer()
        if tokenizer is None:  # MiniLM not installed: ~4.2 characters a word piece (English)
            lengths = tuple(max(1, round(len(t) / 4.2)) + 2 for t in texts)
            labels = tuple(max(1, round(len(c) / 6)) for c in ds.classes)
        else:
            lengths = tuple(len(e.ids) for e in tokenizer.encode_batch(texts))
            words = [c.replace("_", " ") for c in ds.classes]
            labels = tuple(max(1, len(e.ids) - 2) for e in tokenizer.encode_batch(words))
        return cls(
            "text",
            len(ds),
            len(ds.classes),
            lengths,
            tuple(len(t) for t in texts),
            labels,
            tuple(cached),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _minilm_tokenizer() -> Any:
    from tladvisor import catalog

    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(catalog.minilm_path() / "tokenizer.json"))
    except (catalog.ModelUnavailable, OSError, ImportError, Exception):  # noqa: BLE001
        return None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@dataclass(frozen=True)
class DeviceSpeed:
    """How fast this device is now relative to the calibration: ``factor`` > 1 is slower."""

    device: str = "cpu"
    factor: float = 1.0
    basis: str = "the calibrated CPU with no other jobs"

    @classmethod
    def measure(cls, device: str | None = None) -> DeviceSpeed:
        """Time the matmul probe now (about 0.1 s); a CUDA device gets an assumed speed-up."""
        calib = load_calibration()
        device = device or "cpu"
        if device.startswith("cuda"):
            return cls(
                device,
                GPU_FACTOR,
                f"{device}: not calibrated on a GPU; assumed {1 / GPU_FACTOR:.0f}x the calibrated "
                "CPU (a wide range)",
            )
        speed = matmul_seconds() / calib["reference_probe"]
        load = _load_now()
        # The 1-minute load already counts whatever just ran in this process (a profile, the
        # previous run), so the run's own threads are not added: an idle 2-core machine reads
        # about 1-2 and gets no slow-down; a benchmark on the other core reads 3-5.
        busy = contention(load, _cpus())
        return cls(
            device,
            speed * busy,
            f"a one-thread matmul probe now takes {speed:.2f}x its time at calibration, and "
            f"other jobs on the cores (1-minute load {load:.1f} on {_cpus()} CPUs) slow a run "
            f"{busy:.1f}x",
        )


def _load_now() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def contention(load: float, cpus: int) -> float:
    """How much slower a run is when the 1-minute load average (its own threads included) is
    ``load`` on ``cpus`` CPUs: the cores are shared evenly among the runnable threads."""
    return max(1.0, load / max(cpus, 1))


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


GPU_FACTOR = 1 / 20


@dataclass(frozen=True)
class Estimate:
    seconds: float
    peak_memory_mb: float
    low_seconds: float
    high_seconds: float
    basis: str
    parts: dict[str, float] = field(default_factory=dict)  # seconds by phase

    @property
    def needs_confirmation(self) -> bool:
        """Whether the dashboard should ask before starting it (over 10 minutes)."""
        return self.seconds > CONFIRM_ABOVE_SECONDS

    def summary(self) -> str:
        """E.g. "~12 min (7-20 min), peak memory ~1.6 GB"."""
        low, high = format_range(self.low_seconds, self.high_seconds)
        return (
            f"~{format_duration(self.seconds)} ({low}-{high}), "
            f"peak memory ~{self.peak_memory_mb / 1024:.1f} GB"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_duration(seconds: float) -> str:
    """Seconds under 90 s, minutes under 90 min, else hours."""
    return " ".join(_in_unit(seconds, _unit(seconds)))


def format_range(low: float, high: float) -> tuple[str, str]:
    """Both ends in the unit of the higher one: ("40", "120 s") or ("1", "2 min")."""
    unit = _unit(high)
    return _in_unit(low, unit)[0], " ".join(_in_unit(high, unit))


def _unit(seconds: float) -> str:
    return "s" if seconds < 90 else "min" if seconds < 5400 else "h"


def _in_unit(seconds: float, unit: str) -> tuple[str, str]:
    if unit == "s":
        return f"{seconds:.0f}", unit
    if unit == "min":
        return f"{seconds / 60:.0f}", unit
    return f"{seconds / 3600:.1f}", unit


# ---------------------------------------------------------------- calibration


@functools.lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION) -> dict[str, Any]:
    """The stored calibration, reduced to per-unit costs in probe units (seconds / probe)."""
    if not path.exists():
        raise FileNotFoundError(
            f"no cost calibration at {path}; run: .venv/bin/python scripts/calibrate_cost.py"
        )
    raw = json.loads(path.read_text())
    return _fit(raw)


def _timing_units(t: dict[str, Any], cpus: int, per: float = 1.0) -> float:
    """A calibration timing in probe units, the other jobs' share of the cores divided out."""
    return t["seconds"] / t["probe"] / contention(t.get("load", 0.0), cpus) / per


def _nnls(rows: list[list[float]], ys: list[float]) -> tuple[float, ...]:
    """Non-negative least squares, each row weighted by 1 / y (relative errors count)."""
    from scipy.optimize import nnls

    x, y = np.asarray(rows, float), np.asarray(ys, float)
    return tuple(float(w) for w in nnls(x / y[:, None], np.ones(len(y)))[0])


def _fit(raw: dict[str, Any]) -> dict[str, Any]:

    mini, eff, heads, lm = raw["minilm"], raw["efficientnet"], raw["heads"], raw["smollm2"]
    cpus = int(raw["machine"].get("nproc") or 1)

    def _units(t: dict[str, Any], per: float = 1.0) -> float:
        return _timing_units(t, cpus, per)

    probes = [m["probe"] for m in mini["encode"]] + [b["probe"] for b in lm["batches"]]
    fitted: dict[str, Any] = {
        "machine": raw["machine"],
        "reference_probe": statistics.median(probes),  # what "factor 1" means
        "process_base_mb": raw["process_base_mb"],
        # A batch of 32 texts costs c0 + c1 * tokens + c2 * tokens * length (attention).
        "encode": _nnls(
            [
                [
                    math.ceil(round(m["tokens"] / m["length"]) / 32),
                    m["tokens"],
                    m["tokens"] * m["length"],
                ]
                for m in mini["encode"]
            ],  # fmt: skip
            [_units(m) for m in mini["encode"]],
        ),
        "tokenize": _units(mini["tokenize"], mini["tokenize"]["tokens"]),
        # A training step costs c0 (optimizer, clipping) + c1 * tokens.
        "text_train": {
            mode: _nnls([[1.0, r["tokens"]] for r in rows], [_units(r) for r in rows])
            for mode, rows in mini["train_step"].items()
        },
        "text_blocks": mini["blocks"],
        "image_blocks": eff["blocks"],
        "image_forward": _units(eff["forward"], eff["forward"]["images"]),
        "image_prepare": _units(eff["prepare"], eff["prepare"]["images"]),
        "image_train": {m: _units(r, r["images"]) for m, r in eff["train_step"].items()},
        "load": {
            "minilm": _units(mini["load"]),
            "efficientnet-lite0": _units(eff["load"]),
            "smollm2": _units(lm["load"]) if lm["loaded_from"] == "cache" else None,
            "smollm2-gguf": _units(lm["gguf_load"]),
        },
        "forgetting": {"text": _units(mini["forgetting"]), "image": _units(eff["forgetting"])},
        "params": {
            "minilm": mini["params"],
            "efficientnet-lite0": eff["params"],
            "smollm2": lm["params"],
        },
        "dense_probe": statistics.median(
            _units(d, d["n_train"] * d["dim"] * d["classes"]) for d in heads["dense"]
        ),
        "tfidf": _units(heads["tfidf"], heads["tfidf"]["n_items"]),
        "pixels": _units(heads["pixels"], heads["pixels"]["n_items"] * heads["pixels"]["classes"]),
        "lm_ratio": lm["tokens_per_minilm_token"],
        "lm_prefix": lm["prefix_tokens_without_labels"],
        "lm_tail": lm["query_tail_tokens"],
        "lm_vocab": lm["vocab"],
        "lm_kv_bytes": lm["layers"] * 2 * lm["kv_dim"] * 4,
    }
    if fitted["load"]["smollm2"] is None:  # calibrated on a first load: a cached one is ~2 s
        fitted["load"]["smollm2"] = fitted["load"]["minilm"] * 2
    weights = _nnls([_batch_features(b) for b in lm["batches"]], [_units(b) for b in lm["batches"]])
    fitted["lm_batch"] = [float(w) for w in weights]
    return fitted


def _batch_features(b: dict[str, Any]) -> list[float]:
    """Features of one calibration call (the shared prefix, then one batch; see the module
    docstring) for the prompting cost."""
    rows, width, shared = b["batch"], b["width"], b["shared"]
    context = shared + width
    return [
        rows * width + shared,
        rows * width * context + shared * shared,
        rows * b["labels"] * b["extra_label_steps"] * context,
        rows * shared,
        1.0,
    ]


# ---------------------------------------------------------------- the estimate


def estimate_run(
    strategy: Strategy | str,
    stats: DataStats,
    settings: dict[str, Any] | Any | None = None,
    device: DeviceSpeed | None = None,
    *,
    with_transferability: bool = True,
) -> Estimate:
    """Expected seconds (with a range) and peak memory of running ``strategy`` on data like
    ``stats`` with ``settings`` (a dict of overrides or a strategy config) on ``device``
    (``None``: the calibrated CPU as it was; pass ``DeviceSpeed.measure()`` to rescale to now)."""
    strategy = Strategy.parse(strategy)
    calib = load_calibration()
    device = device or DeviceSpeed()
    cfg = _settings(strategy, settings)
    if stats.n_items < 2 or stats.n_classes < 2:
        raise ValueError(
            f"a run needs at least 2 items and 2 classes, got {stats.n_items} and {stats.n_classes}"
        )
    split = split_sizes(stats.n_items, stats.n_classes, cfg["max_train"])
    parts, memory, basis, early_low = _COSTS[strategy](strategy, stats, cfg, split, calib)
    if with_transferability:
        parts["transferability"] = TRANSFER_SCORES_SECONDS / calib["reference_probe"]
        model = _transfer_model(strategy, stats, cfg)
        made = model if strategy in (Strategy.FEATURE_EXTRACTION, Strategy.ZERO_SHOT) else None
        if model != made and model not in stats.cached_embeddings:
            parts["transferability"] += _encode_all(stats, model, calib)
            if not any(k == f"load {model}" for k in parts):
                parts[f"load {model} (transferability)"] = _load(model, calib)
    seconds_unit = calib["reference_probe"] * device.factor
    parts = {k: v * seconds_unit for k, v in parts.items()}
    total = sum(parts.values())
    low = (total - early_low * seconds_unit) * SPREAD[0]
    high = total * SPREAD[1]
    if device.device.startswith("cuda"):
        low, high = total / 4, total * 4
        memory = _gpu_memory(memory, calib)
    calibrated = calib["machine"]
    basis += (
        f"; per-unit costs timed on {calibrated.get('cpu', 'this machine')} "
        f"({calibrated.get('torch_threads', '?')} threads, {calibrated.get('date', '')}, "
        f"scripts/calibrate_cost.py); {device.basis}"
    )
    return Estimate(
        seconds=total,
        peak_memory_mb=memory,
        low_seconds=max(low, 0.0),
        high_seconds=high,
        basis=basis,
        parts={k: round(v, 3) for k, v in parts.items()},
    )


def _gpu_memory(cpu_mb: float, calib: dict[str, Any]) -> float:
    """CUDA peak allocated: what the CPU estimate holds beyond the process itself."""
    return max(cpu_mb - calib["process_base_mb"], 50.0)


def _settings(strategy: Strategy, settings: Any) -> dict[str, Any]:
    if settings is not None and not isinstance(settings, dict):
        settings = settings.to_dict()
    values = {**DEFAULTS, **STRATEGY_DEFAULTS.get(strategy, {})}
    values.update({k: v for k, v in (settings or {}).items() if v is not None})
    return values


def split_sizes(n: int, k: int, max_train: int | None = None) -> dict[str, int]:
    """Train / validation / test sizes as ``data.split_dataset`` draws them (stratified case)."""
    n_test = min(max(round(n * 0.2), k), n - k - 1)
    rest = n - n_test
    n_val = max(1, min(max(round(n * 0.15), k), rest - k))
    n_train = rest - n_val
    if max_train is not None:
        n_train = min(n_train, max(int(max_train), k))
    return {"train": max(n_train, 1), "val": n_val, "test": n_test}


def _encoder_lengths(stats: DataStats) -> np.ndarray:
    lengths = np.asarray(stats.token_lengths or (32,), dtype=float)
    return np.minimum(lengths, ENCODER_CONTEXT)


def _encode_units(stats: DataStats, n: int, calib: dict[str, Any], model: str) -> float:
    """Probe units to run the frozen encoder over ``n`` rows (length-sorted batches)."""
    if n <= 0:
        return 0.0
    if stats.modality == "image":
        return n * calib["image_forward"] * IMAGE_PIPELINE_FACTOR * _model_scale(model)
    c0, c1, c2 = calib["encode"]
    lengths = _encoder_lengths(stats)
    per_row = c1 * float(np.mean(lengths)) + c2 * float(np.mean(lengths**2))
    return (math.ceil(n / 32) * c0 + n * per_row) * _model_scale(model)


def _encode_all(stats: DataStats, model: str, calib: dict[str, Any]) -> float:
    return _encode_units(stats, stats.n_items, calib, model)


def _model_scale(model: str) -> float:
    """User-supplied encoders are not calibrated: assume a few times the packaged ones."""
    return 1.0 if model in ("minilm", "efficientnet-lite0", "smollm2") else 4.0


def _load(model: str, calib: dict[str, Any]) -> float:
    loads = calib["load"]
    if model == "smollm2":
        return loads["smollm2"] if _smollm2_cached() else loads["smollm2-gguf"]
    return loads.get(model, 4 * loads["minilm"])


def _smollm2_cached() -> bool:
    from tladvisor.embeddings import cache_dir

    return any((cache_dir().parent / "models").glob("smollm2-*/model.safetensors"))


def _default_model(stats: DataStats) -> str:
    return "minilm" if stats.modality == "text" else "efficientnet-lite0"


def _transfer_model(strategy: Strategy, stats: DataStats, cfg: dict[str, Any]) -> str:
    """The encoder ``runner.transferability_scores`` reads: the run's own, unless it has none
    (prompting's LM, the TF-IDF / pixel baseline)."""
    if strategy is Strategy.PROMPTING or (
        strategy is Strategy.SCRATCH and cfg["architecture"] == "linear"
    ):
        return _default_model(stats)
    return cfg.get("model") or _default_model(stats)


def _head_units(n_train: int, dim: int, k: int, n_c: int, calib: dict[str, Any]) -> float:
    """Logistic regression with C chosen on validation (``n_c`` fits)."""
    return calib["dense_probe"] * n_train * dim * max(k, 2) * n_c / 5


# Each cost function returns (parts in probe units, peak memory MB, what it counted, the probe
# units an early stop could save).


def _cost_prompting(strategy, stats, cfg, split, calib):
    if stats.modality != "text":
        raise ValueError("prompting classifies text; this data set holds images")
    if cfg.get("llm_url"):
        parts = {"prompts on the server": 0.0}
        return parts, calib["process_base_mb"], "prompts go to a server: not estimated", 0.0
    ratio = calib["lm_ratio"]
    minilm = np.maximum(np.asarray(stats.token_lengths or (32,), float) - 2, 1)
    chars = np.asarray(stats.char_lengths or minilm * 4.2, float)
    cut = np.minimum(1.0, cfg["max_query_chars"] / np.maximum(chars, 1))
    rest = minilm * ratio * cut + calib["lm_tail"]
    labels = stats.label_tokens or (1,) * stats.n_classes
    label_tokens = [max(1, round(t * ratio)) for t in labels]
    steps = max(label_tokens) - 1
    shared = calib["lm_prefix"] + sum(t + 1 for t in label_tokens)
    if cfg["shots"]:
        chars_per_token = float(np.mean(chars) / max(np.mean(minilm) * ratio, 1e-9))
        demo = np.mean(np.minimum(chars, cfg["max_demo_chars"])) / chars_per_token
        shared += cfg["shots"] * stats.n_classes * (demo + np.mean(label_tokens) + 6)
    w = calib["lm_batch"]
    bs = int(cfg["batch_size"])
    k = stats.n_classes

    def score(n: int, widths: np.ndarray) -> tuple[float, float]:
        """Units to score ``n`` prompts whose rest lengths are drawn from ``widths``."""
        units, widest = 0.0, 0.0
        full, last = divmod(n, bs)
        for rows, count in ((bs, full), (last, 1 if last else 0)):
            if not count:
                continue
            width = _expected_max(widths, rows)
            widest = max(widest, width)
            x = [rows * width, rows * width * (shared + width)]
            x += [rows * k * steps * (shared + width), rows * shared, 1.0]
            units += count * float(np.dot(w, x))
        prefix = w[0] * shared + w[1] * shared * shared  # run once per call, its cache reused
        return units + prefix, widest

    cf_units, _ = score(N_CONTENT_FREE, np.array([2.0 + calib["lm_tail"]]))
    val_units, _ = score(split["val"], rest)
    test_units, widest = score(split["test"], rest)
    parts = {
        "load smollm2": _load("smollm2", calib),
        "score prompts": cf_units + val_units + test_units,
    }
    n_prompts = N_CONTENT_FREE + split["val"] + split["test"]
    batch = min(bs, max(split["val"], split["test"]))
    logits_mb = batch * widest * calib["lm_vocab"] * 8 / 2**20
    kv_mb = batch * (shared + widest) * calib["lm_kv_bytes"] * (1 + (k if steps else 0)) / 2**20
    memory = (
        calib["process_base_mb"]
        + calib["params"]["smollm2"] * 4 / 2**20 * (2 if not _smollm2_cached() else 1)
        + logits_mb
        + kv_mb
    )
    basis = (
        f"prompting: {n_prompts:,} prompts x ~{float(np.mean(rest)):.0f} tokens "
        f"(widest batch ~{widest:.0f}) x {k} labels ({max(label_tokens)} tokens at most), "
        f"shared prefix ~{shared:.0f} tokens, batches of {bs} on SmolLM2"
    )
    return parts, memory, basis, 0.0


def _expected_max(values: np.ndarray, size: int, draws: int = 200) -> float:
    """Mean over random batches of ``size`` of the largest value (a batch pads to its longest)."""
    if size <= 1 or len(values) == 1:
        return float(np.mean(values)) if size <= 1 else float(values[0])
    rng = np.random.default_rng(0)
    picks = rng.choice(values, size=(draws, size), replace=True)
    return float(picks.max(axis=1).mean())


def _cost_feature_extraction(strategy, stats, cfg, split, calib):
    model = cfg.get("model") or _default_model(stats)
    cached = model in stats.cached_embeddings
    dim = 384 if stats.modality == "text" else 1280
    parts = {
        f"load {model}": _load(model, calib),
        "encode every row": 0.0 if cached else _encode_all(stats, model, calib),
        "fit the head": _head_units(
            split["train"], dim, stats.n_classes, len(cfg["c_values"]), calib
        ),
    }
    if stats.modality == "text":
        lengths = np.asarray(stats.token_lengths or (32,), float)
        parts["check lengths"] = stats.n_items * float(np.mean(lengths)) * calib["tokenize"]
    memory = calib["process_base_mb"] + _weights_mb(model, calib) + _data_mb(stats, cfg, False)
    memory += stats.n_items * dim * 4 * 3 / 2**20  # features, standardised copy, LR workspace
    what = "cached embeddings" if cached else f"one {model} pass over {stats.n_items:,} rows"
    basis = (
        f"feature extraction: {what}, then logistic regression on {split['train']:,} x {dim} "
        f"for {len(cfg['c_values'])} values of C"
    )
    return parts, memory, basis, 0.0


def _cost_zero_shot(strategy, stats, cfg, split, calib):
    model = cfg.get("model") or _default_model(stats)
    cached = model in stats.cached_embeddings
    parts = {
        f"load {model}": _load(model, calib),
        "encode every row": 0.0 if cached else _encode_all(stats, model, calib),
    }
    memory = calib["process_base_mb"] + _weights_mb(model, calib)
    if stats.modality == "image":
        # ConSE: the 1,000 ImageNet class names through MiniLM (short texts of ~8 tokens).
        c0, c1, c2 = calib["encode"]
        parts["embed class names"] = math.ceil(1000 / 32) * c0 + 1000 * 8 * (c1 + 8 * c2)
        parts["load minilm"] = _load("minilm", calib)
        memory += _weights_mb("minilm", calib) + stats.n_items * 1000 * 4 / 2**20
    basis = (
        f"zero-shot: {'cached embeddings' if cached else f'one {model} pass'} over "
        f"{stats.n_items:,} rows, then cosine scores against {stats.n_classes} classes"
    )
    return parts, memory, basis, 0.0


def _cost_scratch(strategy, stats, cfg, split, calib):
    if cfg["architecture"] == "same":
        return _cost_training(strategy, stats, cfg, split, calib)
    n, k = stats.n_items, stats.n_classes
    if stats.modality == "text":
        parts = {"tf-idf + logistic regression": calib["tfidf"] * n * math.sqrt(max(k, 2) / 2)}
        memory = calib["process_base_mb"] + n * 2 * 0.02
        basis = f"no-transfer baseline: TF-IDF of {n:,} texts and logistic regression"
    else:
        parts = {"pixels + logistic regression": calib["pixels"] * n * k}
        memory = calib["process_base_mb"] + n * 784 * 4 * 3 / 2**20 + _data_mb(stats, cfg, False)
        basis = f"no-transfer baseline: 28x28 pixels of {n:,} images and logistic regression"
    return parts, memory, basis, 0.0


def _cost_training(strategy, stats, cfg, split, calib):
    text = stats.modality == "text"
    model = cfg.get("model") or _default_model(stats)
    scale = _model_scale(model)
    mode = TRAINING.get(strategy, "full")  # scratch "same" trains every layer
    n_train, bs = split["train"], min(int(cfg["batch_size"]), split["train"])
    repeats = max(1, math.ceil(cfg["min_steps_per_epoch"] * bs / max(n_train, 1)))
    steps = math.ceil(n_train * repeats / bs)
    blocks = calib["text_blocks"] if text else calib["image_blocks"]
    if text:
        width = min(_expected_max(_encoder_lengths(stats), bs), ENCODER_CONTEXT)
        per_step = _train_cost(calib["text_train"], mode, bs * width, cfg, blocks)
        unit = f"{bs} x ~{width:.0f} tokens"
    else:
        pixels = (cfg["image_size"] / 224) ** 2
        per_unit = _image_train_cost(calib["image_train"], mode, cfg, blocks)
        per_step = bs * per_unit * pixels
        unit = f"{bs} images at {cfg['image_size']} px"
    per_step *= scale
    val_pass = _predict_units(stats, split["val"], calib, cfg) * scale
    epochs = int(cfg["epochs"])
    parts = {
        f"load {model}": _load(model, calib),
        "prepare inputs": _prepare_units(stats, calib, cfg),
        "train": epochs * steps * per_step,
        "validate each epoch": epochs * val_pass,
        "predict the test split": _predict_units(stats, split["test"], calib, cfg) * scale,
    }
    if strategy is Strategy.LP_FT:
        dim = 384 if text else 1280
        parts["linear probe first"] = (
            _predict_units(stats, split["train"], calib, cfg) * scale
            + val_pass * 2
            + _head_units(n_train, dim, stats.n_classes, len(DEFAULTS["c_values"]), calib)
        )
    if cfg["measure_forgetting"] and strategy is not Strategy.SCRATCH:
        parts["measure forgetting"] = calib["forgetting"]["text" if text else "image"] * scale
    stop_after = min(epochs, int(cfg["patience"]) + 1)
    early = (epochs - stop_after) * (steps * per_step + val_pass)
    params = calib["params"].get(model, 4 * calib["params"]["minilm"])
    trainable = _trainable_share(mode, cfg, blocks) * params
    if text:
        activations = bs * width * 6 * (384 * 40 + 12 * width * 3) * 4
    else:
        activations = bs * 35e6 * (cfg["image_size"] / 224) ** 2
    memory = (
        calib["process_base_mb"]
        + params * 4 * 3 / 2**20  # frozen model, trainable copy, best-epoch copy
        + trainable * 12 / 2**20  # gradients and AdamW's two moments
        + activations / 2**20
        + _data_mb(stats, cfg, True)
    )
    basis = (
        f"{strategy.value}: {epochs} epochs x {steps} steps of {unit} "
        f"({n_train:,} training rows{f', repeated {repeats}x' if repeats > 1 else ''}), "
        f"{mode} backward, validation on {split['val']:,} rows each epoch; early stopping "
        f"after {stop_after} epochs sets the low end"
    )
    return parts, memory, basis, early


def _train_cost(rows: dict[str, Any], mode: str, tokens: float, cfg, blocks: int) -> float:
    """Probe units of one training step holding ``tokens`` (padded) tokens."""

    def at(m: str) -> float:
        c0, c1 = rows[m]
        return c0 + c1 * tokens

    if mode == "partial":
        share = (int(cfg["unfreeze_blocks"]) - 2) / max(blocks - 2, 1)
        return at("partial") + max(0.0, min(share, 1.0)) * (at("full") - at("partial"))
    return at(mode)


def _image_train_cost(rows: dict[str, float], mode: str, cfg, blocks: int) -> float:
    if mode == "partial":
        share = (int(cfg["unfreeze_blocks"]) - 2) / max(blocks - 2, 1)
        return rows["partial"] + max(0.0, min(share, 1.0)) * (rows["full"] - rows["partial"])
    return rows[mode]


def _trainable_share(mode: str, cfg, blocks: int) -> float:
    if mode == "full":
        return 1.0
    if mode == "lora":
        return 0.015
    return min(1.0, int(cfg["unfreeze_blocks"]) / blocks)


def _predict_units(stats: DataStats, n: int, calib: dict[str, Any], cfg) -> float:
    """The classifier's pass over ``n`` rows (length-sorted batches of 64, or images)."""
    if stats.modality == "image":
        return n * calib["image_forward"] * (cfg["image_size"] / 224) ** 2
    return _encode_units(stats, n, calib, "minilm")


def _prepare_units(stats: DataStats, calib: dict[str, Any], cfg) -> float:
    if stats.modality == "image":
        return stats.n_items * calib["image_prepare"] * (cfg["image_size"] / 224) ** 2
    lengths = np.asarray(stats.token_lengths or (32,), float)
    return stats.n_items * float(np.mean(lengths)) * calib["tokenize"]


def _weights_mb(model: str, calib: dict[str, Any]) -> float:
    return calib["params"].get(model, 4 * calib["params"]["minilm"]) * 4 / 2**20


def _data_mb(stats: DataStats, cfg, resized: bool) -> float:
    """Images held as uint8 at the training size (``training.image_array``)."""
    if stats.modality != "image" or not resized:
        return 0.0
    return stats.n_items * cfg["image_size"] ** 2 * 3 / 2**20


_COSTS = {
    Strategy.PROMPTING: _cost_prompting,
    Strategy.ZERO_SHOT: _cost_zero_shot,
    Strategy.FEATURE_EXTRACTION: _cost_feature_extraction,
    Strategy.PARTIAL_FINETUNE: _cost_training,
    Strategy.FULL_FINETUNE: _cost_training,
    Strategy.LP_FT: _cost_training,
    Strategy.LORA: _cost_training,
    Strategy.SCRATCH: _cost_scratch,
}


def estimate_for_dataset(
    dataset: Any,
    strategy: Strategy | str,
    settings: dict[str, Any] | Any | None = None,
    *,
    device: str | None = None,
    measure: bool = True,
) -> Estimate:
    """The estimate for a loaded data set, rescaled to the device's speed now (``measure``)."""
    speed = DeviceSpeed.measure(device) if measure else DeviceSpeed(device or "cpu")
    return estimate_run(strategy, DataStats.from_dataset(dataset), settings, speed)
