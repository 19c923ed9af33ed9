"""Moving a library to the new default space: reembed, what is gone, the old space kept
until it is removed."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import cli


def run(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (:func:`conftest.cli`); the tests that need a process of
    their own start ``python -m lookalike.cli`` themselves."""
    return cli(*args)


@pytest.mark.e2e
def test_a_dlib_library_moves_to_sface_and_keeps_the_old_space_until_removed(faces, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(faces / "celeb" / "face_recognition", corpus)
    db = str(tmp_path / "lib.db")
    old = ["--model", "Dlib", "--detector", "dlib", "--aligner", "chip"]
    made = run("ingest", str(corpus), "--db", db, *old, "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["statuses"]["ok"] == 16
    # a library made in the old space keeps opening in it, with its own calibration
    before = json.loads(run("stats", "--db", db, "--json").stdout)
    assert before["index"]["space"] == "Dlib__dlib__chip" and before["faces"] == 16
    gone = corpus / "joe_biden" / "biden.jpg"
    gone.unlink()  # a photo whose file has gone since it was stored
    moved = run("reembed", "--db", db, "--json")
    assert moved.returncode == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert report["space"] == "SFace__yunet__arcface" and report["old_spaces"] == ["Dlib__dlib__chip"]
    assert report["photos"] == 16 and report["reembedded"] == 15 and report["gone"] == [str(gone)]
    assert report["statuses"]["ok"] == 15 and report["faces"] == 15
    # now the default space answers; the people and their names came along
    after = json.loads(run("stats", "--db", db, "--json").stdout)
    assert after["index"]["space"] == "SFace__yunet__arcface" and after["faces"] == 15
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    hit = json.loads(run("search", query, "--db", db, "--json", "-k", "1").stdout)
    assert hit["faces"][0]["matches"][0]["person"] == "barack_obama"
    assert hit["calibration"]["threshold"] == pytest.approx(0.3537)
    # the old space's rows are intact and still searchable by name
    old_hit = json.loads(run("search", query, "--db", db, *old, "--json", "-k", "1").stdout)
    assert old_hit["faces"][0]["matches"][0]["person"] == "barack_obama"
    # a second run has nothing left to move, and says again what it could not
    again = json.loads(run("reembed", "--db", db, "--json").stdout)
    assert again["reembedded"] == 0 and again["gone"] == [str(gone)] and again["photos"] == 1
    # removing the old space drops its rows and its index file, nothing else
    dropped = run("remove", "--space", "Dlib__dlib__chip", "--db", db, "--json")
    assert dropped.returncode == 0, dropped.stderr
    assert json.loads(dropped.stdout)["faces"] == 16  # the old space was whole until now
    assert not (tmp_path / "lib.indexes" / "Dlib__dlib__chip.faiss").exists()
    assert (tmp_path / "lib.indexes" / "SFace__yunet__arcface.faiss").exists()
    doctor = json.loads(run("doctor", "--db", db, "--json").stdout)
    assert doctor["ok"] and [s["space"] for s in doctor["spaces"]] == ["SFace__yunet__arcface"]
    missing = run("remove", "--space", "Dlib__dlib__chip", "--db", db)
    assert missing.returncode == 1 and "SFace__yunet__arcface" in missing.stderr


@pytest.mark.e2e
def test_an_interrupted_reembed_says_so_and_the_old_space_cannot_be_dropped_until_it_is_done(faces, tmp_path):
    """Ctrl-C after the first batch was committed: exit 130 and "interrupted" (it said every
    photo was embedded again, exit 0, and advised `remove --space`, which then dropped the
    photos not yet moved); `remove --space` refuses while the space holds photos no other
    space does, and a second reembed finishes the move."""
    import os
    import signal
    import sys

    from _libraries import lfw_people, link_people
    from conftest import wait_for
    from serving import with_default_sigint

    from lookalike.faults import HOLD_ENV

    corpus = tmp_path / "corpus"
    link_people(corpus, lfw_people(faces, 20).items(), 2)
    db = str(tmp_path / "lib.db")
    old = ["--model", "Dlib", "--detector", "dlib", "--aligner", "chip"]
    made = run("ingest", str(corpus), "--db", db, *old, "--json")
    photos = json.loads(made.stdout)["statuses"]["ok"]  # what a reembed moves
    assert photos > 32, made.stdout  # more than one batch
    gate = tmp_path / "gate"
    command = [sys.executable, "-m", "lookalike.cli", "reembed", "--db", db, "--workers", "1"]
    env = os.environ | {HOLD_ENV: f"ingest.committed@{gate}"}  # held after the first batch's commit
    proc = subprocess.Popen(with_default_sigint(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert wait_for(lambda: (gate / "held").exists() or proc.poll() is not None), "never held"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)  # bounds a hang only
    assert proc.returncode == 130, (out, err)
    assert f"interrupted: 32 of {photos} photos embedded again" in err and "remove --space" not in out + err, err
    refused = run("remove", "--space", "Dlib__dlib__chip", "--db", db)
    assert refused.returncode == 2 and f"{photos - 32} of its photos are in no other space" in refused.stderr
    finished = json.loads(run("reembed", "--db", db, "--json").stdout)
    assert (finished["interrupted"], finished["reembedded"]) == (False, photos - 32)
    assert run("doctor", "--db", db).returncode == 0  # the index caught up with what was committed
    assert run("remove", "--space", "Dlib__dlib__chip", "--db", db).returncode == 0


@pytest.mark.e2e
def test_the_default_space_removed_after_a_move_on_milvus_exits_0(faces, tmp_path):
    """On Milvus, removing the space the library opens by default (moved away from with
    reembed --model) dropped its rows and collection and then exited 1 with "this library
    holds faces made with Dlib…": the removal's scrub opened the removed space's collection
    (scale user test, F12). It answers as on FAISS, and the other space stays searchable."""
    corpus = tmp_path / "corpus"
    shutil.copytree(faces / "celeb" / "face_recognition", corpus)
    where = ["--db", str(tmp_path / "lib.db"), "--vectors", f"milvus-lite:{tmp_path / 'vectors'}"]
    assert run("ingest", str(corpus), *where, "-q").returncode == 0
    dlib = ["--model", "Dlib", "--detector", "yunet", "--aligner", "arcface"]
    assert run("reembed", *where, *dlib, "--json").returncode == 0
    dropped = run("remove", "--space", "SFace__yunet__arcface", *where, "--json")
    assert dropped.returncode == 0, dropped.stderr
    assert json.loads(dropped.stdout)["faces"] == 16
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    hit = json.loads(run("search", query, *where, "--json", "-k", "1").stdout)
    assert hit["faces"][0]["matches"][0]["person"] == "barack_obama"


@pytest.mark.e2e
def test_a_reembed_reports_an_upload_that_gives_no_face_in_the_new_space(faces, tmp_path):
    """Uploads are read alone (one face, refused among others of like size) and moved in a
    batch of their own: one whose every photo gave no face in the new space ended the whole
    move with "not one photo could be ingested" (review of 2026-12-07, M1)."""
    import lookalike
    from lookalike.store.profiles import Profile

    corpus = tmp_path / "corpus"
    shutil.copytree(faces / "celeb" / "face_recognition", corpus)
    db = str(tmp_path / "lib.db")
    assert run("ingest", str(corpus), "--db", db, "-q").returncode == 0
    partial = faces / "bad-inputs" / "collected" / "partial_face__obama_partial_face2.jpg"
    with lookalike.open(db) as lib:
        lib.people.save_profile("someone", Profile(consent_display=True))
        report, _ = lib.add_photos("someone", [("partial.jpg", partial.read_bytes())])
        assert [o.status.value for o in report.outcomes] == ["ok"]
    moved = run("reembed", "--detector", "opencv", "--aligner", "eyes", "--db", db, "--json")
    assert moved.returncode == 0, moved.stderr
    said = json.loads(moved.stdout)
    assert said["photos"] == 17 and said["statuses"].get("no_face", 0) >= 1, said
