"""Schema migrations and the FAISS index file: upgrade, refuse newer, atomic save."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import wait_for

from lookalike.errors import IndexCorrupt, SchemaTooNew
from lookalike.index.faiss_index import FaissIndex, Manifest
from lookalike.store import db


def test_new_database_is_created_at_head(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    assert db.migrate(engine) == db.head_revision() == db.HEAD == "0013"
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"people", "photos", "faces", "indexes", "centroids", "calibrations", "face_estimates",
            "alembic_version"} <= tables


def test_older_database_is_upgraded(tmp_path):
    # an "older" database: created before any migration ran (no alembic_version table)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("create table unrelated (x int)")
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    assert db.current_revision(engine) is None
    assert db.migrate(engine) == db.HEAD
    assert db.current_revision(engine) == db.HEAD


def test_revision_0001_library_gets_centroids_from_its_vectors(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'v1.db'}")
    db.move_to(engine, "0001")
    vecs = _vectors(3)
    with sqlite3.connect(tmp_path / "v1.db") as conn:
        conn.execute("insert into indexes values (1, 'k', 'u', 'M', 'd', 'chip', 8, 'ip', 'l2', '2026-01-01')")
        conn.execute("insert into people (id, name, consent_display, created_at) values (1, 'a', 0, '2026-01-01')")
        conn.execute("insert into photos (id, space_id, path, status, created_at) "
                     "values (1, 1, 'p', 'ok', '2026-01-01')")
        for i, v in enumerate(vecs):
            conn.execute("insert into faces (space_id, photo_id, person_id, x, y, w, h, confidence, embedding) "
                         "values (1, 1, ?, 0, 0, 1, 1, 1.0, ?)", (1 if i < 2 else None, v.astype("<f4").tobytes()))
    assert db.migrate(engine) == db.HEAD
    from lookalike.store import centroid_rows

    with db.session_factory(engine)() as session:
        cents = centroid_rows.centroids(session, 1)
    assert cents[1][1] == 2 and cents[None][1] == 3
    expected = vecs[:2].sum(0) / np.linalg.norm(vecs[:2].sum(0))
    assert np.allclose(cents[1][0], expected, atol=1e-6)


def test_newer_database_is_refused(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    db.migrate(engine)
    with sqlite3.connect(tmp_path / "new.db") as conn:
        conn.execute("update alembic_version set version_num = '9999'")
    with pytest.raises(SchemaTooNew, match="newer lookalike"):
        db.migrate(db.make_engine(f"sqlite:///{tmp_path / 'new.db'}"))


def _manifest(**kw) -> Manifest:
    base = dict(space="M__d__chip", model="M", detector="d", aligner="chip", dim=8, metric="ip",
                index_key="Flat", ntotal=0, max_id=0, schema_revision="0001", space_uid="u1")
    return Manifest(**{**base, **kw})


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_index_roundtrip_and_search(tmp_path):
    index = FaissIndex(tmp_path, _manifest())
    vecs = _vectors(50)
    index.add(np.arange(100, 150), vecs)
    index.save()
    assert not list(tmp_path.glob(".*.tmp"))  # temp files renamed away
    again = FaissIndex.load(tmp_path, _manifest())
    assert again.ntotal == 50 and sorted(again.ids().tolist()) == list(range(100, 150))
    sims, ids = again.search(vecs[7], 3)
    assert ids[0][0] == 107 and sims[0][0] == pytest.approx(1.0, abs=1e-5)


def test_index_refuses_other_model_dim_or_library(tmp_path):
    index = FaissIndex(tmp_path, _manifest())
    index.add(np.arange(3), _vectors(3))
    index.save()
    with pytest.raises(IndexCorrupt, match="model='M'"):  # the library's files disagree: a 500, logged
        FaissIndex.load(tmp_path, _manifest(model="Other"))
    from lookalike.errors import IndexOwnedElsewhere

    with pytest.raises(IndexOwnedElsewhere):
        FaissIndex.load(tmp_path, _manifest(space_uid="someone-else"))


def test_corrupt_manifest_or_index_is_refused(tmp_path):
    index = FaissIndex(tmp_path, _manifest())
    index.add(np.arange(3), _vectors(3))
    index.save()
    (tmp_path / "M__d__chip.json").write_text("{not json")
    with pytest.raises(IndexCorrupt, match="unreadable manifest"):
        FaissIndex.load(tmp_path, _manifest())
    index.save()
    (tmp_path / "M__d__chip.faiss").write_bytes(b"nope")
    with pytest.raises(IndexCorrupt, match="not a readable FAISS index"):
        FaissIndex.load(tmp_path, _manifest())


def test_reconcile_adds_missing_and_drops_orphans(tmp_path):
    vecs = _vectors(10)
    index = FaissIndex(tmp_path, _manifest())
    index.add(np.array([1, 2, 3, 99]), vecs[[1, 2, 3, 9]])
    added, removed = index.reconcile(np.arange(1, 8), lambda ids: vecs[ids])
    assert (added, removed) == (4, 1)
    assert sorted(index.ids().tolist()) == list(range(1, 8))
    sims, ids = index.search(vecs[5], 1)
    assert ids[0][0] == 5


def test_a_reader_notices_a_newer_saved_index_and_never_reads_a_torn_pair(tmp_path):
    writer = FaissIndex(tmp_path, _manifest())
    vecs = _vectors(20)
    writer.add(np.arange(1, 11), vecs[:10])
    writer.save()
    reader = FaissIndex.load(tmp_path, _manifest())
    assert not reader.changed_on_disk() and reader.ntotal == 10
    import os

    # the next save lands inside the same file-timestamp tick (as on a coarse file system,
    # or a fast writer): the manifest's times are set back to the first save's. The reader
    # still sees it, by the generation the manifest carries.
    manifest_path = tmp_path / "M__d__chip.json"
    first = manifest_path.stat()
    writer.add(np.arange(11, 21), vecs[10:])
    writer.save()
    os.utime(manifest_path, ns=(first.st_atime_ns, first.st_mtime_ns))
    assert manifest_path.stat().st_mtime_ns == first.st_mtime_ns
    assert reader.changed_on_disk() and not writer.changed_on_disk()
    again = FaissIndex.load(tmp_path, _manifest())
    assert again.ntotal == 20 and not again.changed_on_disk()
    assert json.loads(manifest_path.read_text())["generation"] == 2
    # a writer caught between its two renames: new index file, old manifest
    manifest = (tmp_path / "M__d__chip.json").read_text()
    writer.add(np.arange(21, 23), _vectors(2, seed=1))
    writer.save()
    (tmp_path / "M__d__chip.json").write_text(manifest)
    torn = FaissIndex.load(tmp_path, _manifest())
    assert not torn.consistent()  # seen as torn; retried, then accepted for the caller to reconcile
    os.utime(tmp_path / "M__d__chip.json")
    assert torn.ids().max() == 22


def test_the_migrations_build_exactly_the_models_schema(tmp_path):
    """Alembic's own comparison: a database migrated to head has every table, column,
    index and constraint of lookalike/store/schema.py, and nothing else (the api_keys
    migration included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lookalike.store.schema import Base

    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert db.upgrade(engine) == db.HEAD  # the scripts, not the new file's create_all
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def _clauses(sql: str | None) -> tuple:
    """A CREATE statement as its head and the set of its top-level clauses (columns,
    constraints, CHECKs), spaces and quotes aside: a migration adds a column at the end of
    its table, the models may list it earlier."""
    import re

    sql = re.sub(r"\s+", " ", (sql or "").replace('"', "")).strip()
    head, _, body = sql.partition("(")
    if not body:
        return (sql,)
    parts, depth, current = [], 0, ""
    for ch in body[:body.rindex(")")]:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return (head.strip(), frozenset([*parts, current.strip()]), body[body.rindex(")") + 1:].strip())


def _sqlite_schema(path) -> dict:
    """Everything SQLite keeps of a schema: each table, index, trigger and view's statement
    (:func:`_clauses`), each table's columns, indexes and foreign keys as its pragmas report
    them, and its rows (a migration's seed rows), the revision's own table aside."""
    with sqlite3.connect(path) as conn:
        master = {(kind, name, table): _clauses(sql)
                  for kind, name, table, sql in conn.execute("select type, name, tbl_name, sql from sqlite_master")}
        tables = sorted(r[0] for r in conn.execute("select name from sqlite_master where type='table'"))
        schema: dict = {"sqlite_master": master}
        for t in tables:
            cols = {r[1]: (r[2].upper(), r[3], r[4], r[5]) for r in conn.execute(f"pragma table_info('{t}')")}
            indexes = {(r[1], bool(r[2]), r[3], r[4], tuple(c[2] for c in conn.execute(f"pragma index_info('{r[1]}')")))
                       for r in conn.execute(f"pragma index_list('{t}')")}
            fks = {(r[2], r[3], r[4], r[5], r[6]) for r in conn.execute(f"pragma foreign_key_list('{t}')")}
            rows = sorted(conn.execute(f"select * from '{t}'").fetchall()) if t != "alembic_version" else None
            schema[t] = (cols, indexes, fks, rows)
        return schema


def test_a_new_file_gets_the_schema_the_migrations_build(tmp_path):
    """A new SQLite library is made with the models' create_all, stamped at head, without
    Alembic's scripts: the same tables, columns (types, nullability, defaults, keys),
    indexes and foreign keys as a file taken through every migration."""
    made, migrated = tmp_path / "made.db", tmp_path / "migrated.db"
    for path, build in ((made, db.migrate), (migrated, db.upgrade)):
        engine = db.make_engine(f"sqlite:///{path}")
        assert build(engine) == db.HEAD
        engine.dispose()
    a, b = _sqlite_schema(made), _sqlite_schema(migrated)
    assert set(a) == set(b)
    for table in a:
        assert a[table] == b[table], table
    with sqlite3.connect(made) as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [(db.HEAD,)]


def _migrate_in_a_process(url: str, env: dict) -> subprocess.Popen:
    code = f"from lookalike.store import db; print(db.migrate(db.make_engine({url!r})))"
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            text=True)


def test_a_process_that_dies_making_a_new_schema_leaves_the_file_empty(tmp_path):
    """Killed between the tables and the revision's stamp (crash point schema.created): the
    file holds no table at all (SQLite's DDL ran in the transaction), and the next open
    makes the whole schema."""
    from lookalike.faults import EXIT_CODE

    path = tmp_path / "torn.db"
    proc = _migrate_in_a_process(f"sqlite:///{path}", {"LOOKALIKE_CRASH_AT": "schema.created"})
    assert proc.wait(timeout=120) == EXIT_CODE
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from sqlite_master where type='table'").scalar() == 0
    assert db.migrate(engine) == db.HEAD
    engine.dispose()
    assert _sqlite_schema(path) == _sqlite_schema_of_new(tmp_path)


def _sqlite_schema_of_new(tmp_path) -> dict:
    path = tmp_path / "fresh.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    engine.dispose()
    return _sqlite_schema(path)


def test_two_processes_making_one_new_file_wait_for_each_other(tmp_path):
    """One process holds a new file's write lock mid-creation (hold point schema.created)
    while this one, having found the file without a schema, asks for the lock: it waits,
    then finds the tables made and stamped and opens them without making them twice (with
    a plain BEGIN it would have read the empty file first and failed at its first CREATE)."""
    from sqlalchemy import event

    path, gate = tmp_path / "shared.db", tmp_path / "gate"
    url = f"sqlite:///{path}"
    first = _migrate_in_a_process(url, {"LOOKALIKE_HOLD_AT": f"schema.created@{gate}"})
    try:
        # the other process is inside its transaction (or ended, which the test then says)
        wait_for(lambda: (gate / "held").exists() or first.poll() is not None, guard=120)
        assert (gate / "held").exists() and first.poll() is None, "the first process never reached its hold"
        # this process's statements as SQLite starts each (its trace callback): the first that
        # needs the write lock (BEGIN IMMEDIATE; a CREATE had it only taken a read snapshot
        # first) blocks there until the other process commits
        engine = db.make_engine(url)
        at_the_lock = threading.Event()

        def _started(sql: str) -> None:
            if sql.lstrip().upper().startswith(("BEGIN IMMEDIATE", "CREATE")):
                at_the_lock.set()

        @event.listens_for(engine, "connect")
        def _trace(dbapi_conn, _record) -> None:
            dbapi_conn.set_trace_callback(_started)

        with ThreadPoolExecutor(1) as thread:  # its error, if any, is raised by result() here
            second = thread.submit(db.migrate, engine)
            assert at_the_lock.wait(timeout=60)
            (gate / "release").write_text("")
            answer = second.result(timeout=120)
        engine.dispose()
    finally:
        (gate / "release").write_text("")
        out, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and out.strip() == db.HEAD
    assert answer == db.HEAD
    with sqlite3.connect(path) as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [(db.HEAD,)]


def test_a_batchs_centroids_are_read_and_written_in_one_statement_each_and_sum_exactly(tmp_path):
    """update_centroids reads the rows of every person in the batch (and the corpus') with
    one SELECT, writes them with one INSERT and one UPDATE, not one a person, and the sums
    stay exact: added, then subtracted to nothing."""
    from sqlalchemy import event, select

    from lookalike.store import centroid_rows, person_rows
    from lookalike.store.schema import Centroid, Space

    engine = db.make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate(engine)
    rng = np.random.default_rng(0)
    with db.session_factory(engine)() as session:
        space = Space(key="k", model="m", detector="d", aligner="a", dim=4)
        session.add(space)
        session.flush()
        ids = person_rows.person_ids(session, [f"p{i}" for i in range(40)], {})
        people = [ids[f"p{i % 40}"] for i in range(100)]
        vectors = rng.normal(size=(100, 4))
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(" ".join(str(args[2]).split()[:3]).upper())

        event.listen(engine, "before_cursor_execute", count)
        centroid_rows.update_centroids(session, space.id, people[:60], vectors[:60])  # rows to find next
        made, seen[:] = list(seen), []
        centroid_rows.update_centroids(session, space.id, people[60:], vectors[60:])
        event.remove(engine, "before_cursor_execute", count)
        # 40 people and the corpus: one read, then their 41 new rows in one INSERT (an
        # executemany), and the sums they have moved in one UPDATE; the generation bumped once
        read = "SELECT CENTROIDS.PERSON_ID, CENTROIDS.ID,"
        assert sorted(made) == ["INSERT INTO CENTROIDS", read, "UPDATE INDEXES SET"], made
        assert sorted(seen) == [read, "UPDATE CENTROIDS SET", "UPDATE INDEXES SET"], seen
        sums = {r.person_id: (np.frombuffer(r.sum, "<f8"), r.count) for r in session.scalars(select(Centroid))}
        assert sums[None][1] == 100 and np.allclose(sums[None][0], vectors.sum(axis=0))
        for pid in set(people):
            mine = [i for i, p in enumerate(people) if p == pid]
            assert sums[pid][1] == len(mine) and np.allclose(sums[pid][0], vectors[mine].sum(axis=0))
        centroid_rows.update_centroids(session, space.id, people, vectors, sign=-1)
        assert session.scalars(select(Centroid)).all() == []  # every sum back to nothing: no row left


def test_person_ids_creates_the_missing_people_with_one_insert(tmp_path):
    """A batch's people: one SELECT for the names not yet known, one INSERT for the missing
    ones, one SELECT for their ids (not three statements a person), and the cache filled."""
    from sqlalchemy import event

    from lookalike.store import person_rows

    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        ada = person_rows.upsert_person(session, "ada")
        seen: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2].split()[0].upper()))
        cache: dict[str, int] = {}
        ids = person_rows.person_ids(session, ["cy", "ada", "bo", "cy"], cache)
        assert seen == ["SELECT", "INSERT", "SELECT"], seen
        assert ids["ada"] == ada and len({ids["ada"], ids["bo"], ids["cy"]}) == 3 and cache == ids
        seen.clear()
        assert person_rows.person_ids(session, ["bo", "ada"], cache) == {"bo": ids["bo"], "ada": ada}
        assert seen == []  # all known: no statement at all
        session.commit()
    with sqlite3.connect(tmp_path / "p.db") as conn:
        assert dict(conn.execute("select name, id from people")) == ids


def test_profiles_of_any_number_of_names(tmp_path):
    """More names than the database takes in one statement are read in chunks, by the
    store: no caller has to know the limit (here SQLite's old 999 bound parameters, which
    builds before 3.32 still have; this one's is set down to it)."""
    from sqlalchemy import event

    from lookalike.store import person_rows

    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    event.listen(engine, "connect", lambda conn, _: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        person_rows.upsert_person(session, "ada")
        person_rows.upsert_person(session, "zoe")
        session.commit()
        names = ["ada"] + [f"nobody_{n:05d}" for n in range(40_000)] + ["zoe"]
        assert sorted(person_rows.profiles(session, names)) == ["ada", "zoe"]


def test_every_write_that_changes_whose_faces_a_filter_selects_moves_the_generation(tmp_path):
    """A search keeps an audience's face list while the space's generation stands
    (lookalike/store/generations.py): a consent, a filter field, a person or photo deleted,
    by the session's rows or by a bulk statement, moves it in the same transaction; a field
    no filter reads (a story, a photo's status) does not."""
    from sqlalchemy import update

    from lookalike.store import centroid_rows, person_rows
    from lookalike.store.schema import Person, Photo, Space

    engine = db.make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        spaces = [Space(key=k, model="m", detector="d", aligner="a", dim=4) for k in ("k1", "k2")]
        session.add_all(spaces)
        session.flush()
        ada = person_rows.upsert_person(session, "ada")
        photo = Photo(space_id=spaces[0].id, path="/a.jpg", status="ok", person_id=ada)
        session.add(photo)
        session.commit()

        def generations() -> list[int]:
            return [centroid_rows.centroid_generation(session, s.id) for s in spaces]

        def moved(change) -> bool:
            before = generations()
            change()
            session.commit()
            after = generations()
            assert after[0] - before[0] == after[1] - before[1]  # consent is a person's: every space
            return after[0] > before[0]

        person = session.get(Person, ada)
        assert moved(lambda: person_rows.set_consent(session, "ada", False))
        assert not moved(lambda: person_rows.set_consent(session, "ada", False))  # the same value again
        assert moved(lambda: setattr(person, "tags", '["navy"]'))
        assert not moved(lambda: setattr(person, "story", "joined in 2001"))
        assert moved(lambda: session.execute(update(Person).where(Person.id == ada).values(role="pilot")))
        assert not moved(lambda: session.execute(update(Photo).where(Photo.id == photo.id).values(status="no_face")))
        assert moved(lambda: session.delete(photo))
        assert moved(lambda: session.delete(person))


def test_the_session_events_watch_every_field_their_followers_read():
    """One set of session events (lookalike/store/changes.py) reports a flush's changed
    fields to the generation and the vector outbox; a field a follower reads but the events
    do not watch would never reach it (a withdrawal served from a kept list, a Milvus copy
    left stale)."""
    from lookalike.store import changes, generations, outbox

    for follower in (generations, outbox):
        assert follower.PERSON_FIELDS <= changes.PERSON_FIELDS, follower.__name__
        assert follower.FACE_FIELDS <= changes.FACE_FIELDS, follower.__name__
    assert {"consent_display", "tags"} <= generations.PERSON_FIELDS & outbox.PERSON_FIELDS


def test_a_host_apps_own_sessions_are_not_followed(tmp_path):
    """The session events follow the library's sessions only: an application that imports
    lookalike and has a ``people`` table of its own updates it without lookalike's
    generation follower running its SQL on the application's database (which has no
    ``indexes`` table, where spaces are kept: registered on SQLAlchemy's ``Session`` class,
    the events did)."""
    from sqlalchemy import Column, Integer, String, create_engine, select, update
    from sqlalchemy.orm import DeclarativeBase, Session

    from lookalike.store import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'lib.db'}")
    db.migrate(engine)
    db.session_factory(engine)  # the library's sessions, events and all

    class Host(DeclarativeBase):
        pass

    class HostPerson(Host):
        __tablename__ = "people"
        id = Column(Integer, primary_key=True)
        name = Column(String, nullable=False)

    host = create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    Host.metadata.create_all(host)
    with Session(host) as session:
        session.add(HostPerson(name="ada"))
        session.commit()
        session.execute(update(HostPerson).values(name="grace"))
        session.commit()
        assert session.scalars(select(HostPerson.name)).all() == ["grace"]
    host.dispose()
    engine.dispose()

