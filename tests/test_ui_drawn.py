"""Faces of their own in the web app (lookalike/ui/drawn.py, sliders.py) through Streamlit's
AppTest, on the kiosk library and real photos: the Find card's "you ↔ them" morph and the
person's average face, the person view's average, the Explore page's face sliders.

The pictures are the verb layer's (``lib.pictures``); these tests check what the web app
does with them: they reach the page inline (``data:`` URLs, no ``/media/`` URL), decode to
real pictures, follow the controls, and nothing of the visitor is written anywhere.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import app_page, folder_files, row_counts, scratch_tempdir
from streamlit.testing.v1 import AppTest

from lookalike.store.values import Audience
from lookalike.ui import drawn

ROOT = Path(__file__).resolve().parents[1]
BBT = "celeb/faceapi_bbt"
IMG = re.compile(r'<img src="data:(image/(?:gif|png));base64,([^"]+)" alt="([^"]*)"')


def pictures(at: AppTest) -> dict[str, tuple[str, bytes]]:
    """The inline pictures drawn.inline put in the page: alt text -> (mime type, bytes)."""
    out = {}
    for element in at.get("html"):
        for mime, data, alt in IMG.findall(element.proto.body):
            out[alt] = (mime, base64.b64decode(data))
    return out


def frames(data: bytes) -> list[np.ndarray]:
    from PIL import Image, ImageSequence

    return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(io.BytesIO(data)))]




def _find(kiosk_db: Path, faces: Path, monkeypatch, photo: str) -> AppTest:
    at = app_page("find.py", kiosk_db, monkeypatch)
    path = faces / BBT / photo
    at.file_uploader[0].set_value((path.name, path.read_bytes(), "image/png"))
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_card_morphs_you_and_them_in_memory_only(kiosk_db, faces, monkeypatch, tmp_path):
    scratch = scratch_tempdir(monkeypatch, tmp_path)
    before, rows = folder_files(kiosk_db.parent), row_counts(kiosk_db)
    at = _find(kiosk_db, faces, monkeypatch, "howard/howard5.png")
    assert not pictures(at)  # nothing drawn until asked: a morph costs seconds
    toggles = [t for t in at.toggle if t.label == "You ↔ them"]
    assert len(toggles) == 3  # one per card
    toggles[0].set_value(True).run()
    assert not at.exception, at.exception
    shown = pictures(at)
    mime, data = shown["You morphing into Howard Wolowitz"]
    assert mime == "image/gif"
    played = frames(data)
    assert len(played) == 2 * drawn.MORPH_FRAMES - 2  # there and back
    assert played[0].shape[0] >= 128 and played[0].std() > 20  # a picture, not a blank frame
    assert np.abs(played[0].astype(int) - played[drawn.MORPH_FRAMES - 1].astype(int)).mean() > 5  # it moves
    assert "never stored" in "\n".join(c.value for c in at.caption)
    # another switch reruns the page: the morph is this session's, in its memory, not made again
    made = []
    from lookalike.verbs.pictures import Pictures

    morph = Pictures.morph
    monkeypatch.setattr(Pictures, "morph", lambda *a, **k: made.append(1) or morph(*a, **k))
    [t for t in at.toggle if t.label == "Their average face"][0].set_value(True).run()
    assert not at.exception, at.exception
    assert made == [] and pictures(at)["You morphing into Howard Wolowitz"][1] == data
    assert len(at.session_state[drawn.MEMO_KEY]) == 1
    # made in memory: no file written or changed beside the library, no row, nothing in TMPDIR
    assert folder_files(kiosk_db.parent) == before and row_counts(kiosk_db) == rows
    assert not any(scratch.iterdir())


def test_a_card_shows_their_average_face(kiosk_db, faces, monkeypatch):
    at = _find(kiosk_db, faces, monkeypatch, "penny/penny5.png")
    [t for t in at.toggle if t.label == "Their average face"][0].set_value(True).run()
    assert not at.exception, at.exception
    mime, data = pictures(at)["The average face of Penny Hofstadter"]
    assert mime == "image/png"
    [face] = frames(data)
    # a face, not a flat frame (a blank one has std 0; the average's soft background lowers it)
    assert face.shape[:2] == (drawn.CARD_SIZE, drawn.CARD_SIZE) and face.std() > 10


def test_a_visitor_gets_no_average_of_someone_who_withheld_consent(kiosk_db):
    """Sheldon's manifest row withholds consent: his average face is not for visitors."""
    import lookalike
    from lookalike.errors import LookalikeError

    with lookalike.open(kiosk_db) as lib:
        assert drawn.person_average(lib, "sheldon", Audience.operator).std() > 10  # the operator's view
        with pytest.raises(LookalikeError):
            drawn.person_average(lib, "sheldon", Audience.visitor)


def test_the_visitors_chosen_face_is_what_the_morph_takes():
    rgb = np.zeros((400, 600, 3), dtype=np.uint8)
    part = drawn.face_region(rgb, (500, 20, 80, 100), 0.8)
    assert part.shape == (20 + 100 + 80, 600 - 500 + 80, 3)  # grown by 0.8 x 100 px, clipped at the edges
    assert np.shares_memory(part, rgb)  # a view: nothing of the photo copied or kept


def explore(monkeypatch, db: Path, view: str) -> AppTest:
    monkeypatch.setenv("LOOKALIKE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "lookalike" / "ui" / "explore.py"), default_timeout=300)
    at.session_state["lk_operator"] = True
    at.session_state["view"] = view
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_person_view_shows_their_average_face(kiosk_db, monkeypatch):
    at = explore(monkeypatch, kiosk_db, "One person")
    at.selectbox(key="person").set_value("howard").run()
    assert not at.exception, at.exception
    mime, data = pictures(at)["The average face of Howard Wolowitz"]
    [face] = frames(data)
    assert mime == "image/png" and face.std() > 20


def test_the_face_sliders_draw_a_new_face_as_they_move(kiosk_db, monkeypatch):
    at = explore(monkeypatch, kiosk_db, "Face sliders")
    sliders = [s for s in at.slider if s.key and s.key.startswith("lk_sigma_")]
    assert 1 <= len(sliders) <= drawn.SLIDERS and all(s.value == 0.0 for s in sliders)
    assert all("of the differences" in s.label for s in sliders)
    (alt, (_, mean)), = pictures(at).items()
    assert alt.endswith("the average face")
    at.slider(key="lk_sigma_0").set_value(2.0).run()
    assert not at.exception, at.exception
    (alt, (_, moved)), = pictures(at).items()
    assert "direction 1 at +2.00 σ" in alt
    a, b = frames(mean)[0].astype(int), frames(moved)[0].astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() > 2  # a visibly different face
    at.slider(key="lk_sigma_0").set_value(-2.0).run()
    (_, (_, other)), = pictures(at).items()
    c = frames(other)[0].astype(int)
    assert np.abs(c - b).mean() > np.abs(a - b).mean()  # the two ends differ more than an end and the middle
    at.button(key="lk_sigma_reset").click().run()
    (alt, (_, back)), = pictures(at).items()
    assert alt.endswith("the average face") and back == mean


def _upload(at: AppTest, path: Path) -> AppTest:
    at.file_uploader[0].set_value((path.name, path.read_bytes(), "image/jpeg"))
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_morph_takes_the_face_the_visitor_chose(kiosk_db, faces, monkeypatch):
    at = _upload(app_page("find.py", kiosk_db, monkeypatch), faces / "bad-inputs/collected/multi_face__two_people.jpg")
    chooser = at.radio[1]
    assert "which one is you" in chooser.label
    drawn_faces = []
    for option in chooser.options[:2]:
        at.radio[1].set_value(option).run()
        [t for t in at.toggle if t.label == "You ↔ them"][0].set_value(True).run()
        assert not at.exception, at.exception
        assert not at.warning, at.warning[0].value  # two faces in the photo, yet one chosen: no "which one?"
        (_, (_, data)), = ((a, p) for a, p in pictures(at).items() if a.startswith("You morphing into"))
        drawn_faces.append(frames(data)[0].astype(int))
    assert np.abs(drawn_faces[0] - drawn_faces[1]).mean() > 10  # each choice morphs its own face


def test_a_face_too_small_to_draw_is_one_line_in_the_card(kiosk_db, faces, monkeypatch):
    """Howard's photo shrunk onto a larger canvas: still found (the search works from
    small faces), too small for the morph (the verbs want 64 px), which says so in the card."""
    from PIL import Image

    small = Image.open(faces / BBT / "howard" / "howard5.png").convert("RGB")
    small.thumbnail((48, 48))
    canvas = Image.new("RGB", (320, 320), (128, 128, 128))
    canvas.paste(small, (136, 136))
    data = io.BytesIO()
    canvas.save(data, "PNG")
    at = app_page("find.py", kiosk_db, monkeypatch)
    at.file_uploader[0].set_value(("small.png", data.getvalue(), "image/png"))
    at.run()
    assert not at.exception, at.exception
    [t for t in at.toggle if t.label == "You ↔ them"][0].set_value(True).run()
    assert not at.exception, at.exception
    warning = at.warning[0].value
    assert warning.startswith("No morph with this photo: the face is") and "at least 64 px" in warning
    assert "<array>" not in warning
    assert not [a for a in pictures(at) if a.startswith("You morphing into")]
