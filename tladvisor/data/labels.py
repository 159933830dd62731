"""Labels that look alike: one class written two ways is a silent split of that class.

``normalise`` (every loader) puts each label in Unicode NFC and drops zero-width characters, so
``café`` typed as one code point or as ``e`` + combining accent is one class, and says how many it
changed. Labels that still differ only by case, spacing, full-width forms or numeric spelling
(``1``, ``1.0``, ``01``, ``1e0``, ``True``) are left apart, since they may be meant, but get a note
that names them; ``merge_lookalikes`` (CLI ``--merge-labels``, the Upload page's tick box) merges
each such group into its most frequent spelling.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter

ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_BOOLEAN = {"true": "1", "false": "0", "yes": "1", "no": "0"}


def normalise(labels: list[str], what: str, notes: list[str]) -> list[str]:
    """Labels in NFC without zero-width characters; a note says how many changed."""
    out = [unicodedata.normalize("NFC", label.translate(ZERO_WIDTH)).strip() for label in labels]
    changed = sum(a != b for a, b in zip(labels, out, strict=True))
    if changed:
        notes.append(
            f"normalised {changed} label(s) of {what} to one Unicode form (NFC, zero-width "
            "characters removed), so a label typed two ways is one class"
        )
    return out


def lookalike_key(label: str) -> str:
    """What two spellings of one label share: NFKC, case, spacing and numeric form folded."""
    text = "".join(unicodedata.normalize("NFKC", label).casefold().split())
    text = _BOOLEAN.get(text, text)
    try:
        number = float(text)
    except ValueError:
        return text
    return f"#{number!r}" if math.isfinite(number) else text


def lookalike_groups(labels: list[str]) -> list[list[str]]:
    """Groups of two or more distinct labels with one look-alike key, most frequent first."""
    counts = Counter(labels)
    groups: dict[str, list[str]] = {}
    for label in counts:
        groups.setdefault(lookalike_key(label), []).append(label)
    return [
        sorted(members, key=lambda m: (-counts[m], m))
        for members in groups.values()
        if len(members) > 1
    ]


def lookalike_note(labels: list[str], what: str) -> str | None:
    groups = lookalike_groups(labels)
    if not groups:
        return None
    shown = "; ".join(" / ".join(repr(m) for m in g) for g in groups[:5])
    more = f" and {len(groups) - 5} more group(s)" if len(groups) > 5 else ""
    return (
        f"{what} has labels that differ only by case, spacing, character form or numeric "
        f"spelling: {shown}{more}. They are separate classes now; if each group is one class, "
        "merge them (CLI --merge-labels, or 'Merge look-alike labels' on the Upload page)."
    )


def merge_map(labels: list[str]) -> dict[str, str]:
    """Each look-alike label -> its group's most frequent spelling (others map to themselves)."""
    return {m: group[0] for group in lookalike_groups(labels) for m in group}
