"""One FAISS index per embedding space, saved atomically with a JSON manifest.

Ids are ``faces.id`` (``IndexIDMap2``), vectors are unit length and the metric is inner
product, so scores are cosine similarities. The file is a cache of the database's
embedding blobs: the database commits first, the index follows, and whatever a crash
leaves out is re-added from the blobs (:meth:`FaissIndex.reconcile`). FAISS's own binary
format is used (no pickle); a file that cannot be read or was made for another model or
dimension is refused with a message naming the file.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import IndexCorrupt, IndexOwnedElsewhere
from ..faults import crash_point
from . import pages
from .protocol import FetchVectors, SearchFilters, VectorIndex

if TYPE_CHECKING:
    import faiss

MANIFEST_VERSION = 1
_HEAD = 64  # bytes of a manifest that hold its generation
_GENERATION = re.compile(rb'^\{\s*"generation":\s*(\d+)')
EXACT_SUBSET = 20_000  # filtered searches over at most this many ids are scored exactly


def exact_top_k(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids), each ``(n_queries, k)``, of ``ids`` (rows of ``vectors``) scored
    exactly; missing slots have id -1. Any index's small filtered search (a graph walk
    under a selective filter loses recall, or finds nothing)."""
    scores = queries @ vectors.T
    k_eff = min(k, len(ids))
    order = np.argsort(-scores, axis=1)[:, :k_eff]
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    out = np.full((len(queries), k), -1, dtype=np.int64)
    sims[:, :k_eff] = np.take_along_axis(scores, order, axis=1)
    out[:, :k_eff] = np.asarray(ids)[order]
    return sims, out


BATCH_MIN = 20  # queries in one call before FAISS's threads pay (its own BLAS threshold)


def search_threads(n_queries: int, cores: int) -> int:
    """OpenMP threads for one FAISS search call. FAISS splits work by query: one query keeps
    one thread busy whatever the index, and the others only spin, taking a core from the
    models on a loaded machine (a 122-face search took 8 ms that way, 0.01 ms on one
    thread; 1M x 128 flat: 62 ms on one thread, 75 ms on two, 2026-12-05). Batches of
    :data:`BATCH_MIN` or more (evaluation, reconcile) get every core."""
    return max(1, cores) if n_queries >= BATCH_MIN else 1


_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """FAISS's OpenMP threads set to ``n`` for one call, then back to what they were (a
    process-wide setting: other callers keep theirs)."""
    import faiss

    before = faiss.omp_get_max_threads()
    if n == before:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


TRAIN_MIN = 20_000  # training sample for compressed codes: at least this many vectors,
TRAIN_PER_LIST = 64  # or this many per IVF list, whichever is more


@dataclass
class Manifest:
    """What an index file holds; checked against the database on every load."""

    space: str
    model: str
    detector: str
    aligner: str
    dim: int
    metric: str
    index_key: str
    ntotal: int
    max_id: int
    schema_revision: str
    space_uid: str = ""
    params: dict = field(default_factory=dict)  # efSearch / nprobe / rerank
    # ids removed from an index type that cannot delete (HNSW): filtered out at search
    # time until the next rebuild
    tombstones: list = field(default_factory=list)
    # True when the key was chosen by hand (`index rebuild --key`): upkeep keeps it
    pinned: bool = False
    # uid of the stored PCA the vectors went through ("" = full vectors); see reduction.py
    reduction: str = ""
    saved_at: float = 0.0
    version: int = MANIFEST_VERSION
    # one more at every save of this space's pair (by any process): how a long-lived reader
    # notices a newer save, two of them inside one file-timestamp tick included
    generation: int = 0


class FaissIndex:
    """An ``IndexIDMap2`` over an inner-product index, with atomic save
    (a :class:`lookalike.index.protocol.VectorIndex`)."""

    def __init__(self, folder: Path, manifest: Manifest, index: faiss.IndexIDMap2 | None = None) -> None:
        import faiss

        self.folder = Path(folder)
        self.manifest = manifest
        if index is None:
            inner = faiss.index_factory(manifest.dim, manifest.index_key, faiss.METRIC_INNER_PRODUCT)
            if "efConstruction" in manifest.params:
                graph = faiss.downcast_index(inner)
                if isinstance(graph, faiss.IndexHNSW):
                    graph.hnsw.efConstruction = int(manifest.params["efConstruction"])
            index = faiss.IndexIDMap2(inner)
            self._inner = inner  # the Python wrapper must outlive the IDMap that points at it
        self._index = index
        # optional: ids -> exact vectors, for re-ranking compressed (PQ) candidates
        self.vector_source: FetchVectors | None = None
        self.filter_on_fields = False  # the allowed ids are all it filters by
        self.stamp: int | None = None  # the saved pair this object matches (changed_on_disk)

    @classmethod
    def build(cls, folder: Path, manifest: Manifest, ids: np.ndarray, vectors: np.ndarray) -> "FaissIndex":
        """A fresh index of ``manifest.index_key`` holding ``vectors`` (trained on them if
        the key needs training)."""
        manifest.tombstones = []
        index = cls(folder, manifest)
        inner = index._inner
        if not inner.is_trained:
            # k-means needs ~30-40 points per list (FAISS warns below 39); more only costs
            # time, which grows with n x nlist x dim (minutes at 4096-d)
            import faiss

            nlist = faiss.extract_index_ivf(inner).nlist if "IVF" in manifest.index_key else 0
            cap = max(TRAIN_MIN, TRAIN_PER_LIST * nlist)
            sample = vectors if len(vectors) <= cap else vectors[
                np.random.default_rng(0).choice(len(vectors), cap, replace=False)]
            inner.train(np.ascontiguousarray(sample, dtype=np.float32))
        for start in range(0, len(ids), 100_000):
            index.add(ids[start:start + 100_000], vectors[start:start + 100_000])
        return index

    # -- files -----------------------------------------------------------------------
    @staticmethod
    def paths(folder: Path, space: str) -> tuple[Path, Path]:
        return Path(folder) / f"{space}.faiss", Path(folder) / f"{space}.json"

    @property
    def file(self) -> Path:
        return self.paths(self.folder, self.manifest.space)[0]

    @staticmethod
    def stamp_of(folder: Path, space: str) -> int | None:
        """The generation of the saved pair (the manifest is written last), or None if
        none was saved. Not its ``st_mtime_ns``: two saves inside one timestamp tick (a
        coarse file system, a fast writer) leave the same time. The generation is the
        manifest's first key, so reading its first bytes is enough (checked before every
        search, and a manifest's tombstone list can be long)."""
        try:
            with open(Path(folder, f"{space}.json"), "rb") as file:
                head = file.read(_HEAD)
                found = _GENERATION.search(head)
                if found is None:  # written before generations (or oddly formatted): read it all
                    saved = json.loads(head + file.read())
                    return int(saved.get("generation", 0)) if isinstance(saved, dict) else 0
        except FileNotFoundError:
            return None
        except ValueError:  # unreadable: the load that follows says so
            return -1
        return int(found.group(1))

    def changed_on_disk(self) -> bool:
        """Whether another process saved a newer index since this one was read or saved:
        a long-running reader (the web app, a kiosk) then opens the new one."""
        return self.stamp_of(self.folder, self.manifest.space) != self.stamp

    @classmethod
    def load(cls, folder: Path, expected: Manifest) -> "FaissIndex":
        """The saved index of ``expected.space``, or an empty one if none was saved.

        A writer replaces the index file, then the manifest: a reader that lands between
        the two reads an index the manifest does not describe. The pair is read again
        (a few times, briefly) until they agree; a pair a crash left disagreeing is
        accepted, and the caller's reconcile with the database repairs it."""
        for attempt in range(5):
            stamp = cls.stamp_of(folder, expected.space)
            index = cls._load_once(folder, copy.deepcopy(expected))
            if index.consistent() or attempt == 4:
                index.stamp = stamp
                expected.__dict__.update(index.manifest.__dict__)
                index.manifest = expected
                return index
            time.sleep(0.05)
        raise AssertionError("unreachable")

    def consistent(self) -> bool:
        """The manifest describes this index (count and highest id)."""
        ids = self.ids()
        top = int(ids.max()) if len(ids) else 0
        return self.manifest.ntotal == self.ntotal and self.manifest.max_id in (0, top)

    @classmethod
    def _load_once(cls, folder: Path, expected: Manifest) -> "FaissIndex":
        import faiss

        index_path, manifest_path = cls.paths(folder, expected.space)
        if not index_path.exists():
            return cls(folder, expected)
        try:
            saved = Manifest(**json.loads(manifest_path.read_text()))
        except FileNotFoundError as err:
            raise IndexCorrupt(f"{manifest_path}: manifest missing beside {index_path.name}; "
                               "run: lookalike doctor --fix (rebuilds it from the database)") from err
        except (ValueError, TypeError) as err:
            raise IndexCorrupt(f"{manifest_path}: unreadable manifest ({err}); "
                               "run: lookalike doctor --fix") from err
        if saved.space_uid != expected.space_uid:
            raise IndexOwnedElsewhere(
                f"{index_path}: this index belongs to another library (another database uses "
                f"the same index folder {folder}); give this library its own --index-dir")
        for attr in ("model", "detector", "aligner", "dim", "metric", "reduction"):
            if getattr(saved, attr) != getattr(expected, attr):
                raise IndexCorrupt(  # the library's own files disagree: the server's to fix, not a caller's
                    f"{index_path}: index was made with {attr}={getattr(saved, attr)!r} but the "
                    f"database says {getattr(expected, attr)!r} for space {expected.space}; "
                    "refusing to mix vectors (run: lookalike doctor --fix to rebuild it)")
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as err:
            raise IndexCorrupt(f"{index_path}: not a readable FAISS index ({str(err).splitlines()[0]}); "
                               "run: lookalike doctor --fix") from err
        if index.d != expected.dim:
            raise IndexCorrupt(f"{index_path}: vectors have {index.d} dimensions, the model "
                                f"{expected.model} makes {expected.dim}")
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexCorrupt(f"{index_path}: not an id-mapped index; run: lookalike doctor --fix")
        expected.index_key, expected.params = saved.index_key, saved.params
        expected.tombstones, expected.pinned = saved.tombstones, saved.pinned
        expected.ntotal, expected.max_id = saved.ntotal, saved.max_id
        expected.generation = saved.generation
        pages.advise(index)  # huge pages under a large index, made in the background
        # keep read_index's own wrapper: it owns the C++ object (a downcast copy would not)
        return cls(folder, expected, index)

    def save(self) -> None:
        """Write index then manifest, each to a temp file, fsync, ``os.replace``."""
        import faiss

        self.folder.mkdir(parents=True, exist_ok=True)
        index_path, manifest_path = self.paths(self.folder, self.manifest.space)
        self.manifest.ntotal = self.ntotal
        ids = self.ids()
        self.manifest.max_id = int(ids.max()) if len(ids) else 0
        self.manifest.saved_at = time.time()
        # past every generation saved so far, ours or another process's (writers take turns
        # under the write lock; a build starts from a fresh manifest at 0)
        self.manifest.generation = max(self.manifest.generation, self.stamp_of(self.folder, self.manifest.space)
                                       or 0) + 1
        tmp = index_path.with_name(f".{index_path.name}.{os.getpid()}.tmp")
        faiss.write_index(self._index, str(tmp))
        _fsync_replace(tmp, index_path)
        crash_point("index.save.torn")
        tmp = manifest_path.with_name(f".{manifest_path.name}.{os.getpid()}.tmp")
        # the generation first: :meth:`stamp_of` reads only the file's first bytes
        tmp.write_text(json.dumps({"generation": self.manifest.generation, **asdict(self.manifest)}, indent=2))
        _fsync_replace(tmp, manifest_path)
        self.stamp = self.stamp_of(self.folder, self.manifest.space)

    # -- content ---------------------------------------------------------------------
    def ids(self) -> np.ndarray:
        """Ids of the live vectors (tombstoned ones excluded)."""
        import faiss

        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self.manifest.tombstones:
            ids = np.setdiff1d(ids, np.asarray(self.manifest.tombstones, dtype=np.int64))
        return ids

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal) - len(self.manifest.tombstones)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.manifest.dim:
            raise ValueError(f"vectors of {vectors.shape[1]} dimensions cannot go into the "  # a caller's bug
                                f"{self.manifest.dim}-d index {self.manifest.space}")
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        """Delete ``ids``; index types that cannot delete (HNSW) get tombstones instead."""
        import faiss

        if len(ids) == 0:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        try:
            # an IDSelectorBatch copies the ids (what FAISS's wrapper builds from an array);
            # an IDSelectorArray would point at the array's memory (a segfault once it is freed)
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        except RuntimeError:
            present = np.intersect1d(ids, faiss_ids(self._index))
            fresh = np.setdiff1d(present, np.asarray(self.manifest.tombstones, dtype=np.int64))
            self.manifest.tombstones = sorted(set(self.manifest.tombstones) | set(fresh.tolist()))
            self._erase(fresh)
            return len(fresh)

    def _erase(self, ids: np.ndarray) -> None:
        """Overwrite the stored vectors of tombstoned ids with zeros. A graph cannot drop a
        node, but a removed person's face must not stay readable in the file until the next
        rebuild: the node stays as a waypoint, its vector is gone (and the tombstone keeps
        it out of every answer)."""
        import faiss

        storage = getattr(faiss.downcast_index(self._index.index), "storage", None)
        flat = faiss.downcast_index(storage) if storage is not None else None
        if not isinstance(flat, faiss.IndexFlatCodes) or len(ids) == 0:
            return
        rows = np.nonzero(np.isin(faiss_ids(self._index), ids))[0]
        codes = faiss.vector_to_array(flat.codes)
        codes.reshape(-1, flat.code_size)[rows] = 0
        faiss.copy_array_to_vector(codes, flat.codes)

    @property
    def huge_page_bytes(self) -> int:
        """Bytes of the index's large arrays on huge pages (:mod:`.pages`)."""
        return sum(pages.huge_bytes(array) for array in pages.large_arrays(self._index))

    @property
    def tombstone_share(self) -> float:
        total = int(self._index.ntotal)
        return len(self.manifest.tombstones) / total if total else 0.0

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               filters: SearchFilters | None = None,
               excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each ``(n_queries, k)``; missing slots have id -1.
        ``allowed`` restricts the search to those ids, inside FAISS (before top-k);
        ``excluded`` ids are left out as the tombstones are."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.manifest.dim)
        k = max(1, min(k, max(self.ntotal, 1)))
        dead = np.asarray(self.manifest.tombstones, dtype=np.int64)
        if allowed is None and excluded is not None and len(excluded):
            dead = np.union1d(dead, np.asarray(excluded, dtype=np.int64))
        # the selectors are locals of this call, alive until FAISS's search returns (and
        # FAISS's wrappers also reference an IDSelectorNot's inner selector and params.sel)
        selector: faiss.IDSelector | None = None
        if allowed is not None:
            allowed = np.setdiff1d(np.asarray(allowed, dtype=np.int64), dead)
            if len(allowed) == 0:
                return (np.full((len(queries), k), -np.inf, dtype=np.float32),
                        np.full((len(queries), k), -1, dtype=np.int64))
            if len(allowed) <= EXACT_SUBSET:
                # graph and IVF searches lose recall under a selective filter (HNSW may find
                # nothing at all): a small allowed set is scored exactly instead
                return self._exact(queries, allowed, k)
            selector = faiss.IDSelectorBatch(allowed)
        elif len(dead):
            batch = faiss.IDSelectorBatch(dead)
            selector = faiss.IDSelectorNot(batch)
        params = self._search_params(selector)
        factor = int(self.manifest.params.get("rerank", 0))
        source = self.vector_source if factor else None
        fetch = k * factor if source is not None else k
        with omp_threads(search_threads(len(queries), _CORES)):
            sims, ids = self._index.search(queries, fetch, params=params) if params is not None \
                else self._index.search(queries, fetch)
        if source is not None and fetch != k:
            # exact cosine on the candidates' full vectors (compressed codes are approximate)
            sims, ids = rerank(queries, ids, k, source)
        return sims, ids

    def _exact(self, queries: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = self._kept_exactly(ids)
        if vectors is None and self.vector_source is not None:
            vectors = self.vector_source(ids)
        elif vectors is None:
            vectors = np.stack([self._index.reconstruct(int(i)) for i in ids])
        return exact_top_k(queries, ids, vectors, k)

    def _kept_exactly(self, ids: np.ndarray) -> np.ndarray | None:
        """The index's own copies of the vectors of ``ids`` when it keeps them exactly (flat
        storage, bare or under a graph): a filtered search then reads no database row, where
        fetching 20,000 vectors took tens of ms. ``None`` for compressed codes, or when an id
        is not in the index yet (a face another process just added): the database has it."""
        import faiss

        inner = faiss.downcast_index(self._index.index)
        storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
        if not isinstance(storage, faiss.IndexFlat):
            return None
        try:
            return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        except RuntimeError:
            return None

    def _search_params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        import faiss

        inner = faiss.downcast_index(self._index.index)
        p = self.manifest.params
        params: faiss.SearchParameters
        if isinstance(inner, faiss.IndexHNSW):
            graph = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
            graph.efSearch = int(p.get("efSearch", 256))
            params = graph
        elif isinstance(inner, faiss.IndexIVF):
            lists = faiss.SearchParametersIVF()
            lists.nprobe = int(p.get("nprobe", 16))
            params = lists
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def reconcile(self, db_ids: np.ndarray, fetch_vectors: FetchVectors) -> tuple[int, int]:
        """Make the index hold exactly ``db_ids``: add what is missing (vectors from
        ``fetch_vectors(ids)``), drop orphans. Returns (added, removed)."""
        have = self.ids()
        missing = np.setdiff1d(db_ids, have, assume_unique=False)
        orphans = np.setdiff1d(have, db_ids, assume_unique=False)
        removed = self.remove(orphans)
        for start in range(0, len(missing), 50_000):
            chunk = missing[start:start + 50_000]
            self.add(chunk, fetch_vectors(chunk))
        return len(missing), removed


def rerank(queries: np.ndarray, candidates: np.ndarray, k: int,
           vectors_of: FetchVectors) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) of the exact top-``k`` among each query's candidate ids (-1 =
    none), scored on ``vectors_of(ids)``: how approximate indexes give exact answers."""
    out_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    out_i = np.full((len(queries), k), -1, dtype=np.int64)
    for row, (q, cand) in enumerate(zip(queries, candidates)):
        cand = cand[cand >= 0]
        if not len(cand):
            continue
        exact = vectors_of(cand) @ q
        order = np.argsort(-exact, kind="stable")[:k]
        out_s[row, :len(order)], out_i[row, :len(order)] = exact[order], cand[order]
    return out_s, out_i


def faiss_ids(index: faiss.IndexIDMap) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _fsync_replace(tmp: Path, target: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


if TYPE_CHECKING:  # mypy proves the class satisfies the protocol
    _satisfies: type[VectorIndex] = FaissIndex
