"""A person's name is data, and it names the folder that keeps their uploaded photos: a new
name that is ``.``/``..``, empty, holds a path separator or a control character is refused
wherever it comes from (folders, manifests, ``--format`` corpora, ``--person``, the library's
verbs, the HTTP API), each refusal naming the file and the reason, and no upload path can
leave ``uploads/``. A library that already holds an odd name still opens and reads."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import cli

import lookalike
from lookalike.errors import BadPersonName
from lookalike.ingest import formats
from lookalike.ingest.corpus import read_manifest, scan
from lookalike.ingest.formats_common import person_name
from lookalike.places import upload_folder
from lookalike.store.profiles import Profile, person_name_problem
from lookalike.store.values import Audience

BAD = {"": "empty", "   ": "empty", ".": "folder reference", "..": "folder reference",
       " .. ": "folder reference", "a/b": "path separator", "a\\b": "path separator",
       "../etc": "path separator", "x\ny": "control character U+000A", "tab\there": "control character U+0009",
       "nul\x00": "control character U+0000", "x" * 201: "longer than 200"}


@pytest.mark.parametrize(("name", "why"), BAD.items())
def test_a_name_that_could_move_a_path_is_refused_with_the_reason(name, why):
    problem = person_name_problem(name)
    assert problem is not None and why in problem


@pytest.mark.parametrize("name", ["Ada Lovelace", "O'Brien", "José Martí", "...", ".hidden", "celeba-2880",
                                  "[bold red]Eve [link=mailto:eve]x"])
def test_names_from_corpora_are_kept_as_written(name):
    assert person_name_problem(name) is None


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_a_manifest_row_with_a_bad_person_is_refused_naming_file_line_and_reason(tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        _touch(tmp_path / "photos" / f"{name}.jpg")
    manifest = tmp_path / "people.csv"
    manifest.write_text("path,person\nphotos/a.jpg,ada\nphotos/b.jpg,..\nphotos/c.jpg,x/y\n"
                        "photos/d.jpg,x\\y\nphotos/e.jpg,.\n")
    items = read_manifest(manifest)
    assert [(Path(i.path).name, i.person, i.rejected) for i in items[:1]] == [("a.jpg", "ada", None)]
    reasons = [str(i.rejected) for i in items[1:]]
    assert all(r and r.startswith(f"{manifest}:") for r in reasons), reasons
    assert [r.split(":", 2)[1] for r in reasons] == ["3", "4", "5", "6"]  # the line of each row
    assert "'..' is a folder reference" in reasons[0] and "path separator '/'" in reasons[1]
    assert "path separator '\\\\'" in reasons[2] and "'.' is a folder reference" in reasons[3]
    assert all(i.person is None for i in items[1:])  # filed under nobody: no person is made

    jsonl = tmp_path / "people.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ({"path": "photos/a.jpg", "person": "ada"},
                                                         {"path": "photos/b.jpg", "person": "line\nbreak"})))
    ok, bad = read_manifest(jsonl)
    assert ok.rejected is None and str(bad.rejected) == (f"{jsonl}:2: person name 'line\\nbreak' holds the control "
                                                    "character U+000A")


def test_a_photo_in_a_folder_that_cannot_name_a_person_is_refused_the_others_are_read(tmp_path):
    corpus = tmp_path / "corpus"
    _touch(corpus / "alice" / "1.jpg")
    _touch(corpus / "back\\slash" / "2.jpg")
    _touch(corpus / "line\nbreak" / "3.jpg")
    _touch(corpus / "loose.jpg")  # directly in the folder given as corpus/alice/..: its "person" is '..'
    items = scan([corpus / "alice" / ".."]).items
    by_file = {Path(i.path).name: i for i in items}
    assert by_file["1.jpg"].person == "alice" and by_file["1.jpg"].rejected is None
    for file, why in (("2.jpg", "path separator"), ("3.jpg", "control character U+000A"),
                      ("loose.jpg", "'..' is a folder reference")):
        item = by_file[file]
        reason = str(item.rejected)  # a Rejection, stored as this text
        assert item.person is None and reason.startswith(item.path) and why in reason, item
    single = scan([corpus / "alice" / ".." / "loose.jpg"]).items  # one photo given by a path through '..'
    assert single[0].person is None and "folder reference" in str(single[0].rejected)
    with pytest.raises(BadPersonName, match="--person: person name '..' is a folder reference"):
        scan([corpus / "alice"], person="..")


def test_format_readers_refuse_the_same_names(tmp_path):
    for person in ("Aaron_Sorkin", "AC\\DC", "Tab\tName"):
        _touch(tmp_path / "lfw" / person / f"{person}_0001.jpg")
    items = formats.lfw(tmp_path)
    assert [i.person for i in items if not i.rejected] == ["Aaron Sorkin"]
    reasons = sorted(str(i.rejected) for i in items if i.rejected)
    assert len(reasons) == 2 and all(r.startswith("bad person name: folder") for r in reasons)
    assert "path separator" in reasons[0] and "control character U+0009" in reasons[1]
    assert formats.skipped(items) == {"bad person name": 2}
    assert person_name("..")[1] is not None and person_name("AC/DC")[1] is not None


def test_an_upload_folder_never_leaves_uploads(tmp_path):
    uploads = tmp_path / "uploads"
    assert upload_folder(uploads, "grace_hopper") == uploads / "grace_hopper"  # plain names as before
    for odd in ("..", ".", "a/../../b", "O'Brien", "..\\..", "/etc", "x\n"):
        folder = upload_folder(uploads, odd)
        assert folder.parent == uploads and folder.name.startswith("person-"), odd
    assert upload_folder(uploads, "a/b") != upload_folder(uploads, "a\\b")


def _files(folder: Path) -> set[str]:
    """Every file and folder under ``folder`` (SQLite's -wal/-shm of an open library aside)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm"))}


def _odd_library(faces: Path, folder: Path) -> Path:
    """A library made before names were checked: a person called '..' (and one 'a\\b')
    stored as they were, beside a plain one."""
    shutil.copytree(faces / "celeb" / "face_recognition" / "barack_obama", folder / "c" / "barack_obama")
    db = folder / "lib" / "lib.db"
    db.parent.mkdir(parents=True)
    assert cli("ingest", str(folder / "c"), "--db", str(db), "-q").returncode == 0
    from lookalike.store import person_rows

    with lookalike.open(db) as lib, lib.session() as session:
        for name in ("..", "a\\b"):
            person_rows.upsert_person(session, name, Profile(display_name=f"odd {name}"))
        session.commit()
    return db


def test_the_library_refuses_bad_names_and_still_reads_old_ones(faces, tmp_path):
    db = _odd_library(faces, tmp_path)
    photo = (faces / "celeb/face_recognition/barack_obama/obama.jpg").read_bytes()
    before = _files(tmp_path)
    with lookalike.open(db) as lib:
        names = {p.profile.name for p in lib.people.summaries(Audience.operator)}
        assert {"..", "a\\b", "barack_obama"} <= names  # an old library still opens and lists them
        for name in ("..", "a\\b"):
            with pytest.raises(BadPersonName, match="photos cannot be added under this name"):
                lib.add_photos(name, [("obama.jpg", photo)])
        for name in ("..", "x/y", "line\nbreak", " "):
            with pytest.raises(BadPersonName):
                lib.people.save_profile(name, Profile())
    assert _files(tmp_path) == before  # nothing written anywhere


def test_ingest_reports_each_refused_row_and_ingests_the_others(faces, tmp_path):
    src = faces / "celeb" / "face_recognition"
    photos = tmp_path / "m" / "photos"
    photos.mkdir(parents=True)
    for name in ("obama.jpg", "obama2.jpg"):
        shutil.copy(src / "barack_obama" / name, photos / name)
    shutil.copy(src / "joe_biden" / "biden.jpg", photos / "biden.jpg")
    manifest = tmp_path / "m" / "people.csv"
    manifest.write_text("path,person\nphotos/obama.jpg,barack_obama\nphotos/obama2.jpg,..\nphotos/biden.jpg,joe/biden\n")
    db, report = tmp_path / "lib.db", tmp_path / "report.csv"
    done = cli("ingest", str(manifest), "--db", str(db), "--report", str(report), "-q")
    assert done.returncode == 0, done.stderr
    rows = {Path(r["path"]).name: r for r in csv.DictReader(report.open())}
    assert rows["obama.jpg"]["status"] == "ok"
    assert rows["obama2.jpg"]["status"] == "rejected"
    assert f"{manifest}:3: person name '..'" in rows["obama2.jpg"]["reason"]
    assert rows["biden.jpg"]["status"] == "rejected" and "path separator '/'" in rows["biden.jpg"]["reason"]
    with lookalike.open(db) as lib:
        assert {p.profile.name for p in lib.people.summaries(Audience.operator)} == {"barack_obama"}


def test_the_http_api_answers_422_and_writes_nothing_outside_uploads(faces, tmp_path):
    """`POST /v1/people/%2e%2e/photos` once wrote into the library's own folder."""
    from _site import in_process

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings
    from lookalike.store.values import KeyScope

    db = _odd_library(faces, tmp_path)
    with lookalike.open(db) as lib:
        _, admin = lib.keys.create(KeyScope.admin)
    photo = {"photos": ("obama.jpg", (faces / "celeb/face_recognition/barack_obama/obama.jpg").read_bytes(),
                        "image/jpeg")}
    headers = {"X-API-Key": admin}
    app = create_app(ServeSettings(db=str(db), rate_per_minute=0))
    with contextlib.ExitStack() as stack:
        client = in_process(app)  # returned once the models, loading in a thread, are ready
        stack.callback(client.__exit__, None, None, None)
        assert client.get("/v1/health").status_code == 200
        before = _files(tmp_path)
        reached = 0
        for quoted in ("%2e%2e", "..", "a%5Cb", "%2E"):
            r = client.post(f"/v1/people/{quoted}/photos", files=photo, headers=headers)
            if r.status_code == 404 and r.json()["code"] == "no_such_path":
                continue  # the client normalised the path itself: nothing reached the route
            assert r.status_code == 422, (quoted, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "invalid_person_name" and "person name" in r.json()["detail"]
            reached += 1
        assert reached >= 2  # '%2e%2e' and 'a%5Cb' reach the route as '..' and 'a\\b'
        for name in ("..", ".", "a/b", "a\\b", "x\ny"):
            r = client.post("/v1/people", json={"name": name}, headers=headers)
            assert r.status_code == 422 and r.json()["code"] == "invalid_person_name", (name, r.text)
        assert _files(tmp_path) == before  # not a byte written, in the library's folder or elsewhere
        assert client.post("/v1/people", json={"name": "jane_doe"}, headers=headers).status_code == 200
        added = client.post("/v1/people/jane_doe/photos", files=photo, headers=headers)
        assert added.status_code == 200, added.text
    new = _files(tmp_path) - before
    uploaded = {p for p in new if p.startswith("lib/lib.uploads/jane_doe/")}
    assert {p for p in new if p.endswith(".jpg")} == uploaded != set()


def test_the_admin_page_refuses_bad_names_and_writes_nothing(kiosk_db, faces, tmp_path, monkeypatch):
    from conftest import app_page

    from lookalike.store import person_rows

    folder = shutil.copytree(kiosk_db.parent, tmp_path / "kiosk")
    db = folder / kiosk_db.name
    with lookalike.open(db) as lib, lib.session() as session:
        person_rows.upsert_person(session, "..", Profile(display_name="made before names were checked"))
        session.commit()
    before = _files(tmp_path)
    photo = faces / "celeb/face_recognition/barack_obama/obama.jpg"
    at = app_page("admin.py", db, monkeypatch, LOOKALIKE_UI_PASSWORD="pw")
    at.text_input(key="operator_secret").input("pw")
    at.button[0].click()
    at.run()
    assert ".." in at.selectbox(key="admin_person").options  # an old odd name is still listed
    for name in ("..", "a\\b", "x/y"):
        at.text_input(key="admin_name").input(name)
        at.file_uploader[0].set_value([(photo.name, photo.read_bytes(), "image/jpeg")])
        [save] = [b for b in at.button if b.label == "Save"]
        save.click()
        at.run()
        assert not at.exception, at.exception
        assert any("Not saved: person name" in e.value for e in at.error), (name, [e.value for e in at.error])
    at.selectbox(key="admin_person").select("..")  # the old person: photos cannot be added under '..'
    at.run()
    at.file_uploader[0].set_value([(photo.name, photo.read_bytes(), "image/jpeg")])
    [save] = [b for b in at.button if b.label == "Save"]
    save.click()
    at.run()
    assert any("Not saved: person name '..'" in e.value for e in at.error), [e.value for e in at.error]
    assert _files(tmp_path) == before
