"""Decoding real awkward files: every bad input decodes to RGB or says why not."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import BadImage
from lookalike.faces.images import decode, decode_file

DECODES = {"grayscale", "grayscale_16bit", "palette_png", "png_rgba", "png_la", "webp", "bmp",
           "tiff", "gif_animated", "exif_orientation", "wrong_extension", "huge_image",
           "degenerate", "tiny_image"}


def _manifest(faces):
    with open(faces / "bad-inputs" / "MANIFEST.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_bad_input_decodes_or_says_why(faces):
    rows = _manifest(faces)
    assert len(rows) == 56
    for row in rows:
        path = str(faces / "bad-inputs" / row["path"])
        if row["category"] == "corrupt" or row["category"] == "tiff_multipage":
            with pytest.raises(BadImage) as err:
                decode_file(path, 100_000_000)
            assert err.value.status == "decode_error"
            assert path in str(err.value) and err.value.reason
        else:
            img = decode_file(path, 100_000_000)
            assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3


def test_reasons_are_specific(faces):
    gen = faces / "bad-inputs" / "generated"
    reasons = {}
    for name in ("generated/corrupt__zero_bytes.jpg", "generated/corrupt__text_as_png.png",
                 "generated/corrupt__truncated.jpg", "generated/corrupt__garbage_bytes.jpg",
                 "collected/tiff_multipage__skimage_multipage_rgb.tif"):
        with pytest.raises(BadImage) as err:
            decode_file(str(gen.parent / name), 10**8)
        reasons[Path(name).name] = err.value.reason
    assert "empty" in reasons["corrupt__zero_bytes.jpg"]
    assert "text" in reasons["corrupt__text_as_png.png"]
    assert "the file ends before the image data does" in reasons["corrupt__truncated.jpg"]
    assert "not an image this program can read" in reasons["corrupt__garbage_bytes.jpg"]
    assert "starts like a TIFF file but its header is damaged" in reasons["tiff_multipage__skimage_multipage_rgb.tif"]


def test_exif_orientation_is_applied(faces):
    gen = faces / "bad-inputs" / "generated"
    upright = decode_file(str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg"), 10**8)
    for name in ("exif_orientation__exif_orientation_3.jpg", "exif_orientation__exif_orientation_8.jpg"):
        img = decode_file(str(gen / name), 10**8)
        assert img.rgb.shape == upright.rgb.shape  # width and height back in place
        assert any("EXIF orientation" in n for n in img.notes)
        diff = np.abs(img.rgb.astype(int) - upright.rgb.astype(int)).mean()
        assert diff < 5, f"{name} not upright (mean abs diff {diff:.1f})"


def test_plain_jpegs_decode_to_pillows_pixels_at_every_orientation_and_scale(faces, monkeypatch):
    """A whole JPEG is decoded by OpenCV straight into an array (faster), which must give
    exactly Pillow's pixels, turned and drafted alike: the same bytes with one byte after
    the end-of-image marker are left to Pillow, and both are compared."""
    import io

    import cv2
    from PIL import Image

    decoded_by_opencv = []
    imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded_by_opencv.append(1) or imdecode(*a))

    def both(data: bytes, **kw):
        decoded_by_opencv.clear()
        fast = decode(data, "fast.jpg", 10**8, **kw)
        assert decoded_by_opencv, "a plain JPEG should be decoded by OpenCV"
        decoded_by_opencv.clear()
        slow = decode(data + b"\0", "slow.jpg", 10**8, **kw)
        assert not decoded_by_opencv, "a JPEG with bytes after its end should be left to Pillow"
        assert fast.scale == slow.scale and fast.notes == slow.notes
        assert fast.rgb.shape == slow.rgb.shape and np.array_equal(fast.rgb, slow.rgb)
        return fast

    pixels = np.asarray(Image.open(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg"))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", exif=exif, quality=90)
        both(buf.getvalue())
    for mode in ("L", "RGB"):  # gray photos too, as three equal channels
        buf = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buf, "JPEG", quality=90, progressive=mode == "L")
        both(buf.getvalue())
    large = (faces / "celeb" / "deepface" / "deepface_id13" / "img40.jpg").read_bytes()  # 3061 x 4600
    assert {round(1 / both(large, max_side=side).scale) for side in (None, 2000, 1000, 500)} == {1, 2, 4, 8}
    monkeypatch.delattr(cv2, "IMREAD_COLOR_RGB", raising=False)  # OpenCV before 4.10: BGR, turned after
    both(large, max_side=1000)


def test_sixteen_bit_and_alpha_become_sensible_rgb(faces):
    gen = faces / "bad-inputs" / "generated"
    gray = decode_file(str(gen / "grayscale__grayscale_L.jpg"), 10**8).rgb
    wide = decode_file(str(gen / "grayscale_16bit__grayscale_L16.png"), 10**8).rgb
    assert abs(int(gray.mean()) - int(wide.mean())) < 8  # scaled down, not clipped to white
    rgba = decode_file(str(gen / "png_rgba__rgba_transparent_bg.png"), 10**8).rgb
    assert rgba[0, 0].tolist() == [255, 255, 255]  # transparency flattened on white


def test_wrong_extension_and_frames_are_noted(faces):
    gen = faces / "bad-inputs" / "generated"
    assert "content is PNG" in decode_file(str(gen / "wrong_extension__png_named_jpg.jpg"), 10**8).notes[0]
    assert "first of 3 frames" in decode_file(str(gen / "gif_animated__animated_3frames.gif"), 10**8).notes[0]


def test_pixel_limit_refuses_before_decoding(faces):
    path = faces / "bad-inputs" / "generated" / "huge_image__huge_8000x6000.jpg"
    with pytest.raises(BadImage) as err:
        decode_file(str(path), 10_000_000)
    assert err.value.status == "too_large" and "48,000,000" in err.value.reason
    assert "8,000 × 6,000 pixels" in err.value.reason and "10 MP limit" in err.value.reason


def test_decompression_bomb_is_refused_fast():
    import io
    import time

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (20000, 20000)).save(buf, "PNG")  # 400 MP of zeros, ~400 KB on disk
    started = time.thread_time()  # this thread's CPU seconds: the refusal's work, not the machine's load
    with pytest.raises(BadImage) as err:
        decode(buf.getvalue(), "bomb.png", 100_000_000)
    assert err.value.status == "too_large"
    assert time.thread_time() - started < 10.0  # only a hang: the refusal itself is the check
