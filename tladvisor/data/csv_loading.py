"""Reading a user's CSV: encodings, delimiters, header clean-up, column detection; the text loader.

``_read_table`` turns any CSV the user might export (UTF-8 with or without a BOM, UTF-16, Windows-1252;
comma, semicolon, tab or pipe) into a DataFrame of strings, or a ``DataError`` saying how to fix the
file. ``_choose_columns`` finds the item and label columns (by name given, by common names, then by
heuristics). The image CSV loader in ``images`` shares both.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from tladvisor.data import limits
from tladvisor.data.dataset import TEXT, DataError, Dataset, _check_labels, fingerprint_of
from tladvisor.data.labels import normalise as normalise_labels
from tladvisor.data.sources import Source, _default_name, _read_bytes, _source_name

# pandas is imported where it is used, so `import tladvisor` stays fast
if TYPE_CHECKING:
    import pandas as pd

TEXT_NAMES = ("text", "sentence", "review", "content", "body", "message", "comment")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "y")
MISSING = {
    "",
    "nan",
    "na",
    "n/a",
    "null",
    "none",
}  # what spreadsheets and pandas write for "no value"


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
    long = sum(len(t) > limits.MAX_TEXT_CHARS for t in texts)
    if long:
        texts = [t[: limits.MAX_TEXT_CHARS] for t in texts]
        notes.append(f"truncated {long} text(s) longer than {limits.MAX_TEXT_CHARS:,} characters")
    # A label column the user named, or one called "label", "class" ..., is a label; one guessed by
    # its few distinct values may be an ID, and mostly unique values then refuse the file.
    confirmed = label_col is not None or label.lower() in LABEL_NAMES
    labels = normalise_labels(labels, what, notes)
    _check_labels(labels, what, notes, labels_confirmed=confirmed)
    return Dataset(
        name=name or _default_name(what),
        modality=TEXT,
        items=texts,
        labels=labels,
        fingerprint=fingerprint_of(TEXT, texts, labels),
        source=what,
        notes=notes,
    )
