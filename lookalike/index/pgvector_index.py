"""The index on PostgreSQL: ``faces.vec`` (pgvector) searched in SQL, HNSW, cosine.

Vectors are written in the same INSERT as their face row, so the index can never drift
from the metadata: adding, removing and saving are no-ops here, a removed face's vector
goes with its row. Each embedding space gets a partial HNSW index on the expression
``vec::vector(dim)`` (one table holds every space; pgvector needs a fixed dimension per
index). Same interface as :class:`lookalike.index.faiss_index.FaissIndex`
(:class:`lookalike.index.protocol.VectorIndex`): ``ntotal``, ``ids()``,
``search(queries, k, allowed)``, ``add``/``remove``/``save`` (which only keep the count).

pgvector's HNSW takes at most 2,000 dimensions; wider spaces are searched exactly (a
sequential scan) until a reduction is stored for them. Every SQL statement it runs is
:mod:`lookalike.store.pgvector`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..store import pgvector
from ..store.db import EF_SEARCH
from .protocol import FetchVectors, SearchFilters, ServiceManifest, VectorIndex

if TYPE_CHECKING:
    from sqlalchemy import Engine

HNSW_MAX_DIM = 2000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


class PgVectorIndex:
    """One space's ``faces.vec`` rows as a :class:`lookalike.index.protocol.VectorIndex`."""

    kind = "pgvector"

    def __init__(self, engine: Engine, space: str, space_id: int, dim: int, reduced: bool = False) -> None:
        self.engine, self.space_id, self.dim, self.reduced = engine, int(space_id), int(dim), reduced
        self.hnsw = dim <= HNSW_MAX_DIM
        self.vector_source: FetchVectors | None = None
        self.filter_on_fields = False  # the allowed ids are all it filters by
        self._count: int | None = None
        key = (f"pgvector HNSW (m={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}), cosine" if self.hnsw
               else "pgvector exact scan, cosine")
        self.manifest = ServiceManifest(space, self.dim, key, params={"hnsw.ef_search": EF_SEARCH} if self.hnsw else {})
        if self.hnsw:
            self.ensure_index()

    @property
    def index_name(self) -> str:
        """One per space, and per reduction width (a retrained PCA may change it)."""
        return pgvector.hnsw_index_name(self.space_id, self.dim, self.reduced)

    def ensure_index(self) -> None:
        """The space's HNSW index, created once (an empty index costs nothing)."""
        pgvector.create_hnsw_index(self.engine, self.index_name, self.space_id, self.dim, HNSW_M,
                                   HNSW_EF_CONSTRUCTION)

    def rebuild(self) -> None:
        if self.hnsw:
            pgvector.reindex(self.engine, self.index_name)

    @property
    def ntotal(self) -> int:
        """Faces with a vector: counted once (a COUNT over millions of rows must not run on
        every search), then kept up to date by this library's own adds and removals.
        Searches themselves always see the live table."""
        if self._count is None:
            self._count = pgvector.vector_count(self.engine, self.space_id)
        self.manifest.ntotal = self._count
        return self._count

    def ids(self) -> np.ndarray:
        return pgvector.ids_with_vector(self.engine, self.space_id)

    def missing(self) -> np.ndarray:
        """Faces whose vector column is empty (stored before pgvector was there)."""
        return pgvector.ids_without_vector(self.engine, self.space_id)

    @property
    def tombstone_share(self) -> float:
        return 0.0

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               filters: SearchFilters | None = None,
               excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each ``(n_queries, k)``; missing slots have id -1.

        Unfiltered queries walk the HNSW graph; with ``allowed`` the candidates are the
        allowed rows, scored exactly (a graph walk under a selective filter loses recall),
        which the ``+ 0`` keeps the planner from replacing by an index scan."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        return pgvector.nearest(self.engine, self.space_id, self.dim, queries, k, allowed, excluded, hnsw=self.hnsw)

    # the rows are the index: nothing to add, remove or save separately; only the count follows
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._count is not None:
            self._count += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        if self._count is not None:
            self._count = max(0, self._count - len(ids))
        return 0

    def save(self) -> None:
        return None

    def fill(self, ids: np.ndarray, fetch_vectors: FetchVectors) -> int:
        """Write the vector column of ``ids`` from their embedding blobs (doctor --fix)."""
        done = pgvector.fill_vectors(self.engine, ids, fetch_vectors, chunk=1000)
        self._count = None
        return done


if TYPE_CHECKING:  # mypy proves the class satisfies the protocol
    _satisfies: type[VectorIndex] = PgVectorIndex
