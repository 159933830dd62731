"""The no-transfer baseline, trained on the same split as every other strategy.

``architecture="linear"`` (the default) is a model that knows nothing beyond the training set:
TF-IDF word 1-2 grams + logistic regression for text, raw pixels (28x28 grey) + logistic
regression for images, C chosen on validation. It is the default because it is the honest
baseline: on a few hundred to a few thousand examples it beats a randomly initialised transformer
or CNN trained with the same budget (which sits near chance), it runs in seconds on a CPU, and
"does transfer beat a bag of words?" is the question a negative-transfer check has to answer.
``architecture="same"`` trains the chosen network from random initialisation with the shared loop,
to show what the pretrained weights themselves are worth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tladvisor import catalog
from tladvisor.data import TaskData
from tladvisor.strategies import register
from tladvisor.strategies.base import Outcome, RunContext, StoredRun
from tladvisor.strategies.feature_extraction import C_VALUES, fit_linear_probe
from tladvisor.strategies.names import Strategy
from tladvisor.strategies.training import (
    TrainingConfig,
    build_classifier,
    fit,
    load_wrapper,
    predict_proba,
    predict_saved,
    prepare,
    save_weights,
    train_rows,
    used_param_count,
)

ARCHITECTURES = ("linear", "same")
PIXEL_SIDE = 28  # MNIST's side: enough for a pixel baseline, 784 features keep the fit fast


@dataclass
class ScratchConfig(TrainingConfig):
    architecture: str = field(
        default="linear",
        metadata={
            "help": "'linear': TF-IDF (text) / raw pixels (images) + logistic regression; "
            "'same': the chosen network, randomly initialised, trained with the shared loop"
        },
    )
    # A random network has no features to protect, so it trains at a head's rate everywhere.
    lr: float = field(default=1e-3, metadata={"help": "learning rate of every layer ('same')"})
    epochs: int = field(default=5, metadata={"help": "training epochs ('same')"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}; "
                "'linear' is the fast default"
            )


def run(config: ScratchConfig, data: TaskData, ctx: RunContext) -> Outcome:
    ctx.check_cancel()
    if config.architecture == "linear":
        return _run_linear(config, data, ctx)
    return _run_same(config, data, ctx)


def _run_linear(config: ScratchConfig, data: TaskData, ctx: RunContext) -> Outcome:
    rows = train_rows(data, config.max_train, config.seed)
    items = data.dataset.items
    labels = data.dataset.label_ids()
    train = [items[i] for i in rows]
    val, test = data.items("val"), data.items("test")
    ctx.progress(0.1, "building the no-transfer features")
    x_train, (x_val, x_test), vectorizer = no_transfer_features(
        data.modality, train, [val, test], with_vectorizer=True
    )
    if data.modality == "text":
        model, backend = (
            "tfidf",
            "tf-idf word 1-2 grams + logistic regression (no pretrained model)",
        )
    else:
        model = "pixels"
        backend = (
            f"raw {PIXEL_SIDE}x{PIXEL_SIDE} grey pixels + logistic regression (no pretrained model)"
        )
    ctx.check_cancel()
    ctx.progress(0.4, "fitting logistic regression")
    probe = fit_linear_probe(
        x_train,
        labels[rows],
        x_val,
        data.y("val"),
        len(data.classes),
        C_VALUES,
        standardize=data.modality == "image",
    )
    proba = probe.proba(x_test)
    params = probe.weight.size + probe.bias.size
    ctx.progress(0.95, "baseline done")
    outcome = Outcome.from_proba(
        proba,
        model=model,
        backend=f"{backend}, C={probe.c:g} chosen on validation",
        trainable_params=int(params),
        total_params=int(params),
        extra_metrics={"val_accuracy": probe.val_accuracy},
        notes=probe.notes,
    )
    if ctx.artifact_dir is not None:
        outcome.artifact_path = _save_linear(probe, vectorizer, data, ctx)
    return outcome


def _save_linear(probe: Any, vectorizer: Any, data: TaskData, ctx: RunContext) -> str:
    """The head as safetensors, the TF-IDF vocabulary and weights as JSON (no pickle)."""
    import json

    import torch
    from safetensors.torch import save_file

    folder = ctx.artifact_dir
    folder.mkdir(parents=True, exist_ok=True)
    if vectorizer is not None:
        tfidf = {
            "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
            "idf": vectorizer.idf_.tolist(),
            "ngram_range": list(vectorizer.ngram_range),
            "sublinear_tf": True,
        }
        (folder / "tfidf.json").write_text(json.dumps(tfidf), encoding="utf-8")
    meta = {"classes": data.classes, "strategy": Strategy.SCRATCH.value, "features": data.modality}
    tensors = {"weight": torch.from_numpy(probe.weight), "bias": torch.from_numpy(probe.bias)}
    path = folder / "head.safetensors"
    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})
    return str(path)


def load_vectorizer(path: Path) -> Any:
    """The fitted ``TfidfVectorizer`` that ``_save_linear`` wrote."""
    import json

    from sklearn.feature_extraction.text import TfidfVectorizer

    saved = json.loads(path.read_text(encoding="utf-8"))
    vectorizer = TfidfVectorizer(
        ngram_range=tuple(saved["ngram_range"]),
        sublinear_tf=saved["sublinear_tf"],
        vocabulary=saved["vocabulary"],
    )
    vectorizer.idf_ = np.asarray(saved["idf"], dtype=np.float64)
    return vectorizer


def predict(run: StoredRun, items: list, ctx: RunContext) -> np.ndarray:
    """Class probabilities of ``items``: the saved baseline, linear or network."""
    from tladvisor.strategies.feature_extraction import load_head

    if run.config.architecture == "same":
        return predict_saved(run, items, ctx)
    probe, _ = load_head(run.artifact_file("head.safetensors"))
    if run.modality == "text":
        x = load_vectorizer(run.artifact_file("tfidf.json")).transform(list(items))
    else:
        x = _pixels(list(items))
    return probe.proba(x)


def no_transfer_features(
    modality: str, train: list, others: list[list], with_vectorizer: bool = False
) -> tuple[Any, ...]:
    """Features that owe nothing to pre-training: TF-IDF word 1-2 grams (text; the vocabulary is
    fitted on ``train`` only, so it never peeks at evaluation data) or raw 28x28 grey pixels.
    ``with_vectorizer`` adds the fitted TF-IDF vectorizer (None for images) to the result."""
    vectorizer = None
    if modality == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        x, rest = vectorizer.fit_transform(train), [vectorizer.transform(o) for o in others]
    else:
        x, rest = _pixels(train), [_pixels(o) for o in others]
    return (x, rest, vectorizer) if with_vectorizer else (x, rest)


def _pixels(images: list) -> np.ndarray:
    from PIL import Image

    if not images:
        return np.zeros((0, PIXEL_SIDE * PIXEL_SIDE), np.float32)
    return np.stack(
        [
            np.asarray(
                img.convert("L").resize((PIXEL_SIDE, PIXEL_SIDE), Image.BILINEAR), np.float32
            ).ravel()
            / 255.0
            for img in images
        ]
    )


def _run_same(config: ScratchConfig, data: TaskData, ctx: RunContext) -> Outcome:
    ctx.progress(0.01, "building the randomly initialised network")
    name, wrapper = load_wrapper(config, data, ctx)
    prepared = prepare(wrapper, data, config)
    model = build_classifier(
        wrapper, len(data.classes), config.seed, backbone=wrapper.random_module(config.seed)
    )
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr}]
    # BatchNorm must learn its statistics here: a random network's init stats mean nothing.
    result = fit(model, groups, prepared, config, ctx, freeze_bn=False)
    ctx.progress(0.9, "predicting the test split")
    proba = predict_proba(model, prepared.test, ctx)
    total = used_param_count(model.backbone) + sum(p.numel() for p in model.classifier.parameters())
    spec = catalog.get_spec(name)
    ctx.progress(0.95, "baseline done")
    outcome = Outcome.from_proba(
        proba,
        model=name,
        backend=f"{name} architecture, random init, all layers trained (no transfer, {spec.kind})",
        trainable_params=int(total),
        total_params=int(total),
        extra_metrics=result.metrics(),
        notes=list(prepared.notes) + result.notes,
    )
    if ctx.artifact_dir is not None:  # every weight, batch-norm statistics too: all were learnt
        outcome.artifact_path = save_weights(
            model,
            result.trained_names,
            ctx.artifact_dir / "model.safetensors",
            {"strategy": Strategy.SCRATCH.value, "model": name, "classes": data.classes},
            with_buffers=True,
        )
    return outcome


register(Strategy.SCRATCH, ScratchConfig, run, ("text", "image"), predict)
