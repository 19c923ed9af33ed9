"""The cost of decoding one hostile photo is bounded, and counted, not timed (issue 23).

* a TIFF of 160,000 one-page IFDs, or an IFD chain that loops back to its start: Pillow
  reads the first page and nothing else — no seek past frame 0, ``n_frames`` never read;
* animated GIF, APNG and WebP: the first frame, with no seek past it either;
* a 16-bit 6300 x 6300 PNG (77 KB) and a float TIFF of the same size (252 KB): the Python
  side allocates the RGB answer and strips of about a megapixel, no full-size float copy;
* every refusal names the file and says what is wrong with the photo in our words.
"""

from __future__ import annotations

import csv
import io
import runpy
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import BadImage
from lookalike.faces.images import TEXT_CHUNK, decode, decode_file

# Pillow's words, and a traceback's: none may reach a person
LEAKS = ("DOS", "PIL", "Plugin", "MAX_TEXT_CHUNK", "Traceback", "Error:", "ImageFile", "decoder error")
SIDE = 6300  # the 16-bit PNG and float TIFF


@pytest.fixture(scope="module")
def hostile(faces: Path, tmp_path_factory) -> dict[str, Path]:
    """The issue's hostile TIFFs, made by the shared generator into a temp folder."""
    tiff = runpy.run_path(str(faces.parent / "hostile" / "mktiff.py"))["tiff"]
    folder = tmp_path_factory.mktemp("hostile")
    files = {"pages_160k": (160_000, False), "looped": (1_000, True)}
    out = {}
    for name, (pages, loop) in files.items():
        out[name] = folder / f"{name}.tif"
        out[name].write_bytes(tiff(pages, loop))
    return out


@pytest.fixture
def frame_walks(monkeypatch) -> list[tuple[str, int]]:
    """Every seek Pillow's multi-frame readers make, recorded; reading a frame count that
    would walk the file fails the test at once."""
    from PIL import GifImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin

    seeks: list[tuple[str, int]] = []
    for cls in (TiffImagePlugin.TiffImageFile, GifImagePlugin.GifImageFile, PngImagePlugin.PngImageFile,
                WebPImagePlugin.WebPImageFile):
        for method in ("seek", "_seek"):
            original = getattr(cls, method, None)
            if original is None:
                continue

            def recorded(self, frame, *args, _original=original, _name=f"{cls.__name__}.{method}", **kw):
                seeks.append((_name, frame))
                return _original(self, frame, *args, **kw)

            monkeypatch.setattr(cls, method, recorded)

    def walked(self):
        raise AssertionError("a frame count that walks the file was read")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "n_frames", property(walked))
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "n_frames", property(walked))
    # a GIF's is_animated seeks to frame 1 (a TIFF's is a plain flag its first page sets)
    monkeypatch.setattr(GifImagePlugin.GifImageFile, "is_animated", property(walked))
    return seeks


@pytest.mark.parametrize("name", ["pages_160k", "looped"])
def test_many_page_tiff_reads_the_first_page_only(hostile, frame_walks, name):
    decoded = decode_file(str(hostile[name]), 100_000_000)
    assert decoded.rgb.shape == (1, 1, 3)
    assert frame_walks and all(frame == 0 for _, frame in frame_walks), frame_walks
    assert len(frame_walks) <= 2  # the open reads page 0 once; nothing else moves
    expected = "over 1,000" if name == "pages_160k" else "1,000"
    assert f"first of {expected} frames used" in decoded.notes


def _animation(fmt: str, frames: int = 40) -> bytes:
    from PIL import Image

    images = [Image.new("RGB", (32, 24), (i * 6, 100, 200 - i * 4)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animations_decode_their_first_frame_without_a_walk(frame_walks, fmt):
    decoded = decode(_animation(fmt), f"anim.{fmt.lower()}", 100_000_000)
    assert all(frame == 0 for _, frame in frame_walks), frame_walks
    assert decoded.notes == ["first of 40 frames used"]
    assert abs(int(decoded.rgb[0, 0, 2]) - 200) <= 3  # the first frame's colour, not a later one


def test_frame_counts_from_the_bytes_match_pillows_walk(faces):
    """The counts the notes give, read from the bytes, agree with Pillow's own full walk."""
    from PIL import Image

    from lookalike.faces.pixels import gif_frames, tiff_pages

    for data in (_animation("GIF", 7), (faces / "bad-inputs/collected/gif_animated__skimage_no_time_for_that_tiny.gif")
                 .read_bytes()):
        assert gif_frames(data) == Image.open(io.BytesIO(data)).n_frames
    pages = [Image.new("L", (9, 7), i * 20) for i in range(5)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    assert tiff_pages(buf.getvalue()) == 5 == Image.open(buf).n_frames


def _wide_png() -> bytes:
    """A 6300 x 6300 16-bit PNG of horizontal stripes: tens of KB on disk, 40 MP decoded."""
    from PIL import Image

    column = (np.arange(SIDE, dtype=np.uint32) * 10 % 65536).astype(np.uint16)
    img = Image.fromarray(np.repeat(column[:, None], SIDE, axis=1))  # uint16: I;16
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _peak_python_bytes(fn) -> int:
    """The peak of what Python and numpy allocate while ``fn`` runs (Pillow's own decode
    buffer is outside it: that is the decoded photo itself, bounded by the pixel limit)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_sixteen_bit_png_is_converted_without_full_size_copies():
    data = _wide_png()
    assert len(data) < 200_000
    out: list = []
    peak = _peak_python_bytes(lambda: out.append(decode(data, "wide.png", 100_000_000)))
    rgb = out[0].rgb
    answer = SIDE * SIDE * 3  # 119 MB: the RGB array handed back
    # before: float64 copies of the whole photo (318 MB each) on top of the answer
    assert peak < answer + 48 * 2**20, f"peak {peak / 2**20:.0f} MB for a {answer / 2**20:.0f} MB answer"
    rows = np.arange(SIDE) * 10 % 65536
    assert np.array_equal(rgb[:, 17, 0], ((rows + 128) // 257).astype(np.uint8))  # scaled, not clipped
    assert np.array_equal(rgb[:, :, 0], rgb[:, :, 2])


def test_float_tiff_is_stretched_without_full_size_copies():
    from PIL import Image

    column = np.linspace(-3.0, 5.0, SIDE, dtype=np.float32)
    column[7] = np.nan  # a hostile value must not spoil the stretch
    img = Image.fromarray(np.repeat(column[:, None], SIDE, axis=1), "F")
    buf = io.BytesIO()
    img.save(buf, "TIFF", compression="tiff_adobe_deflate")
    del img
    out: list = []
    peak = _peak_python_bytes(lambda: out.append(decode(buf.getvalue(), "float.tif", 100_000_000)))
    rgb = out[0].rgb
    assert peak < SIDE * SIDE * 3 + 48 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert rgb[0, 5, 1] == 0 and rgb[-1, 5, 1] == 255 and 120 <= rgb[SIDE // 2, 5, 1] <= 135
    assert rgb[7, 5, 1] == 0  # NaN set to the low end


def test_large_jpeg_is_drafted_when_asked(faces):
    """With ``max_side`` the JPEG decoder itself shrinks an 8000 x 6000 photo: a quarter of
    the side, not a full decode resized afterwards."""
    path = faces / "bad-inputs/generated/huge_image__huge_8000x6000.jpg"
    small = decode_file(str(path), 100_000_000, max_side=1280)
    assert small.rgb.shape == (1500, 2000, 3) and small.scale == 0.25
    assert "decoded at 1/4 size" in small.notes
    # after the draft, the pixel limit applies to what is decoded: 3 MP fits a 10 MP limit
    assert decode_file(str(path), 10_000_000, max_side=1280).rgb.shape == (1500, 2000, 3)


def test_normal_photos_decode_exactly_as_pillow_does(faces):
    """Bounding the cost changed no pixel of an ordinary photo: the crop and the vector see
    the same photo as before (every celeb JPEG, EXIF turn included)."""
    from PIL import Image, ImageOps

    photos = sorted((faces / "celeb").rglob("*.jp*g"))[::5]
    assert len(photos) >= 15
    for path in photos:
        ours = decode_file(str(path), 100_000_000)
        theirs = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        assert ours.scale == 1.0 and np.array_equal(ours.rgb, theirs), path


# -- reasons in our words -------------------------------------------------------------------
def _manifest(faces: Path) -> list[dict]:
    with open(faces / "bad-inputs" / "MANIFEST.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_bad_inputs_are_refused_in_our_words(faces):
    refused = 0
    for row in _manifest(faces):
        path = str(faces / "bad-inputs" / row["path"])
        try:
            decode_file(path, 100_000_000)
        except BadImage as err:
            refused += 1
            assert str(err).startswith(path) and err.reason
            assert not [w for w in LEAKS if w.lower() in err.reason.lower()], err.reason
    assert refused == 5


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, extra: bytes = b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + extra
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + _png_chunk(b"IEND", b""))


@pytest.mark.parametrize(("data", "status", "words"), [
    # 40,000 x 40,000 declared in 60 bytes: Pillow's own guard fires first, in its words
    (_png(40_000, 40_000), "too_large", "1,600,000,000 pixels, over the 50 MP limit"),
    (_png(9_000, 8_000), "too_large", "9,000 × 8,000 pixels (72,000,000), over the 50 MP limit"),
    # a zTXt chunk that inflates past Pillow's text limit
    (_png(4, 4, _png_chunk(b"zTXt", b"note\0\0" + zlib.compress(b"a" * (3 << 20)))), "decode_error", TEXT_CHUNK),
    (_png(4, 4)[:40], "decode_error", "damaged"),
    (b"II*\0" + b"\xff" * 60, "decode_error", "TIFF"),
], ids=["pillow_bomb", "over_the_limit", "text_chunk", "cut_short", "tiff_header"])
def test_hostile_headers_are_refused_in_our_words(data, status, words):
    with pytest.raises(BadImage) as err:
        decode(data, "hostile.png", 50_000_000)
    assert err.value.status == status and words in err.value.reason, err.value.reason
    assert str(err.value).startswith("hostile.png: ")
    assert not [w for w in LEAKS if w.lower() in err.value.reason.lower()], err.value.reason


def test_an_upload_is_named_in_its_refusal():
    """The API hands its uploads over with the sender's file name: a refusal names it."""
    from lookalike.faces.images import Upload, load_query

    with pytest.raises(BadImage) as err:
        load_query(Upload("holiday.png", _png(4, 4)[:40]), 50_000_000)
    assert err.value.path == "holiday.png" and str(err.value).startswith("holiday.png: ")
    rgb, name = load_query(Upload("ok.png", _png(4, 4)), 50_000_000)
    assert name == "ok.png" and rgb.shape == (4, 4, 3)
