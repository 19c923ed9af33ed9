"""Files small by their pixels and huge by their structure (security re-probe, 2026-12-07):
a JPEG of 3.5 M empty header segments, a PNG of a million tiny chunks, a GIF of millions of
comment blocks, a TIFF of 2 M strips each took Pillow 3.4-12.8 s of CPU to open, on the
server's event loop. Each is refused from its bytes before Pillow reads any of it, saying
what it holds too much of; no photo of the shared corpus is refused so."""

from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike.errors import BadImage
from lookalike.faces import images, structure

pytestmark = pytest.mark.e2e


def _no_pillow(monkeypatch) -> None:
    """Pillow's open made to fail the test from now on: a refusal must come before it."""
    from PIL import Image

    def opened(*_a, **_k):
        raise AssertionError("Pillow was asked to open a file that should have been refused before")

    monkeypatch.setattr(Image, "open", opened)


def _photo(faces, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(faces / "celeb" / "face_recognition" / "barack_obama" / "obama_small.jpg").convert("RGB").save(buf, fmt)
    return buf.getvalue()


def _padded_jpeg(photo: bytes) -> bytes:
    return b"\xff\xd8" + b"\xff\xe5\x00\x02" * 3_500_000 + photo[2:]


def _chunky_png(photo: bytes) -> bytes:
    chunk = struct.pack(">I", 0) + b"prIv" + struct.pack(">I", 0)  # empty private chunks
    return photo[:33] + chunk * 1_000_000 + photo[33:]  # after IHDR


def _talkative_gif(photo: bytes) -> bytes:
    header = 13 + (3 << ((photo[10] & 7) + 1) if photo[10] & 0x80 else 0)
    return photo[:header] + b"\x21\xfe" + b"\x01a" * 2_000_000 + b"\x00" + photo[header:]


def _strippy_tiff() -> bytes:
    """1 x 2,000,000 pixels of gray, one strip a row."""
    rows = 2_000_000
    entries = [(256, 4, 1, 1), (257, 4, 1, rows), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, rows, 0), (278, 4, 1, 1), (279, 4, rows, 0)]
    ifd = 8
    arrays = ifd + 2 + 12 * len(entries) + 4
    offsets_at, counts_at, pixels_at = arrays, arrays + 4 * rows, arrays + 8 * rows
    body = bytearray(b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        value = {273: offsets_at, 279: counts_at}.get(tag, value)
        body += struct.pack("<HHII", tag, kind, count, value)
    body += struct.pack("<I", 0)
    body += struct.pack(f"<{rows}I", *range(pixels_at, pixels_at + rows)) + struct.pack(f"<{rows}I", *[1] * rows)
    return bytes(body) + b"\x80" * rows


@pytest.mark.parametrize("kind", ["jpeg", "png", "gif", "tiff"])
def test_a_file_huge_by_its_structure_is_refused_before_pillow_reads_it(faces, kind, monkeypatch):
    made = {"jpeg": lambda: _padded_jpeg(_photo(faces, "JPEG")), "png": lambda: _chunky_png(_photo(faces, "PNG")),
            "gif": lambda: _talkative_gif(_photo(faces, "GIF")), "tiff": _strippy_tiff}
    data = made[kind]()
    _no_pillow(monkeypatch)
    with pytest.raises(BadImage) as refused:
        images.decode(data, f"hostile.{kind}", 40_000_000)
    said = str(refused.value)
    assert said.startswith(f"hostile.{kind}: ") and ("holds over" in said or "no photo is" in said), said
    assert refused.value.status == "decode_error"
    assert images.pixels(data) is None  # what the server asks on its event loop: refused as cheaply


def _progressive(faces) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(faces / "celeb" / "face_recognition" / "barack_obama" / "obama_small.jpg").save(
        buf, "JPEG", progressive=True)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["scans", "filler", "tables", "gif-junk", "pnm", "bmp-rle", "tiff-tag", "tiff-thin"])
def test_the_ways_round_the_first_walks_are_refused_too(faces, kind):
    """The second probe's files (2026-12-07, security re-probe 52): a progressive JPEG of
    100,000 empty scans (13.9 s of CPU), FF 00 filler or a hundred tables before the image, a
    GIF's junk bytes, a PNM header of 14 MB of comment, a run-length BMP, a TIFF tag of 1.7 M
    rationals, a 64 x 625,000 TIFF: each refused from its bytes, saying why."""
    jpeg = _photo(faces, "JPEG")
    gif = _photo(faces, "GIF")
    gif_header = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    tiff = _strippy_tiff()
    made = {
        "scans": lambda: (lambda p: p[:-2] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 100 + b"\xff\xd9")(
            _progressive(faces)),
        "filler": lambda: b"\xff\xd8" + b"\xff\x00" * 1000 + jpeg[2:],
        "tables": lambda: b"\xff\xd8" + (b"\xff\xdb\x00\x43" + bytes(65)) * 40 + jpeg[2:],
        "gif-junk": lambda: gif[:gif_header] + b"\x00" * 16 + gif[gif_header:],
        "pnm": lambda: b"P6\n# " + b"x" * 5000 + b"\n1 1\n255\n\x00\x00\x00",
        "bmp-rle": lambda: b"BM" + bytes(28) + (1).to_bytes(4, "little") + bytes(64),
        "tiff-tag": lambda: tiff[:8] + tiff[8:10] + struct.pack("<HHII", 282, 5, 1_700_000, 0) + tiff[22:],
        "tiff-thin": lambda: tiff,
    }
    data = made[kind]()
    said = structure.problem(data)
    assert said is not None and ("holds over" in said or "not a photo" in said or "save it as" in said
                                 or "no photo is" in said), (kind, said)
    with pytest.raises(BadImage):
        images.decode(data, f"hostile-{kind}", 40_000_000)


def test_only_photo_formats_are_opened(faces):
    """Pillow knows some 40 formats, each with a header parser of its own (a 14 MB PSD of
    resources took 3.3 s); only the formats a photo comes in are opened, the rest refused."""
    for data in (b"8BPS\x00\x01" + bytes(200), b"qoif" + bytes(200), b"\x00\x00\x01\x00\x01\x00" + bytes(200)):
        with pytest.raises(BadImage, match="not an image"):
            images.decode(data, "other.bin", 40_000_000)
    assert set(images.PHOTO_FORMATS) >= {"JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"}


def test_the_walks_pass_real_photos(faces):
    """Every file of the shared corpus (LFW, celebrities, UTKFace, FER-2013 and the 56 bad
    inputs) has the structure of a photo of its size; and the walks read what they claim:
    the same photo without its padding passes."""
    seen = 0
    for root, _, files in os.walk(faces):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                data = fh.read()
            assert structure.problem(data) is None, os.path.join(root, name)
            seen += 1
    assert seen > 4000
    for fmt in ("JPEG", "PNG", "GIF", "TIFF"):
        assert structure.problem(_photo(faces, fmt)) is None, fmt


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"\xff\xd8", structure.PNG_SIGNATURE, b"GIF89a", b"II*\x00", b"MM\x00*"]),
       st.binary(max_size=2048))
def test_the_walks_take_any_bytes_behind_a_signature(magic, rest):
    """Whatever follows a format's signature, a walk answers (a reason or None), never raises."""
    said = structure.problem(magic + rest)
    assert said is None or ("holds over" in said or "not a photo" in said or "save it as" in said), said
