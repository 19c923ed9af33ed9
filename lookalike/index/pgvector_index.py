"""The index on PostgreSQL: ``faces.vec`` (pgvector) searched in SQL, HNSW, cosine.

Vectors are written in the same INSERT as their face row, so the index can never drift
from the metadata: adding, removing and saving are no-ops here, a removed face's vector
goes with its row. Each embedding space gets a partial HNSW index on the expression
``vec::vector(dim)`` (one table holds every space; pgvector needs a fixed dimension per
index). Same interface as :class:`lookalike.index.faiss_index.FaissIndex`
(:class:`lookalike.index.protocol.VectorIndex`): ``ntotal``, ``ids()``,
``search(queries, k, allowed)``, ``add``/``remove``/``save`` (which only keep the count).

pgvector's HNSW takes at most 2,000 dimensions; wider spaces are searched exactly (a
sequential scan) until a reduction is stored for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine, bindparam, text

from ..store.db import EF_SEARCH
from .protocol import FetchVectors, VectorIndex

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

HNSW_MAX_DIM = 2000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


@dataclass
class PgManifest:
    """What ``index info`` shows; mirrors the fields of the FAISS manifest it uses."""

    space: str
    dim: int
    index_key: str
    ntotal: int = 0
    params: dict = field(default_factory=dict)
    tombstones: list = field(default_factory=list)  # never any: rows are deleted for real
    pinned: bool = False


class PgVectorIndex:
    """One space's ``faces.vec`` rows as a :class:`lookalike.index.protocol.VectorIndex`."""

    kind = "pgvector"

    def __init__(self, engine: Engine, space: str, space_id: int, dim: int, reduced: bool = False) -> None:
        self.engine, self.space_id, self.dim, self.reduced = engine, int(space_id), int(dim), reduced
        self.hnsw = dim <= HNSW_MAX_DIM
        self.vector_source: FetchVectors | None = None
        self._count: int | None = None
        self._expr = f"vec::vector({self.dim})"
        key = (f"pgvector HNSW (m={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}), cosine" if self.hnsw
               else "pgvector exact scan, cosine")
        self.manifest = PgManifest(space, self.dim, key, params={"hnsw.ef_search": EF_SEARCH} if self.hnsw else {})
        if self.hnsw:
            self.ensure_index()

    @property
    def index_name(self) -> str:
        """One per space, and per reduction width (a retrained PCA may change it)."""
        return f"faces_vec_hnsw_{self.space_id}" + (f"_r{self.dim}" if self.reduced else "")

    @staticmethod
    def drop_indexes(session: Session, space_id: int) -> None:
        """Drop every HNSW index of a space (before its vectors change width)."""
        names = session.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'faces' "
                                     "AND indexname ~ :pattern"),
                                {"pattern": f"^faces_vec_hnsw_{int(space_id)}(_r[0-9]+)?$"}).scalars().all()
        for name in names:
            session.execute(text(f'DROP INDEX IF EXISTS "{name}"'))

    @staticmethod
    def write_vectors(session_or_conn: Session | Connection, ids: np.ndarray, vectors: np.ndarray) -> None:
        """``faces.vec`` of ``ids`` := ``vectors`` (one statement, many rows)."""
        from pgvector.sqlalchemy import Vector

        sql = text("UPDATE faces SET vec = :v WHERE id = :i").bindparams(bindparam("v", type_=Vector()))
        session_or_conn.execute(sql, [{"v": np.asarray(v, dtype=np.float32), "i": int(i)}
                                      for i, v in zip(ids, vectors)])

    def ensure_index(self) -> None:
        """The space's HNSW index, created once (an empty index costs nothing)."""
        with self.engine.begin() as conn:
            conn.execute(text(
                f"CREATE INDEX IF NOT EXISTS {self.index_name} ON faces USING hnsw (({self._expr}) "
                f"vector_cosine_ops) WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
                f"WHERE space_id = {self.space_id}"))

    def rebuild(self) -> None:
        if self.hnsw:
            with self.engine.begin() as conn:
                conn.execute(text(f"REINDEX INDEX {self.index_name}"))

    @property
    def ntotal(self) -> int:
        """Faces with a vector: counted once (a COUNT over millions of rows must not run on
        every search), then kept up to date by this library's own adds and removals.
        Searches themselves always see the live table."""
        if self._count is None:
            with self.engine.connect() as conn:
                self._count = int(conn.execute(
                    text("SELECT count(*) FROM faces WHERE space_id = :s AND vec IS NOT NULL"),
                    {"s": self.space_id}).scalar_one())
        self.manifest.ntotal = self._count
        return self._count

    def ids(self) -> np.ndarray:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT id FROM faces WHERE space_id = :s AND vec IS NOT NULL ORDER BY id"),
                                {"s": self.space_id}).scalars().all()
        return np.asarray(rows, dtype=np.int64)

    def missing(self) -> np.ndarray:
        """Faces whose vector column is empty (stored before pgvector was there)."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT id FROM faces WHERE space_id = :s AND vec IS NULL ORDER BY id"),
                                {"s": self.space_id}).scalars().all()
        return np.asarray(rows, dtype=np.int64)

    @property
    def tombstone_share(self) -> float:
        return 0.0

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each ``(n_queries, k)``; missing slots have id -1.

        Unfiltered queries walk the HNSW graph; with ``allowed`` the candidates are the
        allowed rows, scored exactly (a graph walk under a selective filter loses recall),
        which the ``+ 0`` keeps the planner from replacing by an index scan."""
        from pgvector.sqlalchemy import Vector

        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        where = "space_id = :s AND vec IS NOT NULL"
        order = f"{self._expr} <=> :q"
        params: dict = {"s": self.space_id, "k": int(k)}
        if allowed is not None:
            where += " AND id = ANY(:allowed)"
            order = f"({order}) + 0"
            params["allowed"] = [int(i) for i in allowed]
        sql = text(f"SELECT id, 1 - ({self._expr} <=> :q) AS sim FROM faces WHERE {where} "
                   f"ORDER BY {order} LIMIT :k").bindparams(bindparam("q", type_=Vector(self.dim)))
        # autocommit: a read needs no BEGIN/ROLLBACK round trips; ef_search is set once per
        # connection (lookalike.store.db), here only when k asks for a wider search
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if self.hnsw and k > EF_SEARCH:
                conn.execute(text(f"SET hnsw.ef_search = {int(k)}"))
            for row, query in enumerate(queries):
                found = conn.execute(sql, params | {"q": query}).all()
                for col, (fid, sim) in enumerate(found):
                    ids[row, col], sims[row, col] = fid, sim
            if self.hnsw and k > EF_SEARCH:
                conn.execute(text(f"SET hnsw.ef_search = {EF_SEARCH}"))
        return sims, ids

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
        done = 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            with self.engine.begin() as conn:
                self.write_vectors(conn, chunk, fetch_vectors(chunk))
            done += len(chunk)
        self._count = None
        return done


if TYPE_CHECKING:  # mypy proves the class satisfies the protocol
    _satisfies: type[VectorIndex] = PgVectorIndex
