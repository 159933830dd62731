"""Tests for tladvisor.data: loaders on real files written in tmp_path, limits, fingerprints, splits."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tladvisor import data
from tladvisor.data import (
    IMAGE,
    TEXT,
    DataError,
    Dataset,
    TaskData,
    fingerprint_of,
    load_any,
    load_image_csv,
    load_image_folder,
    load_image_zip,
    load_path,
    load_sample,
    load_text_csv,
    sample_names,
    sample_path,
    split_dataset,
)
from tladvisor.data.splits import evaluation_split, split_problem

REPO = Path(__file__).resolve().parent.parent
POS = ["a warm, funny film", "loved every minute", "great acting", "a delight", "superb", "moving"]
NEG = ["dull and long", "a mess", "boring plot", "weak script", "I left early", "tedious"]


# ----------------------------------------------------------------------------- helpers


def csv_text(rows: list[list[str]], header: list[str] | None = None, delim: str = ",") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delim, lineterminator="\n")
    writer.writerow(header or ["text", "label"])
    writer.writerows(rows)
    return buf.getvalue()


def reviews() -> list[list[str]]:
    return [[t, "positive"] for t in POS] + [[t, "negative"] for t in NEG]


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def png(
    mode: str = "RGB", size: tuple[int, int] = (8, 6), color: object = 0, fmt: str = "PNG"
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format=fmt)
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def digits_zip(prefix: str = "", n: int = 3) -> dict[str, bytes]:
    """``n`` distinct small grey images in each of the class folders ``a`` and ``b``."""
    return {
        f"{prefix}{c}/{i}.png": png("L", (10, 10), 40 * i + k)
        for k, c in enumerate("ab")
        for i in range(n)
    }


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*")}


# ----------------------------------------------------------------------------- text: good files


def test_standard_columns_are_found(tmp_path: Path) -> None:
    ds = load_text_csv(write(tmp_path, "movies.csv", csv_text(reviews())))
    assert ds.modality == TEXT and ds.name == "movies" and ds.source == "movies.csv"
    assert ds.items[:2] == POS[:2] and ds.class_counts == {"negative": 6, "positive": 6}
    assert ds.notes == []


def test_common_names_any_case_and_order(tmp_path: Path) -> None:
    rows = [[lab, "x", txt] for txt, lab in reviews()]
    ds = load_text_csv(csv_text(rows, ["Sentiment", "other", "Review"]).encode())
    assert ds.items[0] == POS[0] and ds.labels[0] == "positive"
    assert "'Review' as the text" in ds.notes[0] and "'Sentiment' as the label" in ds.notes[0]


def test_heuristic_columns_skip_id(tmp_path: Path) -> None:
    rows = [[str(i), txt, lab] for i, (txt, lab) in enumerate(reviews())]
    ds = load_text_csv(csv_text(rows, ["id", "words", "grp"]).encode())
    assert ds.items == [r[1] for r in rows] and set(ds.labels) == {"positive", "negative"}


def test_named_columns_override(tmp_path: Path) -> None:
    rows = [[txt, lab, "z" + txt] for txt, lab in reviews()]
    ds = load_text_csv(
        csv_text(rows, ["text", "label", "Alt"]).encode(), text_col="alt", label_col="label"
    )
    assert ds.items[0] == "z" + POS[0]


def test_unknown_column_lists_columns() -> None:
    with pytest.raises(DataError, match=r"no column 'sentiment'.*'text', 'label'"):
        load_text_csv(csv_text(reviews()).encode(), label_col="sentiment")


def test_same_column_for_text_and_label_is_rejected() -> None:
    with pytest.raises(DataError, match="same column"):
        load_text_csv(csv_text(reviews()).encode(), text_col="label", label_col="LABEL")


@pytest.mark.parametrize(
    ("encoding", "note"),
    [
        ("utf-8", None),
        ("utf-8-sig", None),
        ("latin-1", "cp1252"),
        ("utf-16", "utf-16"),
        ("utf-16-le", "utf-16-le"),
    ],
)
def test_encodings(tmp_path: Path, encoding: str, note: str | None) -> None:
    rows = reviews() + [["café crème, très bon", "positive"]]
    ds = load_text_csv(write(tmp_path, "r.csv", csv_text(rows), encoding))
    assert ds.items[-1] == "café crème, très bon" and ds.labels[0] == "positive"
    encoding_notes = [n for n in ds.notes if "not UTF-8" in n]
    assert (note is None and not encoding_notes) or (note is not None and note in encoding_notes[0])
    # the decoded content, not the bytes, decides the fingerprint
    assert ds.fingerprint == load_text_csv(csv_text(rows).encode()).fingerprint


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiters(delim: str) -> None:
    ds = load_text_csv(csv_text(reviews(), delim=delim).encode())
    assert ds.items == POS + NEG
    assert (delim == ",") == (not any("delimited" in n for n in ds.notes))


def test_semicolon_file_with_commas_in_unquoted_text() -> None:
    raw = "text;label\n" + "\n".join(f"{t}, really;{lab}" for t, lab in reviews())
    ds = load_text_csv(raw.encode())
    assert ds.items[0] == POS[0] + ", really"


def test_quoted_newlines_and_crlf() -> None:
    rows = reviews() + [["line one\nline two, with comma", "negative"]]
    raw = csv_text(rows).replace("\n", "\r\n").replace("one\r\nline", "one\nline")
    ds = load_text_csv(raw.encode())
    assert ds.items[-1] == "line one\nline two, with comma" and len(ds) == 13


def test_sources_path_str_bytes_filelike(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", csv_text(reviews()))
    upload = io.BytesIO(path.read_bytes())
    upload.name = "uploaded.csv"  # like Streamlit's UploadedFile
    upload.read()  # a Streamlit rerun hands back the same, already read, file
    fps = {load_text_csv(s).fingerprint for s in (path, str(path), path.read_bytes(), upload)}
    assert len(fps) == 1
    assert load_text_csv(upload).name == "uploaded"
    assert load_text_csv(path.read_bytes(), name="mine").name == "mine"
    assert load_text_csv(path.read_bytes()).name == "upload"


def test_header_that_looks_like_data_is_noted() -> None:
    ds = load_text_csv(("\n".join(f"{t},{lab}" for t, lab in reviews()[1:])).encode())
    assert any("no header row" in n and "'positive'" in n for n in ds.notes)


def test_unnamed_and_trailing_columns() -> None:
    raw = ",label,\n" + "\n".join(f'"{t}",{lab},' for t, lab in reviews())
    ds = load_text_csv(raw.encode())
    assert ds.items[0] == POS[0] and ds.labels[0] == "positive"
    assert any("without a header name" in n for n in ds.notes)


# ----------------------------------------------------------------------------- text: bad files


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"  \n\n ", "empty"),
        (b"text,label\n", "no rows"),
        (b"\xef\xbb\xbftext,label\r\n", "no rows"),
        ("text\n" + "\n".join(POS), "one column"),
        ("text,label\n" + "\n".join(f"{t} ,x" for t in POS), "one class"),
        (bytes(range(256)) * 40, "binary"),
        (png(), "PNG image"),
        (make_zip({"a.txt": b"x"}), "ZIP archive"),
        (b"text,label\nfine,a\nthis,has,too,many,fields\nok,b\n", "could not be parsed"),
    ],
)
def test_bad_csvs(content: str | bytes, words: str) -> None:
    raw = content.encode() if isinstance(content, str) else content
    with pytest.raises(DataError, match=words):
        load_text_csv(raw)


def test_blank_and_nan_rows_are_dropped_with_a_note() -> None:
    rows = reviews() + [
        ["", "positive"],
        ["no label", ""],
        ["nan label", "NaN"],
        ["   ", "negative"],
    ]
    ds = load_text_csv(csv_text(rows).encode())
    assert len(ds) == 12
    note = next(n for n in ds.notes if "dropped" in n)
    assert "dropped 4 row(s)" in note and "line(s) 14, 15, 16, 17" in note


def test_nothing_left_after_dropping_is_an_error() -> None:
    with pytest.raises(DataError, match="every row has an empty"):
        load_text_csv(csv_text([["", "a"], ["x", ""], ["NA", "b"]]).encode())


def test_single_example_class_is_kept_with_note_and_splits() -> None:
    ds = load_text_csv(csv_text(reviews() + [["odd one", "neutral"]]).encode())
    assert ds.class_counts["neutral"] == 1
    assert any("single example" in n and "'neutral'" in n for n in ds.notes)
    split = split_dataset(ds, seed=3)
    assert set(ds.label_ids()[split.train]) == {0, 1, 2}  # the singleton trains


def test_too_many_classes_says_group_labels() -> None:
    rows = [[f"text {i} {j}", f"c{i}"] for i in range(1001) for j in range(2)]
    with pytest.raises(DataError, match=r"1001 classes, above the limit of 1000\. Group labels"):
        load_text_csv(csv_text(rows).encode())


def test_mostly_unique_guessed_label_column_suggests_an_id_column() -> None:
    rows = [[str(i), t] for i, (t, _) in enumerate(reviews())]  # no label column: the ID is guessed
    with pytest.raises(DataError, match="most labels are unique. Did you pick an ID"):
        load_text_csv(csv_text(rows, ["review_id", "review"]).encode())


ZERO_SHOT_NOTE = "5 distinct labels for 5 examples (5 of 5 classes have one example)"
TOPICS = [
    ["the striker scored twice", "sport"],
    ["rates rose again", "finance"],
    ["a new vaccine trial", "health"],
    ["the band's new album", "music"],
    ["heavy rain tomorrow", "weather"],
]


def test_named_or_label_called_column_with_one_example_a_class_is_a_note() -> None:
    named = load_text_csv(csv_text(TOPICS, ["text", "topic"]).encode(), label_col="topic")
    by_name = load_text_csv(csv_text(TOPICS).encode())  # the column is called "label"
    for ds in (named, by_name):
        assert len(ds) == 5 and len(ds.classes) == 5
        assert any(ZERO_SHOT_NOTE in n and "strategies that train refuse it" in n for n in ds.notes)
        assert not any("single example" in n for n in ds.notes)  # one note, not two


def test_named_id_column_loads_with_the_note() -> None:
    rows = [[str(i), t, lab] for i, (t, lab) in enumerate(reviews())]
    ds = load_text_csv(csv_text(rows, ["id", "text", "label"]).encode(), label_col="id")
    assert len(ds.classes) == 12 and any("12 distinct labels for 12" in n for n in ds.notes)


def test_size_cap_from_env_is_checked_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    class Upload:  # Streamlit's UploadedFile reports .size; reading it must not happen
        name, size = "big.csv", 3 * 1024 * 1024

        def read(self, *_: object) -> bytes:
            raise AssertionError("read before the size check")

    monkeypatch.setenv("TLADVISOR_MAX_UPLOAD_MB", "2")
    with pytest.raises(
        DataError,
        match=r"big\.csv is 3 MB \(3,145,728 bytes\), above the 2 MB \(2,097,152 bytes\) upload "
        r"limit.*TLADVISOR_MAX_UPLOAD_MB",
    ):
        load_text_csv(Upload())  # type: ignore[arg-type]
    # One byte over: the rounded sizes are equal, the exact ones say why.
    with pytest.raises(DataError, match=r"2,097,164 bytes\), above the 2 MB \(2,097,152 bytes\)"):
        load_text_csv(b"text,label\n" + b"x" * (2 * 1024 * 1024 + 1))
    monkeypatch.setenv("TLADVISOR_MAX_UPLOAD_MB", "lots")
    with pytest.raises(DataError, match="TLADVISOR_MAX_UPLOAD_MB='lots' is not a number"):
        load_text_csv(csv_text(reviews()).encode())


def test_size_cap_on_paths_and_unseekable_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "MAX_UPLOAD_MB", 0.001)  # 1 kB
    path = write(tmp_path, "r.csv", csv_text(reviews() * 10))
    with pytest.raises(DataError, match="upload limit"):
        load_text_csv(path)

    class Pipe(io.RawIOBase):  # not seekable: the read itself is bounded
        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:
            b[:] = b"x" * len(b)
            return len(b)

    with pytest.raises(DataError, match="upload limit"):
        load_text_csv(io.BufferedReader(Pipe()))


def test_long_texts_are_truncated_with_note() -> None:
    rows = reviews() + [["w" * (data.MAX_TEXT_CHARS + 500), "negative"]]
    ds = load_text_csv(csv_text(rows).encode())
    assert len(ds.items[-1]) == data.MAX_TEXT_CHARS
    assert any("truncated 1 text(s)" in n for n in ds.notes)


def test_missing_file_and_wrong_type() -> None:
    with pytest.raises(DataError, match="no file at"):
        load_text_csv("/nonexistent/x.csv")
    with pytest.raises(DataError, match="expected a file path, bytes"):
        load_text_csv(12)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- images


def mode_images() -> dict[str, bytes]:
    """One image in each awkward mode, per class."""
    rgba = Image.new("RGBA", (6, 4), (255, 0, 0, 0))  # fully transparent red -> white
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    pal = Image.new("P", (5, 5), 0)
    pal.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    sixteen = Image.fromarray(np.arange(48, dtype=np.uint16).reshape(6, 8) * 1365)
    out: dict[str, bytes] = {}
    for name, im, fmt in [
        ("rgba.png", rgba, "PNG"),
        ("cmyk.jpg", Image.new("CMYK", (7, 7), (0, 255, 255, 0)), "JPEG"),
        ("cmyk.tif", Image.new("CMYK", (7, 7), (0, 0, 0, 255)), "TIFF"),
        ("sixteen.png", sixteen, "PNG"),
        ("palette.gif", pal, "GIF"),
        ("grey.png", Image.new("L", (3, 9), 128), "PNG"),
        ("bits.bmp", Image.new("1", (4, 4), 1), "BMP"),
        ("la.png", Image.new("LA", (4, 4), (0, 0)), "PNG"),
    ]:
        buf = io.BytesIO()
        im.save(buf, format=fmt)
        out[name] = buf.getvalue()
    return out


def test_folder_per_class_zip_converts_every_mode_to_rgb() -> None:
    members = {f"{c}/{n}": b for c in ("cat", "dog") for n, b in mode_images().items()}
    ds = load_image_zip(make_zip(members), name="pets")
    assert ds.modality == IMAGE and len(ds) == 16 and ds.class_counts == {"cat": 8, "dog": 8}
    assert all(im.mode == "RGB" for im in ds.items)
    by_name = dict(zip(sorted(members), ds.items, strict=True))
    rgba = by_name["cat/rgba.png"]
    assert rgba.size == (6, 4) and rgba.getpixel((1, 1)) == (255, 255, 255)
    assert rgba.getpixel((0, 0)) == (0, 0, 255)
    assert by_name["cat/la.png"].getpixel((0, 0)) == (255, 255, 255)
    sixteen = np.asarray(by_name["cat/sixteen.png"])
    assert sixteen[0, 0, 0] == 0 and sixteen[-1, -1, 0] == round(47 * 1365 / 65535 * 255)
    assert by_name["cat/palette.gif"].getpixel((0, 0)) == (0, 255, 0)
    assert np.asarray(by_name["cat/cmyk.tif"]).max() == 0
    assert by_name["cat/grey.png"].getpixel((0, 0)) == (128, 128, 128)


def test_wrapper_folder_macos_junk_and_loose_files_are_ignored() -> None:
    members = digits_zip("digits/") | {
        "__MACOSX/digits/a/._0.png": b"junk",
        "digits/.DS_Store": b"junk",
        "digits/a/.hidden.png": b"junk",
        "digits/a/Thumbs.db": b"junk",
    }
    ds = load_image_zip(make_zip(members))
    assert ds.class_counts == {"a": 3, "b": 3} and ds.notes == []
    loose = load_image_zip(make_zip(digits_zip() | {"README.txt": b"hello"}))
    assert any("outside the class folders" in n and "README.txt" in n for n in loose.notes)


def test_zip_member_order_does_not_change_the_fingerprint() -> None:
    members = digits_zip()
    reordered = dict(reversed(list(members.items())))
    assert (
        load_image_zip(make_zip(members)).fingerprint
        == load_image_zip(make_zip(reordered)).fingerprint
    )


@pytest.mark.parametrize(
    "evil", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png"]
)
def test_path_traversal_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: str
) -> None:
    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in digits_zip().items():
            zf.writestr(name, content)
        zf.writestr(zipfile.ZipInfo(evil), png())  # ZipInfo keeps the name as given
    with pytest.raises(DataError, match="outside the archive"):
        load_image_zip(buf.getvalue())
    assert files_under(tmp_path) == set()


def test_zip_bomb_is_rejected_by_declared_size_before_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TLADVISOR_MAX_UNCOMPRESSED_MB", "8")
    bomb = make_zip(digits_zip() | {"a/zeros.png": bytes(16 * 1024 * 1024)})
    assert len(bomb) < 100_000  # highly compressible: small upload, large content

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("a member was read before the size check")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(DataError, match=r"unpacks to 16 MB, above the 8 MB limit"):
        load_image_zip(bomb)


def test_understated_member_size_cannot_inflate_past_it() -> None:
    # A crafted header declaring 100 bytes for 10 MB: zipfile stops at the declared size and the
    # CRC then fails, so the member is skipped as corrupt instead of inflating.
    raw = bytearray(make_zip(digits_zip() | {"a/liar.png": bytes(10 * 1024 * 1024)}))
    local = raw.find(b"a/liar.png") - 30  # the name follows the 30-byte local header
    central = raw.rfind(b"a/liar.png") - 46  # and the 46-byte central directory record
    assert raw[local : local + 4] == b"PK\x03\x04" and raw[central : central + 4] == b"PK\x01\x02"
    raw[local + 22 : local + 26] = struct.pack("<I", 100)
    raw[central + 24 : central + 28] = struct.pack("<I", 100)
    ds = load_image_zip(bytes(raw))
    assert len(ds) == 6 and any("corrupt" in n and "a/liar.png" in n for n in ds.notes)


def test_member_count_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "MAX_IMAGES", 5)
    with pytest.raises(DataError, match="holds 6 files, above the limit of 5"):
        load_image_zip(make_zip(digits_zip()))


def test_decompression_bomb_images_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 1000)
    members = digits_zip() | {"a/huge.png": png("L", (100, 100)), "b/huge.png": png("1", (40, 40))}
    ds = load_image_zip(make_zip(members))
    assert len(ds) == 6
    assert any("2 images over 1,000 pixels" in n and "a/huge.png" in n for n in ds.notes)
    assert Image.MAX_IMAGE_PIXELS != 1000  # Pillow's global cap is restored
    with pytest.raises(DataError, match="no readable images.*decompression-bomb"):
        load_image_zip(make_zip({"a/1.png": png("L", (50, 50)), "b/1.png": png("L", (50, 50))}))


def test_pillow_decompression_bomb_warning_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Our header check off; Pillow's own check (warning between 1x and 2x the cap) must still skip.
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 1000)
    # Patched where _decode_all looks it up: the image loaders live in tladvisor.data.images.
    monkeypatch.setattr(data.images, "_decode_image", _decode_with_pillow_check_first)
    ds = load_image_zip(make_zip(digits_zip() | {"a/big.png": png("L", (40, 40))}))
    assert len(ds) == 6 and any("decompression-bomb" in n for n in ds.notes)


_real_decode = data._decode_image


def _decode_with_pillow_check_first(raw: bytes, name: str) -> tuple[Image.Image, bool]:
    Image.open(io.BytesIO(raw))  # raises the warning (as an error) or DecompressionBombError
    return _real_decode(raw, name)


def test_corrupt_and_non_image_files_are_skipped_with_note() -> None:
    good = png("RGB", (20, 20), (1, 2, 3))
    members = digits_zip() | {
        "a/truncated.png": good[: len(good) // 2],
        "a/garbage.jpg": b"\xff\xd8\xff" + os.urandom(64),
        "b/notes.txt": b"just text",
        "b/empty.png": b"",
    }
    ds = load_image_zip(make_zip(members))
    assert len(ds) == 6
    corrupt = next(n for n in ds.notes if "corrupt" in n)
    assert "3 corrupt or truncated images" in corrupt and "a/truncated.png" in corrupt
    assert any("1 not images (e.g. b/notes.txt)" in n for n in ds.notes)


def test_no_valid_images_is_an_error() -> None:
    with pytest.raises(DataError, match="no readable images.*not images"):
        load_image_zip(make_zip({"a/x.txt": b"hi", "b/y.txt": b"there"}))


def test_large_images_are_shrunk_with_note() -> None:
    members = digits_zip() | {"a/wide.png": png("RGB", (2000, 100), (9, 9, 9))}
    ds = load_image_zip(make_zip(members))
    assert max(max(im.size) for im in ds.items) == data.MAX_IMAGE_SIDE
    assert any(f"shrank 1 image(s) to {data.MAX_IMAGE_SIDE} px" in n for n in ds.notes)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not a zip at all", "not a valid ZIP"),
        (make_zip({"1.png": png(), "2.png": png()}), "no class folders"),
        (make_zip({"a/1.png": png(), "a/2.png": png()}), "one class"),
    ],
)
def test_bad_zips(content: bytes, words: str) -> None:
    with pytest.raises(DataError, match=words):
        load_image_zip(content)


def test_one_image_a_class_loads_with_a_note_not_an_error(tmp_path: Path) -> None:
    names = ["astronaut", "coffee", "cat", "rocket", "camera"]
    members = {f"{c}/1.png": png("RGB", (9, 9), (40 * i, 0, 0)) for i, c in enumerate(names)}
    zipped = load_image_zip(make_zip(members))
    (tmp_path / "pics").mkdir()
    for c in names:
        (tmp_path / "pics" / f"{c}.png").write_bytes(members[f"{c}/1.png"])
    rows = "\n".join(f"{c}.png,{c}" for c in names)
    listed = load_image_csv(f"file,name\n{rows}\n".encode(), tmp_path / "pics")
    for ds in (zipped, listed):
        assert ds.modality == IMAGE and ds.classes == sorted(names)
        assert any(ZERO_SHOT_NOTE in n for n in ds.notes)


def test_image_folder_matches_zip(tmp_path: Path) -> None:
    for name, content in digits_zip().items():
        write_path = tmp_path / "imgs" / name
        write_path.parent.mkdir(parents=True, exist_ok=True)
        write_path.write_bytes(content)
    (tmp_path / "imgs" / ".DS_Store").write_bytes(b"junk")
    folder = load_image_folder(tmp_path / "imgs")
    assert folder.fingerprint == load_image_zip(make_zip(digits_zip())).fingerprint
    assert folder.name == "imgs"


def test_image_csv_with_zip_and_folder(tmp_path: Path) -> None:
    members = {f"pics/{i}.png": png("L", (6, 6), i * 20) for i in range(8)}
    rows = [[f"{i}.png", "even" if i % 2 == 0 else "odd"] for i in range(8)]
    table = csv_text(rows, ["filename", "label"]).encode()
    ds = load_image_csv(table, make_zip(members))  # base names match inside a subfolder
    assert len(ds) == 8 and ds.class_counts == {"even": 4, "odd": 4}
    assert ds.items[3].getpixel((0, 0)) == (60, 60, 60)
    for name, content in members.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content)
    rows_dir = [[f"./pics\\{i}.png", "even" if i % 2 == 0 else "odd"] for i in range(8)]
    in_dir = load_image_csv(csv_text(rows_dir, ["path", "cls"]).encode(), tmp_path, label_col="cls")
    assert in_dir.fingerprint == ds.fingerprint


def test_image_csv_guesses_the_file_column_by_extension() -> None:
    members = {f"{i}.jpg": png("RGB", (5, 5), (i, 0, 0), "JPEG") for i in range(6)}
    rows = [[f"{i}.jpg", "x" if i < 3 else "y"] for i in range(6)]
    ds = load_image_csv(csv_text(rows, ["pic", "kind"]).encode(), make_zip(members))
    assert ds.class_counts == {"x": 3, "y": 3} and "'pic' as the image" in ds.notes[0]


def test_image_csv_missing_files_are_listed(tmp_path: Path) -> None:
    members = {f"{i}.png": png() for i in range(4)}
    rows = [[f"{i}.png", "ab"[i % 2]] for i in range(7)]
    with pytest.raises(
        DataError, match=r"3 of 7 image\(s\).*'4.png', '5.png', '6.png'.*remove their rows"
    ):
        load_image_csv(csv_text(rows, ["image", "label"]).encode(), make_zip(members))


def test_image_csv_traversal_in_names_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "secret.png").write_bytes(png())
    rows = [["../secret.png", "a"], ["x.png", "b"], ["y.png", "a"], ["z.png", "b"]]
    with pytest.raises(DataError, match="outside the image folder"):
        load_image_csv(csv_text(rows, ["image", "label"]).encode(), tmp_path / "imgs")


# ----------------------------------------------------------------------------- dispatch and writes


def test_load_path_and_load_any_dispatch(tmp_path: Path) -> None:
    text = write(tmp_path, "t.csv", csv_text(reviews()))
    archive = write(tmp_path, "i.zip", make_zip(digits_zip()))
    assert load_path(text).modality == TEXT
    assert load_path(archive).modality == IMAGE
    (tmp_path / "dir" / "a").mkdir(parents=True)
    (tmp_path / "dir" / "b").mkdir()
    for name, content in digits_zip().items():
        (tmp_path / "dir" / name).write_bytes(content)
    assert load_path(tmp_path / "dir").fingerprint == load_path(archive).fingerprint
    listing = write(
        tmp_path,
        "l.csv",
        csv_text([[f"{c}/{i}.png", c] for c in "ab" for i in range(3)], ["image", "label"]),
    )
    assert load_path(listing, images=archive).class_counts == {"a": 3, "b": 3}
    assert load_any(archive.read_bytes()).modality == IMAGE  # no name: sniffed from content
    assert load_any(text.read_bytes()).modality == TEXT
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        load_path(write(tmp_path, "t.xlsx", b"x"))
    with pytest.raises(DataError, match="no file or folder"):
        load_path(tmp_path / "missing.csv")


def test_loaders_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    text = write(inputs, "t.csv", csv_text(reviews()))
    archive = write(inputs, "i.zip", make_zip(digits_zip("wrap/") | {"wrap/a/bad.png": b"\x89PNG"}))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = files_under(tmp_path)
    load_path(text)
    load_path(archive)
    assert files_under(tmp_path) == before


# ----------------------------------------------------------------------------- fingerprints


def test_fingerprint_ignores_name_but_not_labels(tmp_path: Path) -> None:
    a = load_text_csv(write(tmp_path, "a.csv", csv_text(reviews())))
    b = load_text_csv(write(tmp_path, "copy of a.csv", csv_text(reviews())), name="other")
    flipped = reviews()
    flipped[0][1] = "negative"
    c = load_text_csv(csv_text(flipped).encode())
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert fingerprint_of(TEXT, ["ab", "c"], ["x", "y"]) != fingerprint_of(
        TEXT, ["a", "bc"], ["x", "y"]
    )
    img = [Image.new("RGB", (2, 2))]
    assert fingerprint_of(IMAGE, img, ["x"]) != fingerprint_of(
        IMAGE, [Image.new("RGB", (1, 4))], ["x"]
    )


def test_fingerprint_is_stable_across_processes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", csv_text(reviews()))
    archive = write(tmp_path, "i.zip", make_zip(digits_zip()))
    code = (
        "import sys; from tladvisor.data import load_path; "
        "print(load_path(sys.argv[1]).fingerprint, load_path(sys.argv[2]).fingerprint)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(archive)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    assert out == [load_path(path).fingerprint, load_path(archive).fingerprint]


# ----------------------------------------------------------------------------- splits


def labelled(counts: dict[str, int]) -> Dataset:
    labels = [c for c, n in counts.items() for _ in range(n)]
    items = [f"item {i}" for i in range(len(labels))]
    return Dataset("t", TEXT, items, labels, fingerprint_of(TEXT, items, labels))


def test_split_is_stratified_disjoint_and_complete() -> None:
    ds = labelled({"a": 200, "b": 100, "c": 30})
    s = split_dataset(ds, seed=1)
    parts = np.concatenate([s.train, s.val, s.test])
    assert len(parts) == len(ds) == len(set(parts.tolist()))
    assert len(s.test) == 66 and len(s.val) == 50
    y = ds.label_ids()
    for part in (s.train, s.val, s.test):
        shares = np.bincount(y[part], minlength=3) / len(part)
        assert np.allclose(shares, [200 / 330, 100 / 330, 30 / 330], atol=0.03)


def test_split_is_seeded() -> None:
    ds = labelled({"a": 40, "b": 40})
    one, two, other = (
        split_dataset(ds, seed=7),
        split_dataset(ds, seed=7),
        split_dataset(ds, seed=8),
    )
    assert all(np.array_equal(getattr(one, p), getattr(two, p)) for p in ("train", "val", "test"))
    assert not np.array_equal(one.test, other.test)


def test_max_train_keeps_every_class_and_the_test_set() -> None:
    ds = labelled({"a": 100, "b": 20, "c": 5})
    full, capped = split_dataset(ds, seed=0), split_dataset(ds, seed=0, max_train=9)
    y = ds.label_ids()
    assert len(capped.train) == 9 and np.bincount(y[capped.train]).tolist() == [3, 3, 3]
    assert set(capped.train) <= set(full.train) and np.array_equal(capped.test, full.test)
    tiny = split_dataset(ds, seed=0, max_train=1)  # below the class count: one a class
    assert sorted(y[tiny.train].tolist()) == [0, 1, 2]


def test_split_small_classes_fall_back_and_still_train_every_class() -> None:
    ds = labelled({"a": 2, "b": 2, "c": 1, "d": 9})
    for seed in range(10):
        s = split_dataset(ds, seed=seed)
        assert set(ds.label_ids()[s.train].tolist()) == {0, 1, 2, 3} and len(s.val) and len(s.test)


def test_split_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="one class"):
        split_dataset(labelled({"a": 10}))
    with pytest.raises(DataError, match="too few"):
        split_dataset(labelled({"a": 1, "b": 2}))
    with pytest.raises(ValueError, match="sum below 1"):
        split_dataset(labelled({"a": 10, "b": 10}), val_frac=0.5, test_frac=0.5)


def test_mostly_unique_labels_cannot_be_split_but_can_all_be_tested() -> None:
    ds = labelled({"a": 3, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1})  # 6 classes, 8 examples
    assert split_problem(ds) == (
        "6 classes for 8 examples leave most classes a single example, which cannot be both "
        "trained on and tested"
    )
    with pytest.raises(DataError, match="cannot be both trained on and tested"):
        split_dataset(ds)
    assert split_problem(labelled({"a": 3, "b": 3})) is None
    s = evaluation_split(ds, seed=4)
    assert s.test.tolist() == list(range(8)) and len(s.train) == len(s.val) == 0 and s.seed == 4
    task = TaskData(ds, s)
    assert task.y("test").tolist() == ds.label_ids().tolist() and task.items("train") == []


def test_task_data_views() -> None:
    ds = labelled({"a": 10, "b": 10})
    task = TaskData(ds, split_dataset(ds))
    assert task.modality == TEXT and task.classes == ["a", "b"]
    assert task.items("test") == [ds.items[i] for i in task.split.test]
    assert task.y("train").tolist() == ds.label_ids()[task.split.train].tolist()


# ----------------------------------------------------------------------------- samples


def test_sample_names_and_unknown() -> None:
    assert sample_names() == ["rotten_tomatoes", "mnist_digits"]
    assert sample_path("mnist_digits") == REPO / "data" / "samples" / "mnist_digits.zip"
    with pytest.raises(DataError, match="no sample 'imagenet'.*rotten_tomatoes, mnist_digits"):
        load_sample("imagenet")


def test_rotten_tomatoes_sample() -> None:
    ds = load_sample("rotten_tomatoes")
    assert ds.modality == TEXT and ds.source == "sample:rotten_tomatoes"
    assert ds.class_counts == {"negative": 1000, "positive": 1000}
    assert all(t == " ".join(t.split()) and t for t in ds.items)


def test_mnist_sample() -> None:
    ds = load_sample("mnist_digits")
    assert ds.modality == IMAGE and len(ds) == 5000 and ds.classes == [str(d) for d in range(10)]
    assert set(ds.class_counts.values()) == {500}
    assert {(im.mode, im.size) for im in ds.items} == {("RGB", (28, 28))}
    assert ds.notes == []
    assert sample_path("mnist_digits").stat().st_size < 3 * 1024 * 1024


def test_build_samples_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "build_samples", REPO / "scripts" / "build_samples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.build(tmp_path)
    for name, path in written.items():
        assert path.read_bytes() == (REPO / "data" / "samples" / name).read_bytes(), name


def test_read_columns_matches_what_the_loader_parses(tmp_path: Path) -> None:
    # BOM + semicolons + a trailing delimiter: the picker must offer the loader's names, not raw text.
    raw = "\ufeff Review ;Sentiment;\n" + "\n".join(f"{t};{lab};" for t, lab in reviews())
    path = write(tmp_path, "semi.csv", raw)
    upload = io.BytesIO(path.read_bytes())
    upload.name = "semi.csv"  # like Streamlit's UploadedFile
    assert data.read_columns(path) == data.read_columns(upload) == ["Review", "Sentiment"]
    ds = load_text_csv(path, text_col="Review", label_col="Sentiment")
    assert ds.items == POS + NEG
    with pytest.raises(DataError, match="one column"):
        data.read_columns(b"text\nonly one column\n")


def test_one_label_written_two_ways_is_one_class_and_look_alikes_are_named(tmp_path):
    """café as one code point and as e + combining accent, and with a zero-width space, is one
    class (with a note); labels that differ only by case, width or numeric spelling stay apart
    but are named, and --merge-labels merges them into the most frequent spelling."""
    from tladvisor.data import load_text_csv, merge_lookalikes

    nfc, nfd = "caf\u00e9", "cafe\u0301"
    rows = [(f"text {i}", label) for i, label in enumerate(
        [nfc] * 3 + [nfd] * 2 + ["caf\u200b\u00e9"] + ["tea"] * 6
    )]  # fmt: skip
    path = tmp_path / "drinks.csv"
    path.write_text("text,label\n" + "\n".join(f"{t},{lab}" for t, lab in rows) + "\n",
                    encoding="utf-8")  # fmt: skip
    ds = load_text_csv(path)
    assert ds.class_counts == {nfc: 6, "tea": 6}
    assert any("normalised 3 label(s)" in n for n in ds.notes)

    numbers = ["1"] * 4 + ["1.0", "01", "1e0", "True"] + ["2"] * 8 + ["\uff34\uff45\uff41", "Tea"]
    path = tmp_path / "numbers.csv"
    path.write_text("text,label\n" + "\n".join(f"row {i},{v}" for i, v in enumerate(numbers)) + "\n",
                    encoding="utf-8")  # fmt: skip
    ds = load_text_csv(path)
    assert len(ds.class_counts) == 8  # left apart...
    note = next(n for n in ds.notes if "differ only by case" in n)
    assert "'1' / '01' / '1.0' / '1e0' / 'True'" in note and "--merge-labels" in note
    merged = merge_lookalikes(ds)
    assert merged.class_counts == {"1": 8, "2": 8, "Tea": 2}  # ties: the first spelling sorted
    assert merged.fingerprint != ds.fingerprint
    assert any(n.startswith("merged look-alike labels") for n in merged.notes)
    assert merge_lookalikes(merged) is merged  # nothing left to merge
