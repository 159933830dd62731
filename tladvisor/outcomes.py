"""Predicted accuracy for every strategy, with an 80% interval, from the user's own measurements.

The profiler measures three accuracies on the user's data (each on a known number of rows): a
few-shot probe on frozen features, a no-transfer baseline (TF-IDF / pixels) on the same shots,
and zero-shot. Each strategy is predicted from the measurement closest to it (its *anchor*):

    feature extraction, partial / full fine-tuning, LP-FT, LoRA  <- the probe
    from scratch                                                  <- the baseline
    zero-shot, prompting                                          <- zero-shot

in the space of the remaining error above chance, ``e = 1 - (acc - chance) / (1 - chance)``,
where a learning curve is a straight line in log-log (error falls as a power of the labels):

    log e_strategy(k) = log e_anchor + alpha + beta * log2(k / anchor_shots)

``alpha`` and ``beta`` (per modality and strategy) are least-squares fits over the benchmark
suite's learning curves (``bench/lodo.py`` writes ``data/outcome_model.json``); the interval
is the fit's 10%/90% residual quantiles, widened by the anchor's own sampling error (a Wilson
interval on the rows it was scored on). Without an anchor a strategy falls back to the suite's
unanchored curve (``log e = alpha + beta * log2(k)``), whose interval is honestly wide.

Stdlib only, like the decision engine that imports it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tladvisor.strategies.names import Strategy

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "data" / "outcome_model.json"
ENV_VAR = "TLADVISOR_OUTCOME_MODEL"

# The runner keeps 65% of the rows for training (split_dataset: 15% validation, 20% test), so a
# run "on all your data" trains on this share of the labelled rows.
TRAIN_SHARE = 0.65
Z80 = 1.2816  # two-sided 80%: the interval every prediction states
E_FLOOR = 0.01  # remaining error is never predicted below 1% (log of 0 is undefined)
QUANTILES = (0.1, 0.9)
# A measured accuracy is an anchor from this many scored rows on: on 2 rows a probe is 0 or 1, and
# one lucky row set a curve's prediction to 0.99, while 12 rows at 0.83 (4 classes) was a real
# signal that a threshold of 20 threw away. The Wilson centre shrinks what remains. Chosen among
# 6, 8, 10 and 12 on the suite's leave-one-data-set-out regret (`python bench/lodo.py --sweep
# 6,8,10,12`): at 8, a set of 4 classes with 2 examples each is measured (prompting at 1 of 8, far
# below the 0.25 of chance, kept the advice off it); at 6 the noise cost more than it gave.
MIN_ANCHOR_ROWS = 8
# Slope of log remaining error per doubling of labels beyond the anchor's shots: from "error falls
# to a third" to "gains nothing". Never positive: more labels do not raise the error on average,
# and a fitted positive slope (0.25 on four image sets) was noise that, with the level term below,
# turned a measured ordering around (a probe 9 points under the baseline on the same 20 permuted
# digits predicted above it; 28 points lost).
BETA_RANGE = (-1.0, 0.0)
# Weight of the anchor's own level beyond carrying it along: at most 0 (a weak anchor may improve
# more than a strong one, regression towards the suite's curve; it is never amplified), and well
# above -1, which would ignore the measurement: the user's measurement always moves the prediction.
# Both ranges were narrowed after reading the leave-one-data-set-out cases (BENCHMARKS.md says so):
# mean regret 1.9 -> 1.4 points, worst 27.6 -> 8.0.
GAMMA_RANGE = (-0.6, 0.0)
RIDGE = 0.05  # shrinkage of beta and gamma, per observation
Point = tuple[float, float, float, str]  # (x, z, y, group)

# Fine-tuning reads only each text's opening (the encoder's context), so when the probe read long
# texts whole, as chunks, the fine-tuning paths are anchored on the probe of the openings.
ANCHOR_OF = {
    Strategy.FEATURE_EXTRACTION: "probe",
    Strategy.PARTIAL_FINETUNE: "probe_cut",
    Strategy.FULL_FINETUNE: "probe_cut",
    Strategy.LP_FT: "probe_cut",
    Strategy.LORA: "probe_cut",
    Strategy.SCRATCH: "baseline",
    Strategy.ZERO_SHOT: "zero_shot",
    Strategy.PROMPTING: "prompting",
}
TRAINING_FREE = (Strategy.ZERO_SHOT, Strategy.PROMPTING)


def enough_rows(rows: int | None) -> bool:
    """Whether an accuracy scored on ``rows`` rows is a measurement (``MIN_ANCHOR_ROWS``)."""
    return rows is not None and rows >= MIN_ANCHOR_ROWS


# ── Measurement uncertainty ───────────────────────────────────────────────────────────────────
def wilson(p: float, n: int, z: float = Z80) -> tuple[float, float]:
    """Wilson score interval of an accuracy ``p`` measured on ``n`` rows (80% by default).

    Wilson rather than the normal approximation: it stays inside [0, 1] and is honest at the
    small ``n`` a profile of a small upload has (Brown, Cai & DasGupta 2001).
    """
    if n <= 0:
        return 0.0, 1.0
    p = min(max(p, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def gap_is_real(high: float, low: float, n_high: int, n_low: int, z: float = Z80) -> bool:
    """Whether ``high`` exceeds ``low`` by more than the uncertainty of their difference.

    Two accuracies measured on ``n_high`` and ``n_low`` rows; the difference counts when it is
    larger than ``z`` standard errors (unpaired, so conservative for the profiler's paired rows).
    """
    if not (enough_rows(n_high) and enough_rows(n_low)):
        return False  # a handful of rows is not a measurement: 2 of 2 against 0 of 2 is noise
    se = math.sqrt(high * (1 - high) / n_high + low * (1 - low) / n_low)
    # A floor of one row's worth: two perfect scores have se 0 but are not a measured gap.
    return high - low > max(z * se, 1.0 / min(n_high, n_low))


# ── Error space ───────────────────────────────────────────────────────────────────────────────
def to_error(acc: float, chance: float) -> float:
    """Remaining error above chance: 0 perfect, 1 at chance, up to 1 / (1 - chance) at 0.

    Below chance is kept, not clipped: zero-shot often lands there (label names that mislead),
    and intervals floored at chance missed every such run.
    """
    r = (acc - chance) / (1 - chance) if chance < 1 else 1.0
    return min(_e_max(chance), max(E_FLOOR, 1.0 - r))


def from_error(e: float, chance: float) -> float:
    return chance + (1 - chance) * (1.0 - min(_e_max(chance), max(E_FLOOR, e)))


def _e_max(chance: float) -> float:
    return 1.0 / (1.0 - chance) if chance < 1 else 1.0


# ── The model ─────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Curve:
    """One fitted line: ``log e = [log e_anchor] + alpha + beta * x`` and its residual spread."""

    alpha: float
    beta: float
    q_low: float  # 10% residual quantile (negative: better than predicted)
    q_high: float  # 90% residual quantile
    n: int  # observations it was fitted on
    datasets: int  # distinct data sets among them
    gamma: float = 0.0  # weight of the anchor's own log error (anchored curves)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OutcomeModel:
    """Anchored and unanchored curves keyed by ``"<modality>/<strategy>"``."""

    anchored: dict[str, Curve] = field(default_factory=dict)
    unanchored: dict[str, Curve] = field(default_factory=dict)
    source: str = ""  # what it was fitted on, for the reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "anchored": {k: c.to_dict() for k, c in sorted(self.anchored.items())},
            "unanchored": {k: c.to_dict() for k, c in sorted(self.unanchored.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutcomeModel:
        def curves(key: str) -> dict[str, Curve]:
            return {k: Curve(**v) for k, v in (data.get(key) or {}).items()}

        return cls(curves("anchored"), curves("unanchored"), str(data.get("source", "")))


def load_model(path: str | os.PathLike | None = None) -> OutcomeModel:
    """The shipped model (``data/outcome_model.json``, or ``$TLADVISOR_OUTCOME_MODEL``); an
    empty model when the file is absent, so every prediction is the honest [chance, 1]."""
    target = Path(path or os.environ.get(ENV_VAR) or DEFAULT_MODEL_PATH)
    if not target.is_file():
        return OutcomeModel()
    try:
        return OutcomeModel.from_dict(json.loads(target.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(
            f"{target} is not a valid outcome model ({exc}); regenerate it with "
            "`python bench/lodo.py` or delete it"
        ) from exc


# ── Observations and fitting ──────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Anchors:
    """What the profiler measured on the user's data (None where it could not)."""

    chance: float
    per_class: float  # labelled training examples per class the run will have
    probe: float | None = None
    baseline: float | None = None
    zero_shot: float | None = None
    shots: float | None = None  # training shots a class behind probe and baseline
    rows: int | None = None  # rows probe and baseline were scored on
    zero_shot_rows: int | None = None
    probe_truncated: float | None = None  # the probe on each text's opening, when it chunked
    prompting: float | None = None  # zero-shot prompting of the packaged LM on a sample of rows
    prompting_rows: int | None = None

    def value(self, name: str) -> tuple[float | None, int | None]:
        """An anchor's accuracy and rows; None under ``MIN_ANCHOR_ROWS`` rows.

        The accuracy is the Wilson interval's centre, which pulls a score on few rows towards
        one half (Agresti & Coull 1998): 8 right of 8 is not evidence of perfection.
        """
        if name == "zero_shot":
            value, rows = self.zero_shot, self.zero_shot_rows
        elif name == "prompting":
            value, rows = self.prompting, self.prompting_rows
        elif name == "probe_cut":
            value = self.probe if self.probe_truncated is None else self.probe_truncated
            rows = self.rows
        else:
            value, rows = getattr(self, name), self.rows
        if value is None or not enough_rows(rows):
            return None, rows
        low, high = wilson(value, rows)
        return (low + high) / 2, rows


@dataclass(frozen=True)
class Observation:
    """One measured point of the suite: a strategy's mean accuracy at a budget, and the anchors
    the profiler measured on the same training rows."""

    dataset: str
    modality: str
    strategy: Strategy
    accuracy: float
    anchors: Anchors
    group: str = ""  # held out together (a synthetic shift with its base); default: dataset


def _x(strategy: Strategy, anchors: Anchors, anchored: bool) -> float:
    if strategy in TRAINING_FREE:
        return 0.0  # no labels used: the curve is flat
    k = max(anchors.per_class, 1.0)
    if anchored:
        return math.log2(k / max(anchors.shots or 1.0, 1.0))
    return math.log2(k)


def _z(strategy: Strategy, anchors: Anchors) -> float:
    """The anchor's log remaining error (0 when there is no anchor)."""
    value, _ = anchors.value(ANCHOR_OF[strategy])
    return 0.0 if value is None else math.log(to_error(value, anchors.chance))


def _y(ob: Observation, anchored: bool) -> float | None:
    e = math.log(to_error(ob.accuracy, ob.anchors.chance))
    if not anchored:
        return e
    value, _ = ob.anchors.value(ANCHOR_OF[ob.strategy])
    if value is None:
        return None
    return e - math.log(to_error(value, ob.anchors.chance))


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting for the small normal equations below."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [v - f * w for v, w in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def _fit(points: list[Point], flat: bool, anchored: bool) -> tuple[float, float, float]:
    """(alpha, beta, gamma) of ``y = alpha + beta * x + gamma * z`` by ridge least squares.

    ``z`` is the anchor's log error: gamma < 0 says a weak anchor tends to improve more than a
    strong one (regression towards the suite's typical curve). The slopes are shrunk a little
    (RIDGE) and held to their ranges so that a handful of sets never yields a wild extrapolation.
    """
    use = [True, not flat, anchored]
    rows = [[1.0, p[0], p[1]] for p in points]
    k = [i for i in range(3) if use[i]]
    ata = [[sum(r[i] * r[j] for r in rows) + (RIDGE * len(rows) if i == j and i else 0.0)
            for j in k] for i in k]  # fmt: skip
    aty = [sum(r[i] * p[2] for r, p in zip(rows, points, strict=True)) for i in k]
    w = dict(zip(k, _solve(ata, aty), strict=True))
    beta = min(max(w.get(1, 0.0), BETA_RANGE[0]), BETA_RANGE[1])
    gamma = min(max(w.get(2, 0.0), GAMMA_RANGE[0]), GAMMA_RANGE[1])
    n = len(points)
    alpha = sum(p[2] - beta * p[0] - gamma * p[1] for p in points) / n
    return alpha, beta, gamma


def fit_curve(points: list[Point], flat: bool, anchored: bool = False) -> Curve | None:
    """The curve through ``points`` (x, z, y, group) and its 10%/90% residual quantiles.

    With three groups (data sets) or more, the residuals are cross-validated by group: each
    group's residuals come from the curve fitted on the other groups. The interval then states
    how far a data set the curve has never seen lands from it, which is what a user's data is
    (in-sample residuals made the intervals cover a held-out set's runs less than half the time).
    """
    if not points:
        return None
    alpha, beta, gamma = _fit(points, flat, anchored)
    groups = sorted({p[3] for p in points})
    residuals: list[float] = []
    if len(groups) >= 3:
        for g in groups:
            a, b, c = _fit([p for p in points if p[3] != g], flat, anchored)
            residuals += [y - (a + b * x + c * z) for x, z, y, group in points if group == g]
    else:
        residuals = [y - (alpha + beta * x + gamma * z) for x, z, y, _ in points]
    residuals.sort()
    return Curve(
        alpha=round(alpha, 5),
        beta=round(beta, 5),
        q_low=round(min(0.0, _quantile(residuals, QUANTILES[0])), 5),
        q_high=round(max(0.0, _quantile(residuals, QUANTILES[1])), 5),
        n=len(points),
        datasets=len(groups),
        gamma=round(gamma, 5),
    )


def fit(observations: Iterable[Observation], source: str = "") -> OutcomeModel:
    """Fit every (modality, strategy) curve, anchored and unanchored, on ``observations``."""
    groups: dict[tuple[str, bool], list[Point]] = {}
    for ob in observations:
        for anchored in (True, False):
            y = _y(ob, anchored)
            if y is not None:
                key = (f"{ob.modality}/{ob.strategy.value}", anchored)
                z = _z(ob.strategy, ob.anchors) if anchored else 0.0
                x = _x(ob.strategy, ob.anchors, anchored)
                groups.setdefault(key, []).append((x, z, y, ob.group or ob.dataset))
    model = OutcomeModel(source=source)
    for (key, anchored), points in groups.items():
        strategy = Strategy(key.split("/", 1)[1])
        curve = fit_curve(points, flat=strategy in TRAINING_FREE, anchored=anchored)
        if curve is not None:
            (model.anchored if anchored else model.unanchored)[key] = curve
    return model


# ── Prediction ────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Prediction:
    strategy: Strategy
    point: float
    low: float
    high: float
    basis: str  # how it was predicted, in words
    known: bool = True  # False: no curve for this strategy, so the interval is [chance, 1]
    anchored: bool = False  # True: read from a measurement on the user's own data

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": round(self.point, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "basis": self.basis,
            "known": self.known,
            "anchored": self.anchored,
        }


def predict(model: OutcomeModel, modality: str, strategy: Strategy, anchors: Anchors) -> Prediction:
    """Expected accuracy of ``strategy`` on the user's data, with its 80% interval."""
    key = f"{modality}/{strategy.value}"
    anchor_name = ANCHOR_OF[strategy]
    value, rows = anchors.value(anchor_name)
    curve = model.anchored.get(key)
    chance = anchors.chance
    if curve is not None and value is not None and (rows or 0) > 0:
        e_anchor = to_error(value, chance)
        x = _x(strategy, anchors, True)
        centre = (1 + curve.gamma) * math.log(e_anchor) + curve.alpha + curve.beta * x
        lo_acc, hi_acc = wilson(value, int(rows or 0))
        # The anchor's own sampling error, in the same log-error units as the residuals.
        up = (1 + curve.gamma) * (math.log(to_error(lo_acc, chance)) - math.log(e_anchor))
        down = (1 + curve.gamma) * (math.log(e_anchor) - math.log(to_error(hi_acc, chance)))
        e_hi = centre + math.hypot(curve.q_high, up)
        e_lo = centre - math.hypot(curve.q_low, down)
        anchored = True
        basis = (
            f"from the measured {anchor_name.replace('_', '-')} accuracy {value:.2f} "
            f"({rows} rows) and the suite's curve ({curve.datasets} data sets)"
        )
    else:
        curve = model.unanchored.get(key)
        if curve is None:
            return Prediction(
                strategy,
                (chance + 1) / 2,
                chance,
                1.0,
                "no measurement and no benchmark curve",
                known=False,
            )
        anchored = False
        centre = curve.alpha + curve.beta * _x(strategy, anchors, False)
        e_hi, e_lo = centre + curve.q_high, centre + curve.q_low
        basis = f"from the suite's curve alone ({curve.datasets} data sets): nothing measured"
    point = from_error(math.exp(centre), chance)
    low = from_error(math.exp(e_hi), chance)
    high = from_error(math.exp(e_lo), chance)
    return Prediction(strategy, point, min(low, point), max(high, point), basis, True, anchored)
