"""bench/scale.py's Milvus column: lookalike's MilvusIndex in Milvus Lite (a child process of
the bench) and on a real Milvus 2.3.5 standalone server, built, settled, loaded and searched;
the server itself (``ServerEngine``, which the standalone ingest of ``_scale_ingest`` runs on
too) and its bytes per million faces."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import free_port, wait_for_milvus
from _scale_data import PeakRss, du, figures, filter_fields, run_filtered, settle_memory, synthetic_people, timed
from index import K

INSERT_ROWS = 10_000  # rows per MilvusIndex.insert call (as MilvusBackend.build sends them)


def lite_settle(vectors, name: str) -> list[int]:
    """Block until Milvus Lite has indexed every sealed segment: it compacts and builds the
    per-segment indexes in a background thread after a flush, and its ``describe_index``
    always says Finished, so the bench waits on the engine itself (it runs in this
    process). Returns the rows of each segment."""
    from milvus_lite.server_manager import server_manager_instance

    # Milvus Lite's engine in this process: its private parts are the only way to wait on it
    server = server_manager_instance._servers[os.path.abspath(vectors.target)]  # noqa: SLF001 - see above
    col = server[1].get_collection(name)
    deadline = time.monotonic() + 6 * 3600
    while time.monotonic() < deadline:
        col._wait_for_bg()  # noqa: SLF001 - Milvus Lite's engine, waited on (see above)
        # what the background left, built here
        if col._ensure_loaded_segments_indexed() == 0:  # noqa: SLF001 - Milvus Lite's engine
            col._wait_for_bg()  # noqa: SLF001 - Milvus Lite's engine
            segments = [s for s in col._segments_snapshot() if s.num_rows]  # noqa: SLF001 - Milvus Lite's engine
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
    runner = Path(__file__).resolve().with_name("scale.py")  # its --milvus-child calls milvus_child
    subprocess.run([sys.executable, str(runner), "--milvus-child", str(folder)], check=True)
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


def server_per_million(row: dict) -> dict:
    n = row["vectors"]
    return {"milvus_server_rss_gb": round(row["rss_growth_bytes"] / n * 1e6 / 1e9, 2),
            "milvus_server_disk_gb": round(row["disk_bytes"] / n * 1e6 / 1e9, 2)}
