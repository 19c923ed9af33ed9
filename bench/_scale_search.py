"""bench/scale.py's searches of the synthetic vectors in FAISS, PostgreSQL + pgvector and
the peer, DeepFace's own pgvector client (Milvus: ``_scale_milvus.py``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _scale_data import PeakRss, figures, pg_library, run_filtered, settle_memory
from index import K, build, query_times, recall


def pg_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, filters: list[dict],
              ftruths: list[np.ndarray], args: argparse.Namespace) -> dict:
    from sqlalchemy import text

    from lookalike.index.pgvector_index import PgVectorIndex
    from lookalike.store import values

    server, lib = pg_library(folder, "vectors")
    if args.pg_maintenance_mem:
        server.psql(f"ALTER SYSTEM SET maintenance_work_mem = '{args.pg_maintenance_mem}';")
        server.psql("SELECT pg_reload_conf();")
    space_id = lib.view.row.ensure_space()
    started = time.perf_counter()
    with lib.engine.begin() as conn:  # the bench fills the table directly
        photo = conn.execute(text("INSERT INTO photos (space_id, path, status, created_at) "
                                  "VALUES (:s, 'synthetic', 'ok', now()) RETURNING id"),
                             {"s": space_id}).scalar_one()
        raw = conn.connection.dbapi_connection
        with raw.cursor().copy("COPY faces (space_id, photo_id, x, y, w, h, confidence, embedding, vec) "
                               "FROM STDIN") as copy:
            for v in base:
                copy.write_row((space_id, photo, 0, 0, 1, 1, 1.0, values.encode_vector(v),
                                "[" + ",".join(f"{x:.7g}" for x in v) + "]"))
    loaded = time.perf_counter() - started
    print(f"  pgvector: {len(base):,} rows copied in {loaded:.0f} s; building HNSW", flush=True)
    index = PgVectorIndex(lib.engine, lib.view.space.key, space_id, base.shape[1])  # builds HNSW
    built = time.perf_counter() - started - loaded
    print(f"  pgvector: HNSW built in {built:.0f} s", flush=True)
    index.search(queries[:5], K)  # warm-up
    found, times = query_times(index, queries)
    ids = index.ids()  # face ids in insertion order map back to base rows
    found = np.where(found >= 0, np.searchsorted(ids, found), -1)

    def by_ids(q: np.ndarray, f: dict) -> np.ndarray:
        hit = index.search(q[None], K, allowed=ids[f["rows"]])[1][0]
        return np.where(hit >= 0, np.searchsorted(ids, hit), -1)

    filtered = run_filtered({"id list": by_ids}, filters, queries, ftruths, args.filtered_queries,
                            args.filtered_budget)
    with lib.engine.connect() as conn:
        sizes = conn.execute(text("SELECT pg_table_size('faces'), pg_relation_size(:i)"),
                             {"i": index.index_name}).one()
        mem = conn.execute(text("SHOW maintenance_work_mem")).scalar_one()
    lib.close()
    server.cleanup()
    return {"vectors": len(base), "load_s": round(loaded, 1), "build_s": round(built, 1),
            **figures(times, found, truth), "table_bytes": int(sizes[0]), "index_bytes": int(sizes[1]),
            "maintenance_work_mem": mem, "filtered": filtered}


def faiss_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, filters: list[dict],
                 ftruths: list[np.ndarray], args: argparse.Namespace) -> dict:
    from lookalike.index.choice import hnsw_params

    before = settle_memory()
    watch = PeakRss()
    watch.start()
    index, seconds, size = build("HNSW32", hnsw_params(), base, folder)
    grown = settle_memory() - before
    peak = watch.stop() - before
    print(f"  FAISS: built in {seconds:.0f} s", flush=True)
    index.search(queries[:5], K)  # warm-up
    found, times = query_times(index, queries)
    # a filtered search over at most 20,000 ids scores them exactly from the database's
    # vectors (SQLite in the library; here the array in memory, which is faster)
    index.vector_source = lambda ids: base[ids]

    def by_ids(q: np.ndarray, f: dict) -> np.ndarray:
        return index.search(q[None], K, allowed=f["rows"])[1][0]

    filtered = run_filtered({"id list": by_ids}, filters, queries, ftruths, args.filtered_queries,
                            args.filtered_budget)
    return {"vectors": len(base), "build_s": round(seconds, 1), **figures(times, found, truth),
            "index_bytes": int(size), "rss_growth_bytes": int(grown), "rss_peak_growth_bytes": int(peak),
            "filtered": filtered}


def deepface_pg_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    """The peer: DeepFace's own pgvector client on the same vectors."""
    import pgserver
    from deepface.modules.database.pgvector import PGVectorClient

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE deepface_vectors;")
    client = PGVectorClient(f"postgresql://postgres@/deepface_vectors?host={folder / 'pg'}")
    kw = dict(model_name="Dlib", detector_backend="dlib", aligned=True, l2_normalized=True)
    tiny = np.zeros((1, 1, 3), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(base), 1000):  # its own batches of 100, committed each
        client.insert_embeddings([dict(img_name=str(start + i), face=tiny, embedding=v.tolist(), **kw)
                                  for i, v in enumerate(base[start:start + 1000])])
    built = time.perf_counter() - started
    found = np.full((len(queries), K), -1, dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        rows = client.search_by_vector(q.tolist(), limit=K, **kw)
        times.append((time.perf_counter() - t) * 1000)
        found[i, :len(rows)] = [int(r["img_name"]) for r in rows]
    client.close()
    server.cleanup()
    return {"vectors": len(base), "insert_and_build_s": round(built, 1), "p50_ms": round(float(np.median(times)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3), "recall@10": round(recall(found, truth), 4)}
