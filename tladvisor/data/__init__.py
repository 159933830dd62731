"""Labelled data sets: loading CSVs and image archives, validation with clear errors, splits, fingerprints.

A ``Dataset`` holds the items in memory (texts as ``str``, images as RGB ``PIL.Image``) with one
string label each. Loaders take a path, ``bytes`` or a binary file-like (Streamlit's
``UploadedFile``), never write anything (ZIP members are read in memory, not extracted), and
either succeed with what they changed listed in ``Dataset.notes`` or raise ``DataError`` naming
the problem, where it is and the fix. ``split_dataset`` gives a seeded stratified
train/validation/test split; ``TaskData`` bundles the two for the strategies.

The package, in the order a file travels through it:

- ``limits``: the caps (upload size, ZIP bomb, file and class counts, text length, pixels).
- ``sources``: what a loader accepts, and reading its bytes under the upload cap.
- ``csv_loading``: CSV decoding, delimiter sniffing, column detection; ``load_text_csv``.
- ``archives``: the files of a ZIP or folder, listed safely and read on demand.
- ``images``: image decoding and the image loaders (ZIP, folder, CSV of file names).
- ``dataset``: ``Dataset``, ``fingerprint_of``, ``DataError`` and the label checks every loader ends in.
- ``dispatch``: ``load_any`` / ``load_path``, which pick the loader by file kind.
- ``samples``: the bundled samples under the repository's ``data/samples``.
- ``splits``: ``split_dataset``, ``Split`` and ``TaskData``.

Import from ``tladvisor.data``; the modules are its layout, not its interface.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from tladvisor.data import limits
from tladvisor.data.archives import JUNK_FILES
from tladvisor.data.csv_loading import LABEL_NAMES, MISSING, TEXT_NAMES, load_text_csv, read_columns
from tladvisor.data.csv_loading import _read_table as _read_table
from tladvisor.data.dataset import (
    IMAGE,
    TEXT,
    DataError,
    Dataset,
    fingerprint_of,
    merge_lookalikes,
)
from tladvisor.data.dispatch import load_any, load_path
from tladvisor.data.images import (
    IMAGE_EXTS,
    IMAGE_NAMES,
    load_image_csv,
    load_image_folder,
    load_image_zip,
)
from tladvisor.data.images import _decode_image as _decode_image
from tladvisor.data.limits import (
    MAX_CLASSES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    MAX_IMAGES,
    MAX_TEXT_CHARS,
    MAX_UNCOMPRESSED_MB,
    MAX_UPLOAD_MB,
)
from tladvisor.data.samples import DATA_DIR, SAMPLES, load_sample, sample_names, sample_path
from tladvisor.data.sources import UNNAMED, Source
from tladvisor.data.sources import _source_name as _source_name
from tladvisor.data.splits import Split, TaskData, split_dataset
from tladvisor.data.splits import _stratified_cap as _stratified_cap

__all__ = [
    "DATA_DIR",
    "IMAGE",
    "IMAGE_EXTS",
    "IMAGE_NAMES",
    "JUNK_FILES",
    "LABEL_NAMES",
    "MAX_CLASSES",
    "MAX_IMAGES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "MAX_TEXT_CHARS",
    "MAX_UNCOMPRESSED_MB",
    "MAX_UPLOAD_MB",
    "MISSING",
    "SAMPLES",
    "TEXT",
    "TEXT_NAMES",
    "UNNAMED",
    "DataError",
    "Dataset",
    "Source",
    "Split",
    "TaskData",
    "fingerprint_of",
    "merge_lookalikes",
    "load_any",
    "load_image_csv",
    "load_image_folder",
    "load_image_zip",
    "load_path",
    "load_sample",
    "load_text_csv",
    "read_columns",
    "sample_names",
    "sample_path",
    "split_dataset",
]


class _Package(types.ModuleType):
    """``tladvisor.data`` itself. Setting a limit on it (``tladvisor.data.MAX_UPLOAD_MB = 500``,
    or a test's ``monkeypatch.setattr(data, "MAX_IMAGES", 5)``) also sets it in ``limits``, where
    the loaders read it at call time."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("MAX_") and hasattr(limits, name):
            setattr(limits, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
