"""The same library on PostgreSQL (a real server from the pgserver package): vectors in
``faces.vec`` (pgvector), searched in SQL through an HNSW index, no FAISS file."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

import lookalike


def _landmarked(lib) -> int:
    """How many of the library's faces have stored landmarks."""
    from lookalike.faces.landmarks import MODEL
    from lookalike.store import landmark_rows, photo_rows

    with lib.session() as session:
        ids = photo_rows.face_ids(session, lib.view.row.space_id).tolist()
        return len(landmark_rows.landmarks_of(session, ids, MODEL))


def test_ingest_search_remove_doctor_on_postgresql(postgres, faces, tmp_path):
    url = postgres()
    bbt = faces / "celeb" / "faceapi_bbt"
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        report = lib.ingest([str(bbt)])
        assert report.statuses["ok"] == 40
        stats = lib.stats()
        assert (stats["people"], stats["photos"], stats["faces"]) == (8, 40, 40)
        assert _landmarked(lib) == 40  # every face's dense landmarks, in bytea on PostgreSQL
        info = lib.maintenance.info()
        assert info["index_key"].startswith("pgvector HNSW") and info["ntotal"] == 40 and info["bytes"] > 0
        assert not list((tmp_path / "idx").glob("*.faiss"))  # the database is the index
        best = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches[0]
        assert best.person == "amy" and best.verdict == "same_person" and best.similarity > 0.99
        # filters run inside the SQL search: k answers from the allowed people only
        only = lib.search(str(bbt / "amy" / "amy5.png"), k=3, filters=(_person("raj"),)).faces[0].matches
        assert [m.person for m in only] == ["raj"] * 3
        lib.remove_person("amy")
        after = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches
        assert len(after) == 3 and "amy" not in {m.person for m in after}
        assert _landmarked(lib) == 35  # amy's went with her faces
        assert all(r.ok for r in lib.doctor())
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:  # amy comes back, nothing else moves
        assert lib.ingest([str(bbt)]).statuses["unchanged"] == 35


def test_pgvector_search_agrees_with_exact_and_a_missing_vector_is_refilled(postgres, faces, tmp_path):
    url = postgres()
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        lib.ingest([str(faces / "celeb" / "faceapi_bbt"), str(faces / "celeb" / "face_recognition")])  # 56 photos
        ids = lib.view.vectors.index.ids()
        vectors = lib.view.vectors.stored(ids)
        query = vectors[7]
        sims, found = lib.view.vectors.index.search(query[None], 10)
        exact = ids[np.argsort(-(vectors @ query))[:10]]
        assert list(found[0]) == list(exact) and abs(sims[0][0] - 1.0) < 1e-5
        with lib.engine.begin() as conn:  # a face stored before pgvector: no vector yet
            conn.execute(text("UPDATE faces SET vec = NULL WHERE id = :i"), {"i": int(ids[7])})
        (report,) = lib.doctor()  # read as the database holds it (an open would write it first)
        assert (report.missing, report.ok) == (1, False)
        assert lib.view.vectors.index.search(query[None], 1)[1][0][0] != ids[7]  # searched without it
        (report,) = lib.doctor(fix=True)
        assert report.fixed and report.ok
        assert lib.view.vectors.index.search(query[None], 1)[1][0][0] == ids[7]


def _person(name: str):
    from lookalike.query.search import Filter, FilterKey

    return Filter(FilterKey.person, name)


def test_every_other_command_runs_on_postgresql(postgres, faces, tmp_path):
    """person, path, explore, eval (with --calibrate stored in PostgreSQL), index info,
    stats and doctor through the CLI, on a PostgreSQL library."""
    import json

    from conftest import cli as run_cli

    def cli(*args: str) -> dict:
        run = run_cli(*args, "--db", url, "--json")
        assert run.returncode == 0, (args, run.stderr[-2000:])
        return json.loads(run.stdout)

    url = postgres()
    bbt = faces / "celeb" / "faceapi_bbt"
    made = cli("ingest", str(bbt), "-q")
    assert made["statuses"]["ok"] == 40
    assert made["library"]["index"].startswith("PostgreSQL index")  # not a .faiss file that is not there
    amy = cli("person", "amy")
    assert amy["faces"] and len(amy["faces"]) == 5
    walk = cli("path", str(bbt / "amy" / "amy1.png"), str(bbt / "raj" / "raj1.png"), "--steps", "4")
    assert walk["steps"][0]["person"] == "amy" and walk["steps"][-1]["person"] == "raj"
    assert len(cli("explore", "pca", "--components", "3")["components"]) == 3
    clusters = cli("explore", "clusters")
    assert clusters["clusters"] and clusters["purity"] > 0.8
    odd = cli("explore", "outliers")["outliers"]  # worst first, and the very faces each person's page flags
    assert odd  # on SQLite the same photos give two (bernadette's and amy's): an empty answer is a fault
    assert [o["robust_z"] for o in odd] == sorted(o["robust_z"] for o in odd)
    flagged = {(p.name, f["photo"]) for p in bbt.iterdir() for f in cli("person", p.name)["faces"] if f["outlier"]}
    assert {(o["person"], o["photo"]) for o in odd} == flagged
    pairs = tmp_path / "pairs.tsv"
    rows = ["path_a\tpath_b\tsame"]
    people = sorted(p.name for p in bbt.iterdir())
    for a, b in zip(people, people[1:] + people[:1]):
        rows.append(f"{bbt / a / (a + '1.png')}\t{bbt / a / (a + '2.png')}\t1")
        rows.append(f"{bbt / a / (a + '1.png')}\t{bbt / b / (b + '1.png')}\t0")
    pairs.write_text("\n".join(rows) + "\n")
    report = cli("eval", "verify", str(pairs), "--calibrate")
    assert report["pairs"] == 16 and report["auc"] > 0.9
    stored = _sql(url, "select source from calibrations")
    assert stored and "pairs.tsv" in stored[0][0]
    assert cli("index", "info")["ntotal"] == 40
    assert cli("stats")["faces"] == 40 and cli("doctor")["ok"] is True


def _sql(url: str, query: str) -> list[tuple]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query))]


def test_a_database_without_pgvector_is_one_line_naming_it(postgres):
    """A role that may not create the pgvector extension: the open fails in one line that
    names the database (its password hidden) and says what to run, not a 138-line traceback
    of Alembic's frames ending in a RuntimeError (scale user test, F2); nothing is made."""
    from conftest import cli
    from sqlalchemy import create_engine

    admin = create_engine(postgres(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE ROLE plain LOGIN PASSWORD 'S3cret-pw'")
        conn.exec_driver_sql("CREATE DATABASE noext OWNER plain")
    admin.dispose()
    host = postgres().split("?host=", 1)[1]
    url = f"postgresql+psycopg://plain:S3cret-pw@/noext?host={host}"
    done = cli("stats", "--db", url)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.strip()]
    assert "needs the pgvector extension" in line and "CREATE EXTENSION vector" in line
    assert "plain:***@" in line and "S3cret-pw" not in line
    tables = create_engine(url)
    with tables.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from pg_tables where schemaname = 'public'").scalar() == 0
    tables.dispose()


def test_faces_stored_while_the_vectors_were_elsewhere_are_filled_on_open(postgres, faces, tmp_path, caplog):
    """Faces ingested while the library's vectors were in Milvus have no faces.vec: opened
    with pgvector again (a machine without LOOKALIKE_VECTORS), every search missed them in
    silence and a search by centroid failed with KeyError -1 (scale user test, F6). The open
    writes them, and says so."""
    url = postgres()
    bbt = faces / "celeb" / "faceapi_bbt"
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        lib.ingest([str(bbt)])
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:  # as an ingest with --vectors milvus://… leaves them
        conn.execute(text("UPDATE faces SET vec = NULL WHERE person_id = (SELECT id FROM people WHERE name = 'amy')"))
    engine.dispose()
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        hits = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches
        assert [m.person for m in hits] == ["amy"] * 3
        assert "writing the vectors of 5 faces into faces.vec" in caplog.text
        by_person = lib.search(str(bbt / "amy" / "amy5.png"), k=3, rank_by="centroid").faces[0].matches
        assert by_person[0].person == "amy"
    assert _sql(url, "select count(*) from faces where vec is null") == [(0,)]


def test_a_server_whose_database_goes_away_says_so_and_comes_back(postgres, faces, tmp_path):
    """PostgreSQL refusing connections under a running server: a search was a bare plain-text
    "Internal Server Error" (the key check runs outside the routes' handlers) and /v1/health
    still said ready (scale user test, F9). Now 503 database_unavailable as problem+json with
    Retry-After, health 503 unavailable; once the database takes connections again both answer."""
    import sys
    from pathlib import Path

    import httpx
    from conftest import problem
    from sqlalchemy import create_engine

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import serving

    url = postgres()
    name = url.split("@/", 1)[1].split("?", 1)[0]
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        lib.ingest([str(faces / "celeb" / "faceapi_bbt" / "amy")])
        _, key = lib.keys.create("search")
    admin = create_engine(url.replace(f"/{name}?", "/postgres?"), isolation_level="AUTOCOMMIT")
    server = serving.start(url, "--index-dir", str(tmp_path / "idx"), "--workers", "1", "--rate", "0")
    photo = (faces / "celeb/faceapi_bbt/amy/amy1.png").read_bytes()

    def search() -> httpx.Response:
        return httpx.post(server.url + "/v1/search", files={"photo": ("a.png", photo)},
                          headers={"X-API-Key": key}, timeout=60)

    try:
        assert search().status_code == 200
        with admin.connect() as conn:  # no new connection, and the server's own ones ended
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        refused = search()
        problem(refused, 503, "database_unavailable")
        assert refused.headers["retry-after"] == "5"
        health = httpx.get(server.url + "/v1/health", timeout=60)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert httpx.get(server.url + "/v1/health", timeout=60).json()["status"] == "ready"
        assert search().status_code == 200
    finally:
        server.stop()
        admin.dispose()


def test_searches_go_on_while_a_pca_is_stored(request, tmp_path, faces, monkeypatch):
    """A new PCA rewrites every vector of the space in one transaction. Its old HNSW index was
    dropped inside it, and a ``DROP INDEX`` locks ``faces`` to the end: every search of a
    server waited out the whole rewrite (review of 2026-12-07). Dropped concurrently before
    it now, searches go on (exact scans) while the transaction is held open here, and follow
    the new PCA once it commits. Whether the search waits on a lock is what is looked at."""
    import threading

    from _stores import small_store
    from conftest import wait_for

    from lookalike.index.pgvector_backend import PgVectorBackend

    store = small_store(request, tmp_path, "postgres")[0]
    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    inside, go_on = threading.Event(), threading.Event()
    stored = PgVectorBackend.reduction_stored

    def held(self, *args):  # the vectors rewritten; the transaction held open until the test says
        stored(self, *args)
        inside.set()
        assert wait_for(go_on.is_set)

    with store.open() as reader, store.open() as writer:
        assert writer.maintenance.rebuild(reduce=8)["dim"] == 8  # a first PCA, and its HNSW index
        before = [m.face_id for m in reader.search(query, k=3).faces[0].matches]
        monkeypatch.setattr(PgVectorBackend, "reduction_stored", held)
        training = threading.Thread(target=lambda: writer.maintenance.rebuild(reduce=6))
        training.start()
        try:
            assert wait_for(inside.is_set)
            answered: list = []
            searching = threading.Thread(target=lambda: answered.append(reader.search(query, k=3)))
            searching.start()
            waiting = "select count(*) from pg_locks where not granted"
            assert wait_for(lambda: bool(answered) or store.sql(waiting)[0][0] > 0, guard=300)
            assert answered, "a search waited for the PCA's transaction: " + repr(store.sql(
                "select relation::regclass::text, mode from pg_locks where not granted"))
        finally:
            go_on.set()
            training.join()
        searching.join()
        assert [m.face_id for m in answered[0].faces[0].matches] == before  # the old PCA's rows
        after = reader.search(query, k=3)  # the new PCA's, followed
        assert reader.view.vectors.index_slot().store.reduction.dim_out == 6
        assert [m.face_id for m in after.faces[0].matches] == before


def test_a_database_gone_away_is_one_line_in_the_cli_and_a_typed_error(postgres, faces, tmp_path):
    """PostgreSQL stopped or refusing connections under a command or an open library: the CLI
    printed the driver's traceback and the Python API raised SQLAlchemy's OperationalError
    (architecture review of 2026-12-07, H1; the HTTP API alone matched the driver's words).
    Now the store raises DatabaseUnavailable, which every shell says in one line; a wrong
    database name is not "try again"."""
    from conftest import cli
    from sqlalchemy import create_engine

    from lookalike.errors import DatabaseUnavailable, public_text

    url = postgres()
    name = url.split("@/", 1)[1].split("?", 1)[0]
    admin = create_engine(url.replace(f"/{name}?", "/postgres?"), isolation_level="AUTOCOMMIT")
    query = str(faces / "celeb" / "faceapi_bbt" / "amy" / "amy1.png")
    try:
        with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
            lib.ingest([str(faces / "celeb" / "faceapi_bbt" / "amy")])
            assert lib.search(query, k=1).faces[0].matches[0].person == "amy"
            with admin.connect() as conn:  # the library's connections cut, no new one taken
                conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
                conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            with pytest.raises(DatabaseUnavailable, match="cannot be reached now") as gone:
                lib.search(query, k=1)
            # the driver's words name the server's socket: the operator's, never a visitor's
            assert "PGSQL" in str(gone.value) and public_text(gone.value, {}) == DatabaseUnavailable.public
            said = cli("stats", "--db", url)
            assert said.returncode == 1 and "Traceback" not in said.stderr, said.stderr
            assert "the database cannot be reached now" in said.stderr and said.stderr.count("\n") <= 2, said.stderr
            with admin.connect() as conn:
                conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            assert lib.search(query, k=1).faces[0].matches[0].person == "amy"  # back: the same library answers
        wrong = cli("stats", "--db", url.replace(f"/{name}?", "/no_such_library?"))
        assert wrong.returncode != 0 and "cannot be reached now" not in wrong.stderr and "Traceback" not in wrong.stderr
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin.dispose()
