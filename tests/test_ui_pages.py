"""The web app's pages through Streamlit's AppTest, on a real library and real photos.

The kiosk library is the README's role-model manifest ingested as written; a visitor is
played by photo 5 of a person (not in the library under that photo).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import app_page, folder_files, row_counts, scratch_tempdir, wait_for
from streamlit.testing.v1 import AppTest

from lookalike.store.values import Audience
from lookalike.ui import common

ROOT = Path(__file__).resolve().parents[1]
BBT = "celeb/faceapi_bbt"


def _page(name: str, db: Path, monkeypatch, **env: str) -> AppTest:
    return app_page(name, db, monkeypatch, **env)


def _upload(at: AppTest, path: Path, data: bytes | None = None) -> AppTest:
    at.file_uploader[0].set_value((path.name, path.read_bytes() if data is None else data, "image/jpeg"))
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
                     + [i.value for i in at.info] + [s.value for s in at.subheader])


def _jpeg(path: Path) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.open(path).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()




def test_find_names_the_person_first_and_explains_the_numbers(kiosk_db, faces, monkeypatch, tmp_path):
    scratch = scratch_tempdir(monkeypatch, tmp_path)
    before, rows = folder_files(kiosk_db.parent), row_counts(kiosk_db)
    at = _page("find.py", kiosk_db, monkeypatch)
    assert "never stored" in at.info[0].value  # the privacy note is on the page before any photo
    _upload(at, faces / BBT / "howard" / "howard5.png")
    assert at.subheader[0].value == "People who look like you"
    cards = [m.value for m in at.markdown if m.value.startswith("### ")]
    assert cards[0] == "### 1. Howard Wolowitz" and len(cards) == 3
    assert "Aerospace engineer · Space Agency" in _texts(at)
    bars = [p for p in at.get("progress")]
    assert bars and "very likely the same person" in bars[0].proto.text
    assert "average face" in _texts(at)  # centroid figures in plain words
    # ...and it was all in memory: no file written or changed beside the library, not one row
    # added to the database, nothing in TMPDIR
    assert folder_files(kiosk_db.parent) == before and row_counts(kiosk_db) == rows
    assert not any(scratch.iterdir())


def test_a_display_name_is_text_in_the_numbers_explained_too(kiosk_db, faces, monkeypatch, tmp_path):
    """The card escaped a display name; the "What these numbers mean" lines did not (a link
    in a name was a live link there)."""
    import shutil

    import lookalike
    from lookalike.store.profiles import Profile

    folder = shutil.copytree(kiosk_db.parent, tmp_path / "kiosk")
    with lookalike.open(folder / kiosk_db.name) as lib:
        lib.people.save_profile("howard", Profile(display_name="Howard [site](http://example.invalid/a)",
                                                  consent_display=True))
    at = _page("find.py", folder / kiosk_db.name, monkeypatch)
    _upload(at, faces / BBT / "howard" / "howard5.png")
    lines = [m.value for m in at.markdown if m.value.startswith("- Compared with Howard")]
    assert lines and all("[site](" not in line and "\\[site\\]\\(http" in line for line in lines), lines


def test_find_estimates_only_when_asked_and_worded_as_estimates(kiosk_db, faces, analysis_weights, monkeypatch):
    at = _page("find.py", kiosk_db, monkeypatch)
    assert at.checkbox[0].value is False  # off by default
    _upload(at, faces / BBT / "penny" / "penny5.png")
    assert "Estimates" not in _texts(at)
    at.checkbox[0].check().run()
    text = _texts(at)
    assert "Estimates** (a model's guess, often wrong, never stored): age around" in text


def test_find_explains_bad_photos_in_the_page(kiosk_db, faces, monkeypatch):
    at = _page("find.py", kiosk_db, monkeypatch)
    bad = faces / "bad-inputs"
    _upload(at, bad / "generated/corrupt__truncated.jpg")
    assert "cannot be used as a photo" in at.error[0].value
    _upload(at, bad / "collected/non_face_scene__skimage_coffee.png")
    assert "No face was found" in at.warning[0].value
    _upload(at, bad / "collected/multi_face__kit_with_rose.jpg")
    chooser = at.radio[1]
    assert "which one is you" in chooser.label and len(chooser.options) >= 2
    chooser.set_value(chooser.options[1]).run()
    assert not at.exception and at.subheader[0].value == "People who look like you"
    huge = bad / "generated/huge_image__huge_8000x6000.jpg"  # 48 megapixels
    monkeypatch.setenv("LOOKALIKE_UI_MAX_PIXELS", "20000000")
    _upload(at, huge)
    assert "cannot be used as a photo" in at.error[0].value and "pixels" in at.error[0].value
    monkeypatch.setenv("LOOKALIKE_UI_MAX_MB", "2")
    at.run()  # the uploader's label names the limit: a new limit is a new widget
    _upload(at, faces / "celeb/deepface/deepface_id01/img1.jpg")  # 2.2 MB
    assert "photos up to 2 MB" in at.error[0].value


@pytest.mark.parametrize(("page", "name", "value"), [
    ("find.py", "LOOKALIKE_UI_MAX_MB", "lots"),
    ("explore.py", "LOOKALIKE_UI_MAX_PIXELS", "0"),
    ("role_models.py", "LOOKALIKE_KIOSK_IDLE", "soon"),
    ("role_models.py", "LOOKALIKE_UI_MAX_MB", "1.5"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(page, name, value, tmp_path, monkeypatch):
    at = _page(page, tmp_path / "nowhere.db", monkeypatch, **{name: value})
    assert len(at.error) == 1 and f"{name}={value!r}: expected" in at.error[0].value
    assert not at.warning  # the page stopped there: not even the "no library yet" advice


def test_ui_settings_are_read_when_needed(monkeypatch):
    from lookalike.errors import ConfigError
    from lookalike.ui.settings import DEFAULT_MAX_UPLOAD_MB, max_upload_mb

    monkeypatch.delenv("LOOKALIKE_UI_MAX_MB", raising=False)
    assert max_upload_mb() == DEFAULT_MAX_UPLOAD_MB
    monkeypatch.setenv("LOOKALIKE_UI_MAX_MB", "3")
    assert max_upload_mb() == 3
    with pytest.raises(common.UploadTooLarge, match="photos up to 3 MB"):
        common.read_upload(b"x" * (3 * 2**20 + 1), "big.jpg")
    monkeypatch.setenv("LOOKALIKE_UI_MAX_PIXELS", "many")
    with pytest.raises(ConfigError, match=r"^LOOKALIKE_UI_MAX_PIXELS='many': expected a whole number of pixels"):
        common.max_pixels()


def test_an_empty_or_missing_library_says_how_to_ingest(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.db"
    at = _page("find.py", missing, monkeypatch)
    assert "lookalike ingest" in at.warning[0].value and not missing.exists()
    assert str(tmp_path) not in at.warning[0].value  # where the library would be is the operator's
    import lookalike

    lookalike.open(tmp_path / "empty.db").close()
    at = _page("role_models.py", tmp_path / "empty.db", monkeypatch)
    assert "lookalike ingest" in at.warning[0].value


def test_kiosk_asks_consent_then_shows_consenting_role_models(kiosk_db, faces, monkeypatch):
    at = _page("role_models.py", kiosk_db, monkeypatch)
    assert not at.camera_input and "never saved" in _texts(at)
    at.button[0].click().run()  # "I agree — start the camera"
    assert at.camera_input, "the camera starts only after consent"
    tags = at.multiselect[0].options
    assert "women in science" in tags and "engineering" in tags
    assert not [t for t in tags if "comic" in t]  # nobody who declined to be shown
    at.camera_input[0].upload("photo.jpg", _jpeg(faces / BBT / "amy" / "amy5.png"))  # a camera gives JPEG
    at.run()
    assert not at.exception, at.exception
    names = [m.value for m in at.markdown if m.value.startswith("## ")]
    assert names[0] == "## Amy Farrah Fowler" and len(names) == 3
    assert not {"## Sheldon Cooper", "## Stuart Bloom"} & set(names)  # consent_display = no
    at.multiselect[0].set_value(["engineering"]).run()
    names = [m.value for m in at.markdown if m.value.startswith("## ")]
    assert set(names) <= {"## Howard Wolowitz", "## Leonard Hofstadter"} and names
    assert "Only 2 role models" in _texts(at)


def test_kiosk_starts_over_after_the_idle_time(kiosk_db, monkeypatch):
    at = _page("role_models.py", kiosk_db, monkeypatch, LOOKALIKE_KIOSK_IDLE="60")
    at.button[0].click().run()
    assert at.camera_input
    at.run()  # a touch within the idle time keeps the visitor's screen
    assert at.camera_input
    # the last touch a little more than the idle time ago (set, not slept: no clock race)
    at.session_state["kiosk_touched"] = at.session_state["kiosk_touched"] - 61
    at.run()
    assert not at.camera_input and at.button[0].label.startswith("I agree")


def test_withdrawn_consent_takes_a_role_model_off_the_kiosk(kiosk_db, tmp_path):
    """The README's kiosk step 4: edit the manifest, ingest it again."""
    import shutil

    import lookalike

    folder = tmp_path / "kiosk"
    shutil.copytree(kiosk_db.parent, folder, ignore=shutil.ignore_patterns("kiosk.db*", "kiosk.indexes"))
    manifest = folder / "role-models.csv"
    with lookalike.open(folder / "k.db") as lib:
        lib.ingest([str(manifest)])
        assert "first-generation-university" in lib.people.display_tags()
        rows = manifest.read_text().splitlines()
        manifest.write_text("\n".join(r.removesuffix(",yes") + ",no" if r.startswith("photos/amy/") else r
                                      for r in rows) + "\n")
        report = lib.ingest([str(manifest)])
        assert report.statuses["unchanged"] == 32  # no photo read again...
        assert not lib.people.profiles(["amy"])["amy"].consent_display  # ...but the profile follows the manifest
        assert "first-generation-university" not in lib.people.display_tags()
        shown = lib.search(str(folder / "photos/amy/amy5.png"), k=3, per_person=True, audience=Audience.consented)
        assert shown.faces[0].matches and "amy" not in {m.person for m in shown.faces[0].matches}


def test_live_processor_names_the_face_in_browser_frames(kiosk_db, faces, tmp_path):
    """The live page's logic without a browser (the WebRTC part runs in the browser test):
    frames as the browser sends them, at camera pace, through the webcam pipeline."""
    import lookalike
    from lookalike.live import slideshow

    video = tmp_path / "cam.avi"
    slideshow.make([("howard", faces / BBT / "howard" / "howard5.png")], video, seconds=3.0, gap=0)
    with lookalike.open(kiosk_db) as lib:
        named = _live_names(lib, video)
    assert named and set(named) == {"howard"}


def _live_names(lib, video: Path) -> list[str]:
    """People the live page's processor names in ``video``'s frames, sent as fast as they come."""
    import av
    import cv2
    import numpy as np

    from lookalike.ui.live_processor import LiveProcessor

    processor = LiveProcessor(lib)
    named: list[str] = []

    def send(frame: np.ndarray) -> bool:
        out = processor.recv(av.VideoFrame.from_ndarray(frame, format="bgr24"))
        assert out.width == 640 and out.height == 480
        named.extend(f["person"] for f in processor.snapshot()[2] if f["person"])
        return bool(named)

    try:
        assert processor.wait_ready(), processor.error
        cap = cv2.VideoCapture(str(video))
        last = None
        while (got := cap.read())[0]:  # as fast as they come: an answer is waited for below
            send(last := got[1])
        cap.release()
        # a first match slower than the clip still answers: the camera keeps showing its last frame
        assert last is not None and wait_for(lambda: send(last), guard=120, poll=1 / 30)
    finally:
        processor.on_ended()
    return named


def test_find_and_live_never_show_people_who_withheld_consent(kiosk_db, faces, monkeypatch, tmp_path):
    """Sheldon's manifest row says consent_display=no: the kiosk's Find page and its live
    camera must not show him, even to someone who looks exactly like him (his own photo)."""
    import lookalike
    from lookalike.live import slideshow

    sheldon = faces / BBT / "sheldon" / "sheldon5.png"
    at = _page("find.py", kiosk_db, monkeypatch)
    _upload(at, sheldon)
    cards = [m.value for m in at.markdown if m.value.startswith("### ")]
    assert len(cards) == 3 and not any("Sheldon" in c for c in cards)
    video = tmp_path / "cam.avi"
    slideshow.make([("sheldon", sheldon)], video, seconds=3.0, gap=0)
    with lookalike.open(kiosk_db) as lib:
        assert lib.search(str(sheldon), k=1).faces[0].matches[0].person == "sheldon"  # the operator's view
        named = _live_names(lib, video)
    assert named and "sheldon" not in named


def test_consent_never_stated_is_not_consent_withheld(faces, tmp_path):
    """A folder-ingested corpus states no consent: shown on Find, never on the role-model
    page; an old library's folder people become 'not stated' on upgrade."""
    import sqlite3

    import lookalike

    db = tmp_path / "c.db"
    with lookalike.open(db) as lib:
        lib.ingest([str(faces / "celeb" / "faceapi_bbt" / "amy")], person="amy")
        query = str(faces / BBT / "amy" / "amy5.png")
        assert lib.search(query, k=1, audience=Audience.visitor).faces[0].matches[0].person == "amy"
        assert lib.search(query, k=1, audience=Audience.consented).faces[0].matches == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("select consent_display from people").fetchall() == [(None,)]


def test_every_verdict_has_its_words_on_a_card_and_its_colour_on_the_webcam():
    """Both are keyed by the Verdict enum: a verdict added to the search and not to a page
    fails here, not as a KeyError on a visitor's screen."""
    from lookalike.live.overlay import COLOURS
    from lookalike.query.search import Verdict
    from lookalike.store.values import PhotoStatus

    assert set(common.VERDICT_WORDS) == set(Verdict)
    assert set(COLOURS) == set(Verdict) | {None}
    assert set(common.STATUS_WORDS) == set(PhotoStatus)  # the Explore page's words for each photo outcome
    assert common.status_words("no_face") == "no face found" and common.status_words("a_new_one") == "a new one"
