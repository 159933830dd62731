"""The image loaders: folder-per-class ZIPs and folders, and CSVs of file names with their images.

Images are decoded to 8-bit RGB (transparency on white, EXIF rotation applied, 16-bit greyscale
scaled) and shrunk to ``limits.MAX_IMAGE_SIDE``; files that are not images, corrupt, in an odd
colour mode or over ``limits.MAX_IMAGE_PIXELS`` (decompression bombs) are skipped with a note.
"""

from __future__ import annotations

import io
import os
import posixpath
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tladvisor.data import limits
from tladvisor.data.archives import (
    _dir_members,
    _image_index,
    _Member,
    _Skip,
    _strip_wrapper,
    _zip_members,
)
from tladvisor.data.csv_loading import _choose_columns, _drop_missing, _filled, _read_table
from tladvisor.data.dataset import IMAGE, DataError, Dataset, _check_labels, fingerprint_of
from tladvisor.data.labels import normalise as normalise_labels
from tladvisor.data.sources import Source, _default_name, _source_name

# PIL and pandas are imported where they are used, so `import tladvisor` stays fast
if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image as PILImage

IMAGE_NAMES = ("image", "images", "img", "filename", "file_name", "file", "filepath", "file_path")
IMAGE_NAMES += ("path", "image_path", "image_file", "image_name", "image_id")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
# Pillow's pixel cap and the warnings filters are process-wide; Streamlit loads in threads.
_PIL_GLOBALS = threading.Lock()

_SKIP_TEXT = {
    "not_image": "not images",
    "corrupt": "corrupt or truncated images",
    "too_large": "images over {px:,} pixels (decompression-bomb guard)",
    "mode": "images in an unsupported colour mode",
}


def _to_rgb(im: PILImage.Image) -> PILImage.Image:
    """Any Pillow mode as 8-bit RGB; transparency is composited on white."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode == "P" and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit greyscale: scale into 0..255
        a = np.asarray(im, dtype=np.float64)
        top = 255.0 if a.max(initial=0) <= 255 else 65535.0 if a.max() <= 65535 else a.max()
        low = min(0.0, float(a.min(initial=0)))
        a = (a - low) / max(top - low, 1e-12) * 255.0
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as e:  # e.g. LAB has no direct conversion
        raise _Skip("mode", f"{im.mode}: {e}") from None


def _decode_image(data: bytes, name: str) -> tuple[PILImage.Image, bool]:
    """An RGB image from file bytes, and whether it was shrunk to ``limits.MAX_IMAGE_SIDE``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise _Skip("too_large", str(e)) from None
    except UnidentifiedImageError:
        kind = "corrupt" if name.lower().endswith(IMAGE_EXTS) else "not_image"
        raise _Skip(kind) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise _Skip("corrupt", str(e)) from None
    w, h = im.size
    if w * h > limits.MAX_IMAGE_PIXELS:  # checked from the header, before the pixels are decoded
        raise _Skip("too_large", f"{w}x{h}")
    try:
        im.load()
        im = ImageOps.exif_transpose(im)  # phone photos store rotation in EXIF
        rgb = _to_rgb(im)
    except _Skip:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error ...
        raise _Skip("corrupt", f"{type(e).__name__}: {e}") from None
    shrunk = max(rgb.size) > limits.MAX_IMAGE_SIDE
    if shrunk:
        rgb.thumbnail((limits.MAX_IMAGE_SIDE, limits.MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    return rgb, shrunk


def _decode_all(
    pairs: list[tuple[_Member, str]], what: str, notes: list[str]
) -> tuple[list[Any], list[str]]:
    """Decode every (member, label); skip bad files with a note, error if none is left."""
    from PIL import Image

    items: list[Any] = []
    labels: list[str] = []
    skipped: dict[str, list[str]] = {}
    shrunk = 0
    with _PIL_GLOBALS, warnings.catch_warnings():
        old_cap = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = (
            limits.MAX_IMAGE_PIXELS  # Pillow's own guard, for formats it checks itself
        )
        try:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            for member, label in pairs:
                try:
                    im, was_shrunk = _decode_image(member.read(), member.name)
                except Image.DecompressionBombWarning:  # raised as an error by the filter above
                    skipped.setdefault("too_large", []).append(member.name)
                    continue
                except _Skip as s:
                    skipped.setdefault(s.reason, []).append(member.name)
                    continue
                items.append(im)
                labels.append(label)
                shrunk += was_shrunk
        finally:
            Image.MAX_IMAGE_PIXELS = old_cap
    summary = []
    for reason, names in skipped.items():
        text = _SKIP_TEXT[reason].format(px=limits.MAX_IMAGE_PIXELS)
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        summary.append(f"{len(names)} {text} (e.g. {shown})")
    if not items:
        found = "; ".join(summary) or "no files"
        raise DataError(
            f"{what}: no readable images ({found}). Upload PNG, JPEG, GIF, BMP, TIFF or WebP files."
        )
    notes.extend(f"skipped {s}" for s in summary)
    if shrunk:
        notes.append(
            f"shrank {shrunk} image(s) to {limits.MAX_IMAGE_SIDE} px on the longest side (the models "
            "read 224 px; this bounds memory)"
        )
    return items, labels


def _images_dataset(
    items: list[Any], labels: list[str], what: str, name: str | None, notes: list[str]
) -> Dataset:
    # Class folders and image lists are labels the user made: one image a class is a zero-shot check.
    labels = normalise_labels(labels, what, notes)
    _check_labels(labels, what, notes, labels_confirmed=True)
    return Dataset(
        name=name or _default_name(what),
        modality=IMAGE,
        items=items,
        labels=labels,
        fingerprint=fingerprint_of(IMAGE, items, labels),
        source=what,
        notes=notes,
    )


def _folder_per_class(members: list[_Member], what: str, name: str | None) -> Dataset:
    notes: list[str] = []
    members = _strip_wrapper(members)
    loose = [m.name for m in members if "/" not in m.name]
    pairs = [(m, m.name.split("/", 1)[0].strip()) for m in members if "/" in m.name]
    if not pairs:
        raise DataError(
            f"{what} has no class folders (found {len(members)} file(s) at the top level). "
            "Put each class's images in a folder named after the class: cat/001.png, "
            "dog/002.png ... and zip those folders."
        )
    if loose:
        notes.append(f"ignored {len(loose)} file(s) outside the class folders: {loose[:5]}")
    pairs.sort(key=lambda p: p[0].name)  # zip tools order members differently; content decides
    items, labels = _decode_all(pairs, what, notes)
    return _images_dataset(items, labels, what, name, notes)


def load_image_zip(source: Source, *, name: str | None = None) -> Dataset:
    """Load a folder-per-class ZIP (``class_name/xxx.png``; one wrapper folder is tolerated)."""
    what = _source_name(source)
    return _folder_per_class(_zip_members(source, what), what, name)


def load_image_folder(path: str | os.PathLike, *, name: str | None = None) -> Dataset:
    """Load a folder-per-class directory (``path/class_name/xxx.png``)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"no folder at {str(root)!r}. Check the path.")
    return _folder_per_class(_dir_members(root, root.name), root.name, name)


def load_image_csv(
    csv_source: Source,
    images: Source,
    *,
    image_col: str | None = None,
    label_col: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Load images listed in a CSV (file-name column + label) from a ZIP or a folder."""
    notes: list[str] = []
    what = _source_name(csv_source)
    df = _read_table(csv_source, what, notes)

    def guess(frame: pd.DataFrame, exclude: set[str]) -> str | None:
        for c in frame.columns:  # the column whose values look like image files
            if (
                c not in exclude
                and _filled(frame[c]).str.lower().str.endswith(IMAGE_EXTS).mean() > 0.5
            ):
                return c
        return None

    item, label = _choose_columns(
        df, image_col, label_col, role="image file name", names=IMAGE_NAMES, guess=guess,
        what=what, notes=notes,
    )  # fmt: skip
    files, labels = _drop_missing(df, item, label, "image file name", what, notes)
    index = _image_index(images, _source_name(images))
    pairs, missing = [], []
    for file, lab in zip(files, labels, strict=True):
        key = posixpath.normpath(file.replace("\\", "/"))  # Windows paths; "./a.png" -> "a.png"
        if key.startswith("/") or ".." in key.split("/"):
            raise DataError(
                f"{what}: column {item!r} names {file!r}, a path outside the image folder. "
                "Use paths relative to the folder or ZIP, without '..'."
            )
        member = index.get(key)
        if member is None:
            missing.append(file)
        else:
            pairs.append((member, lab))
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise DataError(
            f"{what}: {len(missing)} of {len(files)} image(s) named in column {item!r} are not in "
            f"{_source_name(images)}: {shown}. Add those files (names are case-sensitive) or "
            "remove their rows from the CSV."
        )
    items, labels = _decode_all(pairs, what, notes)
    return _images_dataset(items, labels, what, name, notes)
