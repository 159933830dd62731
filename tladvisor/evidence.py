"""Measured evidence from tladvisor's own benchmarks, fed back into the decision engine.

The seed rules in ``tladvisor.decision`` encode published guidance. Once the benchmark has measured
where, for example, a linear probe overtakes prompting on the bundled models, it writes that finding
to ``data/evidence.json``; each matching entry then adds a Reason with rule id ``measured.<name>``
citing ``BENCHMARKS.md``. The file is optional: without it the advisor runs on the seed rules alone.

File shape (a JSON object keyed by entry name; every key but ``text`` and ``favour`` is optional)::

    {
      "text_probe_beats_prompting": {
        "text": "On the bundled models a linear probe beat prompting from 8 examples per class.",
        "favour": "feature_extraction",
        "weight": 1.5,
        "modality": "text",
        "n_labeled_min": 16, "n_labeled_max": null,
        "per_class_min": 8, "per_class_max": null,
        "unusual": false
      }

``unusual`` scopes a finding to the kind of domain it was measured on: ``false`` for data the
profiler measured as familiar (a finding on English reviews says nothing about ROT13 text),
``true`` for data measured unusual, ``null`` for either. An unmeasured domain matches any entry.
    }

Stdlib only, like the decision engine that imports it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tladvisor.strategies.names import Strategy

# Repository-level data folder; TLADVISOR_EVIDENCE points elsewhere (tests, other checkouts).
DEFAULT_EVIDENCE_PATH = Path(__file__).resolve().parents[1] / "data" / "evidence.json"
ENV_VAR = "TLADVISOR_EVIDENCE"

_MODALITIES = ("text", "image")
_BOUNDS = ("n_labeled_min", "n_labeled_max", "per_class_min", "per_class_max")


@dataclass(frozen=True)
class Evidence:
    """One benchmark finding: when it applies (bounds are inclusive) and which strategy it favours."""

    name: str
    text: str
    favour: Strategy
    weight: float = 1.0  # added to the favoured strategy's score; negative disfavours it
    modality: str | None = None  # None: both modalities
    n_labeled_min: int | None = None
    n_labeled_max: int | None = None
    per_class_min: int | None = None
    per_class_max: int | None = None
    unusual: bool | None = None  # measured on unusual (True) / familiar (False) data; None: any

    def __post_init__(self) -> None:
        if not self.name or not self.text:
            raise ValueError(
                f"evidence entry {self.name!r} needs a non-empty name and text; "
                "write what the benchmark measured in 'text'"
            )
        if not math.isfinite(self.weight):
            raise ValueError(
                f"evidence {self.name!r}: weight={self.weight!r} is not a finite number"
            )
        if self.modality is not None and self.modality not in _MODALITIES:
            raise ValueError(
                f"evidence {self.name!r}: modality={self.modality!r}; use 'text', 'image' or null"
            )
        if self.unusual is not None and not isinstance(self.unusual, bool):
            raise ValueError(
                f"evidence {self.name!r}: unusual={self.unusual!r}; use true, false or null"
            )
        for key in _BOUNDS:
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(
                    f"evidence {self.name!r}: {key}={value!r} must be an integer or null"
                )

    def applies(
        self, modality: str, n_labeled: int, per_class: int, unusual: bool | None = None
    ) -> bool:
        """Whether the finding covers a task of this modality, size and smallest-class count,
        and (when the task's domain was measured: ``unusual`` not None) this kind of domain."""
        if self.modality is not None and modality != self.modality:
            return False
        if self.unusual is not None and unusual is not None and unusual != self.unusual:
            return False
        checks = (
            (self.n_labeled_min, n_labeled, 1),
            (self.n_labeled_max, n_labeled, -1),
            (self.per_class_min, per_class, 1),
            (self.per_class_max, per_class, -1),
        )
        # sign 1: value must be >= bound; sign -1: value must be <= bound.
        return all(bound is None or sign * (value - bound) >= 0 for bound, value, sign in checks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["favour"] = self.favour.value
        return data

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> Evidence:
        if not isinstance(data, dict):
            raise ValueError(f"evidence {name!r} must be a JSON object, got {type(data).__name__}")
        allowed = {"text", "favour", "weight", "modality", "unusual", *_BOUNDS}
        unknown = sorted(set(data) - allowed - {"name"})
        if unknown:
            raise ValueError(
                f"evidence {name!r} has unknown keys {unknown}; allowed: {sorted(allowed)}"
            )
        if "favour" not in data or "text" not in data:
            raise ValueError(f"evidence {name!r} needs 'text' and 'favour' (a strategy name)")
        fields = {key: data[key] for key in allowed if key in data}
        fields["favour"] = Strategy.parse(fields["favour"])
        fields["weight"] = float(fields.get("weight", 1.0))
        return cls(name=name, **fields)


def load_evidence(path: str | os.PathLike[str] | None = None) -> dict[str, Evidence]:
    """Read the evidence file; a missing file is no evidence, a malformed one is an error."""
    if path is None:
        path = os.environ.get(ENV_VAR) or DEFAULT_EVIDENCE_PATH
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); fix it or delete it to use the seed rules only"
        ) from None
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path} must hold a JSON object keyed by evidence name, got {type(raw).__name__}"
        )
    try:
        return {name: Evidence.from_dict(name, entry) for name, entry in raw.items()}
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
