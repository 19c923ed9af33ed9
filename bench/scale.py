"""Scale-out figures: PostgreSQL + pgvector and Milvus against the embedded SQLite + FAISS default.

    python bench/scale.py [--vectors 1000000] [--photos 600] [--wide 10000] [--only-wide] [--skip-wide]
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
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    STACKS,
    deepface_kw,
    free_port,
    lfw_photos,
    machine,
    stack_args,
    table,
    wait_for_milvus,
    write,
)
from index import QUERIES, K, build, exact_topk, make, query_times, recall

STACK = "sface"  # lookalike's default stack, for lookalike and the peer alike
ORGS, GROUPS, INTERESTS = 100, 10, 40  # synthetic filter fields: ~1 %, ~10 %, ~2.5 % per value
INSERT_ROWS = 10_000  # rows per MilvusIndex.insert call (as MilvusBackend.build sends them)


# -- process memory ------------------------------------------------------------------------
def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def settle_memory() -> int:
    """Free what Python and glibc hold on to, then the RSS: a baseline that does not hide
    a later section's growth in pages an earlier one left behind."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    return rss()


class PeakRss(threading.Thread):
    """The highest ``measure()`` (default: this process's RSS) while it runs (sampled every 0.2 s)."""

    def __init__(self, measure: Callable[[], int] = rss) -> None:
        super().__init__(daemon=True)
        self.measure = measure
        self.peak, self._done = measure(), threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, self.measure())

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, self.measure())


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else 0


# -- synthetic people and filters --------------------------------------------------------------
def synthetic_people(n: int, seed: int = 11) -> dict[str, np.ndarray]:
    """Per vector (face ``i + 1``): its organisation, two tags and a consent."""
    rng = np.random.default_rng(seed)
    return {"org": rng.integers(0, ORGS, n), "group": rng.integers(0, GROUPS, n),
            "interest": rng.integers(0, INTERESTS, n),
            "consent": rng.choice(np.array([1, 0, -1]), n, p=[0.8, 0.05, 0.15])}


def filter_fields(people: dict[str, np.ndarray], rows: range) -> dict:
    """lookalike's FilterFields of face ids ``rows + 1``, as ``outbox.filter_fields`` makes them."""
    from lookalike.store.outbox import FilterFields
    from lookalike.store.person_rows import normalise_tag

    org, group, interest, consent = people["org"], people["group"], people["interest"], people["consent"]
    return {i + 1: FilterFields(i + 1, int(consent[i]),
                                (normalise_tag(f"group {group[i]}"), normalise_tag(f"interest {interest[i]}")),
                                f"org-{org[i]:03d}", "") for i in rows}


def make_filters(people: dict[str, np.ndarray]) -> list[dict]:
    """The two filtered searches: the Milvus expression lookalike's ``expression`` builds
    for the search filter, and the rows (0-based) it selects."""
    from lookalike.index.milvus_index import expression
    from lookalike.store.schema import Audience

    out = []
    for name, group, mask in (("organisation 1 %", ("organisation", "Org-007"), people["org"] == 7),
                              ("tag 10 %", ("tag", "Group 3"), people["group"] == 3)):
        out.append({"name": name, "filter": f"{group[0]}={group[1]}", "share": round(float(mask.mean()), 4),
                    "rows": np.flatnonzero(mask),
                    "where": expression([group], {}, Audience.operator)})
    return out


def filtered_truth(base: np.ndarray, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact top-k rows among ``rows`` for each query."""
    sims = queries @ base[rows].T
    top = np.argpartition(-sims, K, axis=1)[:, :K]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    return rows[np.take_along_axis(top, order, axis=1)]


def timed(search, queries: np.ndarray, limit: int, budget: float) -> tuple[np.ndarray, list[float]]:
    """``search(q) -> rows (K,)`` one query at a time: up to ``limit`` queries, stopping
    after ``budget`` seconds (at least 5 queries)."""
    found, times = [], []
    started = time.perf_counter()
    for i, q in enumerate(queries[:limit]):
        if i >= 5 and time.perf_counter() - started > budget:
            break
        t = time.perf_counter()
        found.append(search(q))
        times.append((time.perf_counter() - t) * 1000)
    return np.asarray(found, dtype=np.int64), times


def figures(times: list[float], found: np.ndarray | None = None, truth: np.ndarray | None = None) -> dict:
    out = {"queries": len(times), "p50_ms": round(float(np.median(times)), 3),
           "p95_ms": round(float(np.percentile(times, 95)), 3)}
    if found is not None and truth is not None:
        out["recall@10"] = round(recall(found, truth[:len(found)]), 4)
    return out


def run_filtered(forms: dict, filters: list[dict], queries: np.ndarray, truths: list[np.ndarray],
                 limit: int, budget: float) -> dict:
    """``forms``: name -> ``fn(query, filter) -> rows``; per filter, per form: figures."""
    out = {}
    for f, truth in zip(filters, truths):
        row = {}
        for form, fn in forms.items():
            fn(queries[-1], f)  # warm-up (an expression's first compile, a cache)
            found, times = timed(lambda q, f=f, fn=fn: fn(q, f), queries, limit, budget)
            row[form] = figures(times, found, truth)
            print(f"    {f['name']:18} {form:12} {row[form]}", flush=True)
        out[f["name"]] = row
    return out


# -- search backends -------------------------------------------------------------------------------
def pg_library(folder: Path, name: str, **settings):
    import pgserver

    import lookalike

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql(f"CREATE DATABASE {name};")
    return server, lookalike.open(f"postgresql+psycopg://postgres@/{name}?host={folder / 'pg'}",
                                  index_dir=folder / f"idx-{name}", **settings)


def pg_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, filters: list[dict],
              ftruths: list[np.ndarray], args: argparse.Namespace) -> dict:
    from sqlalchemy import text

    from lookalike.index.pgvector_index import PgVectorIndex
    from lookalike.store import values

    server, lib = pg_library(folder, "vectors")
    if args.pg_maintenance_mem:
        server.psql(f"ALTER SYSTEM SET maintenance_work_mem = '{args.pg_maintenance_mem}';")
        server.psql("SELECT pg_reload_conf();")
    space_id = lib.view.space_id
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


def lite_settle(vectors, name: str) -> list[int]:
    """Block until Milvus Lite has indexed every sealed segment: it compacts and builds the
    per-segment indexes in a background thread after a flush, and its ``describe_index``
    always says Finished, so the bench waits on the engine itself (it runs in this
    process). Returns the rows of each segment."""
    from milvus_lite.server_manager import server_manager_instance

    server = server_manager_instance._servers[os.path.abspath(vectors.target)]  # (grpc server, db, port)
    col = server[1].get_collection(name)
    deadline = time.monotonic() + 6 * 3600
    while time.monotonic() < deadline:
        col._wait_for_bg()
        if col._ensure_loaded_segments_indexed() == 0:  # what the background left, built here
            col._wait_for_bg()
            segments = [s for s in col._segments_snapshot() if s.num_rows]
            if all("vec" in s.indexes for s in segments):
                return [int(s.num_rows) for s in segments]
        time.sleep(0.5)
    raise RuntimeError(f"Milvus Lite left segments of {name} unindexed for 6 hours")


class LiteEngine:
    """Milvus Lite in a folder, served by this process: memory = this process's RSS."""

    lite = True
    label = "Milvus Lite, served in the bench's child process"

    def __init__(self, folder: Path) -> None:
        from lookalike.config import parse_vectors

        folder.mkdir(parents=True, exist_ok=True)  # pymilvus opens a Milvus Lite folder only in an existing one
        self.vectors = parse_vectors(f"milvus-lite:{folder / 'milvus-vectors'}")
        self.scratch = parse_vectors(f"milvus-lite:{folder / 'warm-up'}")  # a folder of its own

    memory = staticmethod(settle_memory)

    def settle(self, index: Any) -> tuple[list[int], float]:
        return lite_settle(self.vectors, index.name), 0.0

    def disk(self) -> int:
        return du(Path(self.vectors.target))


class ServerEngine:
    """A real Milvus 2.3.5 standalone server (the ``milvus`` package's ``milvus-server``:
    embedded etcd, local storage) on loopback, in a process group of its own: memory = the
    RSS of its whole process tree (the Python wrapper and the ``milvus run standalone``
    binary), disk = its storage under ``--data``. Its embedded etcd gets free ports of its own
    (``etcd.config.path``, through Milvus's environment): etcd's default peer port 2380 is
    taken by any other standalone server on the machine (a test run's)."""

    lite = False
    label = "Milvus 2.3.5 standalone server (milvus-server), loopback"

    def __init__(self, data: Path, log: Path, timeout: float = 300) -> None:
        from lookalike.config import parse_vectors

        data.mkdir(parents=True, exist_ok=True)
        self.data, port, client, peer = data, free_port(), free_port(), free_port()
        etcd = data.parent / "embed-etcd.yaml"
        etcd.write_text(f"listen-client-urls: http://127.0.0.1:{client}\nadvertise-client-urls: http://127.0.0.1:{client}\n"
                        f"listen-peer-urls: http://127.0.0.1:{peer}\n"
                        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
                        f"initial-cluster: default=http://127.0.0.1:{peer}\n")
        exe = Path(sys.executable).with_name("milvus-server")
        self._log = open(log, "wb")  # a pipe nobody reads would fill and stall the server
        started = time.perf_counter()
        self.proc = subprocess.Popen([str(exe), "--data", str(data), "--proxy-port", str(port), "--etcd-port",
                                      str(client)], stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=os.environ | {"ETCD_CONFIG_PATH": str(etcd)})
        self.vectors = self.scratch = parse_vectors(f"milvus://127.0.0.1:{port}")
        try:
            wait_for_milvus(port, self._running, timeout, "milvus-server", log)
        except RuntimeError:
            self.stop()
            raise
        self.start_s = time.perf_counter() - started
        self._tree = self._processes()

    def _processes(self) -> list:
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _running(self) -> bool:
        """The wrapper and its binary are alive (the wrapper outlives a binary that died)."""
        import psutil

        try:
            return self.proc.poll() is None and all(p.status() != psutil.STATUS_ZOMBIE for p in self._processes())
        except psutil.NoSuchProcess:
            return False

    def memory(self) -> int:
        """The summed RSS of the server's process tree."""
        import psutil

        total = 0
        for p in self._processes():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def settle(self, index: Any, quiet: float = 180, wait: float = 6 * 3600) -> tuple[list[int], float]:
        """Block until the server's index node has indexed every flushed row, and the
        segments stay so for ``quiet`` seconds; returns ([], the seconds waited past the
        moment it first held).

        DescribeIndex decides: ``total_rows`` (flushed) reaches ``n``, no
        ``pending_index_rows`` (rows of segments without a finished index) and
        ``indexed_rows`` not short of the total. Its ``state`` says Finished from the start
        (2.3.5 leaves segments made after the index out of it), so it does not count. The
        quiet time is for compactions: were the rows upserted, 2.3.5 would count each
        upsert's delete of a new id as a deleted row, compact every segment once its index is
        built ("total delete entities is too much") and index the new segment again (this
        is why the collection is filled by insert); a compaction's
        trigger runs every ~2 minutes, so the set of segments must stay put that long."""
        n = index.ntotal
        started = last = time.monotonic()
        held: tuple[float, set[int]] | None = None
        while time.monotonic() - started < wait:
            d = index.describe()
            done, total, pending = int(d.get("indexed_rows", 0)), int(d.get("total_rows", 0)), \
                int(d.get("pending_index_rows", 0))
            if total >= n and not pending and done >= total:
                ids = {int(x.segment_id) for x in index.client.list_persistent_segments(index.name)}
                if held is None or held[1] != ids:
                    held = (time.monotonic(), ids)
                elif time.monotonic() - held[0] >= quiet:
                    return [], time.monotonic() - held[0]
            else:
                held = None
            if time.monotonic() - last >= 30:
                last = time.monotonic()
                print(f"  Milvus server: {done:,} of {total:,} rows indexed ({pending:,} pending, "
                      f"{d.get('state')}), {last - started:.0f} s", flush=True)
            time.sleep(1)
        raise RuntimeError(f"Milvus server left rows of {index.name} unindexed for {wait:.0f} s")

    def disk(self) -> int:
        """Bytes of its storage (``--data``'s ``data``: etcd, the rocksmq log, segment binlogs,
        index files), not the binaries and logs the wrapper keeps beside them."""
        return du(self.data / "data")

    def disk_parts(self) -> dict[str, int]:
        return {p.name: du(p) for p in sorted((self.data / "data").iterdir())}

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, the process group and every process of the tree (the
        wrapper's binary may sit in a session of its own)."""
        import signal

        import psutil

        tree = self._processes() or getattr(self, "_tree", [])
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            for p in tree:
                try:
                    p.send_signal(sig)
                except psutil.NoSuchProcess:
                    continue
            _, alive = psutil.wait_procs(tree, timeout=wait)
            if not alive:
                break
            tree = alive
        self.proc.wait(timeout=10)
        self._log.close()


def milvus_search(engine: LiteEngine | ServerEngine, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                  people: dict[str, np.ndarray], filters: list[dict], ftruths: list[np.ndarray],
                  args: argparse.Namespace) -> dict:
    """lookalike's MilvusIndex in Milvus Lite or on a Milvus server (``engine``), the index
    the rules pick for it, face ids = rows + 1."""
    from lookalike.index.choice import choose, milvus_spec
    from lookalike.index.milvus_index import MilvusIndex, collection_name, connect, disconnect

    n, dim = base.shape
    vectors = engine.vectors
    choice = choose(n, dim)  # MilvusBackend._rules: the FAISS rules at the default budget
    spec = milvus_spec(choice, lite=engine.lite)
    # the engine's own cost first (pymilvus, grpc, pyarrow, Milvus Lite's modules, a served
    # folder; a server's first collection), on a one-row collection dropped again, so the
    # growth measured below is the data's
    pre = engine.memory()
    client = connect(engine.scratch)
    scratch = MilvusIndex(client, "warm_up", "warm", dim, spec)
    scratch.drop()
    scratch.create()
    scratch.insert([1], base[:1], filter_fields(people, range(1)))
    scratch.search(base[:1], 1, where=filters[1]["where"])
    scratch.drop()
    disconnect(engine.scratch, client)
    before = engine.memory()
    fixed = before - pre
    watch = PeakRss(engine.memory)
    watch.start()
    started = time.perf_counter()
    client = connect(vectors)
    index = MilvusIndex(client, collection_name("bench", "00000000-0000-0000-0000-000000000000"), "bench", dim,
                        spec)
    index.drop()
    index.create()
    for start in range(0, n, INSERT_ROWS):
        rows = range(start, min(n, start + INSERT_ROWS))
        index.insert([i + 1 for i in rows], base[rows.start:rows.stop], filter_fields(people, rows))
        if start and start % 200_000 == 0:
            print(f"  Milvus: {start:,} inserted, {time.perf_counter() - started:.0f} s", flush=True)
    inserted = time.perf_counter() - started
    index.save()  # flush: out of the write-ahead log into sealed segments
    flushed = time.perf_counter() - started
    print(f"  Milvus: inserted in {inserted:.0f} s, flushed at {flushed:.0f} s; waiting for the index builds",
          flush=True)
    segments, quiet = engine.settle(index)
    built = time.perf_counter() - started - quiet  # the server's quiet wait: not build time
    print(f"  Milvus: indexed at {built:.0f} s; release, load", flush=True)
    load_started = time.perf_counter()
    client.release_collection(index.name)
    index.load()  # what a process opening the library pays: the segment indexes read back
    loaded = built + time.perf_counter() - load_started
    if not engine.lite:
        segments = [int(s.num_rows) for s in client.list_loaded_segments(index.name)]
    grown = engine.memory() - before
    disk = engine.disk()
    print(f"  Milvus: {spec.key}, {len(segments)} segments, ready at {loaded:.0f} s, "
          f"RSS +{grown / 2**20:.0f} MB, {disk / 2**20:.0f} MB on disk", flush=True)
    index.search(queries[:3], K)  # warm-up
    found, times = timed(lambda q: index.search(q[None], K)[1][0], queries, args.milvus_queries, 1e9)
    found = np.where(found >= 1, found - 1, -1)
    print(f"  Milvus: unfiltered {figures(times, found, truth)}", flush=True)
    extra: dict = {}
    if isinstance(engine, ServerEngine):
        # searches are Session-consistent (SEARCH_CONSISTENCY); at Strong, the collection's
        # own level, a server's search first waits for its time tick
        params = {"metric_type": "IP", "params": dict(spec.search)}

        def strong(q: np.ndarray) -> np.ndarray:
            hits = client.search(index.name, data=[q.tolist()], limit=K, search_params=params,
                                 consistency_level="Strong")[0]
            return np.asarray([int(h["id"]) - 1 for h in hits] + [-1] * (K - len(hits)))

        strong(queries[0])
        sfound, stimes = timed(strong, queries, 100, 1e9)
        extra = {"unfiltered_strong": figures(stimes, sfound, truth), "disk_parts": engine.disk_parts()}
        print(f"  Milvus: unfiltered, Strong {extra['unfiltered_strong']}", flush=True)

    def by_where(q: np.ndarray, f: dict) -> np.ndarray:
        hit = index.search(q[None], K, where=f["where"])[1][0]
        return np.where(hit >= 1, hit - 1, -1)

    def by_ids(q: np.ndarray, f: dict) -> np.ndarray:
        hit = index.search(q[None], K, allowed=f["rows"] + 1)[1][0]
        return np.where(hit >= 1, hit - 1, -1)

    filtered = run_filtered({"expression": by_where, "id list": by_ids}, filters, queries, ftruths,
                            args.filtered_queries, args.filtered_budget)
    peak = watch.stop() - before
    count = index.ntotal
    disconnect(vectors, client)
    return {"vectors": n, "engine": engine.label, "index": spec.key, "search_params": spec.search,
            "rules_pick": choice.key, "segments": segments, "ntotal": count,
            "insert_s": round(inserted, 1), "flush_s": round(flushed - inserted, 1),
            "index_build_s": round(built - flushed, 1), "load_s": round(loaded - built, 1),
            "build_s": round(loaded, 1), **figures(times, found, truth),
            "rss_growth_bytes": int(grown), "rss_peak_growth_bytes": int(peak),
            "rss_engine_bytes": int(fixed), "rss_baseline_bytes": int(before), "disk_bytes": int(disk),
            **extra, "filtered": filtered}


def milvus_server_search(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                         filters: list[dict], ftruths: list[np.ndarray], args: argparse.Namespace) -> dict:
    """:func:`milvus_search` on a fresh Milvus 2.3.5 standalone server, stopped afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = ServerEngine(folder / "data", folder / "server.log")
    try:
        print(f"  Milvus server: up in {engine.start_s:.0f} s, RSS {engine.memory() / 2**20:.0f} MB", flush=True)
        out = milvus_search(engine, base, queries, truth, synthetic_people(len(base)), filters, ftruths, args)
        out["server_start_s"] = round(engine.start_s, 1)
    finally:
        engine.stop()
    return out


def milvus_in_child(folder: Path, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, filters: list[dict],
                    ftruths: list[np.ndarray], args: argparse.Namespace) -> dict:
    """:func:`milvus_search` in a process of its own: its RSS growth is measured from a
    clean baseline, and nothing of Milvus Lite (its gRPC and engine threads, allocator
    state) stays in the process that then measures FAISS and PostgreSQL."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "base.npy", base)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "truth.npy", truth)
    for i, (f, t) in enumerate(zip(filters, ftruths)):
        np.save(folder / f"filter{i}.npy", f["rows"])
        np.save(folder / f"ftruth{i}.npy", t)
    (folder / "child.json").write_text(json.dumps({
        "filters": [{k: v for k, v in f.items() if k != "rows"} for f in filters],
        "milvus_queries": args.milvus_queries, "filtered_queries": args.filtered_queries,
        "filtered_budget": args.filtered_budget}))
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--milvus-child", str(folder)], check=True)
    return json.loads((folder / "milvus.json").read_text())


def milvus_child(folder: Path) -> None:
    """The child's side of :func:`milvus_in_child`."""
    spec = json.loads((folder / "child.json").read_text())
    base = np.load(folder / "base.npy")
    queries, truth = np.load(folder / "queries.npy"), np.load(folder / "truth.npy")
    filters = [f | {"rows": np.load(folder / f"filter{i}.npy")} for i, f in enumerate(spec["filters"])]
    ftruths = [np.load(folder / f"ftruth{i}.npy") for i in range(len(filters))]
    (folder / "base.npy").unlink()  # the data folder's neighbour: not counted, but not kept either
    people = synthetic_people(len(base))
    args = argparse.Namespace(**{k: spec[k] for k in ("milvus_queries", "filtered_queries", "filtered_budget")})
    out = milvus_search(LiteEngine(folder / "milvus"), base, queries, truth, people, filters, ftruths, args)
    (folder / "milvus.json").write_text(json.dumps(out))


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


# -- ingest -------------------------------------------------------------------------------------
def make_corpus(folder: Path, photos: list[Path]) -> Path:
    corpus = folder / "corpus"
    for p in photos:
        (corpus / p.parent.name).mkdir(parents=True, exist_ok=True)
        (corpus / p.parent.name / p.name).symlink_to(p)
    return corpus


def cli_ingest(corpus: Path, photos: int, workers: int, db: str, *extra: str) -> dict:
    """``lookalike ingest --json`` in a subprocess: wall time, start-up included."""
    cmd = [sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db", db, "--workers", str(workers),
           "--json", *stack_args(STACK), *extra]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    summary = json.loads(out.stdout)
    return {"workers": workers, "photos": photos, "ok": summary["statuses"]["ok"], "faces": summary["faces"],
            "seconds": round(wall, 1), "run_seconds": round(summary["seconds"], 1),
            "photos_per_s": round(photos / wall, 2)}


def stack_settings() -> dict:
    s = STACKS[STACK]
    return {"model": s["model"], "detector": s["detector"], "aligner": s["aligner"]}


def stored_vectors(db: str, index_dir: Path, vectors: str | None) -> int:
    """How many vectors the library's store holds after the ingest (a check, untimed)."""
    import lookalike

    settings = stack_settings() | ({"vectors": vectors} if vectors else {})
    with lookalike.open(db, index_dir=index_dir, **settings) as lib:
        return int(lib.maintenance.info()["ntotal"])


def pg_ingest(folder: Path, corpus: Path, photos: int, workers: int) -> dict:
    """PostgreSQL + pgvector through the work queue (schema made before the clock starts)."""
    server, lib = pg_library(folder, f"ingest{workers}", **stack_settings())
    db = lib.settings.db_url
    lib.close()
    row = cli_ingest(corpus, photos, workers, db)
    server.cleanup()
    return row


def lite_ingest(folder: Path, corpus: Path, photos: int, workers: int) -> dict:
    """SQLite + Milvus Lite: the workers map photos, the parent (which serves Milvus Lite) writes."""
    import lookalike

    db, index_dir = folder / f"lite{workers}.db", folder / f"lite{workers}-idx"
    vectors = f"milvus-lite:{folder / f'lite{workers}-vectors.db'}"
    lookalike.open(db, index_dir=index_dir, vectors=vectors, **stack_settings()).close()
    row = cli_ingest(corpus, photos, workers, str(db), "--index-dir", str(index_dir), "--vectors", vectors)
    row["vectors_stored"] = stored_vectors(str(db), index_dir, vectors)
    row["disk_bytes"] = du(folder / f"lite{workers}-vectors.db")
    return row


def start_milvus_server(data: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """``milvus-lite server`` on loopback, ready for clients."""
    port = free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(exe), "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port",
                                 str(port)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_milvus(port, lambda: proc.poll() is None, 60, "milvus-lite server", log)
    except RuntimeError:
        proc.terminate()
        raise
    return proc, port


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pg_milvus_ingest(folder: Path, corpus: Path, photos: int, workers: int, standalone: bool = False) -> dict:
    """PostgreSQL metadata + a Milvus server on loopback (Milvus Lite's own, or with
    ``standalone`` the real Milvus 2.3.5): the work queue with ``workers`` queue-worker
    processes, each writing its outbox rows to Milvus."""
    name = f"milvus-{'standalone' if standalone else 'server'}-{workers}"
    data = folder / name
    if standalone:
        engine = ServerEngine(data / "data", folder / f"{name}.log")
        vectors, stop, disk = str(engine.vectors), engine.stop, engine.disk
    else:
        proc, port = start_milvus_server(data, folder / f"{name}.log")
        vectors, stop, disk = f"milvus://127.0.0.1:{port}", lambda: stop_process(proc), lambda: du(data)
    try:
        dbname = f"ingest{name.replace('-', '')}"
        server, lib = pg_library(folder, dbname, vectors=vectors, **stack_settings())
        db = lib.settings.db_url
        lib.close()
        row = cli_ingest(corpus, photos, workers, db, "--vectors", vectors)
        row["vectors_stored"] = stored_vectors(db, folder / f"idx-{dbname}", vectors)
        server.cleanup()
        row["disk_bytes"] = disk()
    finally:
        stop()
    return row


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
    _servers_table(data["ingest_milvus_servers"])
    print("wrote", write("scale", data))


def servers_row(standalone: list[dict], lite_server: list[dict], photos: int) -> dict:
    """The two Milvus servers' ingest rows of one run, kept apart from the other stores'
    (a run of its own may meet the machine at another speed)."""
    return {"photos": photos, "machine": machine(), "standalone": standalone, "milvus_lite_server": lite_server}


def _servers_table(row: dict) -> None:
    table(f"ingest, {row['photos']} lfw-dev photos into PostgreSQL + a Milvus server (queue), one run "
          f"({row['machine']['date']})",
          ["server", "workers", "ok", "vectors", "s", "photos/s", "x milvus-lite server"],
          [[kind, r["workers"], r["ok"], r.get("vectors_stored", "-"), r["seconds"], r["photos_per_s"],
            round(r["photos_per_s"] / lite["photos_per_s"], 2)]
           for kind, rows in (("Milvus 2.3.5 standalone", row["standalone"]),
                              ("milvus-lite server", row["milvus_lite_server"]))
           for r, lite in zip(rows, row["milvus_lite_server"])])


def deepface_pg_register(folder: Path, photos: list[Path]) -> dict:
    """The peer of a PostgreSQL ingest: DeepFace.register into its pgvector store, one call
    per photo, the same model and detector (the model loads before the clock starts, which
    favours DeepFace)."""
    import pgserver
    from deepface import DeepFace
    from deepface.modules.database import pgvector as deepface_pgvector

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE deepface_register;")
    # DeepFace remembers per process that it made its extension and tables, whichever the
    # database: a second database in the same process needs that memory cleared
    deepface_pgvector._SCHEMA_CHECKED.clear()
    kw = dict(**deepface_kw(STACK), database_type="pgvector", l2_normalize=True,
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


# -- wide vectors (unchanged) -------------------------------------------------------------------------
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
        space_id = lib.view.space_id
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
        lib.view.forget_index()
        row = {}
        for stage in ("exact_4096", "pca_256_rerank"):
            if stage == "pca_256_rerank":
                started = time.perf_counter()
                lib.maintenance.rebuild(reduce=256)
                row["reduce_s"] = round(time.perf_counter() - started, 1)
            index = lib.view.index
            if backend == "sqlite":
                index.save()
            info = lib.maintenance.info()
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


def _wide_table(n: int, rows: dict) -> None:
    table(f"wide vectors: {n:,} x 4096 look-alike vectors, k={K}",
          ["backend", "search", "index", "dim", "p50 ms", "recall@10", "index MB"],
          [[b, stage, r[stage]["index"][:40], r[stage]["dim"], r[stage]["p50_ms"], r[stage]["recall@10"],
            round(r[stage]["index_bytes"] / 2**20, 1)]
           for b, r in rows.items() if isinstance(r, dict) and "exact_4096" in r
           for stage in ("exact_4096", "pca_256_rerank")])


def saved() -> dict:
    path = RESULTS / "scale.json"
    return json.loads(path.read_text()) if path.exists() else {}


def search_data(n: int, filtered_queries: int) -> tuple:
    """The ``n`` base vectors, the queries, their exact top k, the filters and their exact answers."""
    base, queries = make("strangers", n, 128)
    truth = exact_topk(base, queries)
    filters = make_filters(synthetic_people(n))
    fq = queries[:filtered_queries]
    return base, queries, truth, filters, [filtered_truth(base, fq, f["rows"]) for f in filters]


def server_per_million(row: dict) -> dict:
    n = row["vectors"]
    return {"milvus_server_rss_gb": round(row["rss_growth_bytes"] / n * 1e6 / 1e9, 2),
            "milvus_server_disk_gb": round(row["disk_bytes"] / n * 1e6 / 1e9, 2)}


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
    _wide_table(n, rows)
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
        _servers_table(out["ingest_milvus_servers"])
    if "wide" in out:
        _wide_table(out["wide"]["vectors"], out["wide"])
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
