"""One entry point for any upload or path: picks the loader by file kind (or content)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tladvisor.data.csv_loading import load_text_csv
from tladvisor.data.dataset import DataError, Dataset
from tladvisor.data.images import load_image_csv, load_image_folder, load_image_zip
from tladvisor.data.sources import Source, _is_path, _source_name


def load_path(path: str | os.PathLike, **kw: Any) -> Dataset:
    """Load by file kind, for the CLI: ``.csv`` text (image CSV with ``images=``), ``.zip`` or a folder."""
    p = Path(path)
    if p.is_dir():
        return load_image_folder(p, **kw)
    if not p.exists():
        raise DataError(f"no file or folder at {str(p)!r}. Check the path.")
    return load_any(p, **kw)


def load_any(source: Source, *, images: Source | None = None, **kw: Any) -> Dataset:
    """Load an upload or path by its extension (or content when it has no name)."""
    if _is_path(source) and Path(source).is_dir():
        return load_image_folder(source, **kw)
    suffix = Path(_source_name(source)).suffix.lower()
    if images is not None:
        return load_image_csv(source, images, **kw)
    if suffix == ".zip":
        return load_image_zip(source, **kw)
    if suffix in (".csv", ".tsv", ".txt"):
        return load_text_csv(source, **kw)
    if suffix:
        raise DataError(
            f"{_source_name(source)}: unsupported file type {suffix!r}. Upload a text CSV, a "
            "folder-per-class ZIP of images, or a CSV of image file names with the images."
        )
    if isinstance(source, (bytes, bytearray)) and bytes(source[:4]) == b"PK\x03\x04":
        return load_image_zip(source, **kw)
    return load_text_csv(source, **kw)
