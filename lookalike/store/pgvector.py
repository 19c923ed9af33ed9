"""The pgvector SQL: ``faces.vec``, its per-space HNSW indexes, the nearest-neighbour query.

What :class:`lookalike.index.pgvector_index.PgVectorIndex` and the pgvector backend
(:mod:`lookalike.index.backends`) ask of PostgreSQL, in one place. Each embedding space
has a partial HNSW index on the expression ``vec::vector(dim)`` (:func:`hnsw_index_name`);
``pgvector.sqlalchemy`` is imported only where a vector is bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.exc import DataError

from ..errors import IndexWidthChanged
from .db import EF_SEARCH

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session


def hnsw_index_name(space_id: int, dim: int, reduced: bool) -> str:
    """The name of a space's HNSW index: one per space, and per reduction width (a
    retrained PCA may change it); :func:`drop_hnsw_indexes` matches every such name."""
    return f"faces_vec_hnsw_{int(space_id)}" + (f"_r{int(dim)}" if reduced else "")


def _vec(dim: int) -> str:
    """The indexed expression: ``faces.vec`` as a vector of the space's width."""
    return f"vec::vector({int(dim)})"


def _hnsw_indexes(conn: Session | Connection, space_id: int) -> list[str]:
    """The names of a space's HNSW indexes (any reduction width), read from the catalog."""
    return list(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'faces' "
                                  "AND indexname ~ :pattern"),
                             {"pattern": f"^faces_vec_hnsw_{int(space_id)}(_r[0-9]+)?$"}).scalars().all())


def drop_hnsw_indexes(session: Session, space_id: int) -> None:
    """Drop every HNSW index of a space (any reduction width), in the session's transaction.
    A ``DROP INDEX`` locks the whole table until that transaction ends (every read of
    ``faces`` waits): none is run when there is no index to drop."""
    for name in _hnsw_indexes(session, space_id):
        session.execute(text(f'DROP INDEX IF EXISTS "{name}"'))


def drop_hnsw_indexes_concurrently(engine: Engine, space_id: int) -> None:
    """Drop every HNSW index of a space without locking out readers (``DROP INDEX
    CONCURRENTLY``, each committed at once): before a new PCA rewrites the vectors, so that
    searches go on, as exact scans, for as long as that transaction runs. Dropped inside it,
    the indexes had held every read of ``faces`` for the whole rewrite."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in _hnsw_indexes(conn, space_id):
            conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))


def write_vectors(session_or_conn: Session | Connection, ids: np.ndarray, vectors: np.ndarray) -> None:
    """``faces.vec`` of ``ids`` := ``vectors`` (one statement, many rows), in the caller's transaction."""
    from pgvector.sqlalchemy import Vector

    sql = text("UPDATE faces SET vec = :v WHERE id = :i").bindparams(bindparam("v", type_=Vector()))
    session_or_conn.execute(sql, [{"v": np.asarray(v, dtype=np.float32), "i": int(i)}
                                  for i, v in zip(ids, vectors)])


def fill_vectors(engine: Engine, ids: np.ndarray, fetch_vectors: Callable[[np.ndarray], np.ndarray],
                 chunk: int = 1000) -> int:
    """Write ``faces.vec`` of ``ids`` from ``fetch_vectors``, ``chunk`` rows per transaction
    (each fetched inside its own transaction); returns how many rows were written."""
    done = 0
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        with engine.begin() as conn:
            write_vectors(conn, part, fetch_vectors(part))
        done += len(part)
    return done


def create_hnsw_index(engine: Engine, name: str, space_id: int, dim: int, m: int, ef_construction: int) -> None:
    """``CREATE INDEX IF NOT EXISTS name``: HNSW, cosine, on ``vec::vector(dim)`` of the
    space's rows only (committed at once). Asked of the catalog first: even a CREATE that
    finds its index takes a lock on ``faces`` that waits for every open write (an open of
    the library waited out a PCA's whole rewrite)."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one():
            return
    with engine.begin() as conn:
        conn.execute(text(
            f"CREATE INDEX IF NOT EXISTS {name} ON faces USING hnsw (({_vec(dim)}) "
            f"vector_cosine_ops) WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) "
            f"WHERE space_id = {int(space_id)}"))


def reindex(engine: Engine, name: str) -> None:
    """``REINDEX INDEX name`` (committed at once)."""
    with engine.begin() as conn:
        conn.execute(text(f"REINDEX INDEX {name}"))


def relation_size(engine: Engine, name: str) -> int:
    """Bytes on disk of the relation (index) ``name``; 0 when there is none."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(pg_relation_size(to_regclass(:n)), 0)"),
                                {"n": name}).scalar_one())


def vector_count(engine: Engine, space_id: int) -> int:
    """How many of the space's faces have a vector (a COUNT over the table)."""
    with engine.connect() as conn:
        return int(conn.execute(
            text("SELECT count(*) FROM faces WHERE space_id = :s AND vec IS NOT NULL"),
            {"s": int(space_id)}).scalar_one())


def ids_with_vector(engine: Engine, space_id: int) -> np.ndarray:
    """Ids (int64, ascending) of the space's faces that have a vector."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM faces WHERE space_id = :s AND vec IS NOT NULL ORDER BY id"),
                            {"s": int(space_id)}).scalars().all()
    return np.asarray(rows, dtype=np.int64)


def ids_without_vector(engine: Engine, space_id: int) -> np.ndarray:
    """Ids (int64, ascending) of the space's faces whose vector column is empty."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM faces WHERE space_id = :s AND vec IS NULL ORDER BY id"),
                            {"s": int(space_id)}).scalars().all()
    return np.asarray(rows, dtype=np.int64)


def nearest(engine: Engine, space_id: int, dim: int, queries: np.ndarray, k: int,
            allowed: np.ndarray | None = None, excluded: np.ndarray | None = None,
            hnsw: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(similarities float32, ids int64), each ``(len(queries), k)``, of the space's faces
    nearest each row of ``queries`` (``(n, dim)`` float32) by cosine; missing slots have
    similarity -inf and id -1.

    Unfiltered queries walk the HNSW graph; with ``allowed`` the candidates are the allowed
    rows, scored exactly (a graph walk under a selective filter loses recall), which the
    ``+ 0`` keeps the planner from replacing by an index scan; ``excluded`` rows are left
    out of a graph walk (a few: the walk keeps its recall). With ``hnsw`` and ``k``
    above :data:`EF_SEARCH`, ``hnsw.ef_search`` is raised to ``k`` for these queries and
    put back after."""
    from pgvector.sqlalchemy import Vector

    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    expr = _vec(dim)
    where = "space_id = :s AND vec IS NOT NULL"
    order = f"{expr} <=> :q"
    params: dict = {"s": int(space_id), "k": int(k)}
    if allowed is not None:
        where += " AND id = ANY(:allowed)"
        order = f"({order}) + 0"
        params["allowed"] = [int(i) for i in allowed]
    elif excluded is not None and len(excluded):
        where += " AND NOT (id = ANY(:excluded))"
        params["excluded"] = [int(i) for i in excluded]
    sql = text(f"SELECT id, 1 - ({expr} <=> :q) AS sim FROM faces WHERE {where} "
               f"ORDER BY {order} LIMIT :k").bindparams(bindparam("q", type_=Vector(int(dim))))
    # autocommit: a read needs no BEGIN/ROLLBACK round trips; ef_search is set once per
    # connection (lookalike.store.db), here only when k asks for a wider search
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        wide = hnsw and k > EF_SEARCH
        if wide:
            conn.execute(text(f"SET hnsw.ef_search = {int(k)}"))
        try:
            for row, query in enumerate(queries):
                try:
                    found = conn.execute(sql, params | {"q": query}).all()
                except DataError as err:
                    if "dimensions" not in str(err.orig):
                        raise
                    raise IndexWidthChanged(f"space {space_id}: the stored vectors are no longer {dim}-d "
                                            f"({str(err.orig).splitlines()[0]})") from err
                for col, (fid, sim) in enumerate(found):
                    ids[row, col], sims[row, col] = fid, sim
        finally:  # the pooled connection goes back with the usual search width, also after an error
            if wide:
                conn.execute(text(f"SET hnsw.ef_search = {EF_SEARCH}"))
    return sims, ids

