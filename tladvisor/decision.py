"""The decision engine: from a task profile to a recommended adaptation strategy, with reasons.

A scoring model over the ``Strategy`` members. Each rule encodes one passage of the framework's
sources (five seed documents on transfer learning, numbered 000-004, and published papers); when
it fires it adds to or subtracts from some strategies' scores and records a ``Reason`` that quotes
the passage and links the rule's section of ``docs/framework.md``, which describes every rule, its
sources and the benchmark evidence that adjusted it, so a user can check every step. The highest score wins; ties go to the cheaper
strategy (``TIE_ORDER``). Weight scale: 1 is one ordinary rule, 2 a strong one, 4 a measurement on
the user's own data (measured beats declared beats literature), 5+ a degenerate case that leaves
no real choice.

Thresholds are module constants so a benchmark can move them; benchmark findings themselves enter
through ``EVIDENCE`` (see ``tladvisor.evidence``). The rules' citations and the advice texts are
data in ``tladvisor.framework`` (``SOURCES``, ``ADVICE``, re-exported here). Stdlib only:
importing this module never imports torch or numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from tladvisor import outcomes
from tladvisor.evidence import Evidence, load_evidence
from tladvisor.framework import ACCURACY_NOTES as _ACCURACY_NOTES
from tladvisor.framework import ADVICE, SOURCES, measured_source, predicted_source
from tladvisor.strategies.names import LABELS, Strategy

# ── Thresholds (named so a benchmark can adjust them) ──────────────────────────────────────────
MIN_LABELLED_FOR_FINETUNE = 500  # seed 003: "Do you have >500 labeled examples?"
FEW_HUNDRED = 200  # seed 004: "fewer than a few hundred examples" -> fine-tuning overfits
FEATURE_EXTRACTION_MAX = 1_000  # seed 002 table: "Very small dataset (<1K examples)"
FEATURE_EXTRACTION_CODE_MAX = 500  # seed 002 code: "Feature extraction (< 500 labelled examples)"
PARTIAL_BAND = (500, 5_000)  # seed 002 code: "Partial fine-tuning (500–5K examples)"
FULL_FT_CODE_MIN = 5_000  # seed 002 code: "Full fine-tuning (5K+ examples)"
FULL_FT_MIN = 10_000  # seed 002 table "10K+", seed 000 ">10K examples"
FEW_SHOT_FT_BAND = (10, 100)  # seed 002: few-shot fine-tuning on "10–100 labelled examples"
SCRATCH_PER_CLASS = 1_280  # seed 000: scratch needs 1.28M images for 1,000 classes
UNUSUAL_THRESHOLD = 0.6  # domain_unusualness at or above: "Is your domain unusual? Yes"
FAMILIAR_THRESHOLD = 0.3  # below: "source ≈ target domain"; between the two: moderate shift
NEGATIVE_TRANSFER_THRESHOLD = 0.85  # declared unusualness this high: measure before concluding
CLIP_MATCH_SHOTS = 4.0  # Radford et al. 2021: zero-shot CLIP ≈ a 4-shot linear probe on average
CONSE_MATCH_SHOTS = 2.0  # the offline ConSE zero-shot is weaker: a probe wins from ~2 shots
SETFIT_PER_CLASS = 8  # Tunstall et al. 2022: 8 examples per class are competitive
PROBE_SUFFICIENT = 0.85  # a measured probe this accurate: frozen features suffice
ZERO_SHOT_SUFFICIENT = 0.85
NEAR_CHANCE_MARGIN = 0.1  # accuracy within this of 1/n_classes counts as chance
# Share of texts longer than the encoder's context from which truncation may decide the result
# (tladvisor.embeddings.CHUNK_WHEN_TRUNCATED_SHARE: feature extraction chunks from there on).
LONG_TEXT_SHARE = 0.2
# A no-transfer baseline this far above the pretrained probe on the same shots, on a domain not
# known to be familiar, is measured negative transfer (BENCHMARKS.md part 2: on permuted MNIST pixels
# beat the probe by ~27 points). 0.1 is about two standard errors of the difference of two
# accuracies on the profiler's 200 held-out rows; 0.05 misfired on ordinary reviews at few shots.
BASELINE_MARGIN = 0.1
LOW_GPU_MEMORY_GB = 8.0  # below this (and above 0) GPU memory is "a constraint"
SCORE_SCALE = 2.0  # raw score per logit when squashing to 0-1; keeps top scores apart
# The most a cheaper path may be expected to lose against the most accurate one and still be
# recommended in "balanced" mode (the interval of the best bounds it too): one point, the
# tolerance the advice's own target uses ("within 1 point of the best"). At 2 points the cheaper
# pick lost more than a point in 4 more of the suite's 77 leave-one-data-set-out cases (the
# predicted gap between a probe and fine-tuning ran small) for under 2% more compute saved;
# BENCHMARKS.md tabulates the trade, `python bench/lodo.py --sweep-trade` reproduces it.
TRADE_MAX = 0.01

MODALITIES = ("text", "image")
_TUNED = (Strategy.PARTIAL_FINETUNE, Strategy.FULL_FINETUNE, Strategy.LP_FT, Strategy.LORA)
_TRAINED = (Strategy.FEATURE_EXTRACTION, *_TUNED, Strategy.SCRATCH)
# Ties go to the cheaper, less invasive strategy (seed 003: "Try prompting ... before committing
# to fine-tuning").
TIE_ORDER = (
    Strategy.ZERO_SHOT,
    Strategy.PROMPTING,
    Strategy.FEATURE_EXTRACTION,
    Strategy.LORA,
    Strategy.PARTIAL_FINETUNE,
    Strategy.LP_FT,
    Strategy.FULL_FINETUNE,
    Strategy.SCRATCH,
)
# Starting scores. Scratch starts low because "models fine-tuned from pre-trained checkpoints
# consistently outperform models trained from scratch when the target dataset is small" (seed 001);
# LP-FT is full fine-tuning plus a probe stage, so it must earn its extra cost (Kumar et al.).
PRIORS = {s: 0.0 for s in Strategy} | {Strategy.SCRATCH: -2.0, Strategy.LP_FT: -0.25}

# Benchmark findings (name -> Evidence), read once from data/evidence.json if it exists.
EVIDENCE: dict[str, Evidence] = load_evidence()
# The suite's learning curves (tladvisor.outcomes), read once from data/outcome_model.json.
OUTCOME_MODEL: outcomes.OutcomeModel = outcomes.load_model()
# Without cost estimates, this is the order from cheap to dear on a CPU (BENCHMARKS.md cost table).
COST_ORDER = (
    Strategy.SCRATCH,
    Strategy.ZERO_SHOT,
    Strategy.FEATURE_EXTRACTION,
    Strategy.PROMPTING,
    Strategy.LORA,
    Strategy.PARTIAL_FINETUNE,
    Strategy.LP_FT,
    Strategy.FULL_FINETUNE,
)
PREFERENCES = ("balanced", "accuracy")


# ── Input ─────────────────────────────────────────────────────────────────────────────────────────
def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TaskProfile:
    """What the advisor knows about a task. ``None`` means unknown: the rules for it stay silent."""

    modality: str = field(metadata=_help("'text' or 'image'"))
    n_labeled: int = field(metadata=_help("number of labelled examples (0 allowed)"))
    n_classes: int = field(metadata=_help("number of distinct labels"))
    min_per_class: int | None = field(
        default=None, metadata=_help("smallest class count; derived as n_labeled // n_classes")
    )
    domain_unusualness: float | None = field(
        default=None, metadata=_help("0 = like the pre-training data, 1 = nothing like it")
    )
    unusualness_measured: bool = field(
        default=False,
        metadata=_help("True if the profiler measured unusualness, False if declared"),
    )
    format_critical: bool | None = field(
        default=None, metadata=_help("is format/style consistency of the output critical?")
    )
    frequent_updates: bool | None = field(
        default=None, metadata=_help("will the model be updated frequently?")
    )
    needs_new_knowledge: bool = field(
        default=False, metadata=_help("does the task need facts the model never saw?")
    )
    gpu_memory_gb: float | None = field(default=None, metadata=_help("0 or None: CPU only"))
    latency_sensitive: bool = field(default=False, metadata=_help("is inference latency critical?"))
    has_clip: bool = field(default=False, metadata=_help("a CLIP checkpoint is available (images)"))
    probe_accuracy: float | None = field(
        default=None, metadata=_help("measured few-shot kNN/linear-probe accuracy, 0-1")
    )
    zero_shot_accuracy: float | None = field(
        default=None, metadata=_help("measured zero-shot accuracy, 0-1")
    )
    baseline_accuracy: float | None = field(
        default=None,
        metadata=_help(
            "measured accuracy of a no-transfer baseline (TF-IDF / raw pixels + logistic "
            "regression) on the probe's few shots, 0-1"
        ),
    )
    probe_rows: int | None = field(
        default=None,
        metadata=_help(
            "held-out rows the probe and the baseline were scored on; with it their accuracies "
            "carry intervals and decide the advice (None: declared, not measured)"
        ),
    )
    probe_shots: float | None = field(
        default=None, metadata=_help("training examples a class behind the probe and baseline")
    )
    zero_shot_rows: int | None = field(
        default=None, metadata=_help("rows the measured zero-shot accuracy was scored on")
    )
    prompting_accuracy: float | None = field(
        default=None,
        metadata=_help(
            "measured zero-shot prompting accuracy of the packaged instruction LM (text), 0-1"
        ),
    )
    prompting_rows: int | None = field(
        default=None, metadata=_help("rows the measured prompting accuracy was scored on")
    )
    probe_truncated_accuracy: float | None = field(
        default=None,
        metadata=_help(
            "the probe on features of each text's opening only (what fine-tuning reads) when "
            "the probe itself read long texts whole, as chunks; 0-1"
        ),
    )
    truncated_share: float | None = field(
        default=None,
        metadata=_help(
            "share of texts longer than the text encoder's context (MiniLM: 256 tokens), 0-1"
        ),
    )

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(
                f"modality={self.modality!r} is not supported; use 'text' (a CSV of texts) or "
                "'image' (a folder or archive of images)"
            )
        for name in ("n_labeled", "n_classes"):
            _check_count(name, getattr(self, name))
        for name in ("probe_rows", "zero_shot_rows", "prompting_rows"):
            if getattr(self, name) is not None:
                _check_count(name, getattr(self, name))
        if self.min_per_class is None:
            # Even split as the best guess; an uneven data set should pass the real minimum.
            self.min_per_class = self.n_labeled // self.n_classes if self.n_classes else 0
        _check_count("min_per_class", self.min_per_class)
        if self.min_per_class * max(self.n_classes, 1) > self.n_labeled:
            raise ValueError(
                f"min_per_class={self.min_per_class} is impossible with n_labeled={self.n_labeled} "
                f"over n_classes={self.n_classes}; pass the smallest class's count or None"
            )
        for name in (
            "domain_unusualness",
            "probe_accuracy",
            "zero_shot_accuracy",
            "prompting_accuracy",
            "baseline_accuracy",
            "probe_truncated_accuracy",
            "truncated_share",
        ):
            _check_fraction(name, getattr(self, name))
        gpu = self.gpu_memory_gb
        if gpu is not None and (
            isinstance(gpu, bool) or not isinstance(gpu, int | float) or not 0 <= gpu < math.inf
        ):
            raise ValueError(
                f"gpu_memory_gb={gpu!r} must be a number of GiB >= 0; use 0 or None for CPU only"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskProfile:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TaskProfile fields {unknown}; known fields: {sorted(known)}")
        return cls(**data)


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} must be a whole number >= 0")


def _check_fraction(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{name}={value!r} must be a number between 0 and 1 (a fraction, not a percentage), "
            "or None if unknown"
        )


# ── Output ────────────────────────────────────────────────────────────────────────────────────────
@dataclass
class Alternative:
    strategy: Strategy
    score: float  # sigmoid(raw / SCORE_SCALE): 0.5 = no rule for or against
    summary: str
    expected: outcomes.Prediction | None = None  # accuracy with its 80% interval
    cost: dict[str, Any] | None = None  # {"seconds": ..., "peak_memory_mb": ...} on this device

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "strategy": self.strategy.value,
            "score": self.score,
            "summary": self.summary,
        }
        if self.expected is not None:
            out["expected_accuracy"] = self.expected.to_dict()
        out["expected_cost"] = self.cost
        return out


@dataclass
class Reason:
    rule: str  # "seed003.domain_unusual", "profile.probe_high", "measured.<name>"
    text: str  # what fired, in terms of this profile
    source: str  # the passage it encodes, quoted


@dataclass
class Advice:
    key: str
    title: str
    text: str
    source: str


@dataclass
class Recommendation:
    """The chosen strategy and how it was reached.

    ``alternatives`` ranks every strategy that can run on this profile, the chosen one first;
    strategies that cannot run (prompting on images, training without labels) are left out.
    """

    strategy: Strategy
    alternatives: list[Alternative]
    reasons: list[Reason]
    advice: list[Advice]
    data_needs: str
    profile: TaskProfile
    expected_accuracy_note: str = ""
    decided_by: str = "rules"  # "predictions" when the user's measurements decided
    preference: str = "balanced"  # or "accuracy": the most accurate whatever the cost
    # The pretrained model to run it with (``tladvisor.model_choice``, from the zoo's ranking on
    # the user's data); None: the strategy's default.
    model: str | None = None
    model_reasons: list[str] = field(default_factory=list)
    model_candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.strategy]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "label": self.label,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "expected_accuracy": (
                self.alternatives[0].expected.to_dict() if self.alternatives[0].expected else None
            ),
            "expected_cost": self.alternatives[0].cost,
            "decided_by": self.decided_by,
            "preference": self.preference,
            "model": self.model or default_model_for(self.strategy, self.profile.modality),
            "model_reasons": list(self.model_reasons),
            "model_candidates": list(self.model_candidates),
            "reasons": [asdict(r) for r in self.reasons],
            "advice": [asdict(a) for a in self.advice],
            "data_needs": self.data_needs,
            "expected_accuracy_note": self.expected_accuracy_note,
            "profile": self.profile.to_dict(),
        }


def default_model_for(strategy: Strategy, modality: str) -> str:
    """The model a strategy runs with when none is named (the catalogue's defaults)."""
    from tladvisor import catalog  # pure data: no torch

    if strategy is Strategy.PROMPTING:
        return "smollm2"
    return catalog.default_model(modality)


# ── Scoring ───────────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class _Facts:
    """Quantities derived once from the profile and shared by the rules."""

    n: int
    k: int  # smallest class
    shots: float  # mean examples per class
    chance: float
    u: float | None
    unusual: bool
    familiar: bool
    moderate: bool
    probe_near_chance: bool
    baseline_beats_probe: bool
    negative_transfer: bool
    cpu: bool
    small_gpu: bool
    text: bool


def _facts(p: TaskProfile) -> _Facts:
    k = p.min_per_class or 0
    u = p.domain_unusualness
    chance = 1.0 / p.n_classes if p.n_classes else 1.0
    unusual = u is not None and u >= UNUSUAL_THRESHOLD
    near_chance = p.probe_accuracy is not None and p.probe_accuracy <= chance + NEAR_CHANCE_MARGIN
    # Negative transfer needs evidence about the features, not the inputs: a no-transfer baseline
    # beating the pretrained probe on the same shots, or a probe at chance on an unusual domain.
    # (Unusualness alone was contradicted by BENCHMARKS.md: MNIST measures 0.88, yet frozen
    # ImageNet features win from 8 shots per class.)
    # A measured gap counts whenever it exceeds its own uncertainty, whatever the domain's
    # familiarity: on 189 long speeches (familiar-looking, 0.21) the baseline's 0.97 against the
    # probe's 0.72 was ignored and the advice lost 13 points. Without the row count (a declared
    # figure) the fixed BASELINE_MARGIN stands in for the interval.
    beats = (
        p.baseline_accuracy is not None
        and p.probe_accuracy is not None
        and _gap(p.baseline_accuracy, p.probe_accuracy, p.probe_rows, p.probe_rows)
    )
    negative = beats or (near_chance and unusual)
    gpu = p.gpu_memory_gb or 0.0
    return _Facts(
        n=p.n_labeled,
        k=k,
        shots=p.n_labeled / p.n_classes if p.n_classes else 0.0,
        chance=chance,
        u=u,
        unusual=unusual,
        familiar=u is not None and u < FAMILIAR_THRESHOLD,
        moderate=u is not None and FAMILIAR_THRESHOLD <= u < UNUSUAL_THRESHOLD,
        probe_near_chance=near_chance,
        baseline_beats_probe=beats,
        negative_transfer=negative,
        cpu=gpu <= 0,
        small_gpu=0 < gpu < LOW_GPU_MEMORY_GB,
        text=p.modality == "text",
    )


def _gap(high: float, low: float, n_high: int | None, n_low: int | None) -> bool:
    """``high`` beats ``low`` by more than the measurements' uncertainty (or BASELINE_MARGIN)."""
    if n_high and n_low:
        return outcomes.gap_is_real(high, low, n_high, n_low)
    return high >= low + BASELINE_MARGIN


def _feasible(p: TaskProfile) -> set[Strategy]:
    ok = {Strategy.ZERO_SHOT}
    if p.n_classes < 2:
        return ok  # nothing to separate: only scoring against the class description is left
    if p.modality == "text":
        ok.add(Strategy.PROMPTING)  # an instruction LM: text only
    if p.n_labeled > 0:
        ok.update(_TRAINED)
    return ok


class _Board:
    """Accumulates scores, reasons and advice while the rules run."""

    def __init__(self, feasible: set[Strategy]) -> None:
        self.raw = {s: PRIORS[s] for s in feasible}
        self.contrib: dict[Strategy, list[tuple[str, float]]] = {s: [] for s in feasible}
        self.reasons: list[Reason] = []
        self.advice: dict[str, Advice] = {}

    def fire(
        self,
        rule: str,
        text: str,
        deltas: Mapping[Strategy, float] | None = None,
        source: str | None = None,
    ) -> None:
        """Apply a rule. One whose every delta lands on a strategy that cannot run stays silent."""
        applied = {s: d for s, d in (deltas or {}).items() if s in self.raw and d}
        if deltas and not applied:
            return
        for strategy, delta in applied.items():
            self.raw[strategy] += delta
            self.contrib[strategy].append((rule, delta))
        self.reasons.append(Reason(rule, text, source or SOURCES[rule]))

    def advise(self, key: str, **fmt: Any) -> None:
        if key not in self.advice:
            title, text, source = ADVICE[key]
            self.advice[key] = Advice(key, title, text.format(**fmt), source)


def _each(strategies: tuple[Strategy, ...], delta: float) -> dict[Strategy, float]:
    return dict.fromkeys(strategies, delta)


def _how_unusual(p: TaskProfile) -> str:
    kind = "measured by the profiler" if p.unusualness_measured else "as declared"
    return f" (unusualness {p.domain_unusualness:.2f}, {kind})"


# Each rule reads the profile and the derived facts and fires zero or more times.
# Short names for the score tables in the rules below.
ZS, PROMPT, FE = Strategy.ZERO_SHOT, Strategy.PROMPTING, Strategy.FEATURE_EXTRACTION
PARTIAL, FULL, LPFT = Strategy.PARTIAL_FINETUNE, Strategy.FULL_FINETUNE, Strategy.LP_FT
LORA, SCRATCH = Strategy.LORA, Strategy.SCRATCH


def _rule_degenerate(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if p.n_classes < 2:
        b.fire(
            "data.single_class",
            f"Only {p.n_classes} class(es): no classifier can be trained, so only zero-shot "
            "scoring against the class description is left.",
            {ZS: 6.0},
        )
        b.advise("two_classes", n_classes=p.n_classes)
        return
    if f.n == 0:
        b.fire(
            "data.no_labels",
            "No labelled examples: only strategies that need none can run"
            + (
                " (prompting an instruction LM, or zero-shot label similarity)."
                if f.text
                else ", i.e. zero-shot."
            ),
            {ZS: 5.0, PROMPT: 5.5},  # seed 003 sends text without labels to prompting first
        )
    elif f.k == 0:
        b.fire(
            "data.unseen_classes",
            f"{f.n} labelled examples for {p.n_classes} classes: at least one class has no "
            "example, which a trained head can never predict; zero-shot covers every class by name.",
            {ZS: 2.5, PROMPT: 2.5, FE: -1.0, **_each(_TUNED, -2.0)},
        )
    if f.k < SETFIT_PER_CLASS:
        target = max(SETFIT_PER_CLASS, math.ceil(CLIP_MATCH_SHOTS))
        b.advise(
            "collect_labels",
            why=f"Your smallest class has {f.k} example(s). Aim for at least {target} per class "
            f"({target * p.n_classes} in all): SetFit-style probes are competitive from "
            f"{SETFIT_PER_CLASS} per class, and seed 003 asks for more than "
            f"{MIN_LABELLED_FOR_FINETUNE} before fine-tuning.",
        )


def _rule_domain(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if f.u is None:
        b.advise(
            "measure_unusualness",
            why="Domain unusualness is unknown, so the first question is unanswered.",
        )
        return
    how = _how_unusual(p)
    if f.unusual:
        b.fire(
            "seed003.domain_unusual",
            f"The domain is unusual{how}: adapt the weights (fine-tuning, LoRA) rather than "
            "relying on frozen features or a prompt, and consider continued domain pre-training.",
            # Partial fine-tuning only adapts the last blocks: seed 002 keeps it for moderate shift.
            {**_each(_TUNED, 1.0), PARTIAL: 0.5, PROMPT: -1.0, ZS: -1.0},
        )
        b.fire(
            "seed000.probe_worst_for_shift",
            f"A frozen probe is weakest under large distribution shift{how}.",
            {FE: -1.0},
        )
        what = "domain text (your field's documents)" if f.text else "domain images"
        b.advise("domain_pretraining", how=how, what=what)
        if not p.unusualness_measured and f.u >= NEGATIVE_TRANSFER_THRESHOLD:
            b.advise(
                "measure_unusualness",
                why="You declared the domain extremely unusual; negative transfer is only "
                "concluded from a measurement (the profiler's probe against a no-transfer "
                "baseline on your data).",
            )
    elif f.familiar:
        b.fire(
            "seed002.source_close",
            f"The domain is close to the pre-training data{how}: frozen features should transfer.",
            {FE: 1.0, ZS: 0.5, PROMPT: 0.5},
        )
    else:
        b.fire(
            "seed002.moderate_shift",
            f"Moderate shift from the pre-training data{how}: adapting the last blocks fits.",
            {PARTIAL: 0.5},
        )


def _rule_size(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if f.n == 0:
        return
    prompt_note = "" if f.text else " (for images the analogue is zero-shot or a few-shot probe)"
    if f.n < FEW_HUNDRED:
        b.fire(
            "seed004.tiny_data",
            f"{f.n} labelled examples (< {FEW_HUNDRED}): fine-tuning the backbone would overfit; "
            "in-context learning or a frozen backbone fits tiny data.",
            {**_each(_TUNED, -2.0), PROMPT: 2.0},
        )
    if f.n < MIN_LABELLED_FOR_FINETUNE:
        b.fire(
            "seed003.few_labels",
            f"{f.n} labelled examples, not more than {MIN_LABELLED_FOR_FINETUNE}: the framework "
            f"sends this to few-shot prompting + RAG{prompt_note}.",
            {**_each(_TUNED, -1.0), PROMPT: 1.0},
        )
        if f.text:
            b.advise(
                "rag",
                why=f"With {f.n} labelled examples the framework pairs prompting with retrieval.",
            )
    else:
        b.fire(
            "seed003.enough_labels",
            f"{f.n} labelled examples (> {MIN_LABELLED_FOR_FINETUNE}): enough to fine-tune.",
            _each(_TUNED, 1.0),
        )
    if f.n < FEATURE_EXTRACTION_MAX:
        code = f.n < FEATURE_EXTRACTION_CODE_MAX
        b.fire(
            "seed002.feature_extraction_band",
            f"{f.n} labelled examples is in feature extraction's band (< {FEATURE_EXTRACTION_MAX}"
            + (f", and < {FEATURE_EXTRACTION_CODE_MAX} in seed 002's code)." if code else ")."),
            {FE: 1.5 if code else 1.0},
        )
    lo, hi = FEW_SHOT_FT_BAND
    if lo <= f.n <= hi and f.k >= 1:
        b.fire(
            "seed002.few_shot_finetune",
            f"{f.n} examples: a brief supervised fit on {lo}-{hi} examples reaches 90-95% of full "
            "fine-tuning, above few-shot in-context learning's 80-90%.",
            {FE: 0.5},
        )
    if f.text and f.n < MIN_LABELLED_FOR_FINETUNE and f.k >= SETFIT_PER_CLASS:
        b.fire(
            "setfit.eight_per_class",
            f"At least {SETFIT_PER_CLASS} examples in every class ({f.k} in the smallest): a "
            "sentence-encoder probe is competitive with fine-tuning a large model.",
            {FE: 1.0},
        )
    if PARTIAL_BAND[0] <= f.n < PARTIAL_BAND[1] and not f.unusual:
        b.fire(
            "seed002.partial_band",
            f"{f.n} labelled examples is in partial fine-tuning's band ({PARTIAL_BAND[0]}-"
            f"{PARTIAL_BAND[1]}) for a moderate shift: train the last 1-2 blocks and the head.",
            {PARTIAL: 1.0},
        )
    if FULL_FT_CODE_MIN <= f.n < FULL_FT_MIN:
        b.fire(
            "seed002.full_finetune_5k",
            f"{f.n} labelled examples (>= {FULL_FT_CODE_MIN}): full fine-tuning becomes viable.",
            {FULL: 1.0, LPFT: 1.0},
        )
    elif f.n >= FULL_FT_MIN:
        b.fire(
            "seed000.full_finetune_10k",
            f"{f.n} labelled examples (>= {FULL_FT_MIN}): enough data for full fine-tuning.",
            {FULL: 2.0, LPFT: 2.0},
        )


def _rule_task(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if p.format_critical is True:
        b.fire(
            "seed003.format_critical",
            "Output format/style consistency is critical: a trained head or adapter always emits a "
            "valid label, a prompted LM may not.",
            {PROMPT: -2.0, LORA: 1.0, FE: 0.5, PARTIAL: 0.5, FULL: 0.5, LPFT: 0.5},
        )
    elif p.format_critical is False and f.text:
        b.fire(
            "seed003.format_not_critical",
            "Format/style consistency is not critical: few-shot prompting may be sufficient.",
            {PROMPT: 1.0},
        )
    if p.frequent_updates is True:
        b.fire(
            "seed003.frequent_updates",
            "The model will be updated often: keep it modular with LoRA adapters per use case.",
            {LORA: 1.5},
        )
        b.advise("adapters_per_use_case")
    elif p.frequent_updates is False and f.n >= FULL_FT_CODE_MIN:
        b.fire(
            "seed003.no_frequent_updates",
            f"Rare updates and {f.n} labelled examples: a full fine-tune is worth owning.",
            {FULL: 1.0, LPFT: 1.0},
        )
    if p.latency_sensitive:
        b.fire(
            "seed003.latency_cost",
            "Latency matters: a small trained classifier answers in one forward pass, while a "
            "prompted LM needs a long prompt per input.",
            {PROMPT: -1.5, FE: 0.5, LORA: 0.5, ZS: 0.5},
        )
    if p.needs_new_knowledge:
        b.fire(
            "seed004.missing_knowledge",
            "The task needs knowledge the model lacks: fine-tuning does not add it, retrieval does"
            + (" (retrieved documents go into the prompt)." if f.text else "."),
            {PROMPT: 1.0, **_each(_TUNED, -0.5)},
        )
        b.advise("rag", why="The task needs facts the pretrained model never saw.")


def _rule_hardware(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if f.cpu:
        b.fire(
            "seed004.cpu_only",
            "No GPU: full fine-tuning needs the most memory and compute, frozen features and "
            "in-context learning the least.",
            {FULL: -1.5, LPFT: -1.5, PARTIAL: -0.5, LORA: 0.25, PROMPT: 0.5},
        )
        b.fire(
            "seed001.frozen_is_efficient",
            "On CPU, a frozen backbone is cheap: embed once, train only the head.",
            {FE: 1.0},
        )
    elif f.small_gpu:
        b.fire(
            "seed002.lora_memory",
            f"{p.gpu_memory_gb:g} GiB of GPU memory (< {LOW_GPU_MEMORY_GB:g}) is a constraint: "
            "LoRA trains 0.1-1% of the parameters.",
            {LORA: 2.0, FULL: -1.5, LPFT: -1.5},
        )
    if not f.text:
        b.fire(
            "seed002.lora_for_llms",
            "LoRA is built for transformer LMs; on a small CNN, partial fine-tuning is the usual "
            "budget option.",
            {LORA: -0.5},
        )


def _rule_zero_shot_images(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if f.text or f.n == 0 or p.n_classes < 2:
        return
    if p.has_clip:
        if f.shots < CLIP_MATCH_SHOTS:
            b.fire(
                "clip.zero_shot_matches_4_shot",
                f"{f.shots:.1f} examples per class on average, under the ~{CLIP_MATCH_SHOTS:g} "
                "shots that a linear probe needs to match CLIP zero-shot.",
                {ZS: 3.5},
            )
        else:
            b.fire(
                "clip.probe_beats_zero_shot",
                f"{f.shots:.1f} examples per class on average: past the few shots where a probe "
                "overtakes CLIP zero-shot.",
                {FE: 1.0},
            )
        if f.unusual:
            b.fire(
                "clip.weak_on_specialised",
                "CLIP zero-shot is weak on specialised, unusual image domains.",
                {ZS: -1.0},
            )
    elif f.shots >= CONSE_MATCH_SHOTS:
        b.fire(
            "conse.probe_from_2_shots",
            f"No CLIP checkpoint: the offline ConSE zero-shot is weaker, and with {f.shots:.1f} "
            "examples per class a linear probe is the better bet.",
            {FE: 1.0, ZS: -1.0},
        )
    else:
        b.fire(
            "conse.one_shot",
            f"{f.shots:.1f} examples per class and no CLIP checkpoint: ConSE zero-shot from the "
            "ImageNet head is as good as a one-shot probe and needs no training.",
            {ZS: 3.5},
        )


def _rule_transfer_risk(p: TaskProfile, f: _Facts, b: _Board) -> None:
    if f.baseline_beats_probe:
        b.fire(
            "profile.baseline_beats_probe",
            f"On the same few shots a model with no pre-training (TF-IDF / raw pixels) scored "
            f"{p.baseline_accuracy:.2f}, above the pretrained features' {p.probe_accuracy:.2f}: "
            "the pretrained representation hurts here, so start from the no-transfer baseline.",
            # A measurement on the user's own data outweighs benchmark evidence from other data.
            {SCRATCH: 5.0, FE: -2.0},
        )
    if f.negative_transfer:
        why = (
            f"a no-transfer baseline scored {p.baseline_accuracy:.2f} vs the probe's "
            f"{p.probe_accuracy:.2f}"
            if f.baseline_beats_probe
            else f"the probe scored {p.probe_accuracy:.2f}, near chance {f.chance:.2f}, on an "
            "unusual domain"
        )
        b.fire(
            "seed002.negative_transfer",
            f"Negative transfer is likely ({why}): frozen features mislead, so retrain as much of "
            "the network as possible and compare with training from scratch.",
            {SCRATCH: 2.0, FE: -2.0, ZS: -2.0, PROMPT: -1.0, LORA: -1.5, PARTIAL: -1.0, LPFT: -0.5},
        )
        b.advise("negative_transfer", how=f" ({why})")
        if f.k >= SCRATCH_PER_CLASS:
            b.fire(
                "seed000.scratch_at_scale",
                f"{f.k} examples in the smallest class (>= {SCRATCH_PER_CLASS}): enough to train "
                "from scratch, which negative transfer makes the safer start.",
                {SCRATCH: 6.0},
            )
    elif (
        f.unusual
        and f.n >= MIN_LABELLED_FOR_FINETUNE
        and p.probe_accuracy is not None
        and not f.probe_near_chance
    ):
        b.fire(
            "lpft.good_features_large_shift",
            f"The probe scored {p.probe_accuracy:.2f} (chance {f.chance:.2f}), so the features "
            "are good, and the shift is large: fit the probe first, then fine-tune.",
            {LPFT: 1.5},
        )


def _rule_measured(p: TaskProfile, f: _Facts, b: _Board) -> None:
    probe, zs = p.probe_accuracy, p.zero_shot_accuracy
    if probe is not None:
        if probe >= PROBE_SUFFICIENT:
            b.fire(
                "profile.probe_high",
                f"A cheap probe on frozen features already scores {probe:.2f} (>= {PROBE_SUFFICIENT}).",
                {FE: 4.0},
            )
        elif f.probe_near_chance and not f.unusual:
            b.fire(
                "profile.probe_weak",
                f"The probe scored {probe:.2f}, near chance {f.chance:.2f}: frozen features do not "
                "separate these classes.",
                {FE: -2.0, ZS: -1.0, **_each(_TUNED, 0.5)},
            )
            b.advise("check_labels")
    if zs is not None and probe is not None:
        if zs >= probe:
            b.fire(
                "profile.zero_shot_matches_probe",
                f"Measured zero-shot {zs:.2f} >= probe {probe:.2f}: training adds nothing yet.",
                {ZS: 4.0, FE: -1.5},
            )
        elif _gap(probe, zs, p.probe_rows, p.zero_shot_rows) or not p.zero_shot_rows:
            # A lead within the two measurements' uncertainty says nothing either way.
            b.fire(
                "profile.probe_beats_zero_shot",
                f"Measured probe {probe:.2f} > zero-shot {zs:.2f}: the labels teach something.",
                # Against zero-shot rather than for the probe: it says nothing of the probe
                # against fine-tuning (lifting the probe cost LoRA 6 points at 650 reviews a
                # class, BENCHMARKS.md part 2).
                {ZS: -3.0},
            )
    elif zs is not None and zs >= ZERO_SHOT_SUFFICIENT:
        b.fire(
            "profile.zero_shot_high",
            f"Measured zero-shot accuracy {zs:.2f} (>= {ZERO_SHOT_SUFFICIENT}) needs no training.",
            {ZS: 4.0},
        )
    prompted = p.prompting_accuracy
    if zs is not None and zs <= f.chance + NEAR_CHANCE_MARGIN:
        # Prompting leans on the same pretrained reading of inputs and label names; on ROT13
        # reviews label similarity scored 0.48 and SmolLM2 prompting 0.44 (BENCHMARKS.md part 1).
        # Where prompting itself was measured, that measurement speaks for it instead.
        b.fire(
            "profile.zero_shot_weak",
            f"Measured zero-shot accuracy {zs:.2f} is near chance {f.chance:.2f}: the pretrained "
            "models do not connect these inputs to the label names"
            + ("." if prompted is not None else ", and prompting a small LM leans on that same "
               "connection."),
            {ZS: -2.0} if prompted is not None else {ZS: -2.0, PROMPT: -2.0},
        )  # fmt: skip
    if prompted is None:
        return
    rows = p.prompting_rows
    if prompted <= f.chance + NEAR_CHANCE_MARGIN:
        b.fire(
            "profile.prompting_weak",
            f"Prompting the packaged language model scored {prompted:.2f} on {rows} of your rows, "
            f"near chance {f.chance:.2f}: it does not read these texts as your labels mean them.",
            {PROMPT: -4.0},
        )
    elif probe is not None and (prompted >= probe or _gap(prompted, probe, rows, p.probe_rows)):
        b.fire(
            "profile.prompting_matches_probe",
            f"Prompting the packaged language model scored {prompted:.2f} on {rows} of your rows, "
            f"against the probe's {probe:.2f}: without training it already does as well.",
            {PROMPT: 3.0},
        )


def _rule_evidence(p: TaskProfile, f: _Facts, b: _Board, evidence: Mapping[str, Evidence]) -> None:
    measured = None if p.domain_unusualness is None else f.unusual
    for name, item in evidence.items():
        if item.applies(p.modality, f.n, f.k, measured):
            b.fire(
                f"measured.{name}",
                item.text,
                {item.favour: item.weight},
                source=measured_source(name),
            )


def _rule_long_texts(p: TaskProfile, f: _Facts, b: _Board) -> None:
    share = p.truncated_share
    if not f.text or share is None or share < LONG_TEXT_SHARE:
        return
    measured = ""
    cut = p.probe_truncated_accuracy
    if cut is not None and p.probe_accuracy is not None:
        measured = (
            f" Measured: the probe scored {p.probe_accuracy:.2f} on whole texts (chunked) and "
            f"{cut:.2f} on their openings."
        )
    b.fire(
        "profile.long_texts",
        f"{share:.0%} of your texts are longer than the encoder's 256-token context. Feature "
        "extraction reads each whole (the mean of its chunks' embeddings); fine-tuning, LoRA and "
        "prompting read only the opening, so truncation is likely to decide the result." + measured,
        {**_each(_TUNED, -1.0), PROMPT: -1.0, FE: 0.5},
    )


RULES: tuple[Callable[[TaskProfile, _Facts, _Board], None], ...] = (
    _rule_degenerate,
    _rule_domain,
    _rule_size,
    _rule_task,
    _rule_hardware,
    _rule_zero_shot_images,
    _rule_transfer_risk,
    _rule_measured,
    _rule_long_texts,
)


# ── Entry point ───────────────────────────────────────────────────────────────────────────────────
def recommend(
    profile: TaskProfile,
    *,
    evidence: Mapping[str, Evidence] | None = None,
    outcome_model: outcomes.OutcomeModel | None = None,
    costs: Mapping[Strategy, Mapping[str, Any]] | None = None,
    preference: str = "balanced",
) -> Recommendation:
    """Score every strategy that can run on ``profile`` and return the best, with its reasons.

    Every alternative carries an expected accuracy with an 80% interval (``tladvisor.outcomes``).
    When the profiler measured the user's data (``probe_rows``) and the suite has curves for the
    modality, those predictions decide: the most accurate strategy, or, with ``preference``
    "balanced", the cheapest whose expected accuracy lies within the best one's interval (cost
    from ``costs``, strategy -> {"seconds", "peak_memory_mb"}, else ``COST_ORDER``). Otherwise
    the framework's rules decide. ``evidence`` defaults to the module's ``EVIDENCE``;
    ``outcome_model`` to ``OUTCOME_MODEL``.
    """
    if preference not in PREFERENCES:
        raise ValueError(f"preference={preference!r}; choose one of {', '.join(PREFERENCES)}")
    dropped = _unreliable(profile)
    if dropped:
        # Accuracies scored on a handful of rows are noise (1.00 against 0.00 on 2 rows sent
        # 16 reviews to training from scratch): the rules and the curves must not read them.
        profile = replace(profile, **dict.fromkeys(dropped))
    facts = _facts(profile)
    board = _Board(_feasible(profile))
    if dropped:
        board.fire(
            "profile.too_few_rows",
            f"The profiler could score {', '.join(dropped)} on fewer than "
            f"{outcomes.MIN_ANCHOR_ROWS} rows each, so they are not used. With more labelled rows "
            "they become measurements that decide the advice.",
        )
    for rule in RULES:
        rule(profile, facts, board)
    _rule_evidence(profile, facts, board, EVIDENCE if evidence is None else evidence)

    model = OUTCOME_MODEL if outcome_model is None else outcome_model
    expected = {
        s: outcomes.predict(model, profile.modality, s, anchors_of(profile)) for s in board.raw
    }
    order = {s: i for i, s in enumerate(TIE_ORDER)}
    by_rules = sorted(board.raw, key=lambda s: (-board.raw[s], order[s]))
    decided_by = "rules"
    chosen = by_rules[0]
    if _predictions_decide(profile, model, board):
        decided_by = "predictions"
        chosen = _choose_by_prediction(profile, board, expected, costs, preference)
    _post_advice(profile, facts, board, chosen)
    # The pick first, then the rest by expected accuracy (rule score breaks ties).
    rest = sorted(
        (s for s in board.raw if s is not chosen),
        key=lambda s: (-round(expected[s].point, 4), -board.raw[s], order[s]),
    )
    alternatives = [
        Alternative(
            s,
            _squash(board.raw[s]),
            _summary(s, board),
            expected[s],
            dict(costs[s]) if costs and s in costs else None,
        )
        for s in [chosen, *rest]
    ]
    return Recommendation(
        strategy=chosen,
        alternatives=alternatives,
        reasons=board.reasons,
        advice=list(board.advice.values()),
        data_needs=data_needs(profile),
        profile=profile,
        expected_accuracy_note=_accuracy_note(profile, facts, chosen),
        decided_by=decided_by,
        preference=preference,
    )


# Each measured accuracy and the rows it was scored on (probe and baseline share the probe's).
_MEASURED = (
    ("probe_accuracy", "probe_rows"),
    ("baseline_accuracy", "probe_rows"),
    ("probe_truncated_accuracy", "probe_rows"),
    ("zero_shot_accuracy", "zero_shot_rows"),
    ("prompting_accuracy", "prompting_rows"),
)


def _unreliable(p: TaskProfile) -> list[str]:
    """The measured accuracies scored on too few rows to mean anything (rows stated, too few)."""
    return [
        name
        for name, rows in _MEASURED
        if getattr(p, name) is not None
        and getattr(p, rows) is not None
        and not outcomes.enough_rows(getattr(p, rows))
    ]


def anchors_of(p: TaskProfile) -> outcomes.Anchors:
    """The profile's measurements as the outcome model's anchors."""
    chance = 1.0 / p.n_classes if p.n_classes else 1.0
    return outcomes.Anchors(
        chance=chance,
        per_class=p.n_labeled * outcomes.TRAIN_SHARE / max(p.n_classes, 1),
        probe=p.probe_accuracy if p.probe_rows else None,
        probe_truncated=p.probe_truncated_accuracy if p.probe_rows else None,
        baseline=p.baseline_accuracy if p.probe_rows else None,
        zero_shot=p.zero_shot_accuracy if p.zero_shot_rows else None,
        shots=p.probe_shots,
        rows=p.probe_rows,
        zero_shot_rows=p.zero_shot_rows,
        prompting=p.prompting_accuracy if p.prompting_rows else None,
        prompting_rows=p.prompting_rows,
    )


def _predictions_decide(p: TaskProfile, model: outcomes.OutcomeModel, b: _Board) -> bool:
    """Measurements on the user's data decide when there are some and curves to read them with.

    A zero-shot accuracy alone counts (a few labels a class leave the probe too few rows, but
    every row scores zero-shot): leave-one-data-set-out, deciding from it cut the mean regret at
    small budgets (BENCHMARKS.md), while the suite's curves with nothing measured did worse than
    the framework's rules, which therefore decide when nothing was measured.
    """
    measured = [
        name
        for name, rows in _MEASURED
        if name != "baseline_accuracy"  # the no-transfer baseline anchors only itself
        and getattr(p, name) is not None
        and outcomes.enough_rows(getattr(p, rows))
    ]
    if not measured or p.n_classes < 2:
        return False
    return any(f"{p.modality}/{s.value}" in model.anchored for s in b.raw)


def _cost_of(s: Strategy, costs: Mapping[Strategy, Mapping[str, Any]] | None) -> float:
    if costs and s in costs and costs[s].get("seconds") is not None:
        return float(costs[s]["seconds"])
    return float(COST_ORDER.index(s))


def _choose_by_prediction(
    p: TaskProfile,
    b: _Board,
    expected: Mapping[Strategy, outcomes.Prediction],
    costs: Mapping[Strategy, Mapping[str, Any]] | None,
    preference: str,
) -> Strategy:
    """The most accurate strategy, or the cheapest within the best one's interval."""
    order = {s: i for i, s in enumerate(TIE_ORDER)}
    # Strategies the suite has no curve for cannot be compared by prediction: they stay in the
    # alternatives, ranked after, with the honest [chance, 1] interval.
    known = [s for s in b.raw if expected[s].known]
    # Only predictions read from a measurement on the user's data compete: a curve's average
    # over other data sets (nothing measured here) sent 24 textures to training from scratch
    # (0.54 against 0.99, leave-one-data-set-out) while the measured alternatives were right.
    measured = [s for s in known if expected[s].anchored] or known
    candidates = [s for s in measured if not _excluded_by_answers(p, s)] or measured
    ranked = sorted(candidates, key=lambda s: (-expected[s].point, order[s]))
    best = ranked[0]
    top = expected[best]
    b.fire(
        "predicted.most_accurate",
        f"Expected accuracy on your data: {LABELS[best]} {_fmt(top)}"
        + "".join(f"; {LABELS[s]} {_fmt(expected[s])}" for s in ranked[1:3])
        + f". {top.basis[0].upper()}{top.basis[1:]}.",
        source=predicted_source("predicted.most_accurate"),
    )
    if preference == "accuracy":
        return best
    # "Within the interval of the best": a cheaper path whose expected accuracy is no further
    # below the best's than the best's own uncertainty, capped at TRADE_MAX so a wide interval
    # never trades away more than a point.
    floor = max(top.low, top.point - TRADE_MAX)
    within = [s for s in ranked if expected[s].point >= floor]
    cheapest = min(within, key=lambda s: (_cost_of(s, costs), order[s]))
    if cheapest is not best:
        saved = ""
        if costs and best in costs and cheapest in costs:
            seconds = _cost_of(best, costs) - _cost_of(cheapest, costs)
            saved = f", saving about {_duration(seconds)} on this device"
        b.fire(
            "predicted.cheaper_within_interval",
            f"{LABELS[cheapest]} is expected at {expected[cheapest].point:.2f}, within the "
            f"interval of the most accurate ({LABELS[best]}, {_fmt(top)}), and costs less"
            f"{saved}. Choose 'best accuracy whatever the cost' to take {LABELS[best]}.",
            source=predicted_source("predicted.cheaper_within_interval"),
        )
    return cheapest


def _excluded_by_answers(p: TaskProfile, s: Strategy) -> bool:
    """Requirements the user declared that rule a path out whatever its accuracy."""
    return s is PROMPT and (p.format_critical is True or p.latency_sensitive)


def _fmt(pred: outcomes.Prediction) -> str:
    return f"{pred.point:.2f} (80% interval {pred.low:.2f}-{pred.high:.2f})"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _post_advice(p: TaskProfile, f: _Facts, b: _Board, chosen: Strategy) -> None:
    """Advice that depends on the winner: how to run it well."""
    if chosen.changes_weights:
        if chosen is not Strategy.LORA:
            b.advise("discriminative_lr")
        b.advise("forgetting")
        b.advise("maintenance")
    if chosen in (Strategy.FULL_FINETUNE, Strategy.PARTIAL_FINETUNE, Strategy.LP_FT) and f.unusual:
        b.advise("lp_ft")
    if chosen in (Strategy.PROMPTING, Strategy.ZERO_SHOT):
        b.advise("calibration")


def _squash(raw: float) -> float:
    """Map a raw score to 0-1: 0.5 means no rule for or against; 4 raw points give about 0.88."""
    return round(1.0 / (1.0 + math.exp(-raw / SCORE_SCALE)), 3)


def _summary(strategy: Strategy, b: _Board) -> str:
    pros = [r for r, d in b.contrib[strategy] if d > 0]
    cons = [r for r, d in b.contrib[strategy] if d < 0]
    parts = [LABELS[strategy]]
    if pros:
        parts.append("for: " + ", ".join(pros))
    if cons:
        parts.append("against: " + ", ".join(cons))
    return "; ".join(parts)


def data_needs(p: TaskProfile) -> str:
    """Expected data needs for this task, from the seeds' figures scaled to its class count."""
    c = max(p.n_classes, 2)
    lines = [
        f"You have {p.n_labeled} labelled examples over {p.n_classes} classes "
        f"(smallest class: {p.min_per_class}).",
        f"Seed 000's ImageNet figures (1,000 classes) scaled to {c} classes: zero-shot needs 0; "
        f"a competitive linear probe ~{50 * c:,} (~50 per class); full fine-tuning ~{10 * c:,} "
        f"(~10 per class, from strong pre-training); from scratch ~{SCRATCH_PER_CLASS * c:,} "
        f"(~{SCRATCH_PER_CLASS:,} per class).",
        f"Bands from seeds 002-003: feature extraction under {FEATURE_EXTRACTION_MAX:,}; partial "
        f"fine-tuning {PARTIAL_BAND[0]:,}-{PARTIAL_BAND[1]:,}; full fine-tuning {FULL_FT_MIN:,}+; "
        f"fine-tuning at all only above {MIN_LABELLED_FOR_FINETUNE}.",
        f"Few-shot: CLIP zero-shot matches a ~{CLIP_MATCH_SHOTS:g}-shot probe (Radford et al.); "
        f"SetFit-style probes are competitive from {SETFIT_PER_CLASS} per class "
        f"({SETFIT_PER_CLASS * c} here).",
    ]
    if p.n_labeled <= MIN_LABELLED_FOR_FINETUNE:
        lines.append(
            f"To fine-tune you need about {MIN_LABELLED_FOR_FINETUNE + 1 - p.n_labeled} more labelled examples."
        )
    return " ".join(lines)


def _accuracy_note(p: TaskProfile, f: _Facts, chosen: Strategy) -> str:
    if chosen is ZS and not f.text and p.has_clip:
        return (
            "Radford et al. 2021: CLIP zero-shot is about as accurate as a 4-shot linear probe "
            "on average, weaker on specialised domains."
        )
    if chosen is FE and FEW_SHOT_FT_BAND[0] <= f.n <= FEW_SHOT_FT_BAND[1]:
        return (
            "Seed 002: a brief fit on 10-100 labelled examples reaches 90-95% of full "
            "fine-tuning quality (measured for frontier models; a run measures yours)."
        )
    return _ACCURACY_NOTES[chosen]
