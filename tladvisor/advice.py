"""Advice on a measured data set: the decision engine fed with the cost of every alternative.

The one place the CLI (``tladvisor advise``) and the Advise page turn a measured profile and the
user's answers into a ``Recommendation``: it estimates each feasible strategy's time and peak
memory on this device (``tladvisor.estimate``, no model loaded) so that the engine can prefer a
cheaper path whose expected accuracy lies within the interval of the best.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tladvisor import decision
from tladvisor.strategies.names import Strategy


def strategy_costs(
    dataset: Any, strategies: list[Strategy] | None = None, device: Any = None
) -> dict[Strategy, dict[str, Any]]:
    """Expected seconds (with a range) and peak memory of each strategy on ``dataset`` here.

    A strategy whose estimate cannot be made (for example prompting on images) is left out;
    the engine then falls back to its fixed order from cheap to dear.
    """
    from tladvisor import estimate

    stats = estimate.DataStats.from_dataset(dataset)
    out: dict[Strategy, dict[str, Any]] = {}
    for strategy in strategies or list(Strategy):
        try:
            est = estimate.estimate_run(strategy, stats, None, device)
        except (ValueError, KeyError):
            continue
        out[strategy] = {
            "seconds": round(est.seconds, 1),
            "low_seconds": round(est.low_seconds, 1),
            "high_seconds": round(est.high_seconds, 1),
            "peak_memory_mb": round(est.peak_memory_mb),
        }
    return out


# The zoo is ranked on this many rows for advice: the scores settle well before (BENCHMARKS.md,
# "Model selection"), and all-mpnet-base-v2 encodes about 400 short texts in 20 s on 2 cores.
RANK_ROWS = 400


def rank_for_advice(dataset: Any, device: Any = None) -> list[dict[str, Any]]:
    """The zoo ranked on up to ``RANK_ROWS`` rows of ``dataset`` (``scoring.rank_models``)."""
    from tladvisor.scoring import rank_models

    return rank_models(dataset, max_rows=RANK_ROWS, device=device)


def advise(
    profile: decision.TaskProfile,
    dataset: Any = None,
    *,
    preference: str = "balanced",
    costs: Mapping[Strategy, Mapping[str, Any]] | None = None,
    ranking: list[dict[str, Any]] | None = None,
) -> decision.Recommendation:
    """``decision.recommend`` with costs estimated for ``dataset`` (when given and not passed),
    and, given the zoo's ``ranking`` on the data, the model to run the strategy with."""
    from tladvisor.model_choice import choose_model

    if costs is None and dataset is not None:
        costs = strategy_costs(dataset)
    rec = decision.recommend(profile, costs=costs, preference=preference)
    if ranking:
        choice = choose_model(ranking, rec.strategy.value, preference)
        rec.model = choice.model
        rec.model_reasons = choice.reasons
        rec.model_candidates = choice.to_dict()["candidates"]
    return rec
