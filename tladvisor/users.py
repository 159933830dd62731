"""Who ran it: the one validation of a teammate's name, shared by the CLI, the dashboard and the
runner (so nothing else can store a name the dashboard would refuse)."""

from __future__ import annotations

import re

MAX_NAME = 40
# Letters (any script), digits, spaces and . ' @ - _: no markup, no path separators.
_NAME_OK = re.compile(r"^[\w .'@-]+$")


def clean_user_name(text: str | None) -> str:
    """A teammate's name, trimmed; raises ValueError saying what is allowed."""
    name = " ".join((text or "").split())
    if not name:
        raise ValueError("Type your name (as your teammates know you), then press Enter.")
    if len(name) > MAX_NAME:
        raise ValueError(f"That name has {len(name)} characters; use at most {MAX_NAME}.")
    if not _NAME_OK.match(name):
        raise ValueError(
            "Use letters, digits, spaces and . ' @ - _ only in your name (it is shown on every run)."
        )
    return name
