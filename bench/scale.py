"""Scale-out figures: PostgreSQL + pgvector against the embedded SQLite + FAISS default.

    python bench/scale.py [--vectors 100000] [--photos 600] [--wide 10000] [--only-wide]

1. Search: ``--vectors`` synthetic 128-d face vectors (``bench/index.py``'s ``strangers``
   kind: drawn from Gaussians fitted to real Dlib vectors, queries from new people, so
   every neighbour is a look-alike) stored as faces of a real PostgreSQL library and
   searched through lookalike's own :class:`PgVectorIndex` (HNSW m 16, ef_construction
   64, ef_search 256), against FAISS HNSW32 as the library builds it, and against the
   peer: DeepFace's own pgvector store (``PGVectorClient``: same vectors inserted with
   ``insert_embeddings``, searched with ``search_by_vector``); single-query p50 / p95 and
   recall@10 against exact search, build time, bytes on disk.
2. Ingest into PostgreSQL through the work queue with 1 and 2 worker processes (the
   first ``--photos`` lfw-dev photos, a fresh database each), photos per second, against
   the peer: ``DeepFace.register(..., database_type="pgvector")`` one call per photo.
3. Wide vectors: ``--wide`` synthetic 4096-d vectors (the same look-alike vectors lifted
   to 4096-d) in a VGG-Face space on both backends, searched exactly in 4096-d (what
   the library does below 1,000 faces, and what DeepFace's find does), then through a
   256-d PCA (``index rebuild --reduce 256``) with exact re-ranking from the stored full
   vectors: p50, recall@10, index bytes.
4. Per million faces, from the measured bytes: what each backend keeps on disk and needs
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
from _common import lfw_photos, machine, table, write
from index import QUERIES, K, build, exact_topk, make, query_times, recall


def pg_library(folder: Path, name: str):
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
    with lib.engine.begin() as conn:  # the bench fills the table directly
        photo = conn.execute(text("INSERT INTO photos (space_id, path, status, created_at) "
                                  "VALUES (:s, 'synthetic', 'ok', now()) RETURNING id"),
                             {"s": space_id}).scalar_one()
        raw = conn.connection.dbapi_connection
        with raw.cursor().copy("COPY faces (space_id, photo_id, x, y, w, h, confidence, embedding, vec) "
                               "FROM STDIN") as copy:
            for v in base:
                copy.write_row((space_id, photo, 0, 0, 1, 1, 1.0, repo.encode_vector(v),
                                "[" + ",".join(f"{x:.7g}" for x in v) + "]"))
    loaded = time.perf_counter() - started
    index = PgVectorIndex(lib.engine, lib.space.key, space_id, base.shape[1])  # builds HNSW
    built = time.perf_counter() - started - loaded
    found, times = query_times(index, queries)
    ids = index.ids()  # face ids in insertion order map back to base rows
    found = np.where(found >= 0, np.searchsorted(ids, found), -1)
    with lib.engine.connect() as conn:
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
    return {"insert_and_build_s": round(built, 1), "p50_ms": round(float(np.median(times)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3), "recall@10": round(recall(found, truth), 4)}


def deepface_pg_register(folder: Path, photos: list[Path]) -> dict:
    """The peer of a PostgreSQL ingest: DeepFace.register into its pgvector store, one call
    per photo (the model loads before the clock starts, which favours DeepFace)."""
    import pgserver
    from deepface import DeepFace
    from deepface.modules.database import pgvector as deepface_pgvector

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE deepface_register;")
    # DeepFace remembers per process that it made its extension and tables, whichever the
    # database: a second database in the same process needs that memory cleared
    deepface_pgvector._SCHEMA_CHECKED.clear()
    kw = dict(model_name="Dlib", detector_backend="dlib", database_type="pgvector", l2_normalize=True,
              connection_details=f"postgresql://postgres@/deepface_register?host={folder / 'pg'}")
    DeepFace.register(img=str(photos[0]), **kw)
    failed = 0
    started = time.perf_counter()
    for p in photos[1:]:
        try:
            DeepFace.register(img=str(p), **kw)
        except Exception:  # noqa: BLE001 - no face: DeepFace raises
            failed += 1
    seconds = time.perf_counter() - started
    server.cleanup()
    return {"workers": "DeepFace.register", "photos": len(photos) - 1, "ok": len(photos) - 1 - failed,
            "seconds": round(seconds, 1), "photos_per_s": round((len(photos) - 1) / seconds, 2)}


def wide(folder: Path, n: int) -> dict:
    """4096-d vectors in a VGG-Face space on both backends: exact, then PCA 256 + re-rank."""
    from sqlalchemy import insert, text

    import lookalike
    from lookalike.store import repo
    from lookalike.store.schema import Face, Photo

    base, queries = make("strangers", n, 4096)
    truth = exact_topk(base, queries)
    out = {}
    for backend in ("sqlite", "postgres"):
        if backend == "sqlite":
            server, lib = None, lookalike.open(folder / "wide.db", index_dir=folder / "wide-idx", model="VGG-Face")
        else:
            server, lib = pg_library(folder, "wide")
            lib.close()
            lib = lookalike.open(lib.settings.db_url, index_dir=folder / "wide-pg-idx", model="VGG-Face")
        space_id = lib.space_id
        with lib.session() as session:
            photo = Photo(space_id=space_id, path="synthetic", status="ok")
            session.add(photo)
            session.flush()
            for start in range(0, n, 2000):
                session.execute(insert(Face), [dict(space_id=space_id, photo_id=photo.id, x=0, y=0, w=1, h=1,
                                                    confidence=1.0, embedding=repo.encode_vector(v))
                                               for v in base[start:start + 2000]])
            session.commit()
        if backend == "postgres":
            lib.doctor(fix=True)  # faces.vec from the blobs, as for rows stored before pgvector
        lib.forget_index()
        row = {}
        for stage in ("exact_4096", "pca_256_rerank"):
            if stage == "pca_256_rerank":
                started = time.perf_counter()
                lib.rebuild_index(reduce=256)
                row["reduce_s"] = round(time.perf_counter() - started, 1)
            index = lib.index
            if backend == "sqlite":
                index.save()
            info = lib.index_info()
            found, times = query_times(index, queries)
            ids = np.sort(index.ids())
            found = np.where(found >= 0, np.searchsorted(ids, found), -1)
            row[stage] = {"index": info["index_key"], "dim": info["dim"],
                          "p50_ms": round(float(np.median(times)), 3),
                          "p95_ms": round(float(np.percentile(times, 95)), 3),
                          "recall@10": round(recall(found, truth), 4), "index_bytes": int(info["bytes"])}
        if backend == "postgres":
            with lib.engine.connect() as conn:
                row["table_bytes"] = int(conn.execute(text("SELECT pg_table_size('faces')")).scalar_one())
        lib.close()
        if server is not None:
            server.cleanup()
        out[backend] = row
    return out


def pg_ingest(folder: Path, photos: list[Path], workers: int) -> dict:
    server, lib = pg_library(folder, f"ingest{workers}")
    started = time.perf_counter()
    report = lib.ingest([str(p) for p in photos], workers=workers)
    seconds = time.perf_counter() - started
    lib.close()
    server.cleanup()
    return {"workers": workers, "photos": len(photos), "ok": report.statuses["ok"], "seconds": round(seconds, 1),
            "photos_per_s": round(len(photos) / seconds, 2)}


def _wide_table(n: int, rows: dict) -> None:
    table(f"wide vectors: {n:,} x 4096 look-alike vectors, k={K}",
          ["backend", "search", "index", "dim", "p50 ms", "recall@10", "index MB"],
          [[b, stage, r[stage]["index"][:40], r[stage]["dim"], r[stage]["p50_ms"], r[stage]["recall@10"],
            round(r[stage]["index_bytes"] / 2**20, 1)]
           for b, r in rows.items() for stage in ("exact_4096", "pca_256_rerank")])


def only_wide(n: int) -> None:
    import json

    from _common import RESULTS

    from lookalike import config

    config.activate_weights_home()
    saved = json.loads((RESULTS / "scale.json").read_text())
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        rows = wide(Path(tmp), n)
    _wide_table(n, rows)
    saved["wide"] = {"vectors": n, **rows, "machine": machine()}
    print("wrote", write("scale", saved))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--photos", type=int, default=600)
    ap.add_argument("--wide", type=int, default=10_000, help="4096-d vectors for the reduction figures")
    ap.add_argument("--only-wide", action="store_true",
                    help="re-measure the wide-vector section only; the other figures stay as saved")
    args = ap.parse_args()
    if args.only_wide:
        return only_wide(args.wide)
    from lookalike import config

    config.activate_weights_home()
    base, queries = make("strangers", args.vectors, 128)
    truth = exact_topk(base, queries)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        pg = pg_search(tmp, base, queries, truth)
        fs = faiss_search(tmp, base, queries, truth)
        peer = deepface_pg_search(tmp, base, queries, truth)
        photos = lfw_photos(args.photos)
        ingest = [pg_ingest(tmp, photos, w) for w in (1, 2)]
        ingest_peer = deepface_pg_register(tmp, photos)
        wide_rows = wide(tmp, args.wide)
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
            round(pg["index_bytes"] / 2**20, 1)],
           ["peer: DeepFace PGVectorClient", peer["insert_and_build_s"], peer["p50_ms"], peer["p95_ms"],
            peer["recall@10"], "-"]])
    table(f"ingest into PostgreSQL, {args.photos} lfw-dev photos", ["workers", "ok", "s", "photos/s", "x peer"],
          [[r["workers"], r["ok"], r["seconds"], r["photos_per_s"],
            round(r["photos_per_s"] / ingest_peer["photos_per_s"], 2)] for r in [*ingest, ingest_peer]])
    _wide_table(args.wide, wide_rows)
    table("per million faces (from the bytes measured above)", ["what", "GB"],
          [[k, v] for k, v in per_million.items()])
    print("wrote", write("scale", {"machine": machine(), "vectors": n,
                                   "search": {"faiss": fs, "pgvector": pg, "peer_deepface_pgvector": peer},
                                   "ingest_postgres": ingest, "ingest_peer": ingest_peer,
                                   "wide": {"vectors": args.wide, **wide_rows}, "per_million": per_million}))


if __name__ == "__main__":
    main()
