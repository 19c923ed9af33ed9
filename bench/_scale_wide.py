"""bench/scale.py's wide vectors: 4096-d vectors in a VGG-Face space on both SQL backends,
exact, then through a 256-d PCA with exact re-ranking."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import table
from _scale_data import pg_library
from index import K, exact_topk, make, query_times, recall


def wide(folder: Path, n: int) -> dict:
    """4096-d vectors in a VGG-Face space on both backends: exact, then PCA 256 + re-rank."""
    from sqlalchemy import insert, text

    import lookalike
    from lookalike.store import values
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
        space_id = lib.view.row.ensure_space()
        with lib.session() as session:
            photo = Photo(space_id=space_id, path="synthetic", status="ok")
            session.add(photo)
            session.flush()
            for start in range(0, n, 2000):
                session.execute(insert(Face), [dict(space_id=space_id, photo_id=photo.id, x=0, y=0, w=1, h=1,
                                                    confidence=1.0, embedding=values.encode_vector(v))
                                               for v in base[start:start + 2000]])
            session.commit()
        if backend == "postgres":
            lib.doctor(fix=True)  # faces.vec from the blobs, as for rows stored before pgvector
        lib.view.vectors.forget_index()
        row = {}
        for stage in ("exact_4096", "pca_256_rerank"):
            if stage == "pca_256_rerank":
                started = time.perf_counter()
                lib.maintenance.rebuild(reduce=256)
                row["reduce_s"] = round(time.perf_counter() - started, 1)
            index = lib.view.vectors.index
            if backend == "sqlite":
                index.save()
            info = lib.maintenance.info()
            index.search(queries[:5], K)  # warm-up, as every other search of the scale bench
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


def wide_table(n: int, rows: dict) -> None:
    table(f"wide vectors: {n:,} x 4096 look-alike vectors, k={K}",
          ["backend", "search", "index", "dim", "p50 ms", "recall@10", "index MB"],
          [[b, stage, r[stage]["index"][:40], r[stage]["dim"], r[stage]["p50_ms"], r[stage]["recall@10"],
            round(r[stage]["index_bytes"] / 2**20, 1)]
           for b, r in rows.items() if isinstance(r, dict) and "exact_4096" in r
           for stage in ("exact_4096", "pca_256_rerank")])
