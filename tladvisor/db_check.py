"""``tladvisor check``: is a database file, and the artefacts its runs saved, whole and usable?

The file is opened read-only (it is neither migrated nor written), every tladvisor table is read
through, its schema version is compared with this tladvisor's, and every trained head or adapter
a run recorded is looked for on disk and read (a ``.safetensors`` file's header must account for
its size, which catches a truncated copy). Each finding says what is wrong and what to do.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tladvisor.store import (
    LATEST_VERSION,
    RESTORE_FIX,
    TABLES,
    Store,
    StoreError,
    StoreLockedError,
)

MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on a header
ARTEFACT_FIX = (
    "Restore the artefacts folder from the backup (docs/deploy.md, section 4), or delete the "
    "run if its trained head is not needed; its metrics are not affected."
)


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok`` False is a problem, and ``text`` says what to do."""

    ok: bool
    text: str


@dataclass
class CheckReport:
    """What ``check_database`` found about one file."""

    path: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def problems(self) -> list[str]:
        return [f.text for f in self.findings if not f.ok]

    def add(self, ok: bool, text: str) -> None:
        self.findings.append(Finding(ok, text))

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": str(self.path),
            "healthy": self.healthy,
            "findings": [asdict(f) for f in self.findings],
        }


def check_database(path: str | Path) -> CheckReport:
    """Check the file at ``path`` and its runs' artefacts without writing anything."""
    report = CheckReport(Path(path))
    try:
        with Store(report.path, read_only=True) as store:
            version = store.schema_version
            rows = store.table_rows()
            artefacts = store.artifact_paths()
    except StoreLockedError as exc:
        report.add(
            False,
            f"{exc} To check it while the dashboard runs, check a backup copy instead "
            "(docs/deploy.md, section 4).",
        )
        return report
    except StoreError as exc:
        report.add(False, str(exc))
        return report
    _check_schema(report, version, rows)
    _check_writable(report)
    _check_artefacts(report, artefacts)
    return report


def _check_schema(report: CheckReport, version: int, rows: dict[str, int]) -> None:
    missing = [table for table, since in TABLES if since <= version and table not in rows]
    if missing:
        report.add(
            False,
            f"schema version {version}, but the tables {', '.join(missing)} are missing: the "
            f"file is damaged. {RESTORE_FIX}",
        )
        return
    if version == 0:
        report.add(True, "a DuckDB file with no tladvisor tables yet: it gets them when first used")
        return
    if version < LATEST_VERSION:
        report.add(
            True,
            f"schema version {version} of {LATEST_VERSION}: migrated when tladvisor next opens it "
            "for writing",
        )
    else:
        report.add(True, f"schema version {version}, this tladvisor's")
    counts = ", ".join(f"{rows[t]:,} {t}" for t in ("runs", "datasets", "metrics", "curves"))
    report.add(True, f"every table read through: {counts}")


def _check_writable(report: CheckReport) -> None:
    path, folder = report.path, report.path.parent
    if not os.access(path, os.W_OK):
        report.add(
            False,
            f"{path} is read-only to this user, so the dashboard and the CLI cannot record runs "
            f"in it: `chmod u+w {path}` (an immutable file: `chattr -i {path}` as root).",
        )
    elif not os.access(folder, os.W_OK | os.X_OK):
        report.add(
            False,
            f"its folder {folder} is read-only to this user, and DuckDB writes its journal "
            f"there: `chmod u+w {folder}`, or move the file to a writable folder.",
        )
    else:
        report.add(True, "the file and its folder are writable")


def _check_artefacts(report: CheckReport, artefacts: list[tuple[str, str]]) -> None:
    bad = 0
    for run_id, stored in artefacts:
        problem = artefact_problem(Path(stored))
        if problem:
            bad += 1
            report.add(False, f"run {run_id}: its saved head/adapter {problem}. {ARTEFACT_FIX}")
    if not artefacts:
        report.add(True, "no run saved a trained head or adapter")
    elif not bad:
        report.add(True, f"the {len(artefacts)} saved heads/adapters are present and readable")


def artefact_problem(path: Path) -> str | None:
    """What is wrong with a run's artefact (a file, or a folder of files), or None."""
    if not path.exists():
        return f"{path} is missing"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        return f"folder {path} is empty"
    for file in files:
        try:
            with open(file, "rb") as f:
                f.read(1)
            if file.suffix == ".safetensors":
                _check_safetensors(file)
        except OSError as exc:
            return f"{file} cannot be read ({exc.strerror or exc})"
        except ValueError as exc:
            return f"{file} is damaged: {exc}"
    return None


def _check_safetensors(path: Path) -> None:
    """The header's tensors must end exactly where the file does (a cut copy ends early)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{size} bytes is too short for safetensors")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"its header claims {length} bytes, the file has {size}")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError("its header is not JSON") from exc
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    ends = [
        t["data_offsets"][1]
        for key, t in header.items()
        if key != "__metadata__" and isinstance(t, dict) and len(t.get("data_offsets", ())) == 2
    ]
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        raise ValueError(f"its tensors need {expected} bytes, the file has {size} (cut short?)")
