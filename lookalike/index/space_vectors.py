"""One embedding space's row and vectors, kept for the view that composes them.

:class:`SpaceRow` is the space's row id, read once; :class:`SpaceVectors` is where its
vectors are kept and searched: the open index (:class:`~lookalike.index.space_store.IndexSlot`),
the stored PCA, the backend's writers and its database vector column. Both live here, at
the index layer, so what a stage asks of a space's vectors (an ingest's pgvector column,
a search following a PCA another process stored) is answered by the layer that owns it,
not by the view above (architecture review 56, H2 and M1). The view
(:class:`lookalike.verbs.space.SpaceView`) holds one of each, beside its models and facts.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..store import photo_rows, space_rows
from .space_store import IndexSlot, SpaceStore, missing_space

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ..config import Settings
    from ..store.schema import Space as SpaceRecord
    from .backend import VectorBackend
    from .protocol import SpaceName, VectorIndex
    from .reduction import Reduction


class SpaceRow:
    """The database row of one embedding space: its id, read once, and made by the first
    ingest (:meth:`ensure_space`)."""

    def __init__(self, settings: Settings, sessions: sessionmaker, space: SpaceName,
                 space_id: int | None = None) -> None:
        self.settings, self.space, self.sessions = settings, space, sessions
        self._space_id = space_id

    def session(self) -> AbstractContextManager[Session]:
        return self.sessions()

    @property
    def known_id(self) -> int | None:
        """The row id if the library has the row (read until it has), else ``None``."""
        if self._space_id is None:
            with self.session() as session:
                self._read(session)
        return self._space_id

    @property
    def space_id(self) -> int:
        """The row id (read once); a clear error when the library does not hold the space
        (:meth:`ensure_space` makes the row)."""
        return self._space_id if self._space_id is not None else self.existing_space_id()

    def ensure_space(self) -> int:
        """The row id, the row made now if the library has none: before an ingest opens the
        index, or a calibration is stored for a library with no faces yet."""
        if self._space_id is not None:
            return self._space_id
        with self.session() as session:
            row = self._read(session)
            if row is None:
                row = space_rows.create_space(session, self.space.key, self.space.model,
                                              self.space.detector, self.space.aligner, self.space.dim)
                session.commit()
                self._space_id = row.id
            return row.id

    def face_count(self) -> int:
        """How many faces the space holds, counted in the database: no index is opened (it
        may be refreshed only under the library's lock, and a Milvus Lite folder serves one
        process), so a page or a shell may ask at any time. EmptyLibrary without a row."""
        space_id = self.existing_space_id()
        with self.session() as session:
            return photo_rows.face_count_and_max(session, space_id)[0]

    def existing_space_id(self) -> int:
        """The row id, read now; explains what the library holds instead."""
        with self.session() as session:
            row = self._read(session)
            if row is None:
                raise missing_space(session, self.settings, self.space.key)
        return row.id

    def _read(self, session: Session) -> SpaceRecord | None:
        """The space's row as the database has it now, its id kept when there is one."""
        row = space_rows.get_space(session, self.space.key)
        if row is not None:
            self._space_id = row.id
        return row


class SpaceVectors:
    """Where one space's vectors are kept and searched: its backend's open index, kept
    until a write or another process makes it stale, and the stored PCA it was opened with."""

    def __init__(self, row: SpaceRow, engine: Engine, backend: VectorBackend, revision: str) -> None:
        self.row, self.engine, self.backend, self.revision = row, engine, backend, revision
        self._slot: IndexSlot | None = None  # see index_slot
        self._slot_lock = threading.RLock()
        self._reduction: Reduction | None | bool = False  # False: not read yet

    @property
    def in_db(self) -> bool:
        """PostgreSQL keeps and searches the vectors itself (pgvector); elsewhere a FAISS file
        or a Milvus collection does."""
        return self.backend.vectors_in_db

    @property
    def reduction(self) -> Reduction | None:
        """The space's stored PCA (:mod:`lookalike.index.reduction`), or None: wide vectors
        only, once the corpus is large enough."""
        held = self._reduction  # once: another thread may drop it meanwhile (index_slot, follows)
        if held is False:
            from . import reduction

            space_id = self.row.known_id
            if space_id is None:
                return None
            with self.row.session() as session:
                held = self._reduction = reduction.load(session, space_id)
        assert not isinstance(held, bool)
        return held

    def store(self) -> SpaceStore:
        """The space as a backend is handed it: values (:class:`~lookalike.index.space_store.SpaceStore`),
        made afresh for each operation, so no backend, index or outbox holds this object."""
        space_id = self.row.known_id
        return SpaceStore(self.row.settings, self.engine, self.row.sessions, self.revision, self.row.space,
                          space_id, self.reduction)

    def index_slot(self) -> IndexSlot:
        """The space's open index, opened on first use and kept (:class:`IndexSlot`): made
        again when the space row or PCA has changed since (the store it opens with holds
        both) or another process saved a newer index (FAISS: its PCA may be new too, read
        again), and never kept while the library had no row for the space (another process
        may ingest the first faces meanwhile: the next use must see them). One thread makes
        it at a time (the web app's sessions share it)."""
        with self._slot_lock:
            slot = self._slot
            if slot is not None and slot.opened is not None and self.backend.changed(slot.opened):
                self._reduction, slot = False, None  # a newer file: its PCA is read again with it
            red = self.reduction  # first: reading it may find the space's row
            space_id = self.row.known_id
            if slot is None or slot.store.space_id is None or slot.store.space_id != space_id \
                    or slot.store.reduction is not red:
                slot = IndexSlot(self.backend, self.store())
            self._slot = slot
            return slot

    @property
    def index(self) -> VectorIndex:
        """The space's index (:mod:`lookalike.index.backends`): a FAISS file topped up from the
        database, a pgvector column or a Milvus collection; wrapped to re-rank on full vectors
        when the space is reduced (:class:`lookalike.index.reduction.ReducedIndex`)."""
        return self.index_slot().get()

    def follows(self, stored: str | None) -> bool:
        """Whether the PCA held is still the one to search with: ``stored`` is the uid of
        the space's stored PCA when an answer's rows were read (None: none). Another one is
        followed once the vectors searched are reduced with it (the backend's
        :meth:`~lookalike.index.backend.VectorBackend.ready_for`: pgvector in the PCA's own
        transaction, a Milvus collection once made again; a FAISS file by its manifest,
        :meth:`index_slot`): the index and PCA are dropped and ``False`` says search again."""
        return self._follow(stored, lambda: self.backend.ready_for(self.store(), stored))

    def refollow(self) -> bool:
        """After a query the stored vectors were no longer as wide as: whether the space's
        stored PCA is another than the one held (then dropped, the caller searches again);
        ``False``: nothing stored explains the width."""
        with self.row.session() as session:
            stored = space_rows.reduction_uid(session, self.row.space_id)
        return not self._follow(stored, lambda: True)

    def _follow(self, stored: str | None, ready: Callable[[], bool]) -> bool:
        """``True`` while the PCA held is ``stored`` or the store is not ``ready`` for it (it
        still holds what the held PCA made); else the index and PCA dropped, ``False``."""
        with self._slot_lock:
            held = self.reduction
            if stored == (held.uid if held is not None else None) or not ready():
                return True
            self._reduction, self._slot = False, None
            return False

    def forget_index(self) -> None:
        """Drop the open index: the next use opens it afresh (after a write or a rebuild)."""
        if self._slot is not None:
            self._slot.forget()

    def adopt_reduction(self, red: Reduction) -> None:
        """A PCA just stored (:meth:`lookalike.verbs.maintenance.IndexMaintenance.train_reduction`):
        kept, and the open index dropped, its width is the old one."""
        self._reduction, self._slot = red, None

    def writers(self) -> AbstractContextManager[None]:
        """The exclusion an ingest or removal needs: SQLite + FAISS files have one writer
        (:func:`lookalike.store.locks.write_lock`); PostgreSQL takes any number, its
        transactions and row locks keep them apart (:mod:`lookalike.store.queue`)."""
        return self.backend.writers(self.store())

    def db_vector_writer(self, session: Session) -> Callable[[np.ndarray], np.ndarray] | None:
        """What goes into ``faces.vec`` for a new face: on PostgreSQL the vector itself, or
        its reduction when the space has one (read under a share lock, so a retraining in
        another transaction can never leave a face reduced the old way); elsewhere nothing."""
        if not self.in_db:
            return None
        from . import reduction

        stored = reduction.load(session, self.row.space_id, lock=True)
        return stored.apply_one if stored is not None else (lambda v: v)

    def after_commit(self) -> None:
        """A write was committed (a queue worker's batch): a vector store outside the
        database follows it now (the Milvus outbox); the others have nothing to do."""
        self.backend.after_commit(self.store(), self.index_slot())

    def stored(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored full-width vectors of face ``ids``, in that order (the store's read)."""
        return self.store().vectors(ids)
