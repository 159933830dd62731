"""Tests for the embedding cache and long-text chunking (tladvisor.embeddings, TextEncoder.encode_chunked).

Known answers for the chunk windows and the 'auto' rule; on real MiniLM: a text within the context
gets its plain embedding, chunked and plain features are cached apart, and on texts whose class shows
only after a 300-word-piece preamble the truncated features probe at chance while the chunked ones
separate the classes. ``long_text_dataset`` is shared with the profile and strategy tests.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from tladvisor import embeddings
from tladvisor.backbones import chunk_windows
from tladvisor.data import Dataset, fingerprint_of

PREAMBLE = [
    "The session opened at nine in the morning and the chair welcomed everyone present.",
    "Minutes of the previous meeting were read aloud and approved without any changes.",
    "Several members noted that the room had been booked for the whole afternoon.",
    "The secretary reminded the group that printed copies were available at the door.",
    "Attendance was recorded and the quorum was confirmed before the agenda continued.",
    "A short break was proposed for the middle of the day and nobody objected.",
    "The treasurer said the annual report would be circulated by email next week.",
    "Questions about parking were referred to the building manager as usual.",
    "The chair thanked the volunteers who had arranged the chairs and the coffee.",
    "Members were asked to keep their remarks brief so that every item could be heard.",
    "The date of the next meeting was left open until the calendar could be checked.",
    "A note was taken that the projector in the hall needed a new cable.",
]
TOPICS = {
    "sport": [
        "The striker scored twice in the second half and the stadium erupted.",
        "Our goalkeeper saved a penalty in the final minute of the championship match.",
        "The coach praised the defenders after the team won the league title.",
        "Fans cheered as the players lifted the trophy after extra time.",
        "The midfielder was injured during training and will miss the cup final.",
        "The runner broke the national record in the marathon on Sunday.",
    ],
    "cooking": [
        "Simmer the onions in butter until they turn soft and golden brown.",
        "Knead the bread dough for ten minutes, then let it rise in a warm oven.",
        "Season the roast chicken with garlic, thyme and a squeeze of lemon.",
        "Whisk the eggs with sugar and fold them gently into the melted chocolate.",
        "Chop the fresh basil and stir it into the tomato sauce just before serving.",
        "Bake the apple pie until the crust is crisp and the filling bubbles.",
    ],
}
PREAMBLE_SENTENCES = 20  # ~14 word pieces each: ~290 before the first class word, ~370 in all


def long_text_dataset(per_class: int = 24, seed: int = 0) -> Dataset:
    """Texts whose class shows only after a long shared preamble: beyond MiniLM's 256 tokens."""
    rng = random.Random(seed)
    items, labels = [], []
    for i in range(per_class):
        for label, topic in TOPICS.items():
            preamble = [rng.choice(PREAMBLE) for _ in range(PREAMBLE_SENTENCES)]
            tail = rng.sample(topic, 4)
            items.append(f"Record {i}. " + " ".join(preamble + tail))
            labels.append(label)
    return Dataset("long-texts", "text", items, labels, fingerprint_of("text", items, labels))


pytestmark = pytest.mark.usefixtures("isolated_embedding_cache")


@pytest.fixture(scope="module")
def minilm():
    from tladvisor import catalog

    try:
        return catalog.load("minilm", device="cpu")
    except catalog.ModelUnavailable as exc:
        pytest.skip(str(exc))


# ---------------------------------------------------------------- known answers, no model


def test_chunk_windows_overlap_and_end_on_the_last_token() -> None:
    assert chunk_windows([1, 2, 3], window=4, overlap=1, max_chunks=16) == [[1, 2, 3]]
    assert chunk_windows(list(range(10)), 4, 1, 16) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    # The last window ends on the last token instead of leaving a two-token scrap.
    assert chunk_windows(list(range(9)), 4, 0, 16) == [[0, 1, 2, 3], [4, 5, 6, 7], [5, 6, 7, 8]]
    assert chunk_windows([], 4, 1, 16) == [[]]


def test_chunk_windows_past_the_cap_spread_over_the_text() -> None:
    chunks = chunk_windows(list(range(100)), window=4, overlap=0, max_chunks=5)
    assert [c[0] for c in chunks] == [0, 24, 48, 72, 96]
    assert all(len(c) == 4 for c in chunks)


@pytest.mark.parametrize(
    "kwargs", [{"window": 0}, {"overlap": 4}, {"overlap": -1}, {"max_chunks": 0}]
)
def test_chunk_windows_reject_bad_parameters(kwargs: dict) -> None:
    args = {"window": 4, "overlap": 1, "max_chunks": 2, **kwargs}
    with pytest.raises(ValueError, match="chunking needs"):
        chunk_windows(list(range(10)), **args)


@pytest.mark.parametrize(
    ("setting", "share", "expected"),
    [
        ("auto", None, False),  # not a text encoder / not measured
        ("auto", 0.0, False),
        ("auto", embeddings.CHUNK_WHEN_TRUNCATED_SHARE - 0.01, False),
        ("auto", embeddings.CHUNK_WHEN_TRUNCATED_SHARE, True),
        ("auto", 1.0, True),
        ("off", 1.0, False),
        ("on", 0.0, True),
        (True, None, True),
        (False, 1.0, False),
    ],
)
def test_should_chunk_rule(setting, share, expected) -> None:
    assert embeddings.should_chunk(setting, share) is expected


def test_chunk_setting_normalises_and_names_the_field() -> None:
    assert [embeddings.chunk_setting(v) for v in ("auto", "ON", "false", True, False)] == [
        "auto",
        "on",
        "off",
        "on",
        "off",
    ]
    with pytest.raises(ValueError, match="chunk_long_texts must be 'auto', 'on' or 'off'"):
        embeddings.chunk_setting("sometimes")
    with pytest.raises(ValueError, match="chunk_long_texts"):
        embeddings.chunk_setting(1)


# ---------------------------------------------------------------- real MiniLM


def test_short_texts_chunk_to_their_plain_embedding(minilm) -> None:
    texts = ["good film", "a slow, muddled and joyless mess", "", "word " * 250]
    assert minilm.n_truncated(texts) == 0
    np.testing.assert_allclose(minilm.encode_chunked(texts), minilm.encode(texts), atol=1e-5)


def test_long_texts_are_truncated_and_chunked(minilm) -> None:
    ds = long_text_dataset(per_class=2)
    counts = minilm.token_counts(list(ds.items))
    assert (counts > minilm.max_length).all()
    # The class words start past the context: the truncated encoder never reads them.
    for text, label in zip(ds.items, ds.labels, strict=True):
        opening = text[: min(text.find(s) for s in TOPICS[label] if s in text)]
        assert minilm.token_counts([opening])[0] > minilm.max_length + 20
    chunked = minilm.encode_chunked(list(ds.items))
    assert chunked.shape == (4, minilm.feature_dim)
    np.testing.assert_allclose(np.linalg.norm(chunked, axis=1), 1.0, atol=1e-5)
    assert embeddings.truncated_share(list(ds.items), "minilm") == 1.0
    assert embeddings.truncated_share(["short"], "minilm") == 0.0
    assert embeddings.truncated_share(["short"], "efficientnet-lite0") is None


def test_chunked_and_plain_features_are_cached_apart(minilm) -> None:
    ds = long_text_dataset(per_class=2, seed=1)
    plain = embeddings.encode(ds, "minilm", device="cpu").features
    chunked = embeddings.encode(ds, "minilm", device="cpu", chunked=True).features
    assert not np.allclose(plain, chunked, atol=1e-3)
    files = sorted(p.name for p in embeddings.cache_dir().glob(f"{ds.fingerprint}-*.npz"))
    assert len(files) == 2 and any("chunks" in f for f in files)
    embeddings.clear_memory()  # from disk now
    np.testing.assert_array_equal(embeddings.encode(ds, "minilm", chunked=True).features, chunked)
    np.testing.assert_array_equal(embeddings.encode(ds, "minilm").features, plain)


def test_chunking_needs_a_text_encoder() -> None:
    from PIL import Image

    images = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(2)]
    ds = Dataset("px", "image", images, ["a", "b"], fingerprint_of("image", images, ["a", "b"]))
    with pytest.raises(ValueError, match="chunked features need a text encoder"):
        embeddings.encode(ds, "efficientnet-lite0", chunked=True)


def test_truncation_heavy_texts_get_chunked_features(minilm) -> None:
    """The class sits after the first 256 tokens: truncated features are at chance, chunked not."""
    from tladvisor.strategies.feature_extraction import fit_linear_probe

    ds = long_text_dataset(per_class=24)
    y = ds.label_ids()
    rows = np.random.default_rng(0).permutation(len(ds))
    train, test = rows[:28], rows[28:]
    accuracy = {}
    for chunked in (False, True):
        x = embeddings.encode(ds, "minilm", device="cpu", chunked=chunked).features
        probe = fit_linear_probe(x[train], y[train], x[train], y[train], 2, [1.0])
        accuracy[chunked] = float(np.mean(probe.proba(x[test]).argmax(1) == y[test]))
    print(f"20 held-out long texts: truncated {accuracy[False]:.2f}, chunked {accuracy[True]:.2f}")
    assert accuracy[False] <= 0.7
    assert accuracy[True] >= 0.9


def test_scoring_chunks_text_models_on_long_texts(minilm) -> None:
    from tladvisor.scoring import rank_models

    long = rank_models(long_text_dataset(per_class=4, seed=2), ["minilm"])[0]
    assert long["chunked"] is True and long["truncated_share"] == 1.0
    items = ["good film", "bad film", "great acting", "dull plot"] * 2
    labels = ["pos", "neg", "pos", "neg"] * 2
    short = Dataset("short", "text", items, labels, fingerprint_of("text", items, labels))
    row = rank_models(short, ["minilm"])[0]
    assert row["chunked"] is False and row["truncated_share"] == 0.0
