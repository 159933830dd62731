"""The files of an image ZIP or folder, listed safely and read only on demand.

ZIP members are read in memory, never extracted, so nothing is written anywhere. Paths that leave the
archive, password-protected members, too many files or too many declared bytes are refused before
any member is read; symlinks in folders are not followed.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tladvisor.data import limits
from tladvisor.data.dataset import DataError
from tladvisor.data.sources import Source, _is_path, _mb, _read_bytes, _uncompressed_limit

JUNK_FILES = {"thumbs.db", "desktop.ini"}


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
    if len(members) > limits.MAX_IMAGES:
        raise DataError(
            f"{what} holds {len(members):,} files, above the limit of {limits.MAX_IMAGES:,}. "
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


def _strip_wrapper(members: list[_Member]) -> list[_Member]:
    """Drop one top-level folder that wraps everything (``data/cat/1.png`` -> ``cat/1.png``)."""
    parts = [m.name.split("/") for m in members]
    if members and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        return [_Member(m.name.split("/", 1)[1], m.size, m.read) for m in members]
    return members


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
