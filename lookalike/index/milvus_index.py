"""The index in Milvus: one collection per embedding space, searched through pymilvus.

The same client calls reach Milvus Lite (``--vectors milvus-lite:PATH``: an embedded
Milvus, its data in a local folder, served to this process on a loopback port) and a
Milvus server or cluster (``--vectors milvus://host:port``), so the path a library grows
into is the path the tests run.

A collection holds, per face: the primary key (``faces.id``), the vector (reduced when the
space is), and the fields searches filter on — ``person`` (id, -1 none), ``consent`` (1
agreed, 0 withheld, -1 never stated), ``tags``, ``organisation``, ``role`` (normalised as
the database matches them) — so a filtered search is Milvus's own pre-filtered search,
never a top-k cut after the fact.

The database stays the source of truth: what Milvus must receive is written first, in
the database, as outbox rows (:class:`lookalike.store.schema.VectorOutbox`), and the
backend drains them (:meth:`lookalike.index.milvus_outbox.Outbox.drain`). This class is
only the Milvus side: it upserts, deletes, counts, lists and searches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Vectors, VectorsKind, env_text
from ..errors import ConfigError, IndexWidthChanged, LibraryBusy, VectorStoreUnavailable
from .protocol import FetchVectors, SearchFilters, ServiceManifest, VectorIndex

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from ..store.outbox import FilterFields
    from ..store.values import Audience, GroupKey
    from .milvus_outbox import Outbox

log = logging.getLogger(__name__)

MAX_TOPK = 16_384  # Milvus's ceiling on one search's limit
TAG_CAPACITY = 64  # tags kept per face (the ARRAY field's max_capacity)
TEXT_LENGTH = 300  # as people.organisation / people.role
# A search is Session-consistent: it sees every write this process made (pymilvus keeps
# the last write's timestamp per collection), and others' once the server has applied them
# (its time tick, ~200 ms). Strong would make every search wait for that tick (200 ms a
# query on a 2.3.5 standalone against 8 ms, bench/scale.py). A face removed by another
# process may come back from Milvus for that moment; search drops every id the database no
# longer has, so it is never shown. Counts and id lists (doctor) stay Strong.
SEARCH_CONSISTENCY = "Session"
WRITE_CHUNK = 2_000  # rows per insert or upsert call (a gRPC message stays well under its 64 MB)


@dataclass(frozen=True)
class MilvusSpec:
    """A Milvus vector index: its type, build parameters and search parameters."""

    index_type: str  # FLAT, HNSW, IVF_FLAT, IVF_SQ8, IVF_PQ, DISKANN
    build: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in sorted(self.build.items()))
        return f"{self.index_type}({params})" if params else self.index_type


CONNECT_TIMEOUT = 30.0  # seconds a Milvus server has to answer the first call
# pymilvus pings every 10 s even on an idle channel; Milvus Lite's gRPC server (embedded, or
# `milvus-lite server`) allows one ping in 5 min without data and answers more with GOAWAY
# "too_many_pings", after which the next call on that channel fails UNAVAILABLE (CI, 2026-12-05).
# Pings while calls are in flight still detect a dead server.
GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0}


def _accepts(vectors: Vectors) -> None:
    """Fail at once when nothing listens at the address (gRPC would retry a refused
    connection until its timeout); a server that accepts gets :data:`CONNECT_TIMEOUT`."""
    import socket

    host, _, port = vectors.target.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise VectorStoreUnavailable(f"{vectors}: cannot reach Milvus ({why}); is the server running?") from None


def connect(vectors: Vectors) -> MilvusClient:
    """A client for ``vectors``; a clear error when it cannot be reached or opened."""
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError:  # pragma: no cover - the milvus extra is part of every install
        raise ConfigError("--vectors milvus needs pymilvus: pip install 'lookalike[milvus]'") from None
    if vectors.kind is VectorsKind.milvus_lite:
        from pathlib import Path

        try:
            Path(vectors.target).parent.mkdir(parents=True, exist_ok=True)  # as SQLite makes its file
        except OSError as err:
            # the server's folder, not a caller's option: a 500 logged, the folder said in words
            raise VectorStoreUnavailable(f"{vectors}: cannot create its folder: {err.strerror or err}") from None
        # milvus_lite logs its own traceback before pymilvus raises "Open local milvus failed"
        quiet = logging.getLogger("milvus_lite.server_manager")
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            client = MilvusClient(vectors.target)
            _LITE_USERS[vectors.target] = _LITE_USERS.get(vectors.target, 0) + 1
            return client
        except MilvusException:
            raise LibraryBusy(
                f"{vectors}: cannot open this Milvus Lite folder: another process has it open (Milvus Lite "
                "serves one process; to share it, run `milvus-lite server --data-dir FOLDER --host 127.0.0.1 "
                "--port 19530` and "
                "use --vectors milvus://127.0.0.1:19530) or it is not writable") from None
        finally:
            quiet.level = level
    token = env_text("LOOKALIKE_MILVUS_TOKEN") or ""
    _accepts(vectors)
    try:
        # the first call must answer within CONNECT_TIMEOUT: a server busy flushing or building
        # an index on a loaded machine took over pymilvus's 10 s to answer its Connect (CI, 2 cores)
        # dedicated: a channel of this library's own, closed with it, never one another library
        # in this process left behind in a bad state
        return MilvusClient(uri=f"http://{vectors.target}", token=token, timeout=CONNECT_TIMEOUT,
                            grpc_options=GRPC_OPTIONS, dedicated=True)
    except MilvusException as err:
        raise VectorStoreUnavailable(f"{vectors}: cannot reach Milvus ({err.message}); is the server running, "
                                     "and LOOKALIKE_MILVUS_TOKEN set if it needs one?") from None


# Milvus Lite folders this process serves -> libraries using each: the last one to close
# stops the embedded server, which frees the folder for the next process
_LITE_USERS: dict[str, int] = {}


def disconnect(vectors: Vectors, client: MilvusClient) -> None:
    client.close()
    if vectors.kind is VectorsKind.milvus_lite:
        users = _LITE_USERS.get(vectors.target, 0) - 1
        if users <= 0:
            _LITE_USERS.pop(vectors.target, None)
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(vectors.target)
        else:
            _LITE_USERS[vectors.target] = users


REDUCTION_PROPERTY = "lookalike.reduction"


def collection_name(space_key: str, space_uid: str) -> str:
    """One collection per space and per library: Milvus names are letters, digits and ``_``;
    the space's uid keeps two libraries sharing one cluster apart."""
    safe = re.sub(r"[^0-9A-Za-z_]", "_", f"lookalike_{space_key}_{space_uid.replace('-', '')[:12]}")
    return safe[:255]


class MilvusIndex:
    """One space's collection as a :class:`lookalike.index.protocol.VectorIndex`.

    ``add`` and ``remove`` do not write what they are handed: they ask the backend to
    drain the outbox (:attr:`outbox`), which re-reads the rows from the database — one path for
    the writer, a resumed run and ``doctor --fix``."""

    kind = "milvus"

    def __init__(self, client: MilvusClient, name: str, space: str, dim: int, spec: MilvusSpec) -> None:
        self.client, self.name, self.dim, self.spec = client, name, int(dim), spec
        self.vector_source: FetchVectors | None = None
        self.outbox: Outbox | None = None  # set by the backend: what add and remove drain
        # filter a large allowed set by its expression rather than an id list: on a server
        # (C++ segments); Milvus Lite scans expressions in Python (21.9 s a query at 10 % of
        # 1M, against 1.3 s for the id list; bench/scale.py), so the backend leaves it off there
        self.filter_on_fields = False
        self.reduction = ""  # the uid of the PCA its vectors went through ("": full width)
        self.manifest = ServiceManifest(space, self.dim, spec.key, params=dict(spec.search))
        self._count: int | None = None

    # -- collection life ---------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.client.has_collection(self.name))

    def create(self) -> None:
        """The collection with its schema and vector index, loaded for search."""
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("person", DataType.INT64)
        schema.add_field("consent", DataType.INT8)
        schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=TAG_CAPACITY,
                         max_length=TEXT_LENGTH)
        schema.add_field("organisation", DataType.VARCHAR, max_length=TEXT_LENGTH)
        schema.add_field("role", DataType.VARCHAR, max_length=TEXT_LENGTH)
        # Strong: a count or id list sees every write acknowledged before it (Milvus's
        # default, Bounded, misses the last seconds); searches ask for SEARCH_CONSISTENCY
        # the PCA recorded with the collection: a reader follows a new one once the
        # collection made with it is there (lookalike.index.space_vectors.SpaceVectors.follows)
        self.client.create_collection(self.name, schema=schema, index_params=self._index_params(),
                                      consistency_level="Strong", properties={REDUCTION_PROPERTY: self.reduction})
        self.client.load_collection(self.name)
        self._count = 0

    def _index_params(self) -> Any:  # noqa: ANN401 - pymilvus's IndexParams, imported lazily
        params = self.client.prepare_index_params()
        params.add_index("vec", index_type=self.spec.index_type, metric_type="IP", params=dict(self.spec.build))
        return params

    def reindex(self, spec: MilvusSpec) -> None:
        """Replace the vector index (``index rebuild``, upkeep): release, drop, create, load."""
        self.client.release_collection(self.name)
        self.client.drop_index(self.name, "vec")
        self.spec = spec
        self.client.create_index(self.name, self._index_params())
        self.client.load_collection(self.name)
        self.manifest.index_key, self.manifest.params = spec.key, dict(spec.search)

    def load(self) -> None:
        """Into the query nodes' memory (Milvus searches only loaded collections; a new
        process finds it released)."""
        self.client.load_collection(self.name)

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.name)
        self._count = 0

    def describe(self) -> dict:
        return dict(self.client.describe_index(self.name, "vec") or {})

    # -- writes, from the outbox -------------------------------------------------------
    def upsert(self, ids: Sequence[int], vectors: np.ndarray, fields: dict[int, FilterFields]) -> None:
        """Replace or add these faces: what a drain of the outbox sends, where a face may
        already be in the collection (a replay after a crash, a profile change)."""
        self._write(self.client.upsert, ids, vectors, fields)

    def insert(self, ids: Sequence[int], vectors: np.ndarray, fields: dict[int, FilterFields]) -> None:
        """Add faces the collection cannot hold yet (a collection being built). Milvus does
        not enforce unique primary keys, so the caller must know; it is cheaper than
        :meth:`upsert` on a server: 2.3.5 records an upsert's delete of a new id as a
        deleted row, so each segment is compacted and indexed a second time."""
        self._write(self.client.insert, ids, vectors, fields)

    def _write(self, call: Callable[..., Any], ids: Sequence[int], vectors: np.ndarray,
               fields: dict[int, FilterFields]) -> None:
        rows = []
        for fid, vec in zip(ids, np.asarray(vectors, dtype=np.float32)):
            f = fields[int(fid)]
            rows.append({"id": int(fid), "vec": vec.tolist(), "person": f.person_id, "consent": f.consent,
                         "tags": [t[:TEXT_LENGTH] for t in f.tags[:TAG_CAPACITY]],
                         "organisation": f.organisation[:TEXT_LENGTH], "role": f.role[:TEXT_LENGTH]})
        for start in range(0, len(rows), WRITE_CHUNK):
            call(self.name, rows[start:start + WRITE_CHUNK])
        self._count = None

    def delete(self, ids: Sequence[int]) -> None:
        if len(ids):
            self.client.delete(self.name, ids=[int(i) for i in ids])
            self._count = None

    def compact(self, wait: float = 600.0) -> None:
        """Rewrite the segments without the deleted rows (their vectors leave the segment
        files; a server's object storage drops the old files at its garbage collection,
        ``dataCoord.gc``), waiting up to ``wait`` seconds for the job."""
        import time

        self.client.flush(self.name)
        job = self.client.compact(self.name)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            state = str(self.client.get_compaction_state(job))
            if "Completed" in state:
                return
            time.sleep(0.5)
        log.warning("milvus compaction %s of %s still running after %.0f s", job, self.name, wait)

    # -- VectorIndex ---------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Rows in the collection: asked once, then after every write (a count is cheap in
        Milvus, but every search page asks)."""
        if self._count is None:
            rows = self.client.query(self.name, filter="", output_fields=["count(*)"])
            self._count = int(rows[0]["count(*)"]) if rows else 0
        self.manifest.ntotal = self._count
        return self._count

    @property
    def tombstone_share(self) -> float:
        return 0.0

    def ids(self) -> np.ndarray:
        """Every primary key, paged (doctor compares them with the database's)."""
        out: list[int] = []
        # Milvus Lite has no server-side timestamp for iterators; pymilvus warns and uses its own
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        it = self.client.query_iterator(self.name, batch_size=10_000, filter="", output_fields=["id"])
        try:
            while True:
                page = it.next()
                if not page:
                    break
                out.extend(int(r["id"]) for r in page)
        finally:
            it.close()
        return np.sort(np.asarray(out, dtype=np.int64))

    def follow(self) -> None:
        """Send what the outbox holds (the database is the truth; the ids handed to
        ``add`` and ``remove`` are in it)."""
        if self.outbox is not None:
            self.outbox.drain(self)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.follow()

    def remove(self, ids: np.ndarray) -> int:
        self.follow()
        return len(ids)

    def save(self) -> None:
        """Flush: the rows leave Milvus's write-ahead log for sealed segments."""
        self.client.flush(self.name)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               filters: SearchFilters | None = None, excluded: np.ndarray | None = None,
               where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each ``(n_queries, k)``; missing slots have id -1. ``allowed``
        (face ids) and ``where`` (an expression over the filter fields, :func:`expression`)
        both filter inside Milvus, before the top k. A large ``allowed`` set that came with
        its ``filters`` is searched by their expression instead of an id list where
        ``filter_on_fields``, and the answers are checked against the ids
        (:meth:`_search_by_fields`)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        terms = [where] if where else []
        if allowed is not None:
            if not len(allowed):
                return sims, ids
            from .faiss_index import EXACT_SUBSET, exact_top_k

            if len(allowed) <= EXACT_SUBSET and self.vector_source is not None and not where:
                # as FAISS does: an HNSW walk under a selective filter loses recall (0.79 at 1 %
                # of 1M in Milvus Lite, bench/scale.py); a small allowed set is scored exactly
                allowed = np.asarray(allowed, dtype=np.int64)
                return exact_top_k(queries, allowed, self.vector_source(allowed), k)
            if filters is not None and self.filter_on_fields and not where:
                return self._search_by_fields(queries, k, np.asarray(allowed, dtype=np.int64), filters)
            terms.append(f"id in [{','.join(str(int(i)) for i in allowed)}]")
        elif excluded is not None and len(excluded):
            terms.append(f"id not in [{','.join(str(int(i)) for i in excluded)}]")
        limit = min(k, MAX_TOPK)
        if limit <= 0 or not len(queries):
            return sims, ids
        from pymilvus.exceptions import MilvusException

        try:
            hits = self.client.search(self.name, data=[q.tolist() for q in queries], limit=limit,
                                      filter=" and ".join(f"({t})" for t in terms),
                                      search_params={"metric_type": "IP", "params": dict(self.spec.search)},
                                      consistency_level=SEARCH_CONSISTENCY)
        except MilvusException as err:
            if "dimension" not in str(err).lower():
                raise
            raise IndexWidthChanged(f"Milvus collection {self.name}: no longer {self.dim}-d ({err})") from err
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:limit]):
                ids[row, col] = int(hit["id"])
                sims[row, col] = float(hit["distance"])
        return sims, ids

    def _search_by_fields(self, queries: np.ndarray, k: int, allowed: np.ndarray,
                          filters: SearchFilters) -> tuple[np.ndarray, np.ndarray]:
        """Filter on the scalar fields, then keep only answers the database allows. The
        fields follow SQL through the outbox, so for a moment after a profile changes they
        may lag: a query whose answers include a face no longer allowed, or that comes back
        short while more faces are allowed, is asked again with the id list."""
        where = expression(filters.groups, filters.person_ids, filters.audience)
        sims, ids = self.search(queries, k, where=where)
        allowed = np.sort(allowed)
        for row in range(len(queries)):
            found = ids[row][ids[row] >= 0]
            short = len(found) < min(k, len(allowed), MAX_TOPK)
            if short or not np.isin(found, allowed, assume_unique=True).all():
                log.info("%s: the filter fields disagree with the database for this query; "
                         "searching by the allowed ids", self.name)
                sims[row:row + 1], ids[row:row + 1] = self.search(queries[row:row + 1], k, allowed)
        return sims, ids


def is_milvus_lite(client: MilvusClient) -> bool:
    """Whether the server is Milvus Lite's (``milvus-lite server``: version "milvus_lite-…")."""
    return str(client.get_server_version()).startswith("milvus_lite")


def quote(value: str) -> str:
    """A string literal for a Milvus expression (backslashes and double quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def expression(groups: Sequence[tuple[GroupKey, str]], person_ids: Mapping[str, int], audience: Audience) -> str:
    """The Milvus filter for the search filters, as the database matches them
    (:func:`lookalike.store.person_rows.person_matches`): a tag exactly (normalised), an
    organisation or role whole and case-insensitively (stored lower-cased), a person by
    id (``person_ids``: name -> id; a name missing there matches nothing, not even the
    faces of no one, whose field is -1)."""
    from ..store.values import Audience, GroupKey, normalise_tag

    audience = Audience.of(audience)

    terms = []
    for key, value in groups:
        if key is GroupKey.tag:
            terms.append(f"array_contains(tags, {quote(normalise_tag(value))})")
        elif key in (GroupKey.organisation, GroupKey.role):
            terms.append(f"{key.value} == {quote(value.strip().lower())}")
        elif key is GroupKey.person:
            terms.append(f"person == {int(person_ids.get(value, -2))}")
        else:
            raise ValueError(f"no person group {key!r}")
    if audience is Audience.consented:
        terms.append("consent == 1")
    elif audience is Audience.visitor:
        terms.append("consent != 0")
    return " and ".join(terms)


if TYPE_CHECKING:  # mypy proves the class satisfies the protocol
    _satisfies: type[VectorIndex] = MilvusIndex
