"""Feature extraction (linear probe): frozen encoder features, then a logistic-regression head.

The features come from ``embeddings.encode`` (cached by data fingerprint and model), so a second
run on the same data costs only the head. The head is scikit-learn's ``LogisticRegression`` on
standardised features, its inverse regularisation C chosen on the validation split; the scaler is
folded into the weights so the head is a plain linear layer (what LP-FT starts fine-tuning from).
Works with MiniLM-style text encoders, EfficientNet-Lite0 and user-supplied CLIP image towers.

A text encoder reads only its first 256 word pieces; when many training texts are longer
(``chunk_long_texts='auto'``, from ``embeddings.CHUNK_WHEN_TRUNCATED_SHARE`` of them), each text is
embedded as the mean of its chunk embeddings instead, and the run's notes say so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tladvisor import catalog
from tladvisor.data import TaskData
from tladvisor.strategies import register
from tladvisor.strategies.base import Outcome, RunContext, StoredRun, StrategyConfig
from tladvisor.strategies.names import Strategy

# Stronger to weaker regularisation; on a few hundred examples the best C varies by 100x between
# encoders and tasks, so it is picked on validation rather than fixed.
C_VALUES = [0.01, 0.1, 1.0, 10.0, 100.0]


@dataclass
class FeatureExtractionConfig(StrategyConfig):
    c_values: list[float] = field(
        default_factory=lambda: list(C_VALUES),
        metadata={"help": "inverse regularisation strengths tried; the best on validation wins"},
    )
    max_iter: int = field(default=2000, metadata={"help": "L-BFGS iterations per fit"})
    chunk_long_texts: str = field(
        default="auto",
        metadata={
            "help": "text: embed a text longer than the encoder's context as the mean of its "
            "chunk embeddings (up to 16 chunks, ~3.6k word pieces). 'auto': when at least 20% of "
            "the training texts are that long; 'on' / 'off' force it"
        },
    )

    ignored_fields: ClassVar[tuple[str, ...]] = ("epochs", "batch_size", "lr", "patience")

    def __post_init__(self) -> None:
        from tladvisor.embeddings import chunk_setting

        super().__post_init__()
        self.chunk_long_texts = chunk_setting(self.chunk_long_texts)
        self.c_values = [float(c) for c in self.c_values]
        if not self.c_values or any(not c > 0 for c in self.c_values):
            raise ValueError(
                f"c_values must be a non-empty list of positive numbers, got {self.c_values}; "
                f"try {C_VALUES}"
            )
        if self.max_iter < 10:
            raise ValueError(f"max_iter must be at least 10, got {self.max_iter}; try 2000")


@dataclass
class LinearProbe:
    """A fitted linear head over raw (unscaled) features: logits = X @ weight.T + bias."""

    weight: np.ndarray  # (n_classes, d)
    bias: np.ndarray  # (n_classes,)
    c: float
    val_accuracy: float
    notes: list[str] = field(default_factory=list)

    def logits(self, x: Any) -> np.ndarray:
        return np.asarray(x @ self.weight.T) + self.bias

    def proba(self, x: Any) -> np.ndarray:
        z = self.logits(x)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)


def fit_linear_probe(
    x_train: Any,
    y_train: np.ndarray,
    x_val: Any,
    y_val: np.ndarray,
    n_classes: int,
    c_values: list[float] = C_VALUES,
    max_iter: int = 2000,
    standardize: bool = True,
) -> LinearProbe:
    """Multinomial logistic regression with C chosen on validation (accuracy, then log-loss).

    ``x`` may be dense or scipy-sparse (sparse is not standardised). The returned weights cover
    all ``n_classes``; a class absent from training gets a bias of -30 so it is never predicted.
    """
    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y_train)
    if len(present) < 2:
        raise ValueError(
            f"the training split holds one class ({int(present[0])}); a classifier needs at "
            "least two. Add examples of the other classes."
        )
    dense = not sparse.issparse(x_train)
    if standardize and dense:
        mu = x_train.mean(0)
        sigma = x_train.std(0)
        sigma = np.where(sigma > 1e-8, sigma, 1.0)  # constant columns: leave them unscaled
    else:
        d = x_train.shape[1]
        mu, sigma = np.zeros(d), np.ones(d)

    def scaled(x: Any) -> Any:
        return (x - mu) / sigma if standardize and dense else x

    if len(y_val) == 0:  # nothing to choose on: C = 1, scikit-learn's default
        c_values = [1.0]
    best: tuple[tuple[float, float], LinearProbe] | None = None
    unconverged = 0
    for c in c_values:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf = LogisticRegression(C=c, max_iter=max_iter).fit(scaled(x_train), y_train)
        unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        probe = _fold(clf, mu, sigma, n_classes, c)
        if len(y_val) == 0:
            return probe
        proba = probe.proba(x_val)
        acc = float(np.mean(proba.argmax(1) == y_val))
        loss = float(-np.mean(np.log(proba[np.arange(len(y_val)), y_val] + 1e-12)))
        probe.val_accuracy = acc
        if best is None or (acc, -loss) > best[0]:
            best = ((acc, -loss), probe)
    probe = best[1]
    if unconverged:
        probe.notes.append(
            f"logistic regression did not fully converge for {unconverged} of {len(c_values)} "
            f"C values within {max_iter} iterations"
        )
    return probe


def _fold(clf: Any, mu: np.ndarray, sigma: np.ndarray, n_classes: int, c: float) -> LinearProbe:
    """Weights over raw features from a classifier fitted on (x - mu) / sigma."""
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary: sigmoid(z) == softmax([-z/2, z/2])
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_classes, coef.shape[1]), np.float64)
    bias = np.full(n_classes, -30.0)
    w = coef / sigma
    weight[clf.classes_] = w
    bias[clf.classes_] = intercept - w @ mu
    return LinearProbe(weight.astype(np.float32), bias.astype(np.float32), c, float("nan"))


def encoder_params(name: str, device: str) -> int:
    """Parameters of the frozen encoder a probe reads (image tower only, for CLIP)."""
    from tladvisor.strategies.training import used_param_count

    model = catalog.load(name, device=device)
    if hasattr(model, "body"):
        return used_param_count(model.body)
    if catalog.get_spec(name).kind == catalog.CLIP:
        net = model.model
        tower = getattr(net, "vision_model", None) or getattr(net, "visual", None) or net
        proj = getattr(net, "visual_projection", None)
        return sum(p.numel() for p in tower.parameters()) + (
            sum(p.numel() for p in proj.parameters()) if proj is not None else 0
        )
    return used_param_count(model.model)


def run(config: FeatureExtractionConfig, data: TaskData, ctx: RunContext) -> Outcome:
    from tladvisor import embeddings
    from tladvisor.strategies.training import train_rows

    name = config.model or catalog.default_model(data.modality)
    spec = catalog.get_spec(name)
    if spec.modality != data.modality:
        raise ValueError(
            f"model {name!r} gives no {data.modality} features for a linear probe; use "
            f"{catalog.default_model(data.modality)!r} or a user encoder ('hf:' text, 'clip:' images)"
        )
    ctx.check_cancel()
    rows = train_rows(data, config.max_train, config.seed)
    chunked, notes = _chunking(config.chunk_long_texts, name, data, rows, ctx.device)
    how = " (long texts as the mean of their chunks)" if chunked else ""
    ctx.progress(0.05, f"encoding {len(data.dataset)} items with frozen {name}{how}")
    feats = embeddings.encode(data.dataset, name, device=ctx.device, chunked=chunked).features
    ctx.check_cancel()
    ctx.progress(0.7, "fitting the logistic-regression head")
    labels = data.dataset.label_ids()
    probe = fit_linear_probe(
        feats[rows],
        labels[rows],
        feats[data.split.val],
        data.y("val"),
        len(data.classes),
        config.c_values,
        config.max_iter,
    )
    ctx.check_cancel()
    proba = probe.proba(feats[data.split.test])
    notes = list(probe.notes) + notes
    head = probe.weight.size + probe.bias.size
    frozen = f"{name} frozen, mean of chunks" if chunked else f"{name} frozen"
    outcome = Outcome.from_proba(
        proba,
        model=name,
        backend=f"{frozen} + logistic regression (C={probe.c:g} chosen on validation)",
        trainable_params=int(head),
        total_params=int(encoder_params(name, ctx.device) + head),
        extra_metrics={"val_accuracy": probe.val_accuracy},
        notes=notes,
    )
    if ctx.artifact_dir is not None:
        outcome.artifact_path = _save_head(probe, name, data, ctx, chunked)
    ctx.progress(0.95, "linear probe done")
    return outcome


def _chunking(
    setting: str, name: str, data: TaskData, rows: np.ndarray, device: str
) -> tuple[bool, list[str]]:
    """(embed long texts as the mean of their chunks?, notes saying what was cut or chunked).

    ``setting`` 'auto' chunks when at least ``CHUNK_WHEN_TRUNCATED_SHARE`` of the training rows
    are longer than the encoder's context; models that are not text encoders never chunk.
    """
    from tladvisor import embeddings

    if catalog.get_spec(name).kind != catalog.TEXT_ENCODER:
        if setting == "on":
            raise ValueError(
                f"chunk_long_texts='on' needs a text encoder, but {name!r} is not one; "
                "use 'auto' or 'off'"
            )
        return False, []
    encoder = catalog.load(name, device=device)
    lengths = encoder.token_counts(list(data.dataset.items))
    long = lengths > encoder.max_length
    share = float(long[rows].mean()) if len(rows) else 0.0
    chunked = embeddings.should_chunk(setting, share)
    if not long.any():
        return chunked, []
    cut = int(long.sum())
    said = f"{share:.0%} of the training texts ({cut} texts in all) are longer than {name}'s "
    said += f"{encoder.max_length} tokens"
    if chunked:
        capped = int((lengths > encoder.chunk_capacity()).sum())
        note = (
            f"{said}; each text was embedded as the mean of its {encoder.max_length}-token chunk "
            f"embeddings (chunk_long_texts={setting!r})"
        )
        if capped:
            note += (
                f"; {capped} texts exceed {embeddings.MAX_CHUNKS} chunks and were read through "
                f"{embeddings.MAX_CHUNKS} windows spread evenly over them"
            )
        return True, [note]
    why = (
        "chunk_long_texts='off'"
        if setting == "off"
        else f"under the {embeddings.CHUNK_WHEN_TRUNCATED_SHARE:.0%} at which 'auto' chunks"
    )
    return False, [f"{said} and were truncated to their openings ({why})"]


def _save_head(
    probe: LinearProbe, name: str, data: TaskData, ctx: RunContext, chunked: bool
) -> str:
    import json

    import torch
    from safetensors.torch import save_file

    path = ctx.artifact_dir / "head.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": name,
        "classes": data.classes,
        "strategy": Strategy.FEATURE_EXTRACTION.value,
        "chunked": chunked,  # prediction must embed new texts the way the head was fitted
        "features": "L2-normalised mean-pooled sentence embeddings"
        if data.modality == "text"
        else "pooled image features",
    }
    tensors = {"weight": torch.from_numpy(probe.weight), "bias": torch.from_numpy(probe.bias)}
    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})
    return str(path)


def load_head(path: Path) -> tuple[LinearProbe, dict[str, Any]]:
    """The probe and the metadata ``_save_head`` wrote."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        probe = LinearProbe(f.get_tensor("weight"), f.get_tensor("bias"), float("nan"), 0.0)
    return probe, meta


def predict(run: StoredRun, items: list, ctx: RunContext) -> np.ndarray:
    """Class probabilities of ``items`` from the frozen encoder and the saved head."""
    from tladvisor import embeddings
    from tladvisor.data import Dataset

    probe, meta = load_head(run.artifact_file("head.safetensors"))
    unlabelled = Dataset("to predict", run.modality, list(items), ["?"] * len(items), "")
    chunked = bool(meta.get("chunked", False))  # heads saved before chunking was recorded: off
    feats = embeddings.compute(unlabelled, run.model, device=ctx.device, chunked=chunked)
    return probe.proba(feats.features)


register(
    Strategy.FEATURE_EXTRACTION,
    FeatureExtractionConfig,
    run,
    ("text", "image"),
    predict=predict,
)
