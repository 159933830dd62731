"""Measure a labelled data set: what a user would otherwise have to guess for the advisor.

``measure_profile(dataset)`` counts rows and classes, class balance, text lengths against the
encoder's context, exact duplicates and identical items with conflicting labels, the domain's
unusualness to the pretrained models (``tladvisor.unusualness``) and, optionally, a cheap few-shot
probe: kNN and logistic regression on frozen features, and a no-transfer baseline, cross-validated
over up to ``PROBE_ROWS`` labelled rows. ``MeasuredProfile.to_task_profile(...)`` adds the
user's answers and gives the decision engine its ``TaskProfile``.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tladvisor.data import Dataset, fingerprint_of
from tladvisor.unusualness import Unusualness

# The probe and the no-transfer baseline are cross-validated (CV_FOLDS stratified folds) over up
# to this many labelled rows, a stratified sample beyond: every probed row is scored once, and each
# fold trains on 80% of them, close to what the run will train on. A probe trained on 600 rows and
# scored on 300 others read 0.61 on word-shuffled reviews that feature extraction then classified at
# 0.73 (and the baseline's 0.66 on the same 300 rows turned the ordering around); cross-validated
# over 1,200 rows it read 0.69. 1,200 rows keep the probe under ~30 s of encoding on 2 cores.
PROBE_ROWS = 1200
PROBE_K = 5  # kNN neighbours (fewer when there are fewer shots)
CV_FOLDS = 5
C_FOLDS = 3  # folds of the training rows that choose the logistic regression's C
# Zero-shot and prompting train on nothing, so every probed row scores them, from this many on.
# Each is stated with its interval; the advisor only uses those on outcomes.MIN_ANCHOR_ROWS or more.
ZERO_SHOT_MIN_ROWS = 4
# Prompting's accuracy varies most from one data set to another (the packaged SmolLM2: 0.72 on
# review sentiment, 0.20 on four fortune-file sources), and nothing else the profiler measures
# predicts it, so it is measured: this many rows, drawn at random from all the labelled ones
# (about 0.3 s a short text on 2 cores; +-8 points at one sigma).
PROMPT_PROBE_ROWS = 40
# When those rows cannot rule prompting out (the upper end of its 80% interval reaches the probe or
# the baseline), the choice may hang on it, so it is measured on up to this many rows in all
# (+-4.5 points). On 40 rows of word-shuffled reviews it scored 0.725, on the 400-text test split
# 0.55, and the advice picked it (18 points lost, leave-one-data-set-out).
PROMPT_CONTENTION_ROWS = 120
# Bumped whenever a profile measures something new: bench/advice_suite.py re-profiles older rows.
PROFILER_VERSION = 7
SEED = 0
# The answers a user gives (the profiler cannot measure them), forwarded to TaskProfile.
USER_FIELDS = (
    "format_critical",
    "frequent_updates",
    "needs_new_knowledge",
    "gpu_memory_gb",
    "latency_sensitive",
    "has_clip",
    "zero_shot_accuracy",
)


@dataclass(frozen=True)
class TextLengths:
    chars_mean: float
    chars_p95: float
    tokens_mean: float | None  # MiniLM word pieces incl. [CLS]/[SEP]; None without the tokenizer
    tokens_p95: float | None
    n_truncated: int | None  # texts longer than the encoder's context, cut when encoded
    context_tokens: int | None
    truncated_share: float | None = None  # n_truncated / rows: from CHUNK_WHEN_TRUNCATED_SHARE on,
    # feature extraction and the probe embed each text as the mean of its chunks


@dataclass(frozen=True)
class ImageSizes:
    width_mean: float
    height_mean: float
    min_side: int
    greyscale_fraction: float  # of a sample of up to 256: R == G == B everywhere


@dataclass(frozen=True)
class Duplicates:
    duplicate_rows: int  # rows whose item already appeared earlier (any label)
    duplicate_items: int  # distinct items that appear more than once
    conflicting_items: int  # distinct items that carry two or more different labels
    conflicting_rows: int  # rows holding one of those items


@dataclass(frozen=True)
class Probe:
    model: str
    shots_per_class: int  # training rows of the smallest class in a fold
    n_train: int  # mean training rows of a fold
    n_eval: int  # rows scored: every probed row, once
    k: int
    knn_accuracy: float
    linear_accuracy: float
    chance: float  # accuracy of always predicting the majority class of the evaluation rows
    baseline_accuracy: float | None = None  # no-transfer TF-IDF / pixel model on the same rows
    # The zero-shot strategy's default (text: label-name similarity; images: ConSE) on every
    # probed row: no training, so all rows count. None under ZERO_SHOT_MIN_ROWS rows.
    zero_shot_accuracy: float | None = None
    # Zero-shot prompting of the packaged instruction LM (text), content-free calibrated as the
    # prompting strategy runs it, on up to PROMPT_PROBE_ROWS of the probed rows.
    prompting_accuracy: float | None = None
    prompting_rows: int | None = None
    # Many texts longer than the encoder's context: kNN and linear read each text as the mean of its
    # chunk embeddings, as feature extraction would, and truncated_best is the better of the two on
    # the plain (cut) features. None when not chunked.
    chunked: bool = False
    truncated_best: float | None = None
    # True: kNN, linear and baseline were cross-validated over all probed rows (n_eval of them;
    # n_train is the mean training rows of a fold), as the profiler now always does. False: an
    # older profile's single held-out split (n_train + n_eval rows in all).
    cross_validated: bool = False

    @property
    def best(self) -> float:
        # Both are frozen-feature classifiers the feature-extraction strategy could ship.
        return max(self.knn_accuracy, self.linear_accuracy)

    @property
    def zero_shot_rows(self) -> int:
        # Zero-shot trains on nothing: every probed row counts.
        return self.n_eval if self.cross_validated else self.n_train + self.n_eval

    def intervals(self) -> dict[str, list[float]]:
        """80% Wilson interval of each measured accuracy, from the rows it was scored on."""
        from tladvisor.outcomes import wilson

        measured = {
            "probe": (self.best, self.n_eval),
            "baseline": (self.baseline_accuracy, self.n_eval),
            "zero_shot": (self.zero_shot_accuracy, self.zero_shot_rows),
            "prompting": (self.prompting_accuracy, self.prompting_rows or 0),
        }
        return {
            name: [round(x, 4) for x in wilson(value, n)]
            for name, (value, n) in measured.items()
            if value is not None
        }


@dataclass(frozen=True)
class MeasuredProfile:
    name: str
    modality: str
    n_rows: int
    n_classes: int
    class_counts: dict[str, int]
    min_per_class: int
    imbalance_ratio: float  # largest class / smallest class
    duplicates: Duplicates
    text_lengths: TextLengths | None = None
    image_sizes: ImageSizes | None = None
    unusualness: Unusualness | None = None
    probe: Probe | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what could not be measured, and why

    def to_task_profile(self, **answers: Any) -> Any:
        """The decision engine's ``TaskProfile``: measured fields plus the user's ``answers``.

        ``answers`` may hold any of ``USER_FIELDS``; ``gpu_memory_gb`` defaults to what
        :func:`detect_gpu_memory_gb` finds on this machine.
        """
        from tladvisor.decision import TaskProfile

        unknown = sorted(set(answers) - set(USER_FIELDS))
        if unknown:
            raise ValueError(
                f"to_task_profile got {unknown}, which the profiler measures or which TaskProfile "
                f"does not have; pass only the user's answers: {', '.join(USER_FIELDS)}"
            )
        if "gpu_memory_gb" not in answers:
            answers["gpu_memory_gb"] = detect_gpu_memory_gb()
        zero_shot_rows = None
        if answers.get("zero_shot_accuracy") is None and self.probe is not None:
            measured = self.probe.zero_shot_accuracy  # the user's own figure wins
            answers["zero_shot_accuracy"] = None if measured is None else round(measured, 4)
            zero_shot_rows = None if measured is None else self.probe.zero_shot_rows
        u = self.unusualness
        return TaskProfile(
            modality=self.modality,
            n_labeled=self.n_rows,  # every labelled row is a training example the user has
            n_classes=self.n_classes,
            min_per_class=self.min_per_class,
            domain_unusualness=round(u.score, 4) if u is not None else None,
            unusualness_measured=u is not None,
            probe_accuracy=round(self.probe.best, 4) if self.probe is not None else None,
            truncated_share=(
                round(self.text_lengths.truncated_share, 4)
                if self.text_lengths is not None and self.text_lengths.truncated_share is not None
                else None
            ),
            baseline_accuracy=(
                round(self.probe.baseline_accuracy, 4)
                if self.probe is not None and self.probe.baseline_accuracy is not None
                else None
            ),
            probe_rows=self.probe.n_eval if self.probe is not None else None,
            probe_shots=self.probe.shots_per_class if self.probe is not None else None,
            probe_truncated_accuracy=(
                round(self.probe.truncated_best, 4)
                if self.probe is not None and self.probe.truncated_best is not None
                else None
            ),
            zero_shot_rows=zero_shot_rows,
            prompting_accuracy=(
                round(self.probe.prompting_accuracy, 4)
                if self.probe is not None and self.probe.prompting_accuracy is not None
                else None
            ),
            prompting_rows=self.probe.prompting_rows if self.probe is not None else None,
            **answers,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unusualness"] = self.unusualness.to_dict() if self.unusualness else None
        if self.probe is not None:
            out["probe"]["best"] = self.probe.best
            out["probe"]["intervals"] = self.probe.intervals()
        return out


def detect_gpu_memory_gb() -> float | None:
    """Total memory of the first CUDA GPU in GiB, or None when torch sees no GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)


# ---------------------------------------------------------------- the measurements


def item_key(item: Any) -> bytes:
    """Identity of an item: the text itself, or a hash of an image's size, mode and pixels."""
    if isinstance(item, str):
        return item.encode("utf-8")
    header = f"{item.size[0]}x{item.size[1]}:{item.mode}".encode()
    return hashlib.sha256(header + item.tobytes()).digest()


def find_duplicates(items: list[Any], labels: list[str]) -> Duplicates:
    labels_of: dict[bytes, list[str]] = defaultdict(list)
    for item, label in zip(items, labels, strict=True):
        labels_of[item_key(item)].append(label)
    repeated = [ls for ls in labels_of.values() if len(ls) > 1]
    conflicting = [ls for ls in repeated if len(set(ls)) > 1]
    return Duplicates(
        duplicate_rows=sum(len(ls) - 1 for ls in repeated),
        duplicate_items=len(repeated),
        conflicting_items=len(conflicting),
        conflicting_rows=sum(len(ls) for ls in conflicting),
    )


def text_lengths(texts: list[str], device: str | None, notes: list[str]) -> TextLengths:
    from tladvisor import catalog

    chars = np.array([len(t) for t in texts], dtype=np.float64)
    tokens = None
    context = None
    try:
        encoder = catalog.load("minilm", device=device)
    except catalog.ModelUnavailable as exc:
        notes.append(f"token lengths not measured: {exc}")
    else:
        context = encoder.max_length
        tokens = encoder.token_counts(texts).astype(np.float64)
    cut = int((tokens > context).sum()) if tokens is not None else None
    return TextLengths(
        chars_mean=float(chars.mean()),
        chars_p95=float(np.percentile(chars, 95)),
        tokens_mean=float(tokens.mean()) if tokens is not None else None,
        tokens_p95=float(np.percentile(tokens, 95)) if tokens is not None else None,
        n_truncated=cut,
        context_tokens=context,
        truncated_share=cut / len(texts) if cut is not None else None,
    )


def truncation_note(lengths: TextLengths) -> str | None:
    """A sentence on how many texts MiniLM cuts and what feature extraction does about it."""
    from tladvisor.embeddings import CHUNK_WHEN_TRUNCATED_SHARE, MAX_CHUNKS

    share, context = lengths.truncated_share, lengths.context_tokens
    if not share:
        return None
    pct = f"{share:.0%}" if share >= 0.01 else "under 1%"
    said = f"{pct} of texts are longer than MiniLM's {context} tokens"
    if share >= CHUNK_WHEN_TRUNCATED_SHARE:
        return (
            f"{said}; frozen features of them see only each text's opening, so feature extraction "
            f"and the probe embed each as the mean of its {context}-token chunks (up to "
            f"{MAX_CHUNKS})"
        )
    return (
        f"{said} and are cut to their first {context} when encoded (feature extraction chunks "
        f"them from {CHUNK_WHEN_TRUNCATED_SHARE:.0%} on, or with chunk_long_texts='on')"
    )


def image_sizes(images: list[Any]) -> ImageSizes:
    widths = np.array([im.size[0] for im in images], dtype=np.float64)
    heights = np.array([im.size[1] for im in images], dtype=np.float64)
    sample = [images[i] for i in np.random.default_rng(SEED).permutation(len(images))[:256]]
    grey = 0
    for im in sample:
        px = np.asarray(im.convert("RGB"), dtype=np.int16)
        grey += bool((px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all())
    return ImageSizes(
        width_mean=float(widths.mean()),
        height_mean=float(heights.mean()),
        min_side=int(min(widths.min(), heights.min())),
        greyscale_fraction=grey / len(sample),
    )


def probe_rows(labels: list[str], cap: int = PROBE_ROWS, seed: int = SEED) -> list[int]:
    """Row indices to probe: all of them up to ``cap``, else a seeded stratified sample of ``cap``
    (each class in proportion, and at least two rows of each, so that it can be cross-validated)."""
    if len(labels) <= cap:
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    picked: list[int] = []
    for rows in by_class.values():
        take = min(len(rows), max(2, round(cap * len(rows) / len(labels))))
        picked += [int(i) for i in rng.permutation(rows)[:take]]
    return sorted(picked)


def few_shot_accuracies(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k: int,
    c: float | None = None,
) -> tuple[float, float]:
    """(cosine kNN accuracy, standardised logistic-regression accuracy) on a held-out set; the
    regression's ``c`` is chosen on the training rows when not given."""

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    sims = unit(test_x) @ unit(train_x).T
    nearest = np.argsort(-sims, axis=1)[:, :k]
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    votes = np.zeros((len(test_x), n_classes))
    for j in range(k):
        # One vote per neighbour plus a similarity tie-breaker smaller than any vote difference.
        np.add.at(votes, (np.arange(len(test_x)), train_y[nearest[:, j]]), 1.0)
        np.add.at(
            votes,
            (np.arange(len(test_x)), train_y[nearest[:, j]]),
            sims[np.arange(len(test_x)), nearest[:, j]] / (2 * k + 1),
        )
    knn = float(np.mean(votes.argmax(axis=1) == test_y))
    return knn, validated_linear(train_x, train_y, test_x, test_y, n_classes, c=c)


def validated_linear(
    train_x: Any,
    train_y: np.ndarray,
    test_x: Any,
    test_y: np.ndarray,
    n_classes: int,
    standardize: bool = True,
    c: float | None = None,
) -> float:
    """Test accuracy of logistic regression fitted as feature extraction and the no-transfer
    baseline fit theirs, with ``c`` (when None: chosen by cross-validation over the training
    rows), then refitted on all of them.

    A fixed C = 1 on standardised 384-d features overfits a few hundred rows: it scored the probe
    0.62 where the strategy reached 0.73 on the same reviews. C chosen on one held-out quarter was
    still noisy and fitted on three quarters of the rows: 0.65 on 600 reviews where the same
    features reached 0.70 with C chosen well.
    """
    from tladvisor.strategies.feature_extraction import fit_linear_probe

    if c is None:
        c = choose_c(train_x, train_y, n_classes, standardize)
    probe = fit_linear_probe(train_x, train_y, train_x, train_y, n_classes, [c],
                             standardize=standardize)  # fmt: skip
    return float(np.mean(probe.proba(test_x).argmax(axis=1) == test_y))


def choose_c(x: Any, y: np.ndarray, n_classes: int, standardize: bool = True) -> float:
    """The C of ``feature_extraction.C_VALUES`` with the best accuracy over up to C_FOLDS
    stratified folds of the training rows (log-loss breaks ties); 1 when a class has one row."""
    from tladvisor.strategies.feature_extraction import C_VALUES, fit_linear_probe

    n_folds = int(min(C_FOLDS, np.bincount(y, minlength=1)[np.unique(y)].min()))
    if n_folds < 2 or len(np.unique(y)) < 2:
        return 1.0
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=SEED)
    right = np.zeros(len(C_VALUES))
    loss = np.zeros(len(C_VALUES))
    for fit, val in splitter.split(np.zeros(len(y)), y):
        if len(np.unique(y[fit])) < 2:
            continue
        for i, c in enumerate(C_VALUES):
            probe = fit_linear_probe(x[fit], y[fit], x[val], y[val], n_classes, [c],
                                     standardize=standardize)  # fmt: skip
            proba = probe.proba(x[val])
            right[i] += np.sum(proba.argmax(axis=1) == y[val])
            loss[i] -= np.sum(np.log(proba[np.arange(len(val)), y[val]] + 1e-12))
    best = max(range(len(C_VALUES)), key=lambda i: (right[i], -loss[i]))
    return C_VALUES[best]


def run_probe(
    dataset: Dataset,
    device: str | None,
    notes: list[str],
    chunked: bool = False,
    prompting: bool = True,
) -> Probe | None:
    """The few-shot probe on frozen features of the modality's default model (None if it can't).

    ``chunked`` (text) probes features that embed each text as the mean of its chunks, as feature
    extraction does on long texts, and also records the best accuracy on the truncated features.
    ``prompting`` (text) also scores zero-shot prompting of the packaged LM on a sample of rows.
    """
    from tladvisor import catalog, embeddings

    counts = dataset.class_counts
    if len(counts) < 2 or min(counts.values()) < 2:
        notes.append("probe skipped: it needs two classes with at least two examples each")
        return None
    rows = probe_rows(dataset.labels)
    model_name = catalog.default_model(dataset.modality)
    items = [dataset.items[i] for i in rows]
    labels = [dataset.labels[i] for i in rows]
    # A sub-dataset with its own fingerprint: only the probed rows are encoded, and a second
    # profile of the same data finds them in the embedding cache.
    sub = Dataset(
        f"{dataset.name}-probe",
        dataset.modality,
        items,
        labels,
        fingerprint_of(dataset.modality, items, labels),
    )
    try:
        encoded = embeddings.encode(sub, model_name, device=device)  # zero-shot reads these
        feats = encoded.features
        if chunked:
            feats = embeddings.encode(sub, model_name, device=device, chunked=True).features
    except catalog.ModelUnavailable as exc:
        notes.append(f"probe skipped: {exc}")
        return None
    index = {c: i for i, c in enumerate(dataset.classes)}
    y = np.array([index[label] for label in labels])
    folds = cv_folds(y)
    shots = min(int(np.bincount(y[tr], minlength=len(counts)).min()) for tr, _ in folds)
    k = max(1, min(PROBE_K, shots))
    # Each C is chosen once, over all probed rows, and reused by the folds: choosing it inside
    # every fold cost 4x the fits (13 minutes for 640 long news articles on 2 busy cores) for
    # the same figures within a point.
    n_classes = len(dataset.classes)
    c = choose_c(feats, y, n_classes)
    knn, linear = _pooled(folds, lambda tr, te: few_shot_accuracies(feats[tr], y[tr], feats[te],
                                                                   y[te], k, c))  # fmt: skip
    truncated_best = None
    if chunked:
        plain = encoded.features
        c_plain = choose_c(plain, y, n_classes)
        truncated_best = max(_pooled(folds, lambda tr, te: few_shot_accuracies(
            plain[tr], y[tr], plain[te], y[te], k, c_plain)))  # fmt: skip
        notes.append(
            f"the probe read chunked features: best {max(knn, linear):.2f} against "
            f"{truncated_best:.2f} on the truncated openings"
        )
    scored = np.concatenate([te for _, te in folds])
    majority = np.bincount(y[scored]).max() / len(scored)
    c_base = baseline_c(dataset.modality, items, y)
    (baseline,) = _pooled(folds, lambda tr, te: (baseline_accuracy(
        dataset.modality, [items[i] for i in tr], y[tr], [items[i] for i in te], y[te],
        c_base),))  # fmt: skip
    sampled = "" if len(rows) == len(dataset) else f" (a stratified sample of {len(dataset)})"
    notes.append(
        f"the probe and the baseline were cross-validated ({len(folds)} folds) over "
        f"{len(rows)} rows{sampled}: each row scored once"
    )
    n_train = round(float(np.mean([len(tr) for tr, _ in folds])))
    zero_shot = None
    if len(rows) >= ZERO_SHOT_MIN_ROWS:
        zero_shot = zero_shot_accuracy(dataset.modality, model_name, encoded, y, dataset.classes,
                                       device, notes)  # fmt: skip
    prompted = None
    if prompting and dataset.modality == "text" and len(rows) >= ZERO_SHOT_MIN_ROWS:
        rival = max(knn, linear, baseline)
        prompted = prompting_accuracy(items, y, dataset.classes, device, notes, rival)
    return Probe(
        model_name, shots, n_train, len(scored), k, knn, linear, float(majority), baseline,
        zero_shot, prompted[0] if prompted else None, prompted[1] if prompted else None,
        chunked, truncated_best, True,
    )  # fmt: skip


def cv_folds(y: np.ndarray, seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds over every row (as many as the smallest class allows, up to CV_FOLDS)."""
    from sklearn.model_selection import StratifiedKFold

    n_folds = int(min(CV_FOLDS, np.bincount(y).min()))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _pooled(folds: list, score: Any) -> tuple[float, ...]:
    """Each accuracy of ``score(train, test)`` pooled over the folds, weighted by test rows."""
    parts = [(np.array(score(tr, te)), len(te)) for tr, te in folds]
    total = sum(n for _, n in parts)
    return tuple(float(x) for x in sum(a * n for a, n in parts) / total)


def prompting_accuracy(
    texts: list[str],
    y: np.ndarray,
    classes: list[str],
    device: str | None,
    notes: list[str],
    rival: float | None = None,
) -> tuple[float, int] | None:
    """(accuracy, rows) of the prompting strategy's default (zero-shot, content-free calibrated)
    on a seeded draw of ``PROMPT_PROBE_ROWS`` texts, extended to ``PROMPT_CONTENTION_ROWS`` when
    prompting is still in contention with ``rival`` (the best cheap trained accuracy measured);
    None when no LM is installed."""
    from tladvisor import catalog, outcomes
    from tladvisor.strategies import prompting as pr

    config = pr.PromptingConfig()
    try:
        scorer = pr.make_scorer(config, device or "cpu")
    except catalog.ModelUnavailable as exc:
        notes.append(f"prompting not measured: {exc}")
        return None
    order = np.random.default_rng(SEED).permutation(len(texts))
    words = pr.label_words_for(classes, config.label_words)
    neutral, _ = pr.build_prompts(pr.CONTENT_FREE, words, [], config.max_query_chars)

    def ignore(_done: int, _total: int) -> None:
        return None

    bias = pr.content_free_bias(scorer.score(neutral, words, ignore))

    def correct(pick: np.ndarray) -> np.ndarray:
        queries, _ = pr.build_prompts([texts[i] for i in pick], words, [], config.max_query_chars)
        return (scorer.score(queries, words, ignore) + bias).argmax(axis=1) == y[pick]

    right = correct(order[:PROMPT_PROBE_ROWS])
    _low, high = outcomes.wilson(float(np.mean(right)), len(right))
    more = order[PROMPT_PROBE_ROWS:PROMPT_CONTENTION_ROWS]
    if rival is not None and high >= rival and len(more):
        notes.append(
            f"prompting scored {np.mean(right):.2f} on {len(right)} rows, not clearly below the "
            f"probe or baseline ({rival:.2f}): measured on {len(right) + len(more)} rows"
        )
        right = np.concatenate([right, correct(more)])
    return float(np.mean(right)), len(right)


def zero_shot_accuracy(
    modality: str,
    model_name: str,
    encoded: Any,
    y: np.ndarray,
    classes: list[str],
    device: str | None,
    notes: list[str],
) -> float | None:
    """Accuracy of the zero-shot strategy's default on the encoded rows (None if it cannot run)."""
    from tladvisor import catalog

    try:
        pred = zero_shot_predictions(modality, model_name, encoded, classes, device)
    except catalog.ModelUnavailable as exc:
        notes.append(f"zero-shot not measured: {exc}")
        return None
    return None if pred is None else float(np.mean(pred == y))


def zero_shot_predictions(
    modality: str, model_name: str, encoded: Any, classes: list[str], device: str | None
) -> np.ndarray | None:
    """Class index per encoded row from the zero-shot strategy's default: label-name similarity
    for text, ConSE from the ImageNet head for images (None for a model without one)."""
    from tladvisor import catalog
    from tladvisor.strategies import zero_shot as zs

    if modality == "text":
        encode = catalog.load(model_name, device=device).encode
        return zs.text_zero_shot_predictions(encode, encoded.features, classes)
    if encoded.source_logits is None:
        return None
    classifier = catalog.load(model_name, device=device)
    encode = catalog.load(zs.DEFAULT_TEXT_ENCODER, device=device).encode
    texts = [zs.class_text(c) for c in classes]
    cos = zs.conse_cosines(classifier, encode, encoded.source_logits, texts, zs.CONSE_TOP_T)
    return cos.argmax(axis=1)


def baseline_accuracy(
    modality: str,
    train_items: list,
    train_y: np.ndarray,
    test_items: list,
    test_y: np.ndarray,
    c: float | None = None,
) -> float:
    """Accuracy of the no-transfer baseline (TF-IDF / raw pixels + logistic regression) on the
    probe's own rows: when it beats the pretrained features, transfer is hurting (negative
    transfer), which the advisor only concludes from this measurement."""
    from tladvisor.strategies.scratch import no_transfer_features

    x_train, (x_test,) = no_transfer_features(modality, train_items, [test_items])
    # As the scratch strategy fits it: sparse TF-IDF as is, pixels standardised, C on validation.
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    return validated_linear(x_train, train_y, x_test, test_y, n_classes, modality == "image", c)


def baseline_c(modality: str, items: list, y: np.ndarray) -> float:
    """The baseline's C, chosen once over all probed rows (the folds then reuse it)."""
    from tladvisor.strategies.scratch import no_transfer_features

    x, _ = no_transfer_features(modality, items, [])
    return choose_c(x, y, int(y.max()) + 1, modality == "image")


def measure_profile(
    dataset: Dataset,
    *,
    probe: bool = True,
    unusualness: bool = True,
    prompting: bool = True,
    device: str | None = None,
) -> MeasuredProfile:
    """Measure ``dataset``: counts, balance, lengths, duplicates, unusualness and a few-shot probe.

    Models load once per process (``catalog.load``); after that a few thousand text rows take
    seconds. A model that is not installed drops the measurements that need it, with a note.
    """
    from tladvisor import unusualness as unusual
    from tladvisor.embeddings import should_chunk

    if len(dataset) == 0:
        raise ValueError(f"data set {dataset.name!r} has no rows; load a file with labelled rows")
    start = time.perf_counter()
    notes: list[str] = []
    counts = dataset.class_counts
    lengths = sizes = None
    if dataset.modality == "text":
        lengths = text_lengths(list(dataset.items), device, notes)
        said = truncation_note(lengths)
        if said:
            notes.append(said)
    else:
        sizes = image_sizes(list(dataset.items))
    measured = None
    if unusualness:
        try:
            measured = unusual.measure(list(dataset.items), dataset.modality, device=device)
            if measured is None:
                notes.append("unusualness not measured: none of its models could be loaded")
        except FileNotFoundError as exc:  # no calibration or reference set shipped
            notes.append(f"unusualness not measured: {exc}")
    chunked = lengths is not None and should_chunk("auto", lengths.truncated_share)
    probed = run_probe(dataset, device, notes, chunked, prompting) if probe else None
    return MeasuredProfile(
        name=dataset.name,
        modality=dataset.modality,
        n_rows=len(dataset),
        n_classes=len(counts),
        class_counts=counts,
        min_per_class=min(counts.values()),
        imbalance_ratio=max(counts.values()) / min(counts.values()),
        duplicates=find_duplicates(list(dataset.items), list(dataset.labels)),
        text_lengths=lengths,
        image_sizes=sizes,
        unusualness=measured,
        probe=probed,
        seconds=time.perf_counter() - start,
        notes=notes,
    )
