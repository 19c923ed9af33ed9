"""Many ingest workers on one PostgreSQL: the SKIP LOCKED work queue (lookalike.store.queue).

A second machine is played by a second process group running ``lookalike worker``
against the same database URL; the corpus is on the same paths for both, as a shared
mount would put it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for

import lookalike
from lookalike.ingest.corpus import Item
from lookalike.ingest.report import Task
from lookalike.store import queue

pytestmark = pytest.mark.e2e


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike.cli", *args], capture_output=True, text=True,
                          env=os.environ.copy(), **kw)


def _popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lookalike.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=None if env is None else os.environ | env)


def _corpus(faces: Path, folder: Path, people: int, per_person: int) -> int:
    from _libraries import lfw_people, link_people

    return link_people(folder, lfw_people(faces, people, min_photos=1).items(), per_person)


def _enqueue(lib, paths: list[Path], person: str = "someone") -> None:
    """Queue photos the way ``lookalike ingest`` does, with no local worker to take them."""
    tasks = []
    for p in paths:
        data = p.read_bytes()
        tasks.append(Task(Item(str(p), person), hashlib.sha256(data).hexdigest(), len(data), b"", False))
    with lib.session() as session:
        queue.enqueue(session, lib.view.row.ensure_space(), "test-run", tasks, "largest", None)
        session.commit()



def test_ingest_and_a_worker_from_another_machine_share_the_queue(postgres, faces, tmp_path):
    from _stores import Backend

    db = Backend("postgres", postgres(), tmp_path / "idx")
    corpus = tmp_path / "corpus"
    n = _corpus(faces, corpus, 40, 4)
    # the ingest's own worker stops after its first claim's commit until the other machine's
    # worker has stored photos too: which of them gets work is chosen, not raced for
    gate = tmp_path / "gate"
    ingest = _popen("ingest", str(corpus), *db.args(), "--workers", "1", "--json",
                    env={"LOOKALIKE_HOLD_AT": f"ingest.committed@{gate}"})
    assert wait_for(lambda: (gate / "held").exists() or ingest.poll() is not None, guard=240)
    assert ingest.poll() is None, ingest.communicate()[1]
    held = db.sql("select count(*) from photos")[0][0]
    other = _popen("worker", "--db", db.url, "--workers", "1", "--until-empty", "--json")
    assert wait_for(lambda: db.sql("select count(*) from photos")[0][0] > held or other.poll() is not None,
                    guard=300)
    (gate / "release").touch()
    out, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    w_out, w_err = other.communicate(timeout=300)
    assert other.returncode == 0, w_err
    report, helped = json.loads(out), json.loads(w_out)
    assert report["processed"] == n and report["statuses"]["ok"] >= n - 3
    assert helped["photos"] > 0, "the second machine's worker got no work"
    # every photo once, every ok photo with its face, nothing left queued
    assert db.sql("select count(*), count(distinct path) from photos") == [(n, n)]
    assert db.sql("select count(*) from photos p where status = 'ok' and not exists "
                  "(select 1 from faces f where f.photo_id = p.id)") == [(0,)]
    assert db.sql("select count(*) from ingest_queue") == [(0,)]
    # concurrent writers kept the centroid sums exact: counts match the faces per person
    assert db.sql("select count(*) from centroids c where c.person_id is not null and c.count <> "
                  "(select count(*) from faces f where f.person_id = c.person_id)") == [(0,)]
    assert db.sql("select count from centroids where person_id is null") == db.sql("select count(*) from faces")
    with db.open() as lib:
        assert all(r.ok for r in lib.doctor())
        someone = next(p for p in (corpus.iterdir()) if len(list(p.iterdir())) >= 2)
        best = lib.search(str(next(someone.iterdir())), k=1).faces[0].matches[0]
        assert best.person == someone.name and best.similarity > 0.99


@pytest.mark.crash
def test_a_worker_killed_mid_photo_leaves_it_to_be_claimed_again(postgres, faces, tmp_path):
    from _libraries import lfw_people
    from _stores import Backend

    db = Backend("postgres", postgres(), tmp_path / "idx")
    photos = [p for ps in lfw_people(faces, 12, min_photos=1).values() for p in ps[:2]][:20]
    with db.open() as lib:
        _enqueue(lib, photos)
    gate = tmp_path / "gate"
    victim = _popen("worker", "--db", db.url, "--workers", "1", env={"LOOKALIKE_HOLD_AT": f"queue.claimed@{gate}"})
    # killed where it has claimed photos and recorded its attempts, and stored none of them
    assert wait_for(lambda: (gate / "held").exists() or victim.poll() is not None, guard=240)
    assert victim.poll() is None, victim.communicate()[1]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    # PostgreSQL lets the dead worker's row locks go once its backend has seen the connection
    # close, after the process is gone: a rescue that ran first would skip those rows and
    # stop, "empty", without them. Every row claimable is the signal (the probe's own locks
    # end with its transaction)
    claimable = ("select count(*) from (select id from ingest_queue where state = 'pending' "
                 "for update skip locked) free")
    assert wait_for(lambda: db.sql(claimable)[0][0] == len(photos), guard=120)
    assert db.sql("select count(*) from ingest_attempts")[0][0] > 0
    stored_before = db.sql("select count(*) from photos")[0][0]
    assert stored_before == 0
    rescue = _cli("worker", "--db", db.url, "--workers", "2", "--until-empty", "--json", timeout=600)
    assert rescue.returncode == 0, rescue.stderr
    assert json.loads(rescue.stdout)["photos"] == len(photos) - stored_before
    assert db.sql("select count(*), count(distinct path) from photos") == [(len(photos), len(photos))]
    assert db.sql("select count(*) from ingest_queue where state = 'pending'") == [(0,)]
    assert db.sql("select count(*) from ingest_attempts") == [(0,)]  # cleared with each stored photo


def test_same_bytes_under_two_paths_are_stored_once(postgres, faces, tmp_path):
    from _stores import Backend

    db = Backend("postgres", postgres(), tmp_path / "idx")
    src = next((faces / "celeb" / "faceapi_bbt" / "amy").glob("*.png"))
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    shutil.copy(src, a)
    shutil.copy(src, b)
    with db.open() as lib:
        _enqueue(lib, [a, b])
    done = _cli("worker", "--db", db.url, "--workers", "1", "--until-empty", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    rows = db.sql("select path, status, reason from photos order by path")
    assert [r[1] for r in rows] == ["ok", "duplicate"] and rows[1][2] == f"same bytes as {a}"
    assert db.sql("select count(*) from faces") == [(1,)]


def test_a_photo_a_worker_cannot_read_is_settled_with_the_oss_reason(postgres, faces, tmp_path):
    """A worker on a machine where the corpus is not where the queue says (here: the file gone
    after it was queued) settles the photo as unreadable, in the OS's words, and asks
    whether the corpus is mounted at the same path; its queue row is done."""
    from _stores import Backend

    db = Backend("postgres", postgres(), tmp_path / "idx")
    photo = tmp_path / "gone.png"
    shutil.copy(next((faces / "celeb" / "faceapi_bbt" / "amy").glob("*.png")), photo)
    with db.open() as lib:
        _enqueue(lib, [photo])
    photo.unlink()
    done = _cli("worker", "--db", db.url, "--workers", "1", "--until-empty", timeout=300)
    assert done.returncode == 0, done.stderr
    ((status, reason),) = db.sql("select status, reason from photos")
    assert status == "decode_error" and "(No such file or directory; is the corpus mounted" in reason, reason
    assert db.sql("select state, status from ingest_queue") == [("done", "decode_error")]


@pytest.mark.crash
def test_a_photo_that_kept_killing_workers_is_settled_as_an_error(postgres, faces, tmp_path):
    from _stores import Backend

    db = Backend("postgres", postgres(), tmp_path / "idx")
    photo = next((faces / "celeb" / "faceapi_bbt" / "raj").glob("*.png"))
    with db.open() as lib:
        _enqueue(lib, [photo])
        (qid,) = db.sql("select id from ingest_queue")[0]
        queue.record_attempts(lib.engine, [qid] * queue.MAX_ATTEMPTS, "dead-host:1")
    done = _cli("worker", "--db", db.url, "--workers", "1", "--until-empty", timeout=300)
    assert done.returncode == 0, done.stderr
    assert db.sql("select status, reason from photos") == [
        ("error", f"a worker process died on this photo {queue.MAX_ATTEMPTS} times; not retried")]


def test_worker_needs_postgresql(tmp_path):
    done = _cli("worker", "--db", str(tmp_path / "lib.db"), "--until-empty")
    assert done.returncode == 2  # a usage error, as every ConfigError
    assert "lookalike worker joins a PostgreSQL library" in done.stderr
    assert "Traceback" not in done.stderr


def test_centroid_sums_stay_exact_under_concurrent_writers(postgres, tmp_path):
    """Eight threads add to the same person's and the corpus' sums at once: none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    from lookalike.store import centroid_rows, person_rows

    with lookalike.open(postgres(), index_dir=tmp_path / "idx") as lib:
        space_id = lib.view.row.ensure_space()
        with lib.session() as session:
            pid = person_rows.upsert_person(session, "shared")
            session.commit()
        rng = np.random.default_rng(0)
        batches = [rng.normal(size=(5, 128)).astype(np.float32) for _ in range(16)]

        def write(vectors: np.ndarray) -> None:
            with lib.session() as session:
                centroid_rows.update_centroids(session, space_id, [pid] * len(vectors), vectors)
                session.commit()

        # first a forced overlap, not a widened window: the first writer has added and not
        # committed when the second asks; the second must wait (queued on the lock) or, if it
        # did not, would have read the old sums — a lost update on every run
        first_added, commit_first = threading.Event(), threading.Event()

        def first(vectors: np.ndarray) -> None:
            with lib.session() as session:
                centroid_rows.update_centroids(session, space_id, [pid] * len(vectors), vectors)
                first_added.set()
                assert wait_for(commit_first.is_set)
                session.commit()

        def second_waits() -> bool:
            with lib.engine.connect() as conn:
                return bool(conn.execute(text(
                    "select count(*) from pg_locks where locktype = 'advisory' and not granted and database = "
                    "(select oid from pg_database where datname = current_database())")).scalar())

        one = threading.Thread(target=first, args=(batches[0],))
        two = threading.Thread(target=write, args=(batches[1],))
        one.start()
        try:
            assert wait_for(first_added.is_set)
            two.start()
            assert wait_for(lambda: not two.is_alive() or second_waits(), guard=300)  # the signal: the lock queue
            assert two.is_alive() and second_waits(), "the second writer did not wait for the first's commit"
        finally:
            commit_first.set()
        one.join()
        two.join()
        with ThreadPoolExecutor(8) as pool:  # then many at once
            list(pool.map(write, batches[2:]))
        with lib.session() as session:
            from lookalike.store.schema import Centroid

            rows = {c.person_id: c for c in session.query(Centroid)}
        total = np.sum([b.sum(0) for b in batches], axis=0)
        assert rows[pid].count == rows[None].count == 80
        assert np.allclose(np.frombuffer(rows[pid].sum, dtype="<f8"), total, atol=1e-4)
