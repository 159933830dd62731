"""The bundled sample data sets (``data/samples``, built by ``scripts/build_samples.py``)."""

from __future__ import annotations

from pathlib import Path

from tladvisor.data.csv_loading import load_text_csv
from tladvisor.data.dataset import IMAGE, TEXT, DataError, Dataset
from tladvisor.data.images import load_image_zip

DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # the repository's data/ folder
SAMPLES = {  # name -> (file under data/samples, modality)
    "rotten_tomatoes": ("rotten_tomatoes.csv", TEXT),
    "mnist_digits": ("mnist_digits.zip", IMAGE),
}


def sample_names() -> list[str]:
    return list(SAMPLES)


def sample_path(name: str) -> Path:
    if name not in SAMPLES:
        raise DataError(f"no sample {name!r}; the samples are {', '.join(SAMPLES)}.")
    path = DATA_DIR / "samples" / SAMPLES[name][0]
    if not path.is_file():
        raise DataError(
            f"sample file {path} is missing; rebuild it with `python scripts/build_samples.py`."
        )
    return path


def load_sample(name: str) -> Dataset:
    """Load a bundled sample (see ``data/samples/README.md``)."""
    path = sample_path(name)
    ds = (
        load_text_csv(path, name=name)
        if SAMPLES[name][1] == TEXT
        else load_image_zip(path, name=name)
    )
    return Dataset(
        ds.name, ds.modality, ds.items, ds.labels, ds.fingerprint, f"sample:{name}", ds.notes
    )
