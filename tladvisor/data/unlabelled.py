"""Rows to predict on: a CSV of texts, a ZIP or folder of images, or a CSV of image file names.

Unlike the training loaders a label is optional here: when the file has one (a ``label``-like
column, or class folders in a ZIP) it comes along so the caller can report accuracy. Every input
row stays, in order, with an id to write beside its prediction: the ``id`` column when there is
one, else the text or the image's file name.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tladvisor.data.archives import _dir_members, _strip_wrapper, _zip_members
from tladvisor.data.csv_loading import LABEL_NAMES, TEXT_NAMES, _by_name, _pick_column, _read_table
from tladvisor.data.dataset import IMAGE, TEXT, DataError
from tladvisor.data.images import IMAGE_EXTS, IMAGE_NAMES, _decode_all, _image_index
from tladvisor.data.sources import Source, _is_path, _source_name

ID_NAMES = ("id", "row_id", "uid", "key")


@dataclass
class Unlabelled:
    """Items to predict, their ids, and their labels when the input had a label column."""

    modality: str
    items: list[Any]
    ids: list[str]
    id_column: str  # the header of ``ids`` in the predictions file
    labels: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


def load_unlabelled(
    source: Source,
    modality: str,
    *,
    images: Source | None = None,
    text_col: str | None = None,
    image_col: str | None = None,
    label_col: str | None = None,
) -> Unlabelled:
    """Read ``source`` as rows for a model of ``modality`` ("text" or "image")."""
    what = _source_name(source)
    if modality == TEXT:
        if images is not None or _looks_like_images(source):
            raise DataError(
                f"{what} holds images, but this run classifies text; give a CSV with a text column"
            )
        return _texts(source, what, text_col, label_col)
    if images is not None:
        return _image_rows(source, images, what, image_col, label_col)
    if not _looks_like_images(source):
        raise DataError(
            f"{what} is not a ZIP or folder of images, but this run classifies images; give a ZIP "
            "of images (class folders optional), or a CSV of file names with --images ZIP"
        )
    return _image_archive(source, what)


def _looks_like_images(source: Source) -> bool:
    if _is_path(source):
        path = Path(source)
        return path.is_dir() or path.suffix.lower() == ".zip"
    name = getattr(source, "name", "") or ""
    return str(name).lower().endswith(".zip")


def _optional_label(df: Any, label_col: str | None, exclude: set[str], what: str) -> str | None:
    picked = _pick_column(df, label_col, "label", what)
    return picked if picked is not None else _by_name(df, LABEL_NAMES, exclude)


def _id_column(df: Any, exclude: set[str]) -> str | None:
    return _by_name(df, ID_NAMES, exclude)


def _texts(source: Source, what: str, text_col: str | None, label_col: str | None) -> Unlabelled:
    notes: list[str] = []
    df = _read_table(source, what, notes)
    text = _pick_column(df, text_col, "text", what) or _by_name(df, TEXT_NAMES, set())
    if text is None and len(df.columns) == 1:
        text = df.columns[0]
    if text is None:
        raise DataError(
            f"{what}: no text column found (columns: {', '.join(map(repr, df.columns))}). Name "
            f"it 'text' or pass it with --text-col."
        )
    label = _optional_label(df, label_col, {text}, what)
    id_col = _id_column(df, {text, label} - {None})
    texts = [str(t) for t in df[text].fillna("")]
    ids = [str(v) for v in df[id_col]] if id_col else texts
    labels = [str(v).strip() for v in df[label]] if label else None
    return Unlabelled(TEXT, texts, ids, id_col or text, labels, notes)


def _image_rows(
    source: Source, images: Source, what: str, image_col: str | None, label_col: str | None
) -> Unlabelled:
    notes: list[str] = []
    df = _read_table(source, what, notes)
    column = _pick_column(df, image_col, "image file name", what) or _by_name(
        df, IMAGE_NAMES, set()
    )
    if column is None:
        raise DataError(
            f"{what}: no image file-name column found (columns: "
            f"{', '.join(map(repr, df.columns))}). Pass it with --image-col."
        )
    label = _optional_label(df, label_col, {column}, what)
    index = _image_index(images, _source_name(images))
    files = [str(f) for f in df[column]]
    missing = [f for f in files if posixpath.normpath(f.replace("\\", "/")) not in index]
    if missing:
        raise DataError(
            f"{what} names {len(missing)} image(s) not in {_source_name(images)} (e.g. "
            f"{', '.join(missing[:3])}). Every row needs its image."
        )
    pairs = [(index[posixpath.normpath(f.replace("\\", "/"))], f) for f in files]
    items, decoded = _decode_all(pairs, what, notes)
    if len(decoded) < len(files):
        bad = sorted(set(files) - set(decoded))
        raise DataError(f"{what}: {len(bad)} image(s) could not be read (e.g. {bad[:3]}).")
    id_col = _id_column(df, {column, label} - {None})
    ids = [str(v) for v in df[id_col]] if id_col else files
    labels = [str(v).strip() for v in df[label]] if label else None
    return Unlabelled(IMAGE, items, ids, id_col or column, labels, notes)


def _image_archive(source: Source, what: str) -> Unlabelled:
    """Every image in a ZIP or folder, by path; a class folder (``cat/1.png``) is its label."""
    notes: list[str] = []
    if _is_path(source) and Path(source).is_dir():
        members = _dir_members(Path(source), what)
    else:
        members = _zip_members(source, what)
    members = sorted(
        (m for m in _strip_wrapper(members) if m.name.lower().endswith(IMAGE_EXTS)),
        key=lambda m: m.name,
    )
    if not members:
        raise DataError(f"{what} holds no images ({', '.join(IMAGE_EXTS)}).")
    items, names = _decode_all([(m, m.name) for m in members], what, notes)
    foldered = all("/" in n for n in names)
    labels = [n.split("/", 1)[0] for n in names] if foldered else None
    return Unlabelled(IMAGE, items, names, "file", labels, notes)
