"""Readers while a writer ingests: no error, no torn index, only committed faces, and the
newer index picked up; a second writer refuses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import index_dir_of

import lookalike
from lookalike.faults import HOLD_ENV
from lookalike.query.search import SearchOptions, search_vectors

pytestmark = pytest.mark.e2e


def test_searches_during_an_ingest_see_only_committed_faces_and_pick_up_new_ones(faces, tmp_path):
    from _libraries import lfw_people, link_people

    first, second = tmp_path / "first", tmp_path / "second"
    # 20 photos, then 107 more: four batches of the writer, so searches run between its
    # commits (the hold below makes sure they overlap it however fast the machine is)
    people = list(lfw_people(faces, 80, min_photos=1).items())
    link_people(first, people[:10], 3)
    link_people(second, people[10:], 3)
    db = tmp_path / "lib.db"
    assert lookalike.open(db).ingest([str(first)]).statuses["ok"] > 0
    reader = lookalike.open(db)
    queries = reader.view.vectors.stored(reader.view.vectors.index.ids()[:5])
    start = reader.view.vectors.index.ntotal
    # the writer stops after its first batch's commit until released (lookalike.faults): the
    # second writer and the CLI search below run while it holds the library, however fast it is
    gate = tmp_path / "gate"
    writer = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "ingest", str(second), "--db", str(db),
                               "-q", "--workers", "1"], stderr=subprocess.PIPE, text=True,
                              env=os.environ | {HOLD_ENV: f"ingest.committed@{gate}"})
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    runs, seen = 0, [start]
    refused = None
    try:
        while writer.poll() is None or runs == 0:
            for q in queries:
                # raises on any torn read
                result = search_vectors(reader.view, [((0, 0, 1, 1), 1.0, q)], SearchOptions(k=5))
                ids = [m.face_id for f in result.faces for m in f.matches]
                held = {r[0] for r in conn.execute(f"select id from faces where id in ({','.join(map(str, ids))})")}
                assert set(ids) <= held, "an answer named a face the database does not hold"
                runs += 1
            seen.append(reader.view.vectors.index.ntotal)
            lock = index_dir_of(db) / ".write.lock"
            if refused is None and (gate / "held").exists():  # the writer holds the library, mid-ingest
                assert lock.read_text() == f"pid {writer.pid}"
                # a second writer, and a search in another process, both while the first writer stores
                second_writer = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "ingest", str(second), "--db",
                                                  str(db), "-q"], stderr=subprocess.PIPE, text=True)
                cli = subprocess.run([sys.executable, "-m", "lookalike.cli", "search", str(next(second.glob("*/*"))),
                                      "--db", str(db), "--json"], capture_output=True, text=True)
                cli_ran_during_ingest = writer.poll() is None
                refused = (second_writer.wait(), second_writer.stderr.read())  # type: ignore[union-attr]
                assert cli.returncode == 0, cli.stderr
                answered = [m["face_id"] for f in json.loads(cli.stdout)["faces"] for m in f["matches"]]
                listed = ",".join(map(str, answered))
                held = {r[0] for r in conn.execute(f"select id from faces where id in ({listed})")}
                assert answered and set(answered) <= held
                (gate / "release").touch()
            time.sleep(0.05)
    finally:  # never leave the writer waiting
        (gate / "release").touch()
    assert writer.wait() == 0, writer.stderr.read()
    assert refused is not None and refused[0] == 1 and "being written by" in refused[1]
    assert cli_ran_during_ingest, "the ingest ended before the CLI search did: the test proved nothing"
    seen.append(reader.view.vectors.index.ntotal)
    assert seen[-1] > start and sorted(seen) == seen  # grew, and never went back
    total = conn.execute("select count(*) from faces").fetchone()[0]
    assert reader.view.vectors.index.ntotal == total


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_long_lived_reader_sees_the_centroids_another_process_moved(faces, tmp_path, store, request):
    """A server process keeps its library open for days: when another process adds a
    person's photos, the reader's next search measures against the person's new average
    face, as a freshly opened library does (not the one it cached). SQLite: the other
    process also saves the index file; PostgreSQL has no file to watch, the space's
    centroid generation tells."""
    import shutil

    bbt, corpus = faces / "celeb" / "faceapi_bbt", tmp_path / "corpus"
    for person in ("amy", "raj", "penny"):
        (corpus / person).mkdir(parents=True)
        for photo in sorted((bbt / person).iterdir())[:2]:
            shutil.copy(photo, corpus / person / photo.name)
    db = str(tmp_path / "lib.db") if store == "sqlite" else request.getfixturevalue("postgres")()
    query = str(bbt / "amy" / "amy5.png")

    def amy_figure(lib) -> float:
        match = next(m for m in lib.search(query, k=6).faces[0].matches if m.person == "amy")
        return match.person_centroid_similarity

    with lookalike.open(db) as reader:
        assert reader.ingest([str(corpus)]).statuses["ok"] == 6
        before = amy_figure(reader)
        for photo in sorted((bbt / "amy").iterdir())[2:4]:
            shutil.copy(photo, corpus / "amy" / photo.name)
        done = subprocess.run([sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db", db, "-q"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        after = amy_figure(reader)
    with lookalike.open(db) as fresh:
        assert after == pytest.approx(amy_figure(fresh), abs=1e-6)
    assert abs(after - before) > 1e-4  # two more photos moved amy's average face


def test_two_first_callers_of_a_shared_library_make_one_view(tmp_path, monkeypatch):
    """The web app's visitors and a server's requests share one library object: the first
    two calls from two threads each made a view (its index and models loaded twice, one of
    them thrown away; architecture review 56, M6). The first is held while it makes the view,
    and the second is seen waiting for it, not making its own (its thread's own frame is the
    signal, never a duration)."""
    import threading

    from conftest import wait_for

    from lookalike.verbs import library

    made, go_on = [], threading.Event()
    real = library.SpaceView

    def held(*args, **kwargs):  # the view the library makes, the first one held until the test says
        made.append(threading.get_ident())
        if len(made) == 1:
            assert wait_for(go_on.is_set)
        return real(*args, **kwargs)

    monkeypatch.setattr(library, "SpaceView", held)
    views: dict[str, object] = {}
    with lookalike.open(tmp_path / "lib.db") as lib:
        first = threading.Thread(target=lambda: views.setdefault("first", lib.view))
        first.start()
        assert wait_for(lambda: len(made) == 1, guard=120)
        second = threading.Thread(target=lambda: views.setdefault("second", lib.view))
        second.start()

        def waiting() -> bool:  # the second thread inside `view`, at its lock, or making its own view
            # where another thread waits is seen only here: the signal this test waits for
            frame = sys._current_frames().get(second.ident or 0)  # noqa: SLF001 - no public way to see it
            return len(made) == 2 or (frame is not None and frame.f_code.co_name == "view")

        assert wait_for(waiting, guard=120)
        go_on.set()
        first.join()
        second.join()
        assert len(made) == 1 and views["first"] is views["second"]


def test_reading_people_never_waits_behind_a_call_that_holds_the_library(site):
    """The list of people, a person and a photo run no model and do not open the index: a
    kiosk's reads do not queue behind an admin's upload or a large transform, which hold the
    library's lock (architecture review 56, M3: the server took the lock around every call).
    Another thread holds it for the whole test. Each read either answers or is seen waiting
    at the lock (a thread of the server inside ``Service.call``, its own frame the signal),
    never judged by how long it took."""
    import threading

    from _site import call
    from conftest import wait_for

    lib = site["client"].app.state.service.lib
    photo = call(site, "GET", "/v1/people/barack_obama").json()["faces"][0]["photo"]  # nothing holds it yet
    holding, done = threading.Event(), threading.Event()

    def holder() -> None:  # an admin's upload, as far as the lock can tell
        with lib.calls:
            holding.set()
            wait_for(done.is_set)

    held = threading.Thread(target=holder)
    held.start()
    assert wait_for(holding.is_set)
    try:
        # not /v1/stats: its counts open the index, under the lock
        for path in ("/v1/people", "/v1/people/barack_obama", photo):
            answers: list = []
            reader = threading.Thread(target=lambda p=path, got=answers: got.append(call(site, "GET", p)))
            reader.start()

            def at_the_lock() -> bool:  # where another thread waits is seen only here
                frames = sys._current_frames().values()  # noqa: SLF001 - no public way to see it
                return any(f.f_code.co_name == "call" and f.f_code.co_filename.endswith("service.py")
                           for f in frames)

            assert wait_for(lambda got=answers: bool(got) or at_the_lock(), guard=300)
            assert answers, f"GET {path} waited for the library's lock"
            assert answers[0].status_code == 200, (path, answers[0].text)
            reader.join()
    finally:
        done.set()
        held.join()


def test_reads_beside_the_lock_run_as_many_at_once_as_the_cores(site):
    """Reads that skip the library's lock (a photo's portrait decodes it) are bounded by the
    cores: with every place taken, one more read is seen waiting inside ``Service.read``
    (its thread's own frames the signal), and runs once a place is given back (review 57:
    up to 40 decodes of 100-MP files could run at once)."""
    import threading

    from conftest import wait_for

    service = site["client"].app.state.service
    places = max(2, os.cpu_count() or 1)
    go_on, started = threading.Event(), []

    def held(lib) -> None:  # a read that keeps its place until the test says
        started.append(threading.get_ident())
        assert wait_for(go_on.is_set)

    readers = [threading.Thread(target=service.read, args=(held,)) for _ in range(places + 1)]
    for reader in readers[:places]:
        reader.start()
    assert wait_for(lambda: len(started) == places, guard=120)
    last = readers[-1]
    last.start()

    def waiting_in_read() -> bool:  # where another thread waits is seen only here
        frame = sys._current_frames().get(last.ident or 0)  # noqa: SLF001 - no public way to see it
        while frame is not None:
            if frame.f_code.co_name == "read" and frame.f_code.co_filename.endswith("service.py"):
                return True
            frame = frame.f_back
        return False

    try:
        assert wait_for(lambda: waiting_in_read() or len(started) > places, guard=120)
        assert len(started) == places, "a read past the cores' count ran at once"
    finally:
        go_on.set()
        for reader in readers:
            reader.join()
    assert len(started) == places + 1
