"""Calibrate the 0-1 domain-unusualness scale on the shipped reference sets.

Measures every raw signal of ``tladvisor.unusualness`` on ``data/reference/``:

- text: ``text_general.txt`` (ordinary English: the low point) and ``text_code.txt`` +
  ``text_numbers.txt`` (the high point is the mean of the two);
- images: ``images_natural/`` (low) and ``images_digits/`` + ``images_texture/`` (high: their mean).

The ordinary reference is measured against its own bank with itself left out (each sentence, or
every crop of the same photo), as user data would be. Writes
``data/reference/unusualness_calibration.json`` with ``low``/``high`` per signal and the raw value
of every reference set, then prints the calibrated score of each reference set and, with
``--samples``, of the bundled samples (the numbers quoted in docs/unusualness.md).

Usage: ``python scripts/calibrate_unusualness.py [--samples] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tladvisor import unusualness as u

TEXT_SETS = {"general": "text_general.txt", "code": "text_code.txt", "numbers": "text_numbers.txt"}
IMAGE_SETS = {"natural": "images_natural", "digits": "images_digits", "texture": "images_texture"}
LOW = {"text": "general", "image": "natural"}
HIGH = {"text": ("code", "numbers"), "image": ("digits", "texture")}


def measure_references() -> dict[str, dict[str, dict[str, float]]]:
    """Raw signals per modality and reference set."""
    raw: dict[str, dict[str, dict[str, float]]] = {"text": {}, "image": {}}
    for name, file in TEXT_SETS.items():
        texts = u.read_lines(u.REFERENCE_DIR / file)
        # Leave-one-out for the bank's own sentences: each line is its own group.
        groups = [str(i) for i in range(len(texts))] if name == LOW["text"] else None
        raw["text"][name] = _measured(u.text_signals(texts, groups=groups), name)
    for name, folder in IMAGE_SETS.items():
        images, sources = u.read_images(u.REFERENCE_DIR / folder)
        groups = sources if name == LOW["image"] else None  # leave each source photo out
        raw["image"][name] = _measured(u.image_signals(images, groups=groups), name)
    return raw


def _measured(
    result: tuple[dict[str, float], dict[str, str], dict[str, int]], name: str
) -> dict[str, float]:
    values, missing, _ = result
    if missing:
        raise SystemExit(f"cannot calibrate on {name}: {missing}")
    return values


def calibration(raw: dict[str, dict[str, dict[str, float]]]) -> dict[str, object]:
    out: dict[str, object] = {
        "about": "Low/high raw value of each unusualness signal; see docs/unusualness.md. "
        "Written by scripts/calibrate_unusualness.py.",
        "sample_sizes": {
            "lm_token_budget": u.LM_TOKEN_BUDGET,
            "lm_max_tokens": u.LM_MAX_TOKENS,
            "lm_max_texts": u.LM_MAX_TEXTS,
            "embedding_texts": u.EMBED_SAMPLE,
            "fragmentation_texts": u.FRAGMENT_SAMPLE,
            "images": u.IMAGE_SAMPLE,
        },
    }
    for modality, sets in raw.items():
        signals = {}
        for signal in sets[LOW[modality]]:
            signals[signal] = {
                "low": sets[LOW[modality]][signal],
                "high": float(np.mean([sets[name][signal] for name in HIGH[modality]])),
                "reference": {name: values[signal] for name, values in sets.items()},
            }
        out[modality] = {"low": LOW[modality], "high": list(HIGH[modality]), "signals": signals}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=u.CALIBRATION_PATH)
    parser.add_argument("--samples", action="store_true", help="also score the bundled samples")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    raw = measure_references()
    cal = calibration(raw)
    args.out.write_text(json.dumps(cal, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    for modality, sets in raw.items():
        for name, values in sets.items():
            result = u.score_signals(modality, values, {}, {}, cal)
            assert result is not None  # every signal was measured above
            shown = ", ".join(f"{k}={values[k]:.3f}->{result.scaled[k]:.2f}" for k in result.scaled)
            print(f"{modality:5} {name:8} score {result.score:.2f}  {shown}")
    if args.samples:
        from tladvisor.data import load_sample

        for name in ("rotten_tomatoes", "mnist_digits"):
            ds = load_sample(name)
            t0 = time.perf_counter()
            signals = u.text_signals if ds.modality == "text" else u.image_signals
            values, missing, sizes = signals(ds.items)
            result = u.score_signals(ds.modality, values, missing, sizes, cal)
            assert result is not None
            shown = ", ".join(f"{k}={values[k]:.3f}->{result.scaled[k]:.2f}" for k in result.scaled)
            took = time.perf_counter() - t0
            print(f"sample {name:16} score {result.score:.2f}  {shown}  ({took:.1f} s)")


if __name__ == "__main__":
    main()
