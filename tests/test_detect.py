"""The default detector on real photos: HOG first, dlib's CNN when HOG finds nothing."""

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
