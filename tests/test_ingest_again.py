"""A re-run reads a stored photo again when it would read it otherwise, on every store
(PostgreSQL's path is the work queue's, whose workers decide again): a manifest that files it
under another person, ``--faces all`` after ``largest`` (and back), ``--analyze`` on faces
stored without estimates, a ``too_large`` photo once the limit is raised. Each was reported
``unchanged`` and changed nothing. A photo moved to another person's folder says how to
refile it; a library from before 0011 learns what its photos were read with."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

import lookalike

pytestmark = pytest.mark.e2e

LFW = "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"


def _open(backend, **settings):
    return lookalike.open(backend.url, index_dir=backend.index_dir, vectors=backend.vectors, **settings)


def _said(report) -> dict:
    return {o.path.rsplit("/", 1)[-1]: o for o in report.outcomes}


def test_a_person_corrected_in_a_manifest_refiles_the_photo(faces, tmp_path, backend):
    shutil.copyfile(faces / LFW, tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("path,person\na.jpg,Paul\n")
    assert _open(backend).ingest([str(tmp_path / "m.csv")]).statuses["ok"] == 1
    (tmp_path / "m.jsonl").write_text('{"path": "a.jpg", "person": "Paul Rudd", "consent_display": true}\n')
    again = _said(_open(backend).ingest([str(tmp_path / "m.jsonl")]))["a.jpg"]
    assert (again.status, again.person, again.faces) == ("ok", "Paul Rudd", 1)
    assert again.reason == "read again: filed under 'Paul' before"
    assert backend.sql("select people.name from faces join people on people.id = faces.person_id") == [("Paul Rudd",)]
    lib = _open(backend)
    assert len(lib.person("Paul Rudd").faces) == 1 and not lib.person("Paul").faces
    # read as this run reads it now: unchanged, and the report names the person it is filed under
    same = _said(_open(backend).ingest([str(tmp_path / "m.jsonl")]))["a.jpg"]
    assert (same.status, same.person) == ("unchanged", "Paul Rudd")
    assert backend.sql("select count(*) from faces") == [(1,)] and lib.doctor()[0].ok


def test_faces_all_after_largest_reads_the_group_photo_again(faces, tmp_path, backend, analysis_weights):
    group = tmp_path / "group.jpg"
    shutil.copyfile(faces / "bad-inputs/collected/group_many_faces__faces.jpg", group)
    first = _said(_open(backend).ingest([str(group)]))["group.jpg"]
    assert first.faces == 1 and "faces of like size in it; the largest kept (--faces all keeps every one)" \
        in first.reason  # a group photo cut to one face said nothing
    every = _said(_open(backend).ingest([str(group)], faces=lookalike.FacesMode.all))["group.jpg"]
    assert (every.status, every.reason) == ("ok", "read again: stored with --faces largest")
    assert every.faces > 1
    assert backend.sql("select count(*) from faces") == [(every.faces,)]
    assert _said(_open(backend).ingest([str(group)], faces=lookalike.FacesMode.all))["group.jpg"].status == "unchanged"
    # a plain re-run (--faces largest, the default) keeps the group photo's other faces, and so
    # does one that reads it again for its estimates
    assert _said(_open(backend).ingest([str(group)]))["group.jpg"].status == "unchanged"
    analysed = _said(_open(backend).ingest([str(group)], analyzer="offline"))["group.jpg"]
    assert (analysed.status, analysed.faces) == ("ok", every.faces), analysed
    assert backend.sql("select count(*) from faces") == [(every.faces,)] and _open(backend).doctor()[0].ok


def test_a_folders_name_never_moves_a_photo_a_manifest_filed(faces, tmp_path, backend, analysis_weights):
    """Filed under 'Alice' (withholding consent) by a manifest, the photo sits in a folder
    'alice': a folder run, and one that reads it again for its estimates, keep it where the
    manifest filed it (it was moved to a new 'alice' whose consent nobody stated: shown)."""
    (tmp_path / "c" / "alice").mkdir(parents=True)
    shutil.copyfile(faces / LFW, tmp_path / "c" / "alice" / "a.jpg")
    (tmp_path / "c" / "m.csv").write_text("path,person,consent_display\nalice/a.jpg,Alice,false\n")
    _open(backend).ingest([str(tmp_path / "c" / "m.csv")])
    for analyzer in (None, "offline"):
        said = _said(_open(backend).ingest([str(tmp_path / "c" / "alice")], analyzer=analyzer))["a.jpg"]
        assert said.person == "Alice", said
        assert backend.sql("select people.name from faces join people on people.id = faces.person_id") == [("Alice",)]
    assert said.status == "ok" and said.reason == "read again: its faces had no estimates"
    shutil.copyfile(faces / LFW.replace("0001", "0003"), tmp_path / "c" / "alice" / "a.jpg")  # re-saved, new bytes
    said = _said(_open(backend).ingest([str(tmp_path / "c" / "alice")]))["a.jpg"]
    assert (said.status, said.person) == ("ok", "Alice"), said
    assert backend.sql("select people.name from faces join people on people.id = faces.person_id") == [("Alice",)]
    hits = _open(backend).search(str(faces / LFW.replace("0001", "0002")), k=5, audience=lookalike.Audience.visitor)
    assert not [m for f in hits.faces for m in f.matches], "a withheld face was shown"


def test_a_photo_refiled_from_a_withheld_person_stays_withheld(faces, tmp_path, backend, caplog):
    """A manifest moves the photo from 'Paul' (who withholds consent) to 'Paul Rudd' without
    stating his: he withholds it too until a row states it, and the run says so."""
    shutil.copyfile(faces / LFW, tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("path,person,consent_display\na.jpg,Paul,false\n")
    _open(backend).ingest([str(tmp_path / "m.csv")])
    (tmp_path / "fix.csv").write_text("path,person\na.jpg,Paul Rudd\n")
    with caplog.at_level("WARNING", logger="lookalike.ingest.reader"):
        said = _said(_open(backend).ingest([str(tmp_path / "fix.csv")]))["a.jpg"]
    assert (said.status, said.person) == ("ok", "Paul Rudd")
    assert "refiled from 'Paul', who withholds consent to be displayed: so does 'Paul Rudd' now" in caplog.text
    assert backend.sql("select consent_display from people where name = 'Paul Rudd'") in ([(0,)], [(False,)])
    hits = _open(backend).search(str(faces / LFW.replace("0001", "0002")), k=5, audience=lookalike.Audience.visitor)
    assert not [m for f in hits.faces for m in f.matches], "a withheld face was shown"


def test_a_read_again_that_fails_keeps_what_was_stored(faces, tmp_path, backend, analysis_weights):
    """Read again for its estimates under a lower --max-pixels, the photo is too large now:
    its faces stay (they were replaced by a too_large row)."""
    shutil.copyfile(faces / LFW, tmp_path / "a.jpg")
    shutil.copyfile(faces / "celeb/face_recognition/barack_obama/obama.jpg", tmp_path / "big.jpg")
    paths = [str(tmp_path / "a.jpg"), str(tmp_path / "m.csv")]
    (tmp_path / "m.csv").write_text("path,person,role,consent_display\nbig.jpg,Obama,President,yes\n")
    _open(backend).ingest(paths)
    (tmp_path / "m.csv").write_text("path,person,role,consent_display\nbig.jpg,Obama,Senator,no\n")
    said = _said(_open(backend, max_pixels=100_000).ingest(paths, analyzer="offline"))
    assert said["big.jpg"].status == "unchanged" and said["a.jpg"].status == "ok"
    assert said["big.jpg"].reason.startswith("read again: its faces had no estimates, but too_large: ")
    assert said["big.jpg"].reason.endswith("what was stored from it before is kept")
    assert sorted(backend.sql("select status from photos")) == [("ok",), ("ok",)]
    assert backend.sql("select count(*) from faces") == [(2,)] and _open(backend).doctor()[0].ok
    # its row's profile counts all the same: the consent it withdraws above all
    assert backend.sql("select role, consent_display from people where name = 'Obama'") in (
        [("Senator", 0)], [("Senator", False)])


def test_analyze_on_a_rerun_gives_stored_faces_their_estimates(faces, tmp_path, backend, analysis_weights):
    shutil.copyfile(faces / LFW, tmp_path / "a.jpg")
    _open(backend).ingest([str(tmp_path / "a.jpg")], person="Aaron")
    assert backend.sql("select count(*) from face_estimates") == [(0,)]
    analysed = _said(_open(backend).ingest([str(tmp_path / "a.jpg")], person="Aaron", analyzer="offline"))["a.jpg"]
    assert (analysed.status, analysed.reason) == ("ok", "read again: its faces had no estimates")
    assert backend.sql("select count(*) from face_estimates") == [(1,)]
    for analyzer in ("offline", None):  # analysed: neither run reads it again (nor drops the estimates)
        report = _open(backend).ingest([str(tmp_path / "a.jpg")], person="Aaron", analyzer=analyzer)
        assert _said(report)["a.jpg"].status == "unchanged"
    assert backend.sql("select count(*) from face_estimates") == [(1,)]


def test_a_photo_too_large_is_read_once_the_limit_is_raised(faces, tmp_path, backend):
    shutil.copyfile(faces / LFW, tmp_path / "a.jpg")  # 250 x 250 = 62,500 pixels
    shutil.copyfile(faces / "celeb/face_recognition/barack_obama/obama.jpg", tmp_path / "big.jpg")
    paths = [str(tmp_path / "a.jpg"), str(tmp_path / "big.jpg")]
    assert _said(_open(backend, max_pixels=100_000).ingest(paths))["big.jpg"].status == "too_large"
    still = _said(_open(backend, max_pixels=100_000).ingest(paths))
    assert still["big.jpg"].status == "too_large" and still["big.jpg"].reason.startswith("read again: too large")
    assert still["a.jpg"].status == "unchanged"
    raised = _said(_open(backend).ingest(paths))
    assert (raised["big.jpg"].status, raised["big.jpg"].faces, raised["a.jpg"].status) == ("ok", 1, "unchanged")
    assert backend.sql("select status from photos") == [("ok",), ("ok",)]


def test_a_photo_moved_to_another_persons_folder_says_how_to_refile_it(faces, tmp_path, backend):
    corpus = tmp_path / "c"
    (corpus / "alice").mkdir(parents=True)
    (corpus / "bob").mkdir()
    shutil.copyfile(faces / LFW, corpus / "alice" / "a.jpg")
    shutil.copyfile(faces / LFW.replace("0001", "0002"), corpus / "alice" / "b.jpg")  # stays where it is
    lib = _open(backend)
    lib.ingest([str(corpus)])
    shutil.move(corpus / "alice" / "a.jpg", corpus / "bob" / "a.jpg")
    moved = _said(lib.ingest([str(corpus)]))["a.jpg"]
    old = corpus / "alice" / "a.jpg"
    assert moved.status == "duplicate" and moved.conflict
    assert f"{old} is gone from disk: to file the photo under 'bob', run `lookalike remove --photo {old}`" \
        in moved.reason
    lib.remove_photo(str(old))  # what the reason says, and the next run files it under bob
    refiled = _said(lib.ingest([str(corpus)]))["a.jpg"]
    assert (refiled.status, refiled.person) == ("ok", "bob") and len(lib.person("bob").faces) == 1


def test_a_library_from_before_0011_learns_what_its_photos_were_read_with(tmp_path):
    from lookalike.store import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'v10.db'}")
    db.move_to(engine, "0010")
    with sqlite3.connect(tmp_path / "v10.db") as conn:
        conn.execute("insert into indexes (id, key, uid, model, detector, aligner, dim, metric, normalisation, "
                     "created_at, centroid_generation) values (1, 'k', 'u', 'M', 'd', 'chip', 8, 'ip', 'l2', "
                     "'2026-01-01', 0)")
        for photo, faces in ((1, 2), (2, 1), (3, 1)):  # a group photo, an analysed one, a plain one
            conn.execute("insert into photos (id, space_id, path, status, created_at) "
                         "values (?, 1, ?, 'ok', '2026-01-01')", (photo, f"p{photo}"))
            for _ in range(faces):
                conn.execute("insert into faces (space_id, photo_id, x, y, w, h, confidence, embedding) "
                             "values (1, ?, 0, 0, 1, 1, 1.0, x'00')", (photo,))
        conn.execute("insert into face_estimates values (3, 40.0, 0.5, 'happy', '{}', 'm')")  # photo 2's face
    assert db.migrate(engine) == db.HEAD
    with sqlite3.connect(tmp_path / "v10.db") as conn:
        rows = conn.execute("select id, faces_mode, analyzed from photos order by id").fetchall()
        kept = conn.execute("select count(*) from faces").fetchone()[0], \
            conn.execute("select count(*) from face_estimates").fetchone()[0]
    assert rows == [(1, "all", 0), (2, None, 1), (3, None, 0)] and kept == (4, 1)
    db.move_to(engine, "0010")  # and back: SQLite copies the table, which must not cascade to the faces
    with sqlite3.connect(tmp_path / "v10.db") as conn:
        assert conn.execute("select count(*) from faces").fetchone()[0] == 4
        assert conn.execute("select count(*) from face_estimates").fetchone()[0] == 1


def test_a_photo_and_its_copy_refiled_together_are_no_conflict(faces, tmp_path, backend):
    """A manifest moves a photo and its byte-identical copy from 'Paul' to 'Paul Rudd' in one
    run: the copy is a plain duplicate of the refiled photo (it was a conflict, 'Paul' vs
    'Paul Rudd', decided against the first copy's stored person)."""
    for name in ("a.jpg", "b.jpg"):
        shutil.copyfile(faces / LFW, tmp_path / name)
    (tmp_path / "m.csv").write_text("path,person,consent_display\na.jpg,Paul,yes\nb.jpg,Paul,yes\n")
    _open(backend).ingest([str(tmp_path / "m.csv")])
    (tmp_path / "m.csv").write_text("path,person,consent_display\na.jpg,Paul Rudd,yes\nb.jpg,Paul Rudd,yes\n")
    said = _said(_open(backend).ingest([str(tmp_path / "m.csv")]))
    assert (said["a.jpg"].status, said["a.jpg"].person) == ("ok", "Paul Rudd")
    assert (said["b.jpg"].status, said["b.jpg"].conflict) == ("duplicate", False), said["b.jpg"]
