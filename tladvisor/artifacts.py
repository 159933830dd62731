"""A run's saved files on disk: where they live, the room they take, removing them with their run,
and bringing them along when runs are imported from another database file.

Each run saves into ``<artifacts>/<run id>/`` and records the file or folder it wrote in its
details (``artifact_path``); the store keeps the path, this module handles the files.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def default_root(db_path: str | Path) -> Path:
    """Where runs of the database ``db_path`` save: ``$TLADVISOR_ARTIFACTS``, else beside it."""
    env = os.environ.get("TLADVISOR_ARTIFACTS")
    return Path(env) if env else Path(db_path).resolve().parent / "artifacts"


def run_folder(path: str | Path, run_id: str) -> Path | None:
    """The folder named after the run that holds ``path`` (None when ``path`` is not in one:
    then nothing is deleted or copied but the recorded file itself)."""
    p = Path(path)
    return next((c for c in (p, *p.parents) if c.name == run_id), None)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def disk_used(store: Any) -> tuple[int, int]:
    """(bytes, runs) of the artefacts the store's runs recorded that are still on disk."""
    total = count = 0
    for run_id, path in store.artifact_paths():
        where = run_folder(path, run_id) or Path(path)
        if where.exists():
            total += _size(where)
            count += 1
    return total, count


def delete_run(store: Any, run_id: str, *, user: str) -> None:
    """Delete the run (only its owner may: the store checks) and then its saved files."""
    run = store.get_run(run_id)
    path = ((run or {}).get("details") or {}).get("artifact_path")
    store.delete_run(run_id, user=user)  # raises, deleting nothing, for anyone but the owner
    if not path:
        return
    folder = run_folder(path, run_id)
    if folder is not None and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
    elif Path(path).is_file():
        Path(path).unlink(missing_ok=True)


@dataclass
class ImportedFiles:
    """What happened to the artefacts of the runs an import added."""

    copied: list[str] = field(default_factory=list)  # run ids whose files came along
    missing: list[str] = field(default_factory=list)  # run ids whose files were not reachable

    def summary(self) -> str:
        said = f"{len(self.copied)} runs' artefacts copied"
        if self.missing:
            said += (
                f"; {len(self.missing)} runs' artefacts were not reachable (e.g. "
                f"{', '.join(r[:8] for r in self.missing[:3])}), so those runs cannot predict or "
                "export here: copy the source's artifacts folder beside it and import again"
            )
        return said


def import_runs(store: Any, source: str | Path, root: Path) -> tuple[Any, ImportedFiles]:
    """``store.import_runs(source)``, then each added run's files copied under ``root``.

    A run's files are looked for where it recorded them, then in the ``artifacts`` folder beside
    the source database (a copied-over team folder keeps that layout).
    """
    before = {run_id for run_id, _ in store.artifact_paths()}
    summary = store.import_runs(source)
    files = ImportedFiles()
    for run_id, path in store.artifact_paths():
        if run_id in before:
            continue
        found = _locate(Path(path), run_id, Path(source).resolve().parent / "artifacts")
        if found is None:
            files.missing.append(run_id)
            continue
        folder, inside = found
        target = root / run_id
        if folder.resolve() != target.resolve():
            shutil.copytree(folder, target, dirs_exist_ok=True)
        store.set_artifact_path(run_id, str(target / inside))
        files.copied.append(run_id)
    return summary, files


def _locate(path: Path, run_id: str, beside: Path) -> tuple[Path, Path] | None:
    """(the run's folder, the recorded path inside it) where the files exist, or None."""
    folder = run_folder(path, run_id)
    if folder is None:
        return None
    inside = path.relative_to(folder)
    for candidate in (folder, beside / run_id):
        if (candidate / inside).exists():
            return candidate, inside
    return None
