"""Which pretrained model to take with the advised strategy, from the zoo's ranking.

Pure: it reads the table of ``scoring.rank_models`` (scores, cost an item) and returns the model
with its reasons. The strategy decides which candidates apply: a linear probe reads any feature
source; fine-tuning and LoRA need an encoder tladvisor can train (not the LM's hidden states);
prompting needs the instruction LM; zero-shot reads label names and from-scratch training uses no
weights, so both keep the modality's default, and transferability scores (which rank features
for training) say nothing there.

Among the candidates that apply, the one LogME ranks first is the most accurate expectation
(You et al. 2021). With the "balanced" preference a cheaper model (fewer milliseconds an item)
is taken instead when the leader's cross-validated linear-probe accuracy is not ahead of it by
more than the two measurements' uncertainty (``outcomes.gap_is_real``): the same trade the
strategy choice makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tladvisor import outcomes

TRAINABLE_KINDS = ("text_encoder", "image_classifier")
FEATURE_KINDS = ("text_encoder", "instruction_lm", "image_classifier", "clip")
KINDS_FOR = {
    "feature_extraction": FEATURE_KINDS,
    "partial_finetune": TRAINABLE_KINDS,
    "full_finetune": TRAINABLE_KINDS,
    "lp_ft": TRAINABLE_KINDS,
    "lora": TRAINABLE_KINDS,
}
SOURCE = "You et al. 2021 (LogME): ranks pretrained models by the evidence of a linear model on "
SOURCE += "their features, agreeing with fine-tuned accuracy better than earlier scores"


@dataclass
class ModelChoice:
    model: str | None  # None: keep the strategy's default (no ranking, or none applies)
    reasons: list[str] = field(default_factory=list)
    source: str = SOURCE
    candidates: list[dict[str, Any]] = field(default_factory=list)  # the ranking that applies

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reasons": list(self.reasons),
            "source": self.source,
            "candidates": [
                {k: c.get(k) for k in ("rank", "model", "title", "scores", "seconds", "cost")}
                for c in self.candidates
            ],
        }


def _probe(row: dict[str, Any]) -> float:
    return float(row["scores"].get("linear_probe_accuracy", 0.0))


def _ms(row: dict[str, Any]) -> float:
    return float(row["cost"].get("ms_per_item") or 0.0)


def _describe(row: dict[str, Any]) -> str:
    s = row["scores"]
    return (
        f"{row['title']} (LogME {s.get('logme', float('nan')):.3f}, linear probe "
        f"{_probe(row):.2f}, {_ms(row):.1f} ms an item)"
    )


def choose_model(
    ranking: list[dict[str, Any]], strategy: str, preference: str = "balanced"
) -> ModelChoice:
    """The model for ``strategy`` from ``ranking`` (best LogME first, as ``rank_models`` gives)."""
    kinds = KINDS_FOR.get(strategy)
    scored = [r for r in ranking if "error" not in r]
    if kinds is None:
        return ModelChoice(
            None,
            [
                f"{strategy.replace('_', ' ')} does not train on pretrained features, so the "
                "transferability ranking does not apply: it uses its default model."
            ],
        )
    fits = [r for r in scored if r.get("kind") in kinds]
    if not fits:
        return ModelChoice(None, ["No ranked model applies: the strategy's default is used."])
    fits.sort(key=lambda r: -r["scores"].get("logme", float("-inf")))
    best = fits[0]
    reasons = [f"Ranked first by LogME for {strategy.replace('_', ' ')}: {_describe(best)}."]
    if len(fits) > 1:
        second = fits[1]
        reasons.append(
            f"Next: {_describe(second)}; LogME margin "
            f"{best['scores']['logme'] - second['scores']['logme']:+.3f}."
        )
    chosen = best
    if preference == "balanced":
        rows = int(best.get("rows") or 0)
        cheaper = [
            r
            for r in fits[1:]
            if _ms(r) < _ms(best)
            and not outcomes.gap_is_real(_probe(best), _probe(r), rows, int(r.get("rows") or 0))
        ]
        if cheaper:
            chosen = min(cheaper, key=_ms)
            reasons.append(
                f"{chosen['title']} is taken instead: its linear probe ({_probe(chosen):.2f}) is "
                f"within the uncertainty of {best['title']}'s ({_probe(best):.2f}, {rows} rows) "
                f"at {_ms(chosen):.1f} against {_ms(best):.1f} ms an item. Choose 'best accuracy "
                f"whatever the cost' to take {best['title']}."
            )
    weights = chosen["cost"].get("weights_mb")
    if weights:
        reasons.append(
            f"{chosen['title']}: {chosen['cost']['params'] / 1e6:.1f}M parameters, about "
            f"{weights:.0f} MB of weights in float32."
        )
    return ModelChoice(chosen["model"], reasons, candidates=fits)
