"""Ingest where users' corpora are untidy, on every store (PostgreSQL's path is the work
queue's): a photo whose file cannot be read on a later run (moved away, never there, an
unmounted share) keeps what an earlier run stored from it, and a failure stored before is
written again, not inserted twice; a photo named twice in one run (a folder and a file in
it, a manifest row repeated) is ingested once and the repeat reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli

from lookalike.errors import NothingIngested

pytestmark = pytest.mark.e2e


def test_a_file_gone_since_keeps_its_faces_and_a_missing_one_is_retried(faces, tmp_path, backend):
    folder = tmp_path / "c"
    folder.mkdir()
    kept = folder / "a.jpg"
    shutil.copyfile(faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg", kept)
    manifest = folder / "m.csv"
    manifest.write_text("path,person\na.jpg,Aaron_Peirsol\nnever.jpg,Nobody\n")
    first = backend.open().ingest([str(manifest)])
    assert (first.statuses["ok"], first.statuses["decode_error"]) == (1, 1)
    kept.unlink()
    again = backend.open().ingest([str(manifest)])  # an IntegrityError before: the failure inserted twice
    said = {o.path.rsplit("/", 1)[-1]: o for o in again.outcomes}
    assert said["a.jpg"].status == "unchanged"
    assert "cannot be read now" in said["a.jpg"].reason and "kept" in said["a.jpg"].reason
    assert said["never.jpg"].status == "decode_error"
    assert sorted(backend.sql("select status from photos")) == [("decode_error",), ("ok",)]
    assert backend.sql("select count(*) from faces") == [(1,)]
    lib = backend.open()
    assert lib.stats()["faces"] == 1 and lib.doctor()[0].ok


def test_a_failure_stored_before_is_a_clean_message_on_the_second_run(tmp_path):
    """The CLI, twice, on a manifest whose only photo is missing: the same one-line error
    both times (the second run printed SQLAlchemy's traceback, its SQL and parameters), and
    a report that says why."""
    (tmp_path / "m.csv").write_text("path,person\nnope.jpg,someone\n")
    for _ in range(2):
        done = cli("ingest", str(tmp_path / "m.csv"), "--db", str(tmp_path / "lib.db"), "-q",
                   "--report", str(tmp_path / "r.csv"), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            "error: not one photo could be ingested (1 tried: 1 decode_error)"), done.stderr
        assert "Traceback" not in done.stderr
        # the report says why, quiet or not (with -q it held its header alone)
        assert f"{tmp_path / 'nope.jpg'},someone,decode_error,cannot be read" in (tmp_path / "r.csv").read_text()
    # --json: the run's counts on stdout before the error, for a script that parses them
    done = cli("ingest", str(tmp_path / "m.csv"), "--db", str(tmp_path / "lib.db"), "--json", cwd=tmp_path)
    assert done.returncode == 1 and json.loads(done.stdout)["statuses"]["decode_error"] == 1, done.stdout
    with pytest.raises(NothingIngested):
        import lookalike

        lookalike.open(tmp_path / "lib.db").ingest([str(tmp_path / "m.csv")])


def test_a_photo_named_twice_in_a_run_is_ingested_once(faces, tmp_path, backend):
    """Each repeat was an IntegrityError that lost its whole batch (the other photos too)."""
    folder = tmp_path / "c" / "Aaron_Peirsol"
    folder.mkdir(parents=True)
    for n in (1, 2):
        shutil.copyfile(faces / f"lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_000{n}.jpg", folder / f"{n}.jpg")
    manifest = tmp_path / "c" / "m.csv"
    manifest.write_text("path,person\nAaron_Peirsol/1.jpg,Aaron_Peirsol\nAaron_Peirsol/1.jpg,Someone_Else\n")
    report = backend.open().ingest([str(tmp_path / "c" / "Aaron_Peirsol"), str(folder / "2.jpg"), str(manifest)])
    said = sorted((o.path.rsplit("/", 1)[-1], o.status, o.conflict) for o in report.outcomes)
    assert said == [("1.jpg", "duplicate", False), ("1.jpg", "duplicate", True), ("1.jpg", "ok", False),
                    ("2.jpg", "duplicate", False), ("2.jpg", "ok", False)], said
    assert all("named twice in this run" in o.reason for o in report.outcomes if o.status == "duplicate")
    assert backend.sql("select count(*) from photos") == [(2,)] and backend.sql("select count(*) from faces") == [(2,)]


def test_a_copy_whose_original_was_removed_is_ingested_on_the_next_run(faces, tmp_path, backend):
    """A byte-identical copy is stored as a duplicate of the first; once the first is removed
    the next run ingests the copy (it stayed a duplicate of nothing, never searched)."""
    folder = tmp_path / "c" / "Aaron_Peirsol"
    folder.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        shutil.copyfile(faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg", folder / name)
    lib = backend.open()
    assert lib.ingest([str(tmp_path / "c")]).statuses["duplicate"] == 1
    lib.remove_photo(str(folder / "a.jpg"))
    (folder / "a.jpg").unlink()
    again = backend.open().ingest([str(tmp_path / "c")])
    assert [(o.path.rsplit("/", 1)[-1], o.status) for o in again.outcomes] == [("b.jpg", "ok")]
    assert backend.sql("select status from photos") == [("ok",)] and backend.sql("select count(*) from faces") == [(1,)]


def test_sigterm_stops_an_ingest_as_ctrl_c_does(faces, tmp_path):
    """`kill PID`, `timeout` or a service manager's stop, after the first batch was stored:
    exit 130 and "interrupted" (it died mid-batch, the index unsaved); the next run finishes."""
    import os
    import signal
    import subprocess
    import sys

    from _libraries import lfw_people, link_people
    from conftest import wait_for

    from lookalike.faults import HOLD_ENV

    corpus = tmp_path / "corpus"
    photos = link_people(corpus, lfw_people(faces, 20).items(), 2)
    db, gate = str(tmp_path / "lib.db"), tmp_path / "gate"
    command = [sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db", db, "--workers", "1"]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: a helper process left behind would hold a pipe open
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(command, env=os.environ | {HOLD_ENV: f"ingest.committed@{gate}"},
                                stdout=subprocess.DEVNULL, stderr=stderr)
    assert wait_for(lambda: (gate / "held").exists() or proc.poll() is not None), "never held"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=600)  # bounds a hang only
    err = log.read_text()
    assert proc.returncode == 130 and "interrupted: 32 photos saved" in err, err
    again = cli("ingest", str(corpus), "--db", db, "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["statuses"]["unchanged"] == 32 and summary["processed"] == photos - 32
    assert cli("doctor", "--db", db).returncode == 0


def test_two_libraries_in_one_folder_each_keep_their_own_index(faces, tmp_path):
    """The README's tour: `lookalike ingest PEOPLE` and `ingest role-models.csv --db
    kiosk.db` in one folder. The second was refused ("this index belongs to another
    library") and left an empty kiosk.db behind."""
    obama, biden = faces / "celeb/face_recognition/barack_obama", faces / "celeb/face_recognition/joe_biden"
    for db, folder in (("lookalike.db", obama), ("kiosk.db", biden)):
        done = cli("ingest", str(folder), "--db", db, "-q", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["indexes", "kiosk.db", "kiosk.indexes", "kiosk.uploads",
                                                          "lookalike.db"]
    for db, person in (("lookalike.db", "barack_obama"), ("kiosk.db", "joe_biden")):
        found = cli("search", str(faces / "celeb/face_recognition/joe_biden/biden.jpg"), "--db", db, "--json",
                    cwd=tmp_path)
        assert found.returncode == 0, found.stderr
        assert {m["person"] for m in json.loads(found.stdout)["faces"][0]["matches"]} == {person}


def test_the_progress_rate_is_the_runs_own_so_far():
    """Ten photos settled at once a second into a run (unchanged on a re-run) read 10
    photos/s, as the summary counts them: rich's recent speed said ~10,000,000."""
    from lookalike.cli.ingest import _RichProgress
    from lookalike.ingest.report import IngestStatus, Outcome

    now = [0.0]

    def clock() -> float:
        now[0] += 1e-7  # every look at the clock a little later
        return now[0]

    bar = _RichProgress(get_time=clock)
    bar.start(10)
    now[0] = 1.0
    try:
        for i in range(10):
            bar.advance(Outcome(f"{i}.jpg", "p", IngestStatus.unchanged, "ok", 0, None))
        assert float(bar.rate) == pytest.approx(10.0, rel=1e-3)
    finally:
        bar.stop()


def test_a_removal_takes_the_copies_of_its_originals_only(faces, tmp_path):
    """Removing a person takes the uploads refused as copies of their photos (their picture
    under someone else); removing a person whose photo is itself such a copy leaves the other
    copies of the original, whose person stays (review of 2026-12-07, M5)."""
    import lookalike
    from lookalike.store.profiles import Profile

    photo = (faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg").read_bytes()
    (tmp_path / "c" / "bob").mkdir(parents=True)
    (tmp_path / "c" / "bob" / "1.jpg").write_bytes(photo)
    with lookalike.open(tmp_path / "lib.db") as lib:
        lib.ingest([str(tmp_path / "c")])
        for name in ("alice", "carol"):
            lib.people.save_profile(name, Profile(consent_display=True))
            report, _ = lib.add_photos(name, [("copy.jpg", photo)])
            assert [o.status for o in report.outcomes] == ["duplicate"]
        carol = Path(lib.people.photos("carol")[0][1])
        lib.remove_person("alice")
        assert carol.is_file() and len(lib.people.photos("carol")) == 1
        # an original with no face found is an original too: its copies go with it
        noise = (faces / "bad-inputs/generated/noise__noise_512.png").read_bytes()
        (tmp_path / "c" / "bob" / "2.png").write_bytes(noise)
        lib.ingest([str(tmp_path / "c")])
        report, _ = lib.add_photos("carol", [("noise.png", noise)])
        assert [o.status for o in report.outcomes] == ["duplicate"]
        lib.remove_person("bob")
        assert not carol.exists() and lib.people.photos("carol") == []
    with lookalike.open(tmp_path / "lib.db") as lib, lib.session() as session:
        from sqlalchemy import text

        assert session.execute(text("select count(*) from photos where reason like '%bob%'")).scalar() == 0


def test_a_manifest_row_naming_the_librarys_own_file_is_refused(faces, tmp_path):
    """Read as a photo, the database file was opened and closed beside the library's own
    connections, which drops their POSIX locks (a server beside it could be damaged): the
    row is refused with its reason, the rest ingested."""
    import lookalike

    shutil.copyfile(faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg", tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("path,person\na.jpg,Kit\nlib.db,Kit\nlib.db-wal,Kit\n")
    with lookalike.open(tmp_path / "lib.db") as lib:
        lib.keys.create("search")  # the file and its write-ahead log are there
        report = lib.ingest([str(tmp_path / "m.csv")])
    said = {o.path.rsplit("/", 1)[-1]: o for o in report.outcomes}
    assert said["a.jpg"].status == "ok"
    for name in ("lib.db", "lib.db-wal"):
        assert said[name].status == "rejected" and "the library's own database file" in said[name].reason

