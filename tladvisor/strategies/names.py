"""The one enum that names the adaptation strategies.

The advisor returns a member, the registry keys on it and the store keeps its value, so the
recommender and the runners cannot drift apart (the pattern of peft's ``PeftType``).
"""

from __future__ import annotations

import enum


class Strategy(str, enum.Enum):
    PROMPTING = "prompting"  # in-context zero/few-shot with an instruction LM (text)
    ZERO_SHOT = "zero_shot"  # CLIP / ConSE for images, label-description similarity for text
    FEATURE_EXTRACTION = "feature_extraction"  # frozen encoder + linear head
    PARTIAL_FINETUNE = "partial_finetune"  # last N blocks + head
    FULL_FINETUNE = "full_finetune"  # all layers, discriminative learning rates
    LP_FT = "lp_ft"  # linear probe, then fine-tune (Kumar et al. 2022)
    LORA = "lora"  # low-rank adapters (peft)
    SCRATCH = "scratch"  # no transfer: the baseline that shows negative transfer

    def __str__(self) -> str:
        return self.value

    @property
    def changes_weights(self) -> bool:
        """Whether the strategy updates the pretrained backbone (so forgetting applies)."""
        return self in {
            Strategy.PARTIAL_FINETUNE,
            Strategy.FULL_FINETUNE,
            Strategy.LP_FT,
            Strategy.LORA,
        }

    @classmethod
    def parse(cls, value: str | Strategy) -> Strategy:
        """Accept a member or its value; raise a ValueError that lists the valid names."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).strip().lower().replace("-", "_"))
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown strategy {value!r}; choose one of: {names}") from None


LABELS = {
    Strategy.PROMPTING: "Prompting (in-context, no training)",
    Strategy.ZERO_SHOT: "Zero-shot (class names only)",
    Strategy.FEATURE_EXTRACTION: "Feature extraction (linear probe)",
    Strategy.PARTIAL_FINETUNE: "Partial fine-tuning (last blocks)",
    Strategy.FULL_FINETUNE: "Full fine-tuning",
    Strategy.LP_FT: "Linear probe, then fine-tune",
    Strategy.LORA: "LoRA adapters",
    Strategy.SCRATCH: "From scratch (no transfer)",
}
