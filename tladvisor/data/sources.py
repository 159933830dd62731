"""What a loader accepts (a path, ``bytes`` or a binary file-like) and reading it under the upload cap.

The cap is checked before the bytes are read: from the file's size, Streamlit's ``UploadedFile.size``
or a seek to the end, and a bounded read for streams that cannot seek.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import IO, Any

from tladvisor.data import limits
from tladvisor.data.dataset import DataError

Source = str | os.PathLike | bytes | bytearray | IO[bytes]
UNNAMED = "the uploaded file"  # how messages name bytes or a stream without a file name


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
    return int(_limit_mb("TLADVISOR_MAX_UPLOAD_MB", limits.MAX_UPLOAD_MB) * 1024 * 1024)


def _uncompressed_limit() -> int:
    return int(_limit_mb("TLADVISOR_MAX_UNCOMPRESSED_MB", limits.MAX_UNCOMPRESSED_MB) * 1024 * 1024)


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
    # Exact bytes beside the rounded sizes: a file one byte over would read "200 MB, above the
    # 200 MB upload limit".
    return DataError(
        f"{what} is {_mb(size)} ({size:,} bytes), above the {_mb(limit)} ({limit:,} bytes) upload "
        "limit. Upload a smaller sample "
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
