"""The operator pages (Admin, Explore) through Streamlit's AppTest on a real library: the
gate that keeps them closed to visitors, and a role model kept current from the admin page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import app_page, upload_dir_of
from streamlit.testing.v1 import AppTest

import lookalike
from lookalike.store.values import Audience, KeyScope

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "operator-Secret-42"


def _page(name: str, db: Path, monkeypatch) -> AppTest:
    return app_page(name, db, monkeypatch, LOOKALIKE_UI_PASSWORD=PASSWORD)


def _shown(at: AppTest) -> str:
    """Everything the page shows as text: markdown, messages, titles, tables, widgets."""
    parts = [e.value for kind in (at.markdown, at.error, at.warning, at.info, at.success, at.title, at.caption,
                                  at.subheader) for e in kind]
    parts += [str(df.value.to_dict()) for df in at.dataframe]
    parts += [str(s.options) for s in at.selectbox] + [str(m.value) for m in at.metric]
    return "\n".join(parts)


def _open(at: AppTest, secret: str) -> AppTest:
    at.text_input(key="operator_secret").input(secret)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def kiosk(kiosk_db, tmp_path) -> Path:
    """A private copy of the role-model library (these tests change it)."""
    folder = shutil.copytree(kiosk_db.parent, tmp_path / "kiosk")
    return folder / kiosk_db.name


@pytest.mark.parametrize("name", ["explore.py", "admin.py"])
def test_operator_pages_show_nothing_of_the_library_without_the_password_or_an_admin_key(
        kiosk, monkeypatch, name):
    with lookalike.open(kiosk) as lib:
        _, admin_key = lib.keys.create(KeyScope.admin)
        _, search_key = lib.keys.create(KeyScope.search)
    secrets_of_the_library = [str(kiosk.parent), "amy", "Amy Farrah Fowler", "sheldon", "photos/"]
    at = _page(name, kiosk, monkeypatch)
    closed = _shown(at)
    assert "operator" in closed and not [s for s in secrets_of_the_library if s in closed]
    for wrong in ("guess", search_key):
        at = _open(at, wrong)
        assert "neither the operator's password nor an admin API key" in _shown(at)
        assert not [s for s in secrets_of_the_library if s in _shown(at)]
    for secret in (PASSWORD, admin_key):  # either opens the page for this session
        opened = _shown(_open(_page(name, kiosk, monkeypatch), secret))
        marker = {"explore.py": "What happened to each photo", "admin.py": "amy"}[name]
        assert marker in opened and "operator's password or an admin API key" not in opened


HOSTILE_STORY = "<script>alert('x')</script> [click](javascript:alert(1)) ![img](http://example.invalid/p.png)"


def test_a_role_model_is_added_edited_withdrawn_and_removed_from_the_admin_page(kiosk, faces, monkeypatch):
    at = _open(_page("admin.py", kiosk, monkeypatch), PASSWORD)
    assert at.selectbox(key="admin_person").value == "(a new person)"
    at.text_input(key="admin_name").input("grace_hopper")
    labels = {t.label: t for t in at.text_input}
    labels["Display name"].input("Grace <b>Hopper</b>")
    labels["Role"].input("Rear admiral")
    labels["Organisation"].input("US Navy")
    labels["Self-declared tags (separated by ;)"].input("Women in Engineering; first-generation")
    at.text_area[0].input(HOSTILE_STORY)
    at.checkbox[0].check()
    # photos of a person the role-model library does not hold (Obama's stand in for hers)
    amy = sorted((faces / "celeb/face_recognition/barack_obama").iterdir())
    bad = faces / "bad-inputs/collected/animal_face__skimage_chelsea.png"
    at.file_uploader[0].set_value([(p.name, p.read_bytes(), "image/png") for p in [*amy[:3], bad]])
    [save] = [b for b in at.button if b.label == "Save"]
    save.click()
    at.run()
    assert not at.exception, at.exception
    assert "Saved grace_hopper." in _shown(at)
    outcomes = at.dataframe[0].value  # what happened to each upload
    assert dict(zip(outcomes["photo"], outcomes["outcome"])) == {amy[0].name: "ok", amy[1].name: "ok",
                                                                 amy[2].name: "ok", bad.name: "no face"}
    with lookalike.open(kiosk) as lib:
        profile = lib.people.profiles(["grace_hopper"])["grace_hopper"]
        assert profile.story == HOSTILE_STORY and profile.tags == ("women-in-engineering", "first-generation")
        shown = lib.search(str(amy[4]), k=1, per_person=True, audience=Audience.consented)
        assert shown.faces[0].matches[0].person == "grace_hopper"  # on the kiosk: she consented

    # "(a new person)" given her name: refused, her profile kept (it was replaced, consent gone)
    at.selectbox(key="admin_person").select("(a new person)")
    at.run()
    at.text_input(key="admin_name").input("grace_hopper")
    {t.label: t for t in at.text_input}["Role"].input("Impostor")
    [save] = [b for b in at.button if b.label == "Save"]
    save.click()
    at.run()
    assert "grace_hopper is already here; choose them in the list above" in _shown(at)
    with lookalike.open(kiosk) as lib:
        assert lib.people.profiles(["grace_hopper"])["grace_hopper"].role == "Rear admiral"

    # edit: the person chosen, the story changed; the photos table says which failed and why
    at.selectbox(key="admin_person").select("grace_hopper")
    at.run()
    table = at.dataframe[-1].value  # their photos
    assert sorted(table["outcome"]) == ["no face", "ok", "ok", "ok"] and "no face found" in set(table["why"])
    at.text_area[0].input("A new story.")
    [save] = [b for b in at.button if b.label == "Save"]
    save.click()
    at.run()
    with lookalike.open(kiosk) as lib:
        assert lib.people.profiles(["grace_hopper"])["grace_hopper"].story == "A new story."

    # withdraw consent: off every visitor search at once, and the page says so
    at.button(key="admin_withdraw").click()
    at.run()
    assert "Consent withdrawn: grace_hopper is off the kiosk now." in _shown(at)
    with lookalike.open(kiosk) as lib:
        everyone = lib.people.summaries(Audience.operator)
        assert [p.consent for p in everyone if p.profile.name == "grace_hopper"] == [False]
        seen = lib.search(str(amy[4]), k=10, per_person=True, audience=Audience.visitor)
        assert seen.faces[0].matches and "grace_hopper" not in {m.person for m in seen.faces[0].matches}

    # remove: only after saying yes; then nothing of them is left, uploaded copies included
    uploads = upload_dir_of(kiosk) / "grace_hopper"
    assert len(list(uploads.iterdir())) == 4
    assert at.button(key="admin_remove").disabled
    at.checkbox(key="admin_sure:grace_hopper").check()
    at.run()
    others = [o for o in at.selectbox(key="admin_person").options if o not in ("(a new person)", "grace_hopper")]
    at.selectbox(key="admin_person").select(others[0])  # the yes was for her: not for the next person
    at.run()
    assert at.button(key="admin_remove").disabled
    at.selectbox(key="admin_person").select("grace_hopper")
    at.run()
    at.checkbox(key="admin_sure:grace_hopper").check()  # asked again on coming back
    at.run()
    at.button(key="admin_remove").click()
    at.run()
    assert not at.exception, at.exception
    with lookalike.open(kiosk) as lib:
        assert "grace_hopper" not in {p.profile.name for p in lib.people.summaries(Audience.operator)}
    assert not uploads.exists()
    assert "grace_hopper" not in str(at.selectbox(key="admin_person").options)
