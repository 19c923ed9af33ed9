"""The detectors on real photos: dlib (HOG, then CNN when HOG finds nothing) and YuNet."""

from __future__ import annotations

import pytest

from lookalike.config import DEFAULT_DETECT_MAX_SIDE
from lookalike.faces import detect
from lookalike.faces.images import decode_file

# lfw-dev photos where dlib's HOG detector finds no face at any upsampling
HOG_MISSES = ["Tom_Daschle/Tom_Daschle_0021.jpg", "Jane_Fonda/Jane_Fonda_0002.jpg",
              "Saeb_Erekat/Saeb_Erekat_0002.jpg"]


@pytest.mark.parametrize("name", HOG_MISSES)
def test_cnn_second_look_finds_what_hog_misses(faces, name):
    rgb = decode_file(str(faces / "lfw-dev/images" / name), 10**8).rgb
    assert detect.build("dlib", DEFAULT_DETECT_MAX_SIDE, fallback=False).detect(rgb) == []
    found = detect.build("dlib", DEFAULT_DETECT_MAX_SIDE).detect(rgb)
    assert len(found) >= 1
    x, y, w, h = found[0].box
    # LFW photos are 250 x 250 with the face in the middle
    assert 60 <= w <= 160 and abs(x + w / 2 - 125) < 40 and abs(y + h / 2 - 125) < 40


def test_no_second_look_at_a_photo_without_a_face(faces):
    rgb = decode_file(str(faces / "bad-inputs/generated/degenerate__one_pixel.png"), 10**8).rgb
    assert detect.build("dlib", DEFAULT_DETECT_MAX_SIDE).detect(rgb) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_yunet_finds_no_face_on_a_thin_strip_whatever_ran_before(faces, threads):
    """The 4000 x 100 strip is detected at 1,280 x 32; at that height OpenCV's YuNet gave
    the previous photo's face (1 thread) or a face from nowhere (2 threads) until inputs
    were padded to 64 px: a photo's faces must not depend on the photo before it."""
    import cv2

    bad = faces / "bad-inputs"
    strip = decode_file(str(bad / "generated/degenerate__extreme_aspect_4000x100.png"), 10**8).rgb
    obama = decode_file(str(bad / "collected/resolution_ladder__obama-480p.jpg"), 10**8).rgb
    tiny = decode_file(str(bad / "generated/tiny_image__tiny_image_32x32.png"), 10**8).rgb
    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yunet = detect.build("yunet", DEFAULT_DETECT_MAX_SIDE)
        seen_tiny = set()
        for first in (None, obama, tiny, obama):
            if first is not None:
                assert yunet.detect(first)
            for _ in range(3):
                assert yunet.detect(strip) == []
                seen_tiny.add(tuple(d.box for d in yunet.detect(tiny)))
        assert len(seen_tiny) == 1 and len(next(iter(seen_tiny))) == 1  # the one face, each time
    finally:
        cv2.setNumThreads(before)
