"""Labelled data sets: loading CSVs and image archives, validation with clear errors, splits, fingerprints.

A ``Dataset`` holds the items in memory (texts as ``str``, images as RGB ``PIL.Image``) with one
string label each. Loaders take a path, ``bytes`` or a binary file-like (Streamlit's
``UploadedFile``), never write anything (ZIP members are read in memory, not extracted), and
either succeed with what they changed listed in ``Dataset.notes`` or raise ``DataError`` naming
the problem, where it is and the fix. ``split_dataset`` gives a seeded stratified
train/validation/test split; ``TaskData`` bundles the two for the strategies.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import os
import posixpath
import re
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if (
    TYPE_CHECKING
):  # PIL and pandas are imported where they are used, so `import tladvisor` stays fast
    import pandas as pd
    from PIL import Image as PILImage

TEXT = "text"
IMAGE = "image"

# Limits. Read at call time (not bound as defaults) so tests and operators can change them.
MAX_UPLOAD_MB = 200  # Streamlit's own default upload cap; env TLADVISOR_MAX_UPLOAD_MB overrides
MAX_UNCOMPRESSED_MB = 1024  # ZIP-bomb guard on declared sizes; env TLADVISOR_MAX_UNCOMPRESSED_MB
MAX_IMAGES = 50_000  # member-count guard, checked before any member is read
MAX_CLASSES = 1000  # beyond ImageNet's count a "label" is almost surely an ID or free text
MAX_TEXT_CHARS = 20_000  # ~5k tokens; the text models read 256-512 tokens, so more is only memory
MAX_IMAGE_SIDE = 512  # longest side kept; the image models read 224 px, this bounds memory
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: a 40 MP photo is fine, a 1 GP PNG is not

Source = str | os.PathLike | bytes | bytearray | IO[bytes]

TEXT_NAMES = ("text", "sentence", "review", "content", "body", "message", "comment")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y")
IMAGE_NAMES = ("image", "images", "img", "filename", "file_name", "file", "filepath", "file_path")
IMAGE_NAMES += ("path", "image_path", "image_file", "image_name", "image_id")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
MISSING = {
    "",
    "nan",
    "na",
    "n/a",
    "null",
    "none",
}  # what spreadsheets and pandas write for "no value"
JUNK_FILES = {"thumbs.db", "desktop.ini"}
UNNAMED = "the uploaded file"  # how messages name bytes or a stream without a file name
# Pillow's pixel cap and the warnings filters are process-wide; Streamlit loads in threads.
_PIL_GLOBALS = threading.Lock()


class DataError(ValueError):
    """Bad user input: the message names what was wrong and how to fix it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    modality: str  # TEXT or IMAGE
    items: list[Any]  # str for text, PIL.Image (RGB) for images
    labels: list[str]
    fingerprint: str
    source: str = ""  # where it came from (file name, "sample:rotten_tomatoes", ...)
    notes: list[str] = field(
        default_factory=list
    )  # what loading changed (dropped rows, truncation)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    @property
    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def label_ids(self) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[label] for label in self.labels], dtype=np.int64)


def fingerprint_of(modality: str, items: list[Any], labels: list[str]) -> str:
    """Content hash: the same rows uploaded twice (under any file name) are one data set.

    Row order counts, because splits are drawn by position. Every field is length-prefixed so
    that no two different data sets can hash the same bytes.
    """
    h = hashlib.sha256(modality.encode())

    def put(tag: bytes, data: bytes) -> None:
        h.update(tag + len(data).to_bytes(8, "little") + data)

    for item, label in zip(items, labels, strict=True):
        if isinstance(item, str):
            put(b"T", item.encode("utf-8"))
        else:  # PIL image: hash its pixels, not its container format
            put(b"I", f"{item.size[0]}x{item.size[1]}:{item.mode}".encode() + item.tobytes())
        put(b"L", label.encode("utf-8"))
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- sources and limits


def _limit_mb(env: str, default: float) -> float:
    raw = os.environ.get(env)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"{env}={raw!r} is not a number of megabytes; set it to e.g. 200") from None
    if value <= 0:
        raise DataError(f"{env}={raw!r} must be positive; set it to e.g. 200")
    return value


def _upload_limit() -> int:
    return int(_limit_mb("TLADVISOR_MAX_UPLOAD_MB", MAX_UPLOAD_MB) * 1024 * 1024)


def _uncompressed_limit() -> int:
    return int(_limit_mb("TLADVISOR_MAX_UNCOMPRESSED_MB", MAX_UNCOMPRESSED_MB) * 1024 * 1024)


def _mb(n: float) -> str:
    mb = n / 1024 / 1024
    return (f"{mb:,.1f}".removesuffix(".0") if mb >= 1 else f"{mb:.3f}") + " MB"


def _is_path(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike))


def _source_name(source: Any) -> str:
    """The user's file name for messages and ``Dataset.source`` (UploadedFile has ``.name``)."""
    if _is_path(source):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else UNNAMED


def _default_name(what: str) -> str:
    return "upload" if what == UNNAMED else Path(what).stem


def _too_big(size: int, what: str) -> DataError:
    limit = _upload_limit()
    return DataError(
        f"{what} is {_mb(size)}, above the {_mb(limit)} upload limit. Upload a smaller sample "
        "(a few thousand rows or images per class is plenty to choose a strategy), or raise the "
        "limit with the environment variable TLADVISOR_MAX_UPLOAD_MB."
    )


def _declared_size(source: Any) -> int | None:
    """Size of a file-like without reading it: Streamlit's ``.size``, else seek to the end."""
    size = getattr(source, "size", None)
    if isinstance(size, int):
        return size
    try:
        return int(source.seek(0, io.SEEK_END))  # _read_bytes seeks back to 0 before reading
    except (AttributeError, OSError, ValueError):
        return None  # not seekable: the bounded read below still enforces the cap


def _read_bytes(source: Source, what: str) -> bytes:
    """All bytes of ``source``, checking the upload cap BEFORE reading them."""
    limit = _upload_limit()
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > limit:
            raise _too_big(len(source), what)
        return bytes(source)
    if _is_path(source):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{what}: no file at {str(path)!r}. Check the path.")
        size = path.stat().st_size
        if size > limit:
            raise _too_big(size, what)
        return path.read_bytes()
    if not hasattr(source, "read"):
        raise DataError(
            f"{what}: expected a file path, bytes or an open binary file, got "
            f"{type(source).__name__}. Pass the path of the file or its bytes."
        )
    size = _declared_size(source)
    if size is not None and size > limit:
        raise _too_big(size, what)
    if hasattr(source, "seek") and getattr(source, "seekable", lambda: True)():
        with contextlib.suppress(OSError, ValueError):
            source.seek(0)  # Streamlit reruns hand back the same UploadedFile, already read
    data = source.read(limit + 1)
    if isinstance(data, str):
        raise DataError(f"{what}: the file was opened in text mode; open it with 'rb'.")
    if len(data) > limit:
        raise _too_big(len(data), what)
    return bytes(data)


# ----------------------------------------------------------------------------- CSV parsing

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (or an Excel .xlsx workbook)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
    b"BZh": "a bzip2 archive",
    b"\xd0\xcf\x11\xe0": "an Excel .xls workbook",
    b"PAR1": "a Parquet file",
}


def _decode(data: bytes, what: str, notes: list[str]) -> str:
    """Text of a CSV file: BOMs first, then UTF-8, then Windows-1252/Latin-1 (said in ``notes``)."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            raise DataError(
                f"{what} is {kind}, not a CSV text file. Export the table as CSV (UTF-8); "
                "upload image archives in the image section."
            )
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif len(data) >= 4 and data[1:4:2] == b"\x00\x00" and data[0:4:2] != b"\x00\x00":
        encoding = "utf-16-le"  # no BOM, but ASCII text with NULs in every odd byte
    elif len(data) >= 4 and data[0:4:2] == b"\x00\x00" and data[1:4:2] != b"\x00\x00":
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        if encoding != "utf-8":
            raise DataError(
                f"{what} starts like {encoding} text but does not decode as {encoding}. "
                "Save it again as CSV (UTF-8)."
            ) from None
        try:  # Excel on Windows writes cp1252; Latin-1 decodes any byte string as a last resort
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
    if encoding not in ("utf-8", "utf-8-sig"):
        notes.append(f"read {what} as {encoding} (it is not UTF-8)")
    _check_is_text(text, what)
    return text


def _check_is_text(text: str, what: str) -> None:
    sample = text[:65536]
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if "\x00" in sample or bad > max(8, len(sample) // 100):
        raise DataError(
            f"{what} looks like binary data, not a CSV text file ({bad} control characters in "
            "the first 64 kB). Export the table as CSV (UTF-8) and upload that."
        )


def _sniff_delimiter(text: str) -> str:
    """The delimiter of ``,;\\t|`` that splits the header and first rows into the same >1 fields."""
    sample = text[:100_000]
    best, best_score = ",", (-1.0, 0)
    for delim in ",;\t|":
        try:
            rows = list(itertools.islice(csv.reader(io.StringIO(sample), delimiter=delim), 51))
        except csv.Error:
            continue
        if len(sample) < len(text) and len(rows) > 1:
            rows = rows[:-1]  # the sample may cut the last row short
        widths = [len(r) for r in rows if any(cell.strip() for cell in r)]
        if not widths or widths[0] < 2:
            continue
        score = (sum(w == widths[0] for w in widths) / len(widths), widths[0])
        if score[0] > best_score[0]:  # ties keep the earlier (more common) delimiter
            best, best_score = delim, score
    return best


def _read_table(source: Source, what: str, notes: list[str]) -> pd.DataFrame:
    """Parse a user CSV into a DataFrame of strings, with errors a user can act on."""
    import pandas as pd

    data = _read_bytes(source, what)
    if not data.strip():
        raise DataError(f"{what} is empty. Upload a CSV with a header row and one row per example.")
    text = _decode(data, what, notes)
    if not text.strip():
        raise DataError(f"{what} is empty. Upload a CSV with a header row and one row per example.")
    delim = _sniff_delimiter(text)
    if delim != ",":
        notes.append(f"{what} is delimited by {'tab' if delim == chr(9) else repr(delim)}")
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=delim,
            dtype=str,
            keep_default_na=False,  # "NA" may be a real word; MISSING decides per column below
            na_filter=False,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{what} has no header row. Put the column names on the first line."
        ) from None
    except pd.errors.ParserError as e:
        raise DataError(
            f"{what} could not be parsed as CSV: {e}. Quote fields that contain the delimiter "
            '(e.g. "great, really great",positive) or export the table again as CSV.'
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    empty = [c for c in df.columns if c.startswith("Unnamed:") and not df[c].str.strip().any()]
    if empty:  # a trailing delimiter makes a nameless, empty column: drop it
        df = df.drop(columns=empty)
    if df.shape[1] < 2:
        raise DataError(
            f"{what} has one column ({list(df.columns)[0]!r}); it needs a text (or image) column "
            "and a label column. If the file uses a delimiter other than , ; tab or |, export it "
            "again as CSV."
        )
    if len(df) == 0:
        raise DataError(
            f"{what} has a header ({', '.join(map(repr, df.columns))}) but no rows. "
            "Add one row per labelled example."
        )
    unnamed = [c for c in df.columns if c.startswith("Unnamed:")]
    if unnamed:
        notes.append(f"{what} has {len(unnamed)} column(s) without a header name: {unnamed}")
    return df


def read_columns(source: Source) -> list[str]:
    """The column names of a CSV exactly as the loaders will see them (same size cap, decoding,
    delimiter sniffing and header clean-up), so a column picker offers only names that load.

    Raises ``DataError`` for a file the loaders would refuse (empty, binary, one column, no rows).
    """
    return [str(c) for c in _read_table(source, _source_name(source), []).columns]


def _pick_column(df: pd.DataFrame, wanted: str | None, role: str, what: str) -> str | None:
    """The column named ``wanted`` (exact, then case-insensitive), or None when not given."""
    if wanted is None:
        return None
    if wanted in df.columns:
        return wanted
    folded = [c for c in df.columns if c.lower() == wanted.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    raise DataError(
        f"{what} has no column {wanted!r} for the {role}; its columns are "
        f"{', '.join(map(repr, df.columns))}. Pass one of those."
    )


def _by_name(df: pd.DataFrame, names: Iterable[str], exclude: set[str]) -> str | None:
    lower = {c.lower(): c for c in reversed(df.columns) if c not in exclude}
    return next((lower[n] for n in names if n in lower), None)


def _filled(col: pd.Series) -> pd.Series:
    return col[~col.str.strip().str.lower().isin(MISSING)]


def _lowest_cardinality(df: pd.DataFrame, exclude: set[str]) -> str | None:
    """The column with the fewest distinct values (at least two): the likeliest label."""
    best, best_n = None, None
    for c in df.columns:
        if c in exclude:
            continue
        n = _filled(df[c]).str.strip().nunique()
        if n >= 2 and (best_n is None or n < best_n):
            best, best_n = c, n
    return best


def _longest(df: pd.DataFrame, exclude: set[str]) -> str | None:
    lengths = {c: _filled(df[c]).str.len().mean() for c in df.columns if c not in exclude}
    lengths = {c: v for c, v in lengths.items() if v == v}  # NaN when a column is all blank
    return max(lengths, key=lambda c: lengths[c]) if lengths else None


def _choose_columns(
    df: pd.DataFrame,
    item_col: str | None,
    label_col: str | None,
    *,
    role: str,
    names: tuple[str, ...],
    guess: Callable[[pd.DataFrame, set[str]], str | None],
    what: str,
    notes: list[str],
) -> tuple[str, str]:
    """Resolve the item and label columns: flags first, then common names, then heuristics."""
    item = _pick_column(df, item_col, role, what)
    label = _pick_column(df, label_col, "label", what)
    auto_item, auto_label = item is None, label is None
    if item is None:
        item = _by_name(df, names, {label} if label else set())
    if label is None:
        label = _by_name(df, LABEL_NAMES, {item} if item else set())
    if item is None:
        item = guess(df, {label} if label else set())
        if item is None:
            raise DataError(
                f"{what}: no {role} column found (columns: {', '.join(map(repr, df.columns))}). "
                f"Pass the {role} column by name."
            )
    if label is None:
        label = _lowest_cardinality(df, {item})
        if label is None:
            raise DataError(
                f"{what}: no label column found besides {item!r} (columns: "
                f"{', '.join(map(repr, df.columns))}). Pass the label column by name."
            )
    if item == label:
        raise DataError(
            f"{what}: the {role} and the label are the same column {item!r}. Pick two columns."
        )
    # Say what was picked unless it was the obvious column ("text", "label"): surprises get a note.
    auto_item = auto_item and item.lower() != names[0]
    auto_label = auto_label and label.lower() != LABEL_NAMES[0]
    auto = [f"{item!r} as the {role}"] * auto_item + [f"{label!r} as the label"] * auto_label
    if auto:
        notes.append(f"using column {' and '.join(auto)} (choose others by name if that is wrong)")
    return item, label


def _drop_missing(
    df: pd.DataFrame, item: str, label: str, role: str, what: str, notes: list[str]
) -> tuple[list[str], list[str]]:
    """Values of the two columns, stripped, without rows where either is blank or NaN-like."""
    items = df[item].str.strip()
    labels = df[label].str.strip()
    no_item = items.str.lower().isin(MISSING)
    no_label = labels.str.lower().isin(MISSING)
    bad = no_item | no_label
    if bad.all():
        raise DataError(
            f"{what}: every row has an empty {role} ({item!r}) or label ({label!r}). "
            "Check that those are the right columns and that they are filled in."
        )
    if bad.any():
        lines = [str(i + 2) for i in np.flatnonzero(bad.to_numpy())[:5]]  # +2: header, 1-based
        notes.append(
            f"dropped {int(bad.sum())} row(s) of {what} with an empty label ({int(no_label.sum())}) "
            f"or {role} ({int(no_item.sum())}), e.g. line(s) {', '.join(lines)}"
        )
    keep = ~bad
    return items[keep].tolist(), labels[keep].tolist()


def _check_labels(labels: list[str], what: str, notes: list[str]) -> None:
    """Reject label sets no classifier can learn from; note the ones that weaken the split."""
    counts = Counter(labels)
    n, k = len(labels), len(counts)
    if k < 2:
        raise DataError(
            f"{what} has one class ({next(iter(counts))!r}, {n} examples); a classifier needs at "
            "least two. Check the label column, or add examples of the other classes."
        )
    if k > MAX_CLASSES:
        raise DataError(
            f"{what} has {k} classes, above the limit of {MAX_CLASSES}. Group labels into "
            "broader classes, or check that the label column is really a label."
        )
    if k >= n / 1.5:
        raise DataError(
            f"{what} has {k} distinct labels for {n} examples: most labels are unique. Did you "
            "pick an ID or free-text column as the label? Choose the label column by name, or "
            "add examples so that each class has several."
        )
    single = sorted(c for c, m in counts.items() if m == 1)
    if single:
        shown = ", ".join(map(repr, single[:5])) + (" ..." if len(single) > 5 else "")
        notes.append(
            f"{len(single)} class(es) have a single example ({shown}); they stay in training but "
            "cannot be tested, and stratified splits need at least 3 examples a class"
        )


# ----------------------------------------------------------------------------- text


def load_text_csv(
    source: Source,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Load a labelled text CSV; the columns are found by common names unless given."""
    notes: list[str] = []
    what = _source_name(source)
    df = _read_table(source, what, notes)
    item, label = _choose_columns(
        df,
        text_col,
        label_col,
        role="text",
        names=TEXT_NAMES,
        guess=_longest,
        what=what,
        notes=notes,
    )
    texts, labels = _drop_missing(df, item, label, "text", what, notes)
    if label in set(labels):  # e.g. "positive" as a column name and a value: the header is data
        notes.append(
            f"{what} seems to have no header row (column name {label!r} is also a label), so its "
            "first row was read as the header; add a header row such as text,label"
        )
    long = sum(len(t) > MAX_TEXT_CHARS for t in texts)
    if long:
        texts = [t[:MAX_TEXT_CHARS] for t in texts]
        notes.append(f"truncated {long} text(s) longer than {MAX_TEXT_CHARS:,} characters")
    _check_labels(labels, what, notes)
    return Dataset(
        name=name or _default_name(what),
        modality=TEXT,
        items=texts,
        labels=labels,
        fingerprint=fingerprint_of(TEXT, texts, labels),
        source=what,
        notes=notes,
    )


# ----------------------------------------------------------------------------- images


@dataclass(frozen=True)
class _Member:
    """One file of an archive or folder, read only on demand."""

    name: str  # relative, "/"-separated
    size: int
    read: Callable[[], bytes]


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return (
        parts[0] == "__MACOSX"
        or any(p.startswith(".") for p in parts)
        or parts[-1].lower() in JUNK_FILES
    )


def _check_counts(members: list[_Member], what: str) -> None:
    """ZIP-bomb guards on the declared sizes and the count, before any member is read."""
    if len(members) > MAX_IMAGES:
        raise DataError(
            f"{what} holds {len(members):,} files, above the limit of {MAX_IMAGES:,}. "
            "Upload a sample (a few hundred images per class is plenty to choose a strategy)."
        )
    total, limit = sum(m.size for m in members), _uncompressed_limit()
    if total > limit:
        raise DataError(
            f"{what} unpacks to {_mb(total)}, above the {_mb(limit)} limit. Upload fewer or "
            "smaller images, or raise TLADVISOR_MAX_UNCOMPRESSED_MB."
        )


def _zip_members(source: Source, what: str) -> list[_Member]:
    """Members of a ZIP, read in memory: never extracted, so nothing is written anywhere."""
    import zipfile

    # Read into memory (the upload cap bounds it) so no file handle outlives the call.
    data = _read_bytes(source, what)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DataError(
            f"{what} is not a valid ZIP archive. Compress the image folder again "
            "(e.g. right-click > Compress, or `zip -r data.zip folder`)."
        ) from None
    members = []
    for info in infos:
        raw = info.filename.replace("\\", "/")
        parts = raw.split("/")
        if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in parts:
            raise DataError(
                f"{what} contains {info.filename!r}, a path outside the archive (absolute or "
                "with '..'). The archive is rejected; zip the image folder itself again."
            )
        name = posixpath.normpath(raw)
        if info.is_dir() or _is_junk(name):
            continue
        if info.flag_bits & 0x1:
            raise DataError(f"{what} is password-protected; zip the images without a password.")
        members.append(_Member(name, info.file_size, _zip_reader(zf, info)))
    _check_counts(members, what)
    return members


def _zip_reader(zf: Any, info: Any) -> Callable[[], bytes]:
    def read() -> bytes:
        # zipfile stops at the declared size, so a lying header cannot inflate past the cap
        try:
            with zf.open(info) as f:
                return f.read(info.file_size + 1)
        except Exception as e:  # zlib.error, BadZipFile (CRC), NotImplementedError (method)
            raise _Skip("corrupt", f"{type(e).__name__}: {e}") from None

    return read


def _dir_members(root: Path, what: str) -> list[_Member]:
    """Files under a folder (symlinks are not followed, so nothing outside it is read)."""
    members = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fn in sorted(filenames):
            path = Path(dirpath) / fn
            name = path.relative_to(root).as_posix()
            if _is_junk(name) or path.is_symlink() or not path.is_file():
                continue
            members.append(_Member(name, path.stat().st_size, _file_reader(path)))
    _check_counts(members, what)
    return members


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as e:  # unreadable (permissions, vanished): skip it like a corrupt file
            raise _Skip("corrupt", str(e)) from None

    return read


class _Skip(Exception):
    """A file that is left out, with the reason group it is reported under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


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
    """An RGB image from file bytes, and whether it was shrunk to ``MAX_IMAGE_SIDE``."""
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
    if w * h > MAX_IMAGE_PIXELS:  # checked from the header, before the pixels are decoded
        raise _Skip("too_large", f"{w}x{h}")
    try:
        im.load()
        im = ImageOps.exif_transpose(im)  # phone photos store rotation in EXIF
        rgb = _to_rgb(im)
    except _Skip:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error ...
        raise _Skip("corrupt", f"{type(e).__name__}: {e}") from None
    shrunk = max(rgb.size) > MAX_IMAGE_SIDE
    if shrunk:
        rgb.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
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
            MAX_IMAGE_PIXELS  # Pillow's own guard, for formats it checks itself
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
        text = _SKIP_TEXT[reason].format(px=MAX_IMAGE_PIXELS)
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
            f"shrank {shrunk} image(s) to {MAX_IMAGE_SIDE} px on the longest side (the models "
            "read 224 px; this bounds memory)"
        )
    return items, labels


def _images_dataset(
    items: list[Any], labels: list[str], what: str, name: str | None, notes: list[str]
) -> Dataset:
    _check_labels(labels, what, notes)
    return Dataset(
        name=name or _default_name(what),
        modality=IMAGE,
        items=items,
        labels=labels,
        fingerprint=fingerprint_of(IMAGE, items, labels),
        source=what,
        notes=notes,
    )


def _strip_wrapper(members: list[_Member]) -> list[_Member]:
    """Drop one top-level folder that wraps everything (``data/cat/1.png`` -> ``cat/1.png``)."""
    parts = [m.name.split("/") for m in members]
    if members and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        return [_Member(m.name.split("/", 1)[1], m.size, m.read) for m in members]
    return members


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


def _image_index(images: Source, what: str) -> dict[str, _Member]:
    """Members of the image ZIP or folder, by path, by path without a wrapper and by base name."""
    if _is_path(images) and Path(images).is_dir():
        members = _dir_members(Path(images), what)
    else:
        members = _zip_members(images, what)
    index: dict[str, _Member] = {}
    for m in _strip_wrapper(members):
        index.setdefault(m.name, m)
    for m in members:
        index.setdefault(m.name, m)
    bases = Counter(posixpath.basename(m.name) for m in members)
    for m in members:
        base = posixpath.basename(m.name)
        if bases[base] == 1:  # only unambiguous base names
            index.setdefault(base, m)
    return index


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


# ----------------------------------------------------------------------------- dispatch


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


# ----------------------------------------------------------------------------- samples

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
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


# ----------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int


def split_dataset(
    ds: Dataset,
    seed: int = 0,
    val_frac: float = 0.15,
    test_frac: float = 0.2,
    max_train: int | None = None,
) -> Split:
    """Stratified split; every class keeps at least one training example.

    Falls back to a plain random split when the smallest class has fewer than 3 examples
    (stratification needs one per part), then moves one example of any class missing from
    training back into it. ``max_train`` caps the training set (stratified, at least one a class)
    after the split, so runs with different label budgets share one test set.
    """
    from sklearn.model_selection import train_test_split

    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(
            f"val_frac={val_frac} and test_frac={test_frac} must each be in (0, 1) and sum below 1"
        )
    y = ds.label_ids()
    idx = np.arange(len(ds))
    counts = np.bincount(y)
    if len(counts) < 2:
        raise DataError(
            f"the data has one class ({ds.classes[0]!r}); a classifier needs at least two. "
            "Check the label column."
        )
    if len(ds) < len(counts) + 2:
        raise DataError(
            f"{len(ds)} examples are too few to split {len(counts)} classes into train, "
            "validation and test sets; add examples (several a class)."
        )
    stratify_ok = counts.min() >= 3
    strat = y if stratify_ok else None
    n_test = max(int(round(len(ds) * test_frac)), len(counts) if stratify_ok else 1)
    n_test = min(n_test, len(ds) - len(counts) - 1)
    rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=strat)
    n_val = max(int(round(len(ds) * val_frac)), len(counts) if stratify_ok else 1)
    n_val = max(1, min(n_val, len(rest) - len(counts)))
    strat_rest = y[rest] if stratify_ok else None
    train, val = train_test_split(rest, test_size=n_val, random_state=seed, stratify=strat_rest)
    train, val, test = _ensure_train_classes(train, val, test, y)
    if max_train is not None and max_train < len(train):
        train = _stratified_cap(train, y, max_train, seed)
    return Split(np.sort(train), np.sort(val), np.sort(test), seed)


def _ensure_train_classes(
    train: np.ndarray, val: np.ndarray, test: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move one example of each class absent from training out of test (or val) into training."""
    train, val, test = list(train), list(val), list(test)
    for c in np.setdiff1d(np.unique(y), y[train]):
        for part in (test, val):  # prefer emptying test: val drives early stopping
            pos = next((i for i, j in enumerate(part) if y[j] == c), None)
            if pos is not None and len(part) > 1:
                train.append(part.pop(pos))
                break
    as_array = lambda part: np.array(part, dtype=np.int64)  # noqa: E731
    return as_array(train), as_array(val), as_array(test)


def _stratified_cap(train: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Keep ``n`` training rows, as evenly per class as the data allows (at least one a class)."""
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(train[y[train] == c]) for c in np.unique(y[train])]
    n = max(n, len(by_class))
    keep: list[int] = []
    depth = 0
    while len(keep) < n:
        for rows in by_class:
            if depth < len(rows) and len(keep) < n:
                keep.append(int(rows[depth]))
        depth += 1
    return np.array(keep, dtype=np.int64)


@dataclass(frozen=True)
class TaskData:
    """A data set with its split, as the strategies see it."""

    dataset: Dataset
    split: Split

    @property
    def modality(self) -> str:
        return self.dataset.modality

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    def items(self, part: str) -> list[Any]:
        return [self.dataset.items[i] for i in getattr(self.split, part)]

    def y(self, part: str) -> np.ndarray:
        return self.dataset.label_ids()[getattr(self.split, part)]
