"""Domain unusualness: how far a data set sits from what the pretrained models know, on a 0-1 scale.

Seed 003's decision framework starts with "is the domain unusual?". Instead of asking the user, we
measure it with the models tladvisor would transfer from, on a small sample of the data:

Text (``TEXT_SIGNALS``)
    ``lm_loss``: SmolLM2-135M-Instruct's negative log-likelihood per character (nats), pooled over
    about ``LM_TOKEN_BUDGET`` tokens of sampled texts cut to ``LM_MAX_TOKENS`` tokens: how
    surprised the instruction LM is. Per character, not per token: digits and symbols are split
    into one-character tokens that are individually easy to guess, so per-token loss ranks number
    strings *below* English (measured: 3.5 vs 4.5 nats/token), while per character they are 3x
    higher. ``fragmentation``: MiniLM WordPiece pieces per whitespace word: vocabulary the
    encoder never learnt is shredded into pieces. ``embedding_distance``: mean cosine distance
    from each sampled text's MiniLM embedding to its nearest neighbour among ordinary English
    sentences (``data/reference/text_general.txt``).
Images (``IMAGE_SIGNALS``)
    ``head_confidence``: mean max-softmax of EfficientNet-Lite0's ImageNet head.
    ``head_entropy``: mean entropy of that softmax divided by log(1000) (how spread it is).
    ``feature_distance``: mean cosine distance from each image's 1280-d pooled features to its
    nearest neighbour among natural-photo crops (``data/reference/images_natural/``).

Each raw value r is mapped to ``clip((r - low) / (high - low), 0, 1)`` with ``low`` the value on the
ordinary reference (general English / natural photos) and ``high`` the mean of the unusual
references (code and number strings / digits and textures), both measured by
``scripts/calibrate_unusualness.py`` and stored in ``data/reference/unusualness_calibration.json``.
The map works for signals that fall with unusualness too (confidence: ``high < low``). The score
is the plain mean of the mapped signals that could be measured: no signal is trusted more than
another because three reference points cannot say which generalises best. See docs/unusualness.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "data" / "reference"
CALIBRATION_PATH = REFERENCE_DIR / "unusualness_calibration.json"

TEXT_SIGNALS = ("lm_loss", "fragmentation", "embedding_distance")
IMAGE_SIGNALS = ("head_confidence", "head_entropy", "feature_distance")
SIGNAL_LABELS = {
    "lm_loss": "instruction-LM loss (nats/char)",
    "fragmentation": "tokenizer fragmentation (pieces/word)",
    "embedding_distance": "embedding distance to ordinary English",
    "head_confidence": "ImageNet head confidence (max softmax)",
    "head_entropy": "ImageNet head spread (entropy / log 1000)",
    "feature_distance": "feature distance to natural photos",
}

# SmolLM2 costs ~0.27 GFLOP a token on the CPU: a budget of 768 tokens keeps the LM signal to a
# few seconds while averaging over enough tokens for the ranking to hold (docs/unusualness.md).
LM_TOKEN_BUDGET = 768
LM_MAX_TOKENS = 64  # the per-character loss settles within a sentence; longer texts only cost time
LM_MAX_TEXTS = 64
EMBED_SAMPLE = 128  # MiniLM-encoding 128 short texts takes ~1 s on a laptop CPU
FRAGMENT_SAMPLE = 1024  # tokenizing only: cheap, so use many texts
IMAGE_SAMPLE = 64  # EfficientNet-Lite0 at 224 px: ~1-2 s for 64 images on a CPU
SEED = 0
LEVELS = ((1 / 3, "low"), (2 / 3, "moderate"), (math.inf, "high"))


@dataclass(frozen=True)
class Unusualness:
    """A calibrated unusualness score with the raw signals behind it and a sentence saying why."""

    score: float  # 0 = like the ordinary reference, 1 = like the unusual references (clipped)
    signals: dict[str, float]  # raw values, in the units of SIGNAL_LABELS
    explanation: str
    sample_size: int  # distinct items any signal read (each signal reads a prefix of one sample)
    scaled: dict[str, float] = field(default_factory=dict)  # each signal mapped to 0-1
    missing: dict[str, str] = field(default_factory=dict)  # signal -> why it was not measured
    sample_sizes: dict[str, int] = field(default_factory=dict)  # signal -> items it read

    @property
    def level(self) -> str:
        return level_of(self.score)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["level"] = self.level
        return out


def level_of(score: float) -> str:
    return next(name for bound, name in LEVELS if score < bound)


# ---------------------------------------------------------------- raw signals: text


def sample_order(n: int, seed: int = SEED) -> np.ndarray:
    """A seeded permutation of ``range(n)``: repeated measurements of one data set agree."""
    return np.random.default_rng(seed).permutation(n)


def lm_loss(
    texts: list[str], *, device: str | None = None, token_budget: int = LM_TOKEN_BUDGET
) -> tuple[float, int]:
    """(SmolLM2 NLL per character in nats, texts used), over texts taken in order until
    ``token_budget`` tokens are scored (each text cut to LM_MAX_TOKENS tokens)."""
    from tladvisor import catalog

    lm = catalog.load("smollm2", device=device)
    chosen: list[tuple[str, list[int]]] = []
    tokens = 0
    for text in texts[:LM_MAX_TEXTS]:
        if tokens >= token_budget:
            break
        ids = lm.tokenizer(text, truncation=True, max_length=LM_MAX_TOKENS)["input_ids"]
        if len(ids) >= 2:  # the first token is context only: a one-token text scores nothing
            chosen.append((text, ids))
            tokens += len(ids) - 1
    if not chosen:
        raise ValueError("every text is a single token; the LM loss needs at least two tokens")
    losses = lm.token_losses([text for text, _ in chosen], max_length=LM_MAX_TOKENS)
    nll = sum(float(loss.sum()) for loss in losses)
    # The characters of the scored tokens (all but the first): the same span the losses cover.
    chars = sum(len(lm.tokenizer.decode(ids[1:])) for _, ids in chosen)
    return nll / max(chars, 1), len(chosen)


def fragmentation(texts: list[str], tokenizer: Any) -> float:
    """WordPiece pieces per whitespace-separated word, pooled over ``texts``."""
    words = sum(len(t.split()) for t in texts)
    if words == 0:
        raise ValueError("the texts are empty; fragmentation needs words")
    pieces = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return pieces / words


def nn_distance(
    query: np.ndarray,
    bank: np.ndarray,
    query_groups: list[str] | None = None,
    bank_groups: list[str] | None = None,
) -> float:
    """Mean over ``query`` rows of the cosine distance to the nearest ``bank`` row.

    With groups, a query never matches a bank row of its own group: calibrating the reference
    against itself leaves out the row itself (text) or every crop of the same photo (images),
    otherwise the ordinary reference would sit at distance 0, which no user data can reach.
    """
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    sims = q @ b.T
    if query_groups is not None and bank_groups is not None:
        same = np.asarray(query_groups)[:, None] == np.asarray(bank_groups)[None, :]
        sims = np.where(same, -np.inf, sims)
    return float(np.mean(1.0 - sims.max(axis=1)))


def read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_images(folder: Path) -> tuple[list[Any], list[str]]:
    """RGB images of a reference folder and each one's source (the name before the last '_')."""
    from PIL import Image

    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise FileNotFoundError(
            f"no reference images in {folder}; build them with `python scripts/build_reference.py`"
        )
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    return images, [p.stem.rsplit("_", 1)[0] for p in paths]


def _reference_dataset(name: str, modality: str, items: list[Any]) -> Any:
    """A Dataset of reference items, so their features go through the shared embedding cache."""
    from tladvisor.data import Dataset, fingerprint_of

    labels = ["reference"] * len(items)
    return Dataset(name, modality, items, labels, fingerprint_of(modality, items, labels))


@lru_cache(maxsize=4)
def text_bank(device: str | None = None) -> np.ndarray:
    """MiniLM embeddings of the general-English reference sentences."""
    from tladvisor import embeddings

    texts = read_lines(REFERENCE_DIR / "text_general.txt")
    return embeddings.encode(
        _reference_dataset("ref-text-general", "text", texts), "minilm", device=device
    ).features


@lru_cache(maxsize=4)
def image_bank(device: str | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """EfficientNet features of the natural-photo reference crops, and each crop's source photo."""
    from tladvisor import embeddings

    images, groups = read_images(REFERENCE_DIR / "images_natural")
    ds = _reference_dataset("ref-images-natural", "image", images)
    return embeddings.encode(ds, "efficientnet-lite0", device=device).features, tuple(groups)


def text_signals(
    texts: list[str], *, device: str | None = None, groups: list[str] | None = None
) -> tuple[dict[str, float], dict[str, str], dict[str, int]]:
    """Raw text signals on a seeded sample of ``texts``.

    Returns (values, why each missing signal is missing, texts each signal was measured on). The
    samples are nested (one seeded order, each signal takes a prefix), so they overlap maximally.
    ``groups`` (one per text) is for calibration only: see :func:`nn_distance`.
    """
    from tladvisor import catalog

    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    sizes: dict[str, int] = {}
    order = sample_order(len(texts))
    sample = [texts[i] for i in order]
    try:
        encoder = catalog.load("minilm", device=device)
    except catalog.ModelUnavailable as exc:
        missing["fragmentation"] = missing["embedding_distance"] = str(exc)
    else:
        frag = sample[:FRAGMENT_SAMPLE]
        values["fragmentation"], sizes["fragmentation"] = (
            fragmentation(frag, encoder.tokenizer),
            len(frag),
        )
        embed = sample[:EMBED_SAMPLE]
        bank = text_bank(device)
        query_groups = bank_groups = None
        if groups is not None:
            bank_groups = [str(i) for i in range(len(bank))]
            query_groups = [groups[i] for i in order[:EMBED_SAMPLE]]
        values["embedding_distance"] = nn_distance(
            encoder.encode(embed), bank, query_groups, bank_groups
        )
        sizes["embedding_distance"] = len(embed)
    try:
        values["lm_loss"], sizes["lm_loss"] = lm_loss(sample, device=device)
    except catalog.ModelUnavailable as exc:
        missing["lm_loss"] = str(exc)
    return values, missing, sizes


# ---------------------------------------------------------------- raw signals: images


def head_stats(logits: np.ndarray) -> tuple[float, float]:
    """(mean max-softmax, mean entropy / log(classes)) of a classifier's logits (N, classes)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1) / math.log(logits.shape[1])
    return float(p.max(axis=1).mean()), float(entropy.mean())


def image_signals(
    images: list[Any], *, device: str | None = None, groups: list[str] | None = None
) -> tuple[dict[str, float], dict[str, str], dict[str, int]]:
    """Raw image signals on a seeded sample of ``images``: like :func:`text_signals`."""
    from tladvisor import catalog

    idx = sample_order(len(images))[:IMAGE_SAMPLE]
    try:
        net = catalog.load("efficientnet-lite0", device=device)
    except catalog.ModelUnavailable as exc:
        return {}, {name: str(exc) for name in IMAGE_SIGNALS}, {}
    feats, logits = net.forward_batches([images[i] for i in idx])
    confidence, entropy = head_stats(logits)
    bank, bank_groups = image_bank(device)
    query_groups = [groups[i] for i in idx] if groups is not None else None
    distance = nn_distance(feats, bank, query_groups, list(bank_groups) if groups else None)
    values = {"head_confidence": confidence, "head_entropy": entropy, "feature_distance": distance}
    return values, {}, dict.fromkeys(values, len(idx))


# ---------------------------------------------------------------- calibrated score


@lru_cache(maxsize=2)
def load_calibration(path: Path = CALIBRATION_PATH) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(
            f"no unusualness calibration at {path}; create it with "
            "`python scripts/calibrate_unusualness.py`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def scale(value: float, low: float, high: float) -> float:
    """``value`` mapped so ``low`` -> 0 and ``high`` -> 1, clipped to [0, 1]."""
    if high == low:
        return 0.0
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def score_signals(
    modality: str,
    values: dict[str, float],
    missing: dict[str, str],
    sizes: dict[str, int],
    calibration: dict[str, Any] | None = None,
) -> Unusualness | None:
    """Combine raw signals into an :class:`Unusualness`; None when no signal could be measured."""
    cal = (calibration or load_calibration())[modality]["signals"]
    scaled = {k: scale(v, cal[k]["low"], cal[k]["high"]) for k, v in values.items() if k in cal}
    if not scaled:
        return None
    score = float(np.mean(list(scaled.values())))
    n = max(sizes.values(), default=0)
    return Unusualness(
        score=score,
        signals={k: float(v) for k, v in values.items()},
        explanation=explain(modality, score, values, scaled, missing, sizes, cal),
        sample_size=n,
        scaled=scaled,
        missing=dict(missing),
        sample_sizes=dict(sizes),
    )


def explain(
    modality: str,
    score: float,
    values: dict[str, float],
    scaled: dict[str, float],
    missing: dict[str, str],
    sizes: dict[str, int],
    cal: dict[str, Any],
) -> str:
    """One paragraph: the score, its level, and each signal with its two reference points."""
    ordinary, unusual = (
        ("ordinary English", "code/number strings")
        if modality == "text"
        else ("natural photos", "digits/textures")
    )
    items = "texts" if modality == "text" else "images"
    parts = [
        f"{SIGNAL_LABELS[k]} {values[k]:.3g} on {sizes.get(k, 0)} {items} -> {scaled[k]:.2f} "
        f"({ordinary} {cal[k]['low']:.3g}, {unusual} {cal[k]['high']:.3g})"
        for k in scaled
    ]
    text = (
        f"Domain unusualness {score:.2f} ({level_of(score)}): the mean of {len(scaled)} signals, "
        f"each scaled so that {ordinary} = 0 and {unusual} = 1: " + "; ".join(parts) + "."
    )
    if len(scaled) > 1:
        top = max(scaled, key=scaled.__getitem__)
        text += f" Strongest signal: {SIGNAL_LABELS[top]}."
    if missing:
        text += " Not measured: " + "; ".join(f"{k} ({why})" for k, why in missing.items()) + "."
    return text


def measure(items: list[Any], modality: str, *, device: str | None = None) -> Unusualness | None:
    """Unusualness of ``items`` (texts or PIL images); None when no model could be loaded."""
    if not items:
        raise ValueError("no items to measure; the data set is empty")
    if modality == "text":
        values, missing, sizes = text_signals(list(items), device=device)
    elif modality == "image":
        values, missing, sizes = image_signals(list(items), device=device)
    else:
        raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")
    return score_signals(modality, values, missing, sizes)
