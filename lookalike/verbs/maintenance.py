"""Index maintenance: one service above the backends.

Rebuilding an index, the upkeep after ingest and removal, training a PCA reduction,
reconciling an index with the database (``doctor``) and erasing removed rows from a
store's files all happen here, on one embedding space's vectors (the view's part
:class:`lookalike.index.space_vectors.SpaceVectors`: nothing else of the view is needed).
The backends (:mod:`lookalike.index.backends`) are adapters: they are handed the space's
store and its open index, do one thing to one kind of index and return; they never train,
never decide when to rebuild, never touch the open index kept. This service does, in one
order for every kind: take the writers' lock, retrain when asked, let the backend make its
index again, forget the open index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..index import reduction
from ..store import photo_rows

if TYPE_CHECKING:
    from ..index.backend import DoctorReport
    from ..index.space_vectors import SpaceVectors


class IndexMaintenance:
    """The index upkeep of one embedding space."""

    def __init__(self, vectors: SpaceVectors) -> None:
        self.vectors = vectors
        self.backend = vectors.backend

    def info(self) -> dict:
        """The index in use, what the choice rules would pick now, its upkeep state and the
        space's reduction."""
        return self.backend.info(self.vectors.store(), self.vectors.index) | {"reduction": self._reduction_info()}

    def _reduction_info(self) -> dict:
        vectors, row = self.vectors, self.vectors.row
        red = vectors.reduction
        out = red.describe() if red is not None else {"kind": None}
        out["plan"] = reduction.plan(row.space.dim, row.face_count(), red).reason
        return out

    def rebuild(self, key: str | None = None, reduce: int | None = None) -> dict:
        """Rebuild the space's index from the database vectors, with ``key`` (pinned: upkeep
        keeps it from then on) or the rules' choice for the current size; drops tombstones.
        ``reduce`` first trains a PCA to that many dimensions on the stored faces, now."""
        self.backend.check_rebuild(key, reduce or self.vectors.store().dim)
        with self.backend.writers(self.vectors.store()):
            if reduce is not None:
                self.train_reduction(reduce)
            self.backend.rebuild(self.vectors.store(), self.vectors.index_slot(), key, reduced=reduce is not None)
            self.vectors.forget_index()
        return self.info()

    def train_reduction(self, dim_out: int) -> None:
        """Fit a PCA to a sample of the space's faces and store it; the backend makes the
        stored vectors follow in the same transaction (PostgreSQL) or rebuilds its file
        afterwards (the caller, holding the write lock)."""
        vectors, row = self.vectors, self.vectors.row
        space_id = row.existing_space_id()
        with row.session() as session:
            ids = photo_rows.face_ids(session, space_id)
        sample = ids if len(ids) <= reduction.TRAIN_SAMPLE else np.sort(
            np.random.default_rng(0).choice(ids, reduction.TRAIN_SAMPLE, replace=False))
        red = reduction.train(vectors.stored(sample), dim_out)
        self.backend.reduction_coming(vectors.store())
        with row.session() as session:
            reduction.store(session, space_id, red)
            self.backend.reduction_stored(vectors.store(), session, space_id, red)
            session.commit()
        vectors.adopt_reduction(red)

    def upkeep(self) -> str | None:
        """After ingest or removal (writers held): a wide space first gets (or renews) its
        PCA; then the backend's own rules. Returns the reason when it rebuilt."""
        vectors, row = self.vectors, self.vectors.row
        todo = reduction.plan(row.space.dim, row.face_count(), vectors.reduction)
        if todo.train:
            self.train_reduction(todo.dim_out)
            self.backend.reduction_committed(vectors.store())
            vectors.forget_index()
            return todo.reason
        reason = self.backend.upkeep(vectors.store(), vectors.index_slot())
        if reason is not None:
            vectors.forget_index()
        return reason

    def erase(self) -> None:
        """After a removal committed: the removed rows leave the store's files too (Milvus
        Lite makes its collection again: the open one is forgotten)."""
        self.backend.erase(self.vectors.store(), self.vectors.index_slot())
        self.vectors.forget_index()

    def doctor(self, fix: bool) -> DoctorReport:
        """How the space's index compares with the database; ``fix`` mends it."""
        report = self.backend.doctor(self.vectors.store(), self.vectors.index_slot(), fix)
        if report.fixed:
            self.vectors.forget_index()
        return report
