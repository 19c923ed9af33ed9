"""End-to-end ingest with the real Dlib model on real photos."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, wait_for

import lookalike
from lookalike.faces.pipeline import FacesMode

pytestmark = pytest.mark.e2e

ALWAYS_DECODE_ERROR = {"corrupt", "tiff_multipage"}
ALWAYS_NO_FACE = {"non_face_object", "non_face_scene", "non_face_texture", "non_face_document",
                  "non_face_binary", "animal_face", "noise", "degenerate"}
ALWAYS_ONE_FACE = {"grayscale", "grayscale_16bit", "palette_png", "png_rgba", "png_la", "webp",
                   "bmp", "tiff", "wrong_extension", "exif_orientation", "low_light", "overexposed",
                   "resolution_ladder", "single_face", "single_face_crop", "small_aligned_crop",
                   "partial_face", "huge_image"}
# detector-dependent: HOG misses ~10 px faces, 90-degree rotations and covered eyes
EITHER = {"tiny_face", "tiny_image", "rotated_no_exif", "occlusion", "cartoon",
          "grayscale_small_face", "gif_animated"}


def _sql(db: Path, query: str):
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module", params=["sqlite", "postgres", "milvus"])
def bad_run(request, faces, tmp_path_factory):
    from _stores import make_backend

    db = make_backend(request, tmp_path_factory.mktemp("bad"), request.param)
    lib = db.open()
    report = lib.ingest([str(faces / "bad-inputs")], faces=FacesMode.all)
    return lib, report, db


def test_every_bad_input_gets_its_expected_status(faces, bad_run):
    _, report, _ = bad_run
    by_name = {Path(o.path).name: o for o in report.outcomes}
    with open(faces / "bad-inputs" / "MANIFEST.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(by_name) == len(rows) == 56
    for row in rows:
        o = by_name[Path(row["path"]).name]
        cat = row["category"]
        assert o.reason or o.status == "ok", f"{o.path}: status {o.status} without a reason"
        if cat in ALWAYS_DECODE_ERROR:
            assert o.status == "decode_error", (o.path, o.status)
        elif cat in ALWAYS_NO_FACE:
            assert o.status == "no_face", (o.path, o.status)
        elif cat in ALWAYS_ONE_FACE:
            assert (o.status, o.faces) == ("ok", 1), (o.path, o.status, o.faces)
        elif cat in ("multi_face", "group_many_faces"):
            want = 6 if cat == "group_many_faces" else 2
            assert o.status == "ok" and o.faces >= want, (o.path, o.faces)
        else:
            assert cat in EITHER, f"unplanned category {cat}"
            assert o.status in ("ok", "no_face")


def test_bad_inputs_are_recorded_in_the_database(bad_run):
    lib, report, db = bad_run
    rows = db.sql("select status, count(*) from photos group by status")
    assert dict(rows) == {k: v for k, v in report.statuses.items() if v}
    assert lib.doctor()[0].ok


def test_rerun_changes_nothing(bad_run, faces):
    lib, first, db = bad_run
    before = db.sql("select id, path, status, sha256 from photos order by id")
    faces_before = db.sql("select id, embedding from faces order by id")
    index_file = db.index_dir / f"{lib.view.space.key}.faiss"  # PostgreSQL: none at all
    stamp = index_file.stat().st_mtime_ns if db.name == "sqlite" else None
    assert (stamp is None) == (not index_file.exists())
    again = db.open().ingest([str(faces / "bad-inputs")], faces=FacesMode.all)
    assert again.statuses["unchanged"] == 56 and again.processed == 0
    assert db.sql("select id, path, status, sha256 from photos order by id") == before
    assert db.sql("select id, embedding from faces order by id") == faces_before
    assert stamp is None or index_file.stat().st_mtime_ns == stamp  # not even rewritten


def test_held_back_photo_finds_its_person_first(library, lfw_corpus):
    _, held = lfw_corpus
    hits = 0
    for person, photo in held.items():
        result = library.search(str(photo), k=5)
        top = result.faces[0].matches[0]
        hits += top.person == person
        assert str(photo) != top.photo  # the query itself was never stored
    assert hits / len(held) >= 0.95, f"{hits}/{len(held)} held-back photos matched first"


def test_celeb_photo_finds_its_person(library, faces):
    result = library.search(str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg"), k=3)
    assert result.faces[0].matches[0].person == "barack_obama"


def test_duplicates_are_ingested_once_and_conflicts_reported(faces, tmp_path, backend):
    src = faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
    for who in ("Aaron_Peirsol", "Someone_Else"):
        (tmp_path / "c" / who).mkdir(parents=True)
        (tmp_path / "c" / who / "a.jpg").write_bytes(src.read_bytes())
    (tmp_path / "c" / "Aaron_Peirsol" / "copy.jpg").write_bytes(src.read_bytes())
    lib = backend.open()
    report = lib.ingest([str(tmp_path / "c")])
    assert report.statuses["ok"] == 1 and report.statuses["duplicate"] == 2
    assert len(report.conflicts) == 1 and "another person" in report.conflicts[0].reason
    assert lib.stats()["faces"] == 1


def test_changed_file_is_redone(faces, tmp_path, backend):
    folder = tmp_path / "c" / "Aaron_Peirsol"
    folder.mkdir(parents=True)
    target = folder / "a.jpg"
    target.write_bytes((faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg").read_bytes())
    lib = backend.open()
    lib.ingest([str(tmp_path / "c")])
    first_id = backend.sql("select id from faces")[0][0]
    target.write_bytes((faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0002.jpg").read_bytes())
    lib = backend.open()
    report = lib.ingest([str(tmp_path / "c")])
    assert report.statuses["ok"] == 1
    ids = backend.sql("select id from faces")
    assert len(ids) == 1 and ids[0][0] != first_id
    assert lib.doctor()[0].ok


def test_manifest_ingest_keeps_profile_fields(faces, tmp_path):
    lfw = faces / "lfw-dev" / "images" / "Aaron_Sorkin"
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((lfw / "Aaron_Sorkin_0001.jpg").read_bytes())
    (folder / "b.jpg").write_bytes((lfw / "Aaron_Sorkin_0002.jpg").read_bytes())
    manifest = folder / "people.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "person", "display_name", "role", "organisation", "story", "tags",
                    "consent_display", "source_url", "license"])
        w.writerow(["a.jpg", "Aaron Sorkin", "Aaron S.", "Writer", "Studio", "Wrote many plays.",
                    "writers;east coast", "true", "https://example.org/a", "CC-BY"])
        w.writerow([folder / "b.jpg", "Aaron Sorkin"] + [""] * 8)  # absolute, inside: fine
        w.writerow(["../escape.jpg", "X"] + [""] * 8)
        w.writerow([lfw / "Aaron_Sorkin_0001.jpg", "X"] + [""] * 8)  # absolute, outside
    lib = lookalike.open(tmp_path / "m.db")
    report = lib.ingest([str(manifest)])
    statuses = [(Path(o.path).name, o.status) for o in report.outcomes]
    assert sorted(statuses) == [("Aaron_Sorkin_0001.jpg", "rejected"), ("a.jpg", "ok"),
                                ("b.jpg", "ok"), ("escape.jpg", "rejected")]
    row = _sql(tmp_path / "m.db", "select display_name, role, organisation, story, tags, "
               "consent_display, source_url, license from people where name='Aaron Sorkin'")[0]
    assert row[:4] == ("Aaron S.", "Writer", "Studio", "Wrote many plays.")
    assert json.loads(row[4]) == ["writers", "east-coast"] and row[5] == 1
    assert row[6:] == ("https://example.org/a", "CC-BY")
    assert _sql(tmp_path / "m.db", "select count(*) from faces f join people p on p.id = f.person_id "
                                   "where p.name = 'Aaron Sorkin'")[0][0] == 2
    # the manifest edited: a role with a control character refuses that row's text, and the
    # photo stored before keeps its place and its faces (nothing stored is lost to bad text);
    # the row still says consent is withheld (no consent_display: not agreed), and that one
    # word counts: consent narrows on any row, and a refused row never widens it. A new photo
    # in a refused row is not stored, and its person's stored profile is not blanked. A story
    # written by a spreadsheet (CR LF in a quoted cell) is stored with LF.
    (folder / "c.jpg").write_bytes((lfw / "Aaron_Sorkin_0001.jpg").read_bytes()[:-1] + b"\xd9")
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)  # csv's default line ends are CR LF too
        w.writerow(["path", "person", "role", "story", "consent_display"])
        w.writerow(["a.jpg", "Aaron Sorkin", "Writer\x07", "", "true"])
        w.writerow(["b.jpg", "Ann Other", "", "line one\r\nline two", "true"])
    again = {Path(o.path).name: o for o in lib.ingest([str(manifest)]).outcomes}
    assert again["a.jpg"].status == "unchanged", again["a.jpg"]
    assert "people.csv:2: profile refused: role holds the control character U+0007" in again["a.jpg"].reason
    assert _sql(tmp_path / "m.db", "select role, consent_display from people where name='Aaron Sorkin'")[0] == (
        "Writer", 1), "a refused row widened or narrowed what it may not"
    assert _sql(tmp_path / "m.db", "select story from people where name='Ann Other'")[0][0] == "line one\nline two"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "person", "role", "consent_display"])
        w.writerow(["a.jpg", "Aaron Sorkin", "Writer\x07", ""])  # withheld, in a refused row
        w.writerow(["c.jpg", "Aaron Sorkin", "Director\x07", "maybe"])  # new, refused: not stored
    third = {Path(o.path).name: o for o in lib.ingest([str(manifest)]).outcomes}
    assert third["a.jpg"].status == "unchanged"
    assert "the row withholds consent: that is recorded" in third["a.jpg"].reason
    assert third["c.jpg"].status == "rejected" and "consent_display must be true or false" in third["c.jpg"].reason
    done = lib.ingest([str(manifest)]).to_dict()["profiles_refused"]  # said apart: "unchanged" says nothing of it
    assert [Path(r["path"]).name for r in done] == ["a.jpg"] and "profile refused" in done[0]["reason"]
    assert _sql(tmp_path / "m.db", "select role, organisation, consent_display from people "
                                   "where name='Aaron Sorkin'")[0] == ("Writer", "Studio", 0)
    assert _sql(tmp_path / "m.db", "select count(*) from faces f join photos ph on ph.id = f.photo_id "
                                   "where ph.status = 'ok'")[0][0] == 2  # a.jpg's and b.jpg's faces, as before
    lib.close()


def _cli(*args: str, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike.cli", *args], capture_output=True,
                          text=True, env=env or os.environ.copy(), **kw)


def _die_mid_run(command: list[str], backend_name: str, nth: int, gate: Path) -> None:
    """Run the ingest ``command`` until it dies right after a batch's SQL commit — never
    after a delay, so where it dies does not depend on the machine's speed.

    SQLite stores (the FAISS file, Milvus Lite): this process is the writer; it ends itself
    (``os._exit``, exit 87) at its ``nth`` commit. PostgreSQL stores: the queue workers
    commit (lookalike/ingest/queued.py) and the parent replaces a dead one, so each worker
    is held right after its first commit and the whole process group — the parent and its
    workers — is SIGKILLed there, no clean-up."""
    import signal

    from lookalike.faults import ENV, EXIT_CODE, HOLD_ENV

    env = {k: v for k, v in os.environ.items() if k not in (ENV, HOLD_ENV)}
    queued = backend_name == "postgres"
    env |= {HOLD_ENV: f"ingest.committed@{gate}"} if queued else {ENV: f"ingest.committed:{nth}"}
    gate.mkdir(parents=True, exist_ok=True)
    log = gate / "stderr.txt"  # a file, not a pipe: orphaned pool workers would hold a pipe open
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
    try:
        if queued:
            wait_for(lambda: (gate / "held").exists() or proc.poll() is not None)  # the signal: the file
            assert (gate / "held").exists() and proc.poll() is None, "no worker reached a commit"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            proc.wait(timeout=900)
            assert proc.returncode == EXIT_CODE, f"did not die at commit {nth}: {log.read_text()[-2000:]}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it started and left behind
        except ProcessLookupError:
            pass



@pytest.mark.crash
def test_sigkill_mid_ingest_then_resume_loses_nothing(faces, tmp_path, backend):
    """Killed twice mid-run, right after a batch's commit (lookalike.faults), a resume
    stores every photo once, each with its faces."""
    from _libraries import lfw_people, link_people

    corpus = tmp_path / "corpus"
    n_photos = link_people(corpus, lfw_people(faces, 60, min_photos=1).items(), 4)

    def stored() -> int:
        try:
            return backend.sql("select count(*) from photos")[0][0]
        except Exception:  # noqa: BLE001 - the schema is not there yet
            return 0

    command = [sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), *backend.args(), "-q"]
    before = 0
    for nth in (1, 2):  # the second run dies further on than the first
        _die_mid_run(command, backend.name, nth, tmp_path / f"gate{nth}")
        after = stored()
        assert after < n_photos, "the ingest finished before it died"
        assert after > before or backend.name == "postgres", (before, after)
        before = after
    assert 0 < before < n_photos
    resumed = cli("ingest", str(corpus), *backend.args(), "--json")  # a resume needs no process of its own
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["statuses"]["unchanged"] >= before
    paths = backend.sql("select path, count(*) from photos group by path having count(*) > 1")
    assert paths == []  # no duplicate photo
    assert backend.sql("select count(*) from photos")[0][0] == n_photos  # no missing photo
    assert backend.sql("select count(*) from photos p where status='ok' and not exists "
                       "(select 1 from faces f where f.photo_id = p.id)")[0][0] == 0
    doctor = cli("doctor", *backend.args(), "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout)["ok"] is True


def test_second_ingest_on_same_library_refuses(faces, tmp_path):
    lib = lookalike.open(tmp_path / "l.db")
    with lib.view.vectors.store().write_lock():
        result = _cli("ingest", str(faces / "celeb" / "deepface"), "--db", str(tmp_path / "l.db"))
    assert result.returncode == 1
    assert "being written by pid" in result.stderr


def test_a_script_without_a_main_guard_can_ingest_with_workers(faces, tmp_path):
    """Workers start with an empty ``__main__`` (lookalike.workers): a plain script (or a
    Streamlit page) is not re-run in each worker."""
    photos = sorted((faces / "celeb/faceapi_bbt/amy").glob("*.png"))[:3]
    script = tmp_path / "plain.py"
    script.write_text(
        "import lookalike\n"
        "print('script body ran')\n"
        f"report = lookalike.open({str(tmp_path / 'p.db')!r}).ingest({[str(p) for p in photos]!r}, workers=2)\n"
        "print('ok', report.statuses['ok'])\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("script body ran") == 1 and "ok 3" in run.stdout


def test_a_small_run_maps_in_this_process_and_stores_what_workers_store(faces, tmp_path, caplog):
    """Under IN_PROCESS_BELOW photos the default maps them here (no worker to spawn, the
    library's own models): the same photos, faces, boxes and vectors as two workers."""
    import numpy as np

    from lookalike.ingest import local

    folder = faces / "celeb" / "face_recognition"
    assert len(list(folder.rglob("*.jpg"))) < local.IN_PROCESS_BELOW
    stored = {}
    for workers in (0, 2):
        (tmp_path / f"w{workers}").mkdir()
        db = tmp_path / f"w{workers}" / "lib.db"
        with lookalike.open(db) as lib:
            with caplog.at_level("DEBUG", logger="lookalike.ingest.local"):
                report = lib.ingest([str(folder)], workers=workers)
            assert report.statuses["ok"] >= 14
        stored[workers] = {
            (Path(path).name, x, y, w, h): np.frombuffer(blob, dtype="<f4")
            for path, x, y, w, h, blob in _sql(db, "select p.path, f.x, f.y, f.w, f.h, f.embedding "
                                                   "from faces f join photos p on p.id = f.photo_id")}
    mapped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mapping photos")]
    assert mapped == ["mapping photos in this process", "mapping photos in 2 worker processes"]
    assert stored[0].keys() == stored[2].keys()
    for key, vec in stored[0].items():
        assert float(vec @ stored[2][key]) > 0.9999, key


@pytest.mark.parametrize("guessed", ["NoSuchModel", "SFace"])
def test_workers_started_before_the_library_opens_map_for_the_space_it_has(faces, tmp_path, caplog, guessed):
    """Workers started on a guess the library does not match (a model that does not exist;
    or the library's own model, with every face of a photo where the run keeps the largest):
    the run takes them instead of starting a pool of its own, they map with the run's
    mapper at their first call (the guessed models kept where they are the run's), and
    store what this process maps."""
    import numpy as np

    from lookalike.faces.pipeline import Space
    from lookalike.ingest import corpus, local
    from lookalike.ingest.mapper import MapperSpec

    items = corpus.scan_photos([str(faces / "celeb" / "face_recognition")]).items
    guess = MapperSpec(Space(guessed, "yunet", "arcface"), 640, 10**8, FacesMode.all)
    stored = {}
    for name in ("here", "started"):
        db = tmp_path / name / "lib.db"
        db.parent.mkdir()
        with lookalike.open(db) as lib, caplog.at_level("DEBUG", logger="lookalike.ingest.local"):
            if name == "here":
                report = lib.ingest_items(items)
            else:
                with local.start_workers(2, len(items), guess) as started:
                    report = lib.ingest_items(items, workers=2, started=started)
            assert report.statuses["ok"] >= 14
        stored[name] = {
            (Path(path).name, x, y, w, h): np.frombuffer(blob, dtype="<f4")
            for path, x, y, w, h, blob in _sql(db, "select p.path, f.x, f.y, f.w, f.h, f.embedding "
                                                   "from faces f join photos p on p.id = f.photo_id")}
    said = [r.getMessage() for r in caplog.records]
    assert "starting 2 worker processes before the library opens" in said
    assert [m for m in said if m.startswith("mapping photos")] == ["mapping photos in this process"]
    assert stored["here"].keys() == stored["started"].keys()  # the run's mode (largest), not the guess's
    for key, vec in stored["here"].items():
        assert float(vec @ stored["started"][key]) > 0.9999, key


def test_workers_whose_models_do_not_load_end_the_run_with_one_clear_error(faces, weights_home, tmp_path):
    """Workers started before the library opened, whose guess and whose run's models do
    not load (here a model no registry knows; in life a damaged file or an engine that
    refuses it): the run ends with IngestFailed naming the space at the first call, not with
    a worker's traceback, and nothing is stored. (A pool the run starts itself loads its
    models as it starts: five such pools broken in a row end it, the test above.)"""
    from lookalike.errors import IngestFailed
    from lookalike.faces.pipeline import Space
    from lookalike.ingest import corpus, local, runner
    from lookalike.ingest.mapper import MapperSpec

    items = corpus.scan_photos([str(faces / "celeb" / "face_recognition")]).items
    with lookalike.open(tmp_path / "lib.db") as lib:
        options = runner.options(lib.view.space, FacesMode.largest, 1, None)
        broken = MapperSpec(Space("NoSuchModel", "yunet", "arcface"), 640, 10**8)
        with local.start_workers(1, len(items), broken) as started:
            distributor = local.ProcessPool(lib.view, options, 1, started)
            distributor.spec = broken
            with lib.view.vectors.writers(), \
                    pytest.raises(IngestFailed, match="could not load the models of NoSuchModel__"):
                runner.run(lib.view, items, options, distributor)
        assert lib.stats()["photos"] == 0


def test_the_cli_starts_workers_first_only_for_a_new_library(faces, tmp_path):
    """`lookalike ingest` into a new library file starts its workers before opening it (all
    its photos need them) and maps in them; into an existing library the pool starts at the
    first photo that needs it (a re-run may need none)."""
    photos = sorted((faces / "celeb" / "face_recognition").rglob("*.jpg"))
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, some in ((first, photos[:6]), (second, photos[6:12])):
        for p in some:
            (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
            (folder / p.parent.name / p.name).symlink_to(p)
    env = os.environ | {"LOOKALIKE_LOG_LEVEL": ""}
    db = str(tmp_path / "lib.db")
    new = _cli("-v", "ingest", str(first), "--db", db, "--workers", "2", "--json", env=env)
    assert new.returncode == 0, new.stderr
    assert "starting 2 worker processes before the library opens" in new.stderr
    assert "mapping photos in 2 worker processes" not in new.stderr
    again = _cli("-v", "ingest", str(second), "--db", db, "--workers", "2", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert "before the library opens" not in again.stderr
    assert "mapping photos in 2 worker processes" in again.stderr
    assert json.loads(new.stdout)["statuses"]["ok"] + json.loads(again.stdout)["statuses"]["ok"] >= 10
    nowhere = _cli("-v", "ingest", str(first), "--db", str(tmp_path / "no-such-folder" / "lib.db"), "--workers", "2",
                   env=env)  # a library that cannot be made: said at once, no worker started for it
    assert nowhere.returncode != 0 and "folder for the database does not exist" in nowhere.stderr
    assert "before the library opens" not in nowhere.stderr


def _broken_pools(broken: int):
    """A ProcessPool whose first ``broken`` pools have a worker die (os._exit) before any
    photo, seen broken by the time the run submits to them; ``started`` counts its pools."""
    from concurrent.futures.process import BrokenProcessPool

    from lookalike.ingest import local

    class BrokenPools(local.ProcessPool):
        started = 0

        def _start(self):
            pool = super()._start()
            self.started += 1
            if self.started <= broken:
                with pytest.raises(BrokenProcessPool):
                    pool[0].submit(os._exit, 1).result()
            return pool

    return BrokenPools


def test_a_pool_found_broken_at_submit_is_replaced_and_nothing_is_lost(faces, weights_home, tmp_path):
    """Whether a dead worker is noticed when a result is collected or when the next photo is
    submitted depends on the machine's speed (the second way failed a CI run, 2026-12-05).
    Chosen here: the run's first pool is broken before its first photo (a real pool whose
    worker died), so the very first submit finds it broken; a new pool maps every photo."""
    from lookalike.ingest import corpus, runner

    photos = sorted((faces / "celeb" / "face_recognition").rglob("*.jpg"))[:6]
    lib = lookalike.open(tmp_path / "lib.db")
    try:
        items = corpus.scan([str(p) for p in photos]).items
        options = runner.options(lib.view.space, FacesMode.largest, 1, None)
        distributor = _broken_pools(1)(lib.view, options, 1)
        with lib.view.vectors.writers():
            report = runner.run(lib.view, items, options, distributor)
        assert distributor.started == 2
        assert report.statuses.get("ok") == len(photos), report.statuses
    finally:
        lib.close()


def test_workers_that_die_as_they_start_end_the_run_with_one_clear_error(faces, weights_home, tmp_path):
    """Every pool is broken before its first photo (workers that cannot start: a model that
    does not load, no memory): after FRUITLESS_POOLS pools in a row the run ends with
    IngestFailed, instead of one new pool per photo, and nothing half-written is left."""
    from lookalike.errors import IngestFailed
    from lookalike.ingest import corpus, local, runner

    photos = sorted((faces / "celeb" / "face_recognition").rglob("*.jpg"))[:12]
    lib = lookalike.open(tmp_path / "lib.db")
    try:
        items = corpus.scan([str(p) for p in photos]).items
        options = runner.options(lib.view.space, FacesMode.largest, 1, None)
        distributor = _broken_pools(local.ProcessPool.FRUITLESS_POOLS)(lib.view, options, 1)
        with lib.view.vectors.writers(), pytest.raises(IngestFailed, match="5 pools of ingest workers in a row died"):
            runner.run(lib.view, items, options, distributor)
        assert distributor.started == local.ProcessPool.FRUITLESS_POOLS
        assert lib.stats()["photos"] == 0  # no photo was mapped, none was stored as anything
    finally:
        lib.close()
