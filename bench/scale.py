"""Scale-out figures: PostgreSQL + pgvector against the embedded SQLite + FAISS default.

    python bench/scale.py [--vectors 100000] [--photos 600]

1. Search: ``--vectors`` synthetic 128-d face vectors (``bench/index.py``'s ``strangers``
   kind: drawn from Gaussians fitted to real Dlib vectors, queries from new people, so
   every neighbour is a look-alike) stored as faces of a real PostgreSQL library and
   searched through lookalike's own :class:`PgVectorIndex` (HNSW m 16, ef_construction
   64, ef_search 256), against FAISS HNSW32 as the library builds it; single-query p50 /
   p95 and recall@10 against exact search, build time, bytes on disk.
2. Ingest into PostgreSQL with 1 and 2 worker processes (the first ``--photos`` lfw-dev
   photos, a fresh database each), photos per second.
3. Per million faces, from the measured bytes: what each backend keeps on disk and needs
   in RAM to search at these latencies.

PostgreSQL is the ``pgserver`` package's (16 + pgvector 0.6) in a temporary folder, on a
unix socket, default settings: a tuned server (shared_buffers, maintenance_work_mem for
the HNSW build) does better.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import lfw_photos, machine, table, write  # noqa: E402
from index import K, QUERIES, build, exact_topk, make, query_times, recall  # noqa: E402


def pg_library(folder: Path, name: str):  # noqa: ANN201
    import pgserver

    import lookalike

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql(f"CREATE DATABASE {name};")
    return server, lookalike.open(f"postgresql+psycopg://postgres@/{name}?host={folder / 'pg'}",
                                  index_dir=folder / f"idx-{name}")


def pg_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    from sqlalchemy import text

    from lookalike.index.pgvector_index import PgVectorIndex
    from lookalike.store import repo

    server, lib = pg_library(folder, "vectors")
    space_id = lib.space_id
    started = time.perf_counter()
    with lib._engine.begin() as conn:  # noqa: SLF001 - the bench fills the table directly
        photo = conn.execute(text("INSERT INTO photos (space_id, path, status, created_at) VALUES (:s, 'synthetic', 'ok', now()) "
                                  "RETURNING id"), {"s": space_id}).scalar_one()
        raw = conn.connection.dbapi_connection
        with raw.cursor().copy("COPY faces (space_id, photo_id, x, y, w, h, confidence, embedding, vec) "
                               "FROM STDIN") as copy:
            for v in base:
                copy.write_row((space_id, photo, 0, 0, 1, 1, 1.0, repo.encode_vector(v),
                                "[" + ",".join(f"{x:.7g}" for x in v) + "]"))
    loaded = time.perf_counter() - started
    index = PgVectorIndex(lib._engine, lib.space.key, space_id, base.shape[1])  # noqa: SLF001 - builds HNSW
    built = time.perf_counter() - started - loaded
    found, times = query_times(index, queries)
    ids = index.ids()  # face ids in insertion order map back to base rows
    found = np.where(found >= 0, np.searchsorted(ids, found), -1)
    with lib._engine.connect() as conn:  # noqa: SLF001
        sizes = conn.execute(text("SELECT pg_table_size('faces'), pg_relation_size(:i)"),
                             {"i": index.index_name}).one()
    lib.close()
    server.cleanup()
    return {"load_s": round(loaded, 1), "build_s": round(built, 1), "p50_ms": round(float(np.median(times)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3), "recall@10": round(recall(found, truth), 4),
            "table_bytes": int(sizes[0]), "index_bytes": int(sizes[1])}


def faiss_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    from lookalike.index.choice import hnsw_params

    index, seconds, size = build("HNSW32", hnsw_params(), base, folder)
    found, times = query_times(index, queries)
    return {"build_s": round(seconds, 1), "p50_ms": round(float(np.median(times)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3), "recall@10": round(recall(found, truth), 4),
            "index_bytes": int(size)}


def pg_ingest(folder: Path, photos: list[Path], workers: int) -> dict:
    server, lib = pg_library(folder, f"ingest{workers}")
    started = time.perf_counter()
    report = lib.ingest([str(p) for p in photos], workers=workers)
    seconds = time.perf_counter() - started
    lib.close()
    server.cleanup()
    return {"workers": workers, "photos": len(photos), "ok": report.statuses["ok"], "seconds": round(seconds, 1),
            "photos_per_s": round(len(photos) / seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--photos", type=int, default=600)
    args = ap.parse_args()
    from lookalike import config

    config.activate_weights_home()
    base, queries = make("strangers", args.vectors, 128)
    truth = exact_topk(base, queries)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        pg = pg_search(tmp, base, queries, truth)
        fs = faiss_search(tmp, base, queries, truth)
        photos = lfw_photos(args.photos)
        ingest = [pg_ingest(tmp, photos, w) for w in (1, 2)]
    n = args.vectors
    per_million = {
        "faiss_index_gb": round(fs["index_bytes"] / n * 1e6 / 1e9, 2),
        "pg_table_gb": round(pg["table_bytes"] / n * 1e6 / 1e9, 2),
        "pg_hnsw_index_gb": round(pg["index_bytes"] / n * 1e6 / 1e9, 2),
    }
    table(f"search, {n:,} x 128 look-alike vectors, {QUERIES} queries, k={K}",
          ["backend", "build s", "p50 ms", "p95 ms", "recall@10", "index MB"],
          [["FAISS HNSW32 (efSearch 256)", fs["build_s"], fs["p50_ms"], fs["p95_ms"], fs["recall@10"],
            round(fs["index_bytes"] / 2**20, 1)],
           ["pgvector HNSW m16 (ef_search 256), SQL", pg["build_s"], pg["p50_ms"], pg["p95_ms"], pg["recall@10"],
            round(pg["index_bytes"] / 2**20, 1)]])
    table(f"ingest into PostgreSQL, {args.photos} lfw-dev photos", ["workers", "ok", "s", "photos/s"],
          [[r["workers"], r["ok"], r["seconds"], r["photos_per_s"]] for r in ingest])
    table("per million faces (from the bytes measured above)", ["what", "GB"],
          [[k, v] for k, v in per_million.items()])
    print("wrote", write("scale", {"machine": machine(), "vectors": n, "search": {"faiss": fs, "pgvector": pg},
                                   "ingest_postgres": ingest, "per_million": per_million}))


if __name__ == "__main__":
    main()
