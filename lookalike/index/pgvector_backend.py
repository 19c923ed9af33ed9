"""PostgreSQL + pgvector: the vectors live in ``faces.vec``, written with their rows and
searched in SQL; any number of writers on any number of machines (ingest goes through the
work queue, :mod:`lookalike.store.queue`)."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ..errors import ConfigError
from ..store import db, pgvector, photo_rows
from .backend import DoctorReport, Repair, VectorBackend, own_index
from .protocol import VectorIndex

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from .pgvector_index import PgVectorIndex
    from .reduction import Reduction
    from .space_store import IndexSlot, SpaceStore


class PgVectorBackend(VectorBackend):
    name = "pgvector"
    vectors_in_db = True
    queued_ingest = True
    metric = "cosine (pgvector <=>)"

    @staticmethod
    def _index(store: SpaceStore) -> PgVectorIndex:
        """The space's index as the database holds it: no missing vector written (its HNSW
        index is made if there is none, as every open does)."""
        from .pgvector_index import PgVectorIndex

        index = PgVectorIndex(store.engine, store.space.key, store.existing_space_id(), store.dim,
                              reduced=store.reduction is not None)
        index.vector_source = store.index_vectors
        return index

    def open_index(self, store: SpaceStore) -> PgVectorIndex:
        """The space's index, the vectors of faces stored without one written first."""
        index = self._index(store)
        if len(missing := index.missing()):  # an index scan of the empty partial index (0013)
            # faces stored while the vectors were in Milvus: searched without them, every
            # answer missed them in silence (scale user test, F6)
            log.warning("%s: writing the vectors of %d faces into faces.vec (a library copied here, or faces "
                        "stored while its vectors were in Milvus)", store.space.key, len(missing))
            try:
                index.fill(missing, store.index_vectors)
            except SQLAlchemyError:  # a role that may only read: searched as it is, and said
                log.warning("%s: the missing vectors could not be written; searches miss those faces until "
                            "lookalike doctor --fix runs with a role that may write", store.space.key, exc_info=True)
        return index

    def writers(self, store: SpaceStore) -> AbstractContextManager[None]:
        return nullcontext()  # transactions and row locks keep any number of writers apart

    @staticmethod
    def own(index: VectorIndex) -> PgVectorIndex:
        """The :class:`PgVectorIndex` under ``index`` (reduced or not)."""
        from .pgvector_index import PgVectorIndex

        return own_index(index, PgVectorIndex)

    def info(self, store: SpaceStore, index: VectorIndex) -> dict:
        index = self.own(index)
        size = pgvector.relation_size(store.engine, index.index_name)
        return {"space": store.space.key, "index_key": index.manifest.index_key, "params": index.manifest.params,
                "pinned": False, "ntotal": index.ntotal, "dim": index.dim, "tombstones": 0, "tombstone_share": 0.0,
                "file": f"PostgreSQL index {index.index_name} on faces.vec", "bytes": int(size),
                "rules_choose": index.manifest.index_key,
                "rules_reason": "on PostgreSQL the vectors live in faces.vec and are searched in SQL",
                "rebuild_advised": False, "upkeep": "none: PostgreSQL maintains its own index"}

    def check_rebuild(self, key: str | None, dim: int) -> None:
        if key is not None:
            raise ConfigError("--key names a FAISS index type; on PostgreSQL the index is pgvector's HNSW "
                              "(rebuild without --key to REINDEX it)")

    def rebuild(self, store: SpaceStore, current: IndexSlot, key: str | None, reduced: bool) -> None:
        if reduced:
            self.own(current.get()).ensure_index()  # the HNSW index of the new width, built once
            return
        self.own(current.get()).rebuild()

    def upkeep(self, store: SpaceStore, current: IndexSlot) -> str | None:
        return None  # PostgreSQL maintains its HNSW index as rows come and go

    def drop_space(self, store: SpaceStore, session: Session, key: str, space_id: int) -> None:
        pgvector.drop_hnsw_indexes(session, space_id)

    def erase(self, store: SpaceStore, current: IndexSlot) -> None:
        """VACUUM: dead rows and their HNSW entries are cleared for reuse (PostgreSQL does
        not overwrite them at once; ``VACUUM FULL faces`` rewrites the table when the bytes
        themselves must go)."""
        db.scrub(store.engine)

    def ready_for(self, store: SpaceStore, reduction: str | None) -> bool:
        return True  # faces.vec is reduced in the transaction that stores the PCA

    def reduction_coming(self, store: SpaceStore) -> None:
        """The space's HNSW indexes dropped without locking out readers: their expression is
        the old width, which the rewritten vectors no longer fit. Searches meanwhile scan."""
        pgvector.drop_hnsw_indexes_concurrently(store.engine, store.existing_space_id())

    def reduction_stored(self, store: SpaceStore, session: Session, space_id: int, red: Reduction) -> None:
        """Every ``faces.vec`` of the space rewritten through the new PCA (the next open
        builds the new width's HNSW index); an index made again since
        :meth:`reduction_coming` (a process opening the library) is dropped here, in the
        transaction. The reductions table is locked exclusively, so no writer adds a face
        until this commits; readers go on."""
        pgvector.drop_hnsw_indexes(session, space_id)
        ids = photo_rows.face_ids(session, space_id)
        dim = store.space.dim
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            pgvector.write_vectors(session, chunk, red.apply(photo_rows.vectors(session, chunk, dim)))

    def check(self, store: SpaceStore, current: IndexSlot, want: np.ndarray) -> tuple[DoctorReport, Repair | None]:
        """No file to drift; only rows stored without a vector lack one (a library copied
        here, faces stored while the vectors were in Milvus). Read as the database holds
        them, not through an open (which writes them first: the check would never see them)."""
        n = len(want)
        index = self._index(store)
        missing = index.missing()

        def fill() -> int:
            index.fill(missing, store.index_vectors)
            return n

        return DoctorReport(store.space.key, n, n - len(missing), len(missing), 0), fill
