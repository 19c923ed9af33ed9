"""Scale-out figures: PostgreSQL + pgvector and Milvus against the embedded SQLite + FAISS default.

    python bench/scale.py [--vectors 1000000] [--photos 600] [--wide 10000] [--only-wide] [--skip-wide]
                          [--milvus-queries N] [--filtered-queries 100] [--peer-vectors 100000]
    python bench/scale.py --only-milvus-server [--vectors 1000000]
    python bench/scale.py --only-milvus-ingest [--photos 600]

The defaults take about an hour on the 2-core reference VM (Milvus Lite ~27 min, FAISS ~16, pgvector ~10),
plus the Milvus server (40 min at 1 M: its merge compactions re-index most segments) and its ingest (~5 min).

1. Search: ``--vectors`` synthetic 128-d face vectors (``bench/index.py``'s ``strangers``
   kind: drawn from Gaussians fitted to real Dlib vectors, queries from new people, so
   every neighbour is a look-alike), each given synthetic filter fields (a person, an
   organisation out of 100, a tag out of 10 and one out of 40, a consent), searched by
   * FAISS HNSW32 as the library builds it (``FaissIndex``);
   * lookalike's own :class:`PgVectorIndex` (faces of a real PostgreSQL library, HNSW m 16,
     ef_construction 64, ef_search 256), on the first ``--pg-vectors`` (default: all);
   * lookalike's own :class:`MilvusIndex` in Milvus Lite (a temporary folder, served by a
     child process of the bench that does nothing else), the index type
     ``choice.milvus_spec`` maps the FAISS rules to (1 M x 128: HNSW M 32, efConstruction
     200, ef 256), filled through ``MilvusIndex.insert`` with ``FilterFields`` (as
     ``MilvusBackend.build`` fills a new collection); build = insert + flush + Milvus
     Lite's background index builds + release/load (what a new
     process pays), memory = that process's RSS growth (Milvus Lite is a pure-Python
     engine served over gRPC inside the process that opens it), bytes on disk;
   * the same :class:`MilvusIndex` on a real Milvus 2.3.5 standalone server (the ``milvus``
     package's ``milvus-server``: embedded etcd, local storage, a fresh ``--data`` folder,
     on loopback, in a process group of its own), the index ``choice.milvus_spec(...,
     lite=False)`` gives (1 M x 128: HNSW M 32, efConstruction 200, ef 256); build = insert
     + flush + the server's index builds + release/load. The builds are done when
     ``describe_index`` counts every row indexed and none pending and the segments then
     stay put for 3 minutes (not counted), so a compaction the server starts is waited
     for. Memory = the RSS growth of the server's process tree
     (wrapper and binary), from after a warm-up collection (made, one row, dropped) to
     after the load; disk = its storage (etcd, the rocksmq log, binlogs, index files; not
     the ~250 MB of binaries and the logs the wrapper keeps in the same folder).
     ``MilvusIndex.search`` is Session-consistent (``SEARCH_CONSISTENCY``); the unfiltered
     search is also timed at Strong, the collection's own level, where every search first
     waits for the server's time tick (~200 ms on 2.3.5). ``--only-milvus-server``
     measures this column alone at ``--vectors`` and merges it into the saved figures
     only when that is the saved run's size (a trial at another size is written to
     ``$TMPDIR/scale-milvus-server-N.json`` only);
   * the peer: DeepFace's own pgvector store (``PGVectorClient``: ``insert_embeddings``,
     ``search_by_vector``) on the first ``--peer-vectors`` (100,000 inserts: 4-7 min here);
   single-query p50 / p95 and recall@10 against exact search, build time, bytes.
2. Filtered search, one query at a time: ``organisation == "org-007"`` (~1 % of the
   faces) and ``array_contains(tags, "group-3")`` (~10 %) inside Milvus (the expression
   ``milvus_index.expression`` builds), and the same filters as the id list lookalike's
   search passes today (``allowed``: ``id in [...]`` in Milvus, an id selector or an exact
   scan in FAISS, ``id = ANY(...)`` in PostgreSQL); recall@10 against the exact filtered
   answer. Up to ``--filtered-queries`` queries per case, cut at ``--filtered-budget``
   seconds (at least 5 queries).
3. Ingest of the first ``--photos`` lfw-dev photos with 1 and 2 workers, a fresh store
   each, all through the CLI (``lookalike ingest --json``, wall time, start-up included),
   the default stack (SFace + yunet) for lookalike and for the peer:
   PostgreSQL + pgvector (the work queue); SQLite + Milvus Lite (``--vectors
   milvus-lite:``: workers map photos, the parent writes); PostgreSQL + a ``milvus-lite
   server`` on loopback (``--vectors milvus://``, the work queue, each worker draining its
   own outbox rows); PostgreSQL + the real Milvus 2.3.5 standalone (the same, on
   ``ServerEngine``; ``--only-milvus-ingest`` measures it alone and merges it) — against
   ``DeepFace.register(..., database_type="pgvector")``.
4. Wide vectors: ``--wide`` synthetic 4096-d vectors in a VGG-Face space on both SQL
   backends, exact, then through a 256-d PCA with exact re-ranking (``--skip-wide`` keeps
   the saved figures).
5. Per million faces, from the measured bytes.

PostgreSQL is the ``pgserver`` package's (16 + pgvector 0.6) in a temporary folder, on a
unix socket, default settings except ``maintenance_work_mem`` (``--pg-maintenance-mem``,
so the HNSW graph of a million vectors is built in memory, as the README's deployment
notes advise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    STACKS,
    lfw_photos,
    machine,
    table,
    write,
)
from _scale_data import STACK, filtered_truth, saved, search_data
from _scale_ingest import (
    deepface_pg_register,
    lite_ingest,
    make_corpus,
    pg_ingest,
    pg_milvus_ingest,
    servers_row,
    servers_table,
)
from _scale_milvus import milvus_child, milvus_in_child, milvus_server_search, server_per_million
from _scale_search import deepface_pg_search, faiss_search, pg_search
from _scale_wide import wide, wide_table
from index import QUERIES, K, exact_topk


def only_milvus_ingest(args: argparse.Namespace) -> None:
    """The ingest into PostgreSQL + a Milvus server alone, 1 and 2 workers, the real
    standalone and ``milvus-lite server`` in the same run (each a fresh server and
    database), merged into the saved figures; the other stores' rows stay as measured."""
    from lookalike import config

    config.activate_weights_home()
    data = saved()
    photos = lfw_photos(args.photos)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        corpus = make_corpus(Path(tmp), photos)
        for photo in photos:  # warm the page cache for every run alike
            photo.read_bytes()
        runs = {kind: [pg_milvus_ingest(Path(tmp), corpus, len(photos), w, standalone=kind == "standalone")
                       for w in (1, 2)] for kind in ("standalone", "lite server")}
    data["ingest_milvus_servers"] = servers_row(runs["standalone"], runs["lite server"], len(photos))
    servers_table(data["ingest_milvus_servers"])
    print("wrote", write("scale", data))


def only_milvus_server(args: argparse.Namespace) -> None:
    """The Milvus server column alone, written to ``$TMPDIR/scale-milvus-server-N.json``;
    merged into the saved results only when ``--vectors`` equals the saved run's (the other
    columns' size), so a trial at another size never mixes with them."""
    data = saved()
    n = args.vectors
    base, queries, truth, filters, ftruths = search_data(n, args.filtered_queries)
    print(f"Milvus server, {n:,} vectors", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        row = milvus_server_search(Path(tmp) / "milvus-server", base, queries, truth, filters, ftruths, args)
    row |= {"machine": machine(), "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    path = Path(tempfile.gettempdir()) / f"scale-milvus-server-{n}.json"
    path.write_text(json.dumps({"vectors": n, "milvus_server": row, "per_million": server_per_million(row)},
                               indent=2) + "\n")
    print("wrote", path)
    if data.get("vectors") == n and "search" in data:
        data["search"]["milvus_server"] = row
        data["per_million"] = data.get("per_million", {}) | server_per_million(row)
        print_tables(data, filters)
        print("wrote", write("scale", data))
    else:
        print(f"{n:,} vectors, not the saved run's {data.get('vectors')}: not merged into {RESULTS / 'scale.json'}")


def only_wide(n: int) -> None:
    from lookalike import config

    config.activate_weights_home()
    data = saved()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        rows = wide(Path(tmp), n)
    wide_table(n, rows)
    data["wide"] = {"vectors": n, **rows, "machine": machine()}
    print("wrote", write("scale", data))


# -- tables -----------------------------------------------------------------------------------------
def _mb(b: int | None) -> object:
    return "-" if b is None else round(b / 2**20, 1)


def _fp50(r: dict, name: str, form: str) -> object:
    f = r.get("filtered", {}).get(name, {}).get(form)
    return f"{f['p50_ms']:.3g} ({f['recall@10']:.3f})" if f else "-"


def print_tables(out: dict, filters: list[dict]) -> None:
    s = out["search"]
    fs, pg, mv, peer = s["faiss"], s["pgvector"], s["milvus"], s["peer_deepface_pgvector"]
    sv = s.get("milvus_server")
    org, tag = (f["name"] for f in filters)
    table(f"search, 128-d look-alike vectors, k={K}, one query at a time (filtered: p50 ms, recall@10 in brackets)",
          ["backend", "vectors", "build s", "RSS MB", "disk MB", "p50 ms", "p95 ms", "recall@10",
           f"{org} expr", f"{org} ids", f"{tag} expr", f"{tag} ids"],
          [["FAISS HNSW32 efC200 (efSearch 256), file", f"{fs['vectors']:,}", fs["build_s"],
            _mb(fs["rss_growth_bytes"]), _mb(fs["index_bytes"]), fs["p50_ms"], fs["p95_ms"], fs["recall@10"],
            "-", _fp50(fs, org, "id list"), "-", _fp50(fs, tag, "id list")],
           ["pgvector HNSW m16 (ef_search 256), SQL", f"{pg['vectors']:,}", pg["build_s"], "(server)",
            _mb(pg["table_bytes"] + pg["index_bytes"]), pg["p50_ms"], pg["p95_ms"], pg["recall@10"],
            "-", _fp50(pg, org, "id list"), "-", _fp50(pg, tag, "id list")],
           [f"Milvus Lite {mv['index']}, MilvusIndex", f"{mv['vectors']:,}", mv["build_s"],
            _mb(mv["rss_growth_bytes"]), _mb(mv["disk_bytes"]), mv["p50_ms"], mv["p95_ms"], mv["recall@10"],
            _fp50(mv, org, "expression"), _fp50(mv, org, "id list"), _fp50(mv, tag, "expression"),
            _fp50(mv, tag, "id list")],
           *([[f"Milvus server {sv['index']}, MilvusIndex", f"{sv['vectors']:,}", sv["build_s"],
               _mb(sv["rss_growth_bytes"]), _mb(sv["disk_bytes"]), sv["p50_ms"], sv["p95_ms"], sv["recall@10"],
               _fp50(sv, org, "expression"), _fp50(sv, org, "id list"), _fp50(sv, tag, "expression"),
               _fp50(sv, tag, "id list")]] if sv else []),
           *([["  the same at Strong consistency", f"{sv['vectors']:,}", "-", "-", "-", b["p50_ms"], b["p95_ms"],
               b["recall@10"], "-", "-", "-", "-"]] if sv and (b := sv.get("unfiltered_strong")) else []),
           ["peer: DeepFace PGVectorClient", f"{peer['vectors']:,}", peer["insert_and_build_s"], "(server)", "-",
            peer["p50_ms"], peer["p95_ms"], peer["recall@10"], "-", "-", "-", "-"]])
    table("filtered search (recall@10 against the exact filtered top 10)",
          ["backend", "filter", "share", "form", "queries", "p50 ms", "p95 ms", "recall@10"],
          [[b, name, f["share"], form, r["queries"], r["p50_ms"], r["p95_ms"], r["recall@10"]]
           for b, res in (("FAISS", fs), ("pgvector", pg), ("Milvus Lite", mv), ("Milvus server", sv or {}))
           if res
           for f in filters for name in [f["name"]]
           for form, r in res["filtered"][name].items()])
    peer_pps = out["ingest_peer"]["photos_per_s"]
    rows = [[store, r["workers"], r["ok"], r.get("vectors_stored", "-"), r["seconds"], r["photos_per_s"],
             round(r["photos_per_s"] / peer_pps, 2)]
            for store, runs in (("PostgreSQL + pgvector (queue)", out["ingest_postgres"]),
                                ("SQLite + Milvus Lite", out["ingest_milvus"]["sqlite_milvus_lite"]),
                                ("PostgreSQL + milvus-lite server (queue)",
                                 out["ingest_milvus"]["postgres_milvus_server"]))
            for r in runs]
    peer_row = out["ingest_peer"]
    rows.append(["peer: DeepFace.register, pgvector", "-", peer_row["ok"], "-", peer_row["seconds"], peer_pps, 1.0])
    table(f"ingest, {out['photos']} lfw-dev photos, {STACKS[STACK]['label']}, CLI wall time",
          ["store", "workers", "ok", "vectors", "s", "photos/s", "x peer"], rows)
    if "ingest_milvus_servers" in out:
        servers_table(out["ingest_milvus_servers"])
    if "wide" in out:
        wide_table(out["wide"]["vectors"], out["wide"])
    table("per million faces (from the bytes measured above)", ["what", "GB"],
          [[k, v] for k, v in out["per_million"].items()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", type=int, default=1_000_000, help="synthetic 128-d vectors (FAISS, Milvus)")
    ap.add_argument("--pg-vectors", type=int, default=0, help="pgvector on the first N of them [default: all]")
    ap.add_argument("--peer-vectors", type=int, default=100_000,
                    help="DeepFace's PGVectorClient on the first N (it inserts ~250 vectors/s)")
    ap.add_argument("--milvus-queries", type=int, default=QUERIES, help="unfiltered Milvus queries")
    ap.add_argument("--filtered-queries", type=int, default=100)
    ap.add_argument("--filtered-budget", type=float, default=90.0, help="seconds per filtered case")
    ap.add_argument("--pg-maintenance-mem", default="2GB", help="maintenance_work_mem for the HNSW build")
    ap.add_argument("--photos", type=int, default=600)
    ap.add_argument("--wide", type=int, default=10_000, help="4096-d vectors for the reduction figures")
    ap.add_argument("--only-wide", action="store_true",
                    help="re-measure the wide-vector section only; the other figures stay as saved")
    ap.add_argument("--skip-wide", action="store_true", help="keep the saved wide-vector figures")
    ap.add_argument("--only-milvus-server", action="store_true",
                    help="measure the Milvus server column only and merge it into the saved figures "
                         "(when --vectors is the saved run's)")
    ap.add_argument("--only-milvus-ingest", action="store_true",
                    help="measure the ingest into PostgreSQL + the Milvus standalone only and merge it")
    ap.add_argument("--milvus-child", type=Path, help=argparse.SUPPRESS)  # milvus_in_child's process
    args = ap.parse_args()
    if args.milvus_child:
        return milvus_child(args.milvus_child)
    if args.only_wide:
        return only_wide(args.wide)
    if args.only_milvus_server:
        return only_milvus_server(args)
    if args.only_milvus_ingest:
        return only_milvus_ingest(args)
    from lookalike import config

    config.activate_weights_home()
    run_started = time.perf_counter()
    out: dict = {"machine": machine(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
                 "note": "shared 2-core VM: other jobs may have run at the same time; compare within a run",
                 "vectors": args.vectors, "queries": QUERIES, "k": K, "stack": STACKS[STACK]["label"],
                 "photos": args.photos}
    n = args.vectors
    base, queries, truth, filters, ftruths = search_data(n, args.filtered_queries)
    fq = queries[:args.filtered_queries]
    pg_n = min(args.pg_vectors or n, n)
    peer_n = min(args.peer_vectors or n, n)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        print(f"Milvus Lite, {n:,} vectors (a process of its own)", flush=True)
        mv = milvus_in_child(tmp / "milvus-run", base, queries, truth, filters, ftruths, args)
        print(f"Milvus server, {n:,} vectors", flush=True)
        sv = milvus_server_search(tmp / "milvus-server", base, queries, truth, filters, ftruths, args)
        print(f"FAISS, {n:,} vectors", flush=True)
        fs = faiss_search(tmp, base, queries, truth, filters, ftruths, args)
        print(f"pgvector, {pg_n:,} vectors", flush=True)
        if pg_n == n:
            pg = pg_search(tmp, base, queries, truth, filters, ftruths, args)
        else:  # the filters and the truths of the first pg_n rows
            pfilters = [f | {"rows": f["rows"][f["rows"] < pg_n]} for f in filters]
            pg = pg_search(tmp, base[:pg_n], queries, exact_topk(base[:pg_n], queries), pfilters,
                           [filtered_truth(base, fq, f["rows"]) for f in pfilters], args)
        print(f"peer DeepFace PGVectorClient, {peer_n:,} vectors", flush=True)
        peer = deepface_pg_search(tmp, base[:peer_n], queries,
                                  truth if peer_n == n else exact_topk(base[:peer_n], queries))
        del base
        photos = lfw_photos(args.photos)
        corpus = make_corpus(tmp, photos)
        print(f"ingest, {len(photos)} photos", flush=True)
        ingest = [pg_ingest(tmp, corpus, len(photos), w) for w in (1, 2)]
        lite = [lite_ingest(tmp, corpus, len(photos), w) for w in (1, 2)]
        served = [pg_milvus_ingest(tmp, corpus, len(photos), w) for w in (1, 2)]
        standalone = [pg_milvus_ingest(tmp, corpus, len(photos), w, standalone=True) for w in (1, 2)]
        ingest_peer = deepface_pg_register(tmp, photos)
        print(f"ingest: {ingest} {lite} {served} {ingest_peer}", flush=True)
        if args.skip_wide:
            wide_rows = saved().get("wide")
        else:
            print(f"wide, {args.wide:,} x 4096", flush=True)
            wide_rows = {"vectors": args.wide, **wide(tmp, args.wide), "machine": machine()}
    per_million = {
        "faiss_index_gb": round(fs["index_bytes"] / n * 1e6 / 1e9, 2),
        "faiss_rss_gb": round(fs["rss_growth_bytes"] / n * 1e6 / 1e9, 2),
        "pg_table_gb": round(pg["table_bytes"] / pg_n * 1e6 / 1e9, 2),
        "pg_hnsw_index_gb": round(pg["index_bytes"] / pg_n * 1e6 / 1e9, 2),
        "milvus_lite_disk_gb": round(mv["disk_bytes"] / n * 1e6 / 1e9, 2),
        "milvus_lite_rss_gb": round(mv["rss_growth_bytes"] / n * 1e6 / 1e9, 2),
        **server_per_million(sv),
    }
    out |= {"filters": [{k: v for k, v in f.items() if k != "rows"} for f in filters],
            "search": {"faiss": fs, "pgvector": pg, "milvus": mv, "milvus_server": sv,
                       "peer_deepface_pgvector": peer},
            "ingest_postgres": ingest, "ingest_milvus": {"sqlite_milvus_lite": lite, "postgres_milvus_server": served},
            "ingest_milvus_servers": servers_row(standalone, served, len(photos)),
            "ingest_peer": ingest_peer, "per_million": per_million,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "run_minutes": round((time.perf_counter() - run_started) / 60, 1)}
    if wide_rows:
        out["wide"] = wide_rows
    print_tables(out, filters)
    print("wrote", write("scale", out))


if __name__ == "__main__":
    main()
