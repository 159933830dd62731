"""Zero-shot classification from class names alone: CLIP, ConSE for images, description similarity for text.

Three backends, chosen by modality and ``config.model``; the one used is recorded in
``Outcome.backend``:

* **CLIP** (Radford et al. ICML 2021), for a user-supplied ``clip:`` / ``open_clip:`` model: each
  class is the mean of its normalised text embeddings over a set of prompt templates
  ("a photo of a {}.", ...), renormalised (prompt ensembling, worth about 5 points on ImageNet in
  the paper); an image's class probabilities are softmax(100 * cosine).
* **ConSE** (Norouzi et al. ICLR 2014, "Zero-Shot Learning by Convex Combination of Semantic
  Embeddings"), the default for images, which needs no CLIP weights: EfficientNet-Lite0's top-T
  ImageNet probabilities p_t weight the text embeddings s(z_t) of those ImageNet class names,
  f(x) = sum_t p_t s(z_t) / sum_t p_t, and each target class y scores cos(f(x), s(y)) with s =
  MiniLM. It transfers only as far as the target classes resemble ImageNet's in meaning.
* **Description similarity** for text: each class is described ("This text is positive.") or
  described by the user, embedded with the text encoder, and each text takes the class whose
  description is nearest (cosine): the sentence-embedding analogue of CLIP zero-shot, and the
  "label as description" view of Yin et al. (EMNLP 2019) scored by similarity, not entailment.

Class names that are bare numerals ("0".."9") are poor text for any encoder, so they are read as
numbers ("7" -> "the number seven"); ``class_descriptions`` overrides any class's text, and the
text used per class is reported in ``notes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tladvisor.data import Dataset, TaskData
from tladvisor.strategies import Strategy, register
from tladvisor.strategies.base import Outcome, RunContext, StoredRun, StrategyConfig

# A subset of CLIP's 80 ImageNet prompt templates (openai/CLIP notebooks/Prompt_Engineering_for_
# ImageNet.ipynb), kept varied in style (photo, drawing, blurry, close-up) so no single phrasing
# decides the class embedding.
CLIP_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a close-up photo of a {}.",
    "a cropped photo of a {}.",
    "a bright photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a drawing of a {}.",
    "a sketch of a {}.",
    "a rendering of a {}.",
    "art of the {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a {} in a video game.",
)
# For text, two readings of a label: an attribute ("is positive") and a topic ("is about sports").
TEXT_TEMPLATES = ("This text is {}.", "This text is about {}.", "{}.")
NUMBER_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen", "twenty"),
)
DEFAULT_TEXT_ENCODER = "minilm"
CONSE_TOP_T = 10  # Norouzi et al. 2014: the image's top 10 ImageNet classes
DEFAULT_IMAGE_MODEL = "efficientnet-lite0"


@dataclass
class ZeroShotConfig(StrategyConfig):
    """Settings of zero-shot classification (no training data is used)."""

    class_descriptions: dict[str, str] | None = field(
        default=None,
        metadata={
            "help": "class -> text that describes it (e.g. '3' -> 'the handwritten digit three'); "
            "classes left out use their name"
        },
    )
    templates: list[str] | None = field(
        default=None,
        metadata={
            "help": "prompt templates with one {} for the class text; None uses CLIP's (images) "
            "or 'This text is {}.' style ones (text). Ignored for user descriptions of text classes"
        },
    )
    top_t: int = field(
        default=CONSE_TOP_T,
        metadata={
            "help": "ConSE: how many top ImageNet classes form the image's embedding (paper: 10)"
        },
    )
    logit_scale: float = field(
        default=100.0,
        metadata={"help": "softmax scale on cosine scores; 100 is CLIP's learned (clipped) value"},
    )
    text_encoder: str = field(
        default=DEFAULT_TEXT_ENCODER,
        metadata={"help": "sentence encoder that embeds class names for ConSE"},
    )

    ignored_fields: ClassVar[tuple[str, ...]] = (
        "epochs",
        "lr",
        "patience",
        "max_train",
        "batch_size",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.top_t < 1:
            raise ValueError(f"top_t must be at least 1 ImageNet class, got {self.top_t}; try 10")
        if not self.logit_scale > 0:
            raise ValueError(f"logit_scale must be positive, got {self.logit_scale}; try 100")
        if self.templates is not None:
            bad = [t for t in self.templates if not isinstance(t, str) or t.count("{}") != 1]
            if not self.templates or bad:
                raise ValueError(
                    f"templates must be a non-empty list of strings with exactly one {{}}, got "
                    f"{self.templates!r}; e.g. ['a photo of a {{}}.']"
                )
        if self.class_descriptions is not None and not (
            isinstance(self.class_descriptions, dict)
            and all(isinstance(v, str) and v.strip() for v in self.class_descriptions.values())
        ):
            raise ValueError(
                f"class_descriptions must map class names to non-empty texts, got "
                f"{self.class_descriptions!r}"
            )


# ---------------------------------------------------------------- class texts


def class_text(name: str, descriptions: dict[str, str] | None = None) -> str:
    """The text that stands for a class: the user's description, a numeral read as a number, or the name."""
    if descriptions and name in descriptions:
        return descriptions[name].strip()
    stripped = name.strip()
    if stripped.isdigit() and int(stripped) < len(NUMBER_WORDS):
        return f"the number {NUMBER_WORDS[int(stripped)]}"
    return stripped.replace("_", " ")


def check_descriptions(classes: Sequence[str], descriptions: dict[str, str] | None) -> None:
    unknown = sorted(set(descriptions or {}) - set(classes))
    if unknown:
        raise ValueError(
            f"class_descriptions names classes not in the data: {', '.join(map(repr, unknown))}; "
            f"the classes are {', '.join(map(repr, classes))}"
        )


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def class_prototypes(
    encode: Callable[[list[str]], np.ndarray], texts: Sequence[str], templates: Sequence[str]
) -> np.ndarray:
    """(C, d) unit vectors: each class's template embeddings, normalised, averaged, renormalised."""
    filled = [t.format(text) for text in texts for t in templates]
    emb = _normalise(np.asarray(encode(filled), dtype=np.float64))
    per_class = emb.reshape(len(texts), len(templates), -1).mean(axis=1)
    return _normalise(per_class)


def cosine_softmax(features: np.ndarray, prototypes: np.ndarray, scale: float) -> np.ndarray:
    """(N, C) softmax(scale * cos(feature, prototype))."""
    logits = scale * _normalise(np.asarray(features, np.float64)) @ _normalise(prototypes).T
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def text_zero_shot_predictions(
    encode: Callable[[list[str]], np.ndarray], features: np.ndarray, classes: Sequence[str]
) -> np.ndarray:
    """Class index per row of text ``features``: the nearest class-name prototype (the zero-shot
    strategy's default templates, no descriptions). What the profiler measures zero-shot with."""
    protos = class_prototypes(encode, [class_text(c) for c in classes], TEXT_TEMPLATES)
    return (_normalise(np.asarray(features, np.float64)) @ protos.T).argmax(axis=1)


def conse_cosines(
    classifier: Any,
    encode: Callable[[list[str]], np.ndarray],
    source_logits: np.ndarray,
    texts: Sequence[str],
    top_t: int,
) -> np.ndarray:
    """(N, C) ConSE cosines of images (their ImageNet logits) to the class texts."""
    source_emb = encode(list(classifier.class_names))
    target_emb = encode(list(texts))
    return conse_scores(_softmax(source_logits), source_emb, target_emb, top_t)


def conse_scores(
    source_probs: np.ndarray, source_emb: np.ndarray, target_emb: np.ndarray, top_t: int
) -> np.ndarray:
    """ConSE (Norouzi et al. 2014, eq. 1-2): cosine of each target class to the image's embedding.

    source_probs (N, S): the source classifier's probabilities; source_emb (S, d) and target_emb
    (C, d): text embeddings of source and target class names. f(x) = sum over the top_t source
    classes of p_t * s_t / sum p_t; returns (N, C) cos(f(x), target_c).
    """
    probs = np.asarray(source_probs, np.float64)
    t = min(top_t, probs.shape[1])
    top = np.argpartition(-probs, t - 1, axis=1)[:, :t]  # (N, T) any order: the sum ignores it
    weights = np.take_along_axis(probs, top, axis=1)
    weights /= np.clip(weights.sum(axis=1, keepdims=True), 1e-12, None)
    f = np.einsum("nt,ntd->nd", weights, _normalise(np.asarray(source_emb, np.float64))[top])
    return _normalise(f) @ _normalise(np.asarray(target_emb, np.float64)).T


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _params(module: object) -> int:
    return int(sum(p.numel() for p in module.parameters()))  # type: ignore[attr-defined]


# ---------------------------------------------------------------- run


def run(config: ZeroShotConfig, data: TaskData, ctx: RunContext) -> Outcome:
    classes = data.classes
    check_descriptions(classes, config.class_descriptions)
    name, proba, backend, total, notes = _score(
        config, classes, data.dataset, _val_test_rows(data), ctx
    )
    n_val = len(data.split.val)
    val_proba, test_proba = proba[:n_val], proba[n_val:]
    metrics: dict[str, float] = {}
    if n_val:
        metrics["val_accuracy"] = float(np.mean(val_proba.argmax(1) == data.y("val")))
    test_pred = test_proba.argmax(axis=1)
    metrics["test_top_label_share"] = float(
        np.bincount(test_pred, minlength=len(classes)).max() / max(1, len(test_pred))
    )
    ctx.progress(1.0, "done")
    return Outcome.from_proba(
        test_proba,
        model=name,
        backend=backend,
        trainable_params=0,
        total_params=total,
        extra_metrics=metrics,
        notes=notes,
    )


def predict(run: StoredRun, items: list, ctx: RunContext) -> np.ndarray:
    """Class probabilities of ``items`` from the run's settings (class texts, templates, scale):
    zero-shot learns nothing, so the stored configuration is all there is to keep."""
    unlabelled = Dataset("to predict", run.modality, list(items), ["?"] * len(items), "")
    rows = np.arange(len(items))
    return _score(run.config, run.classes, unlabelled, rows, ctx)[1]


def _score(
    config: ZeroShotConfig,
    classes: list[str],
    dataset: Dataset,
    rows: np.ndarray,
    ctx: RunContext,
) -> tuple[str, np.ndarray, str, int, list[str]]:
    """(model, (len(rows), C) probabilities, backend, parameters, notes) for ``dataset``'s ``rows``."""
    from tladvisor import catalog

    texts = [class_text(c, config.class_descriptions) for c in classes]
    notes = [
        "class texts: " + "; ".join(f"{c} -> {t!r}" for c, t in zip(classes, texts, strict=True))
    ]
    modality = dataset.modality
    name = config.model or (DEFAULT_TEXT_ENCODER if modality == "text" else DEFAULT_IMAGE_MODEL)
    spec = catalog.get_spec(name)
    ctx.progress(0.0, f"loading {name}")
    if modality == "text":
        if spec.kind != catalog.TEXT_ENCODER:
            raise ValueError(
                f"zero-shot text classification needs a sentence encoder, but {name!r} is a "
                f"{spec.kind}; use model={DEFAULT_TEXT_ENCODER!r} (or 'hf:/path/to/encoder')"
            )
        proba, backend, total = _text(config, classes, dataset, rows, ctx, name, texts, notes)
    elif spec.kind == catalog.CLIP:
        proba, backend, total = _clip(config, dataset, rows, ctx, name, texts)
    elif spec.kind == catalog.IMAGE_CLASSIFIER:
        proba, backend, total = _conse(config, dataset, rows, ctx, name, texts)
    else:
        raise ValueError(
            f"zero-shot image classification needs a CLIP model ('clip:/path/to/folder') or an "
            f"ImageNet classifier ({DEFAULT_IMAGE_MODEL!r}, ConSE); {name!r} is a {spec.kind}"
        )
    return name, proba, backend, total, notes


def _val_test_rows(data: TaskData) -> np.ndarray:
    """Dataset positions of the validation then the test items (the rows zero-shot scores)."""
    return np.concatenate([data.split.val, data.split.test])


def _features(dataset: Dataset, name: str, device: str) -> Any:
    """Features of a stored data set from the cache, of new items (no fingerprint) computed now."""
    from tladvisor import embeddings

    if dataset.fingerprint:
        return embeddings.encode(dataset, name, device=device)
    return embeddings.compute(dataset, name, device=device)


def _text(
    config: ZeroShotConfig,
    classes: list[str],
    dataset: Dataset,
    rows: np.ndarray,
    ctx: RunContext,
    name: str,
    texts: list[str],
    notes: list[str],
) -> tuple[np.ndarray, str, int]:
    from tladvisor import catalog

    encoder = catalog.load(name, device=ctx.device)
    described = set(config.class_descriptions or {})
    # A user's description is already a sentence: wrapping it in "This text is ..." would blur it.
    templates = list(config.templates or TEXT_TEMPLATES)
    protos = np.stack(
        [
            class_prototypes(encoder.encode, [t], ["{}"] if c in described else templates)[0]
            for c, t in zip(classes, texts, strict=True)
        ]
    )
    ctx.check_cancel()
    ctx.progress(0.2, "embedding the texts")
    feats = _features(dataset, name, ctx.device).features
    ctx.check_cancel()
    n_cut = encoder.n_truncated([dataset.items[i] for i in rows])
    if n_cut:
        notes.append(
            f"{n_cut} validation/test texts longer than {encoder.max_length} tokens were cut"
        )
    proba = cosine_softmax(feats[rows], protos, config.logit_scale)
    return proba, f"description similarity ({name})", _params(encoder.model)


def _clip(
    config: ZeroShotConfig,
    dataset: Dataset,
    rows: np.ndarray,
    ctx: RunContext,
    name: str,
    texts: list[str],
) -> tuple[np.ndarray, str, int]:
    from tladvisor import catalog

    clip = catalog.load(name, device=ctx.device)
    templates = list(config.templates or CLIP_TEMPLATES)
    protos = class_prototypes(clip.encode_texts, texts, templates)
    ctx.check_cancel()
    ctx.progress(0.2, "embedding the images")
    feats = _features(dataset, name, ctx.device).features
    ctx.check_cancel()
    proba = cosine_softmax(feats[rows], protos, config.logit_scale)
    backend = f"CLIP zero-shot ({clip.backend}, {len(templates)}-template ensemble)"
    return proba, backend, _params(clip.model)


def _conse(
    config: ZeroShotConfig,
    dataset: Dataset,
    rows: np.ndarray,
    ctx: RunContext,
    name: str,
    texts: list[str],
) -> tuple[np.ndarray, str, int]:
    from tladvisor import catalog

    classifier = catalog.load(name, device=ctx.device)
    encoder = catalog.load(config.text_encoder, device=ctx.device)
    ctx.check_cancel()
    ctx.progress(0.1, "ImageNet predictions of the images")
    logits = _features(dataset, name, ctx.device).source_logits
    if logits is None:
        raise ValueError(f"{name!r} gave no ImageNet logits; ConSE needs an ImageNet classifier")
    ctx.check_cancel()
    ctx.progress(0.8, "embedding class names")
    cos = conse_cosines(classifier, encoder.encode, logits[rows], texts, config.top_t)
    proba = _softmax(config.logit_scale * cos)
    backend = f"ConSE({name} top-{config.top_t}, {config.text_encoder})"
    return proba, backend, _params(classifier.body) + _params(encoder.model)


register(Strategy.ZERO_SHOT, ZeroShotConfig, run, ("text", "image"), predict)
