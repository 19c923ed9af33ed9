"""What every index backend is: the adapter between one embedding space's rows and the
place its vectors are searched (:mod:`lookalike.index.backends` chooses one).

A backend is handed the space as values (:class:`lookalike.index.space_store.SpaceStore`:
rows, stored vectors, PCA, locks) and, where it works on the open index, that index or the
slot that opens it on first ask (:class:`lookalike.index.space_store.IndexSlot`); it never
holds or reaches the view above it. Retraining a PCA,
forgetting the view's open index and choosing when to rebuild belong to the maintenance
service (:mod:`lookalike.verbs.maintenance`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ..store import photo_rows
from .protocol import VectorIndex
from .reduction import ReducedIndex

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .reduction import Reduction
    from .space_store import IndexSlot, SpaceStore

IndexT = TypeVar("IndexT")
# repairs a space's index from the database; returns how many faces it then holds
Repair = Callable[[], int]


def unwrapped(index: VectorIndex) -> VectorIndex:
    """The index a backend opened, under any :class:`ReducedIndex` wrapper."""
    while isinstance(index, ReducedIndex):
        index = index.inner
    return index


def own_index(index: VectorIndex, kind: type[IndexT]) -> IndexT:
    """The index of the backend's own ``kind`` under ``index`` (reduced or not): what a
    backend reaches for its kind's own methods. Anything else is a programming error."""
    base = unwrapped(index)
    if not isinstance(base, kind):
        raise TypeError(f"a {kind.__name__} backend was handed a {type(base).__name__}")
    return base


@dataclass
class DoctorReport:
    """How a space's index compares with the database."""

    space: str
    db_faces: int
    index_faces: int
    missing: int  # in the database, not in the index
    orphans: int  # in the index, not in the database
    error: str | None = None
    fixed: bool = False

    @classmethod
    def compare(cls, space: str, want: np.ndarray, have: np.ndarray, error: str | None = None) -> DoctorReport:
        """The report of an index holding the ids ``have`` where the database holds ``want``."""
        return cls(space, len(want), len(have), missing=len(np.setdiff1d(want, have)),
                   orphans=len(np.setdiff1d(have, want)), error=error)

    @property
    def ok(self) -> bool:
        return self.error is None and self.missing == 0 and self.orphans == 0

    def to_dict(self) -> dict:
        return {"space": self.space, "db_faces": self.db_faces, "index_faces": self.index_faces,
                "missing": self.missing, "orphans": self.orphans, "error": self.error,
                "fixed": self.fixed, "ok": self.ok}


class VectorBackend:
    """What differs between keeping vectors in an index file and in the database."""

    name = "base"
    vectors_in_db = False  # faces.vec is written and searched
    # ingest through the PostgreSQL work queue (any number of writers, on any machine)
    # rather than one local writer with a process pool
    queued_ingest = False
    # the vectors live outside the database: every change also writes outbox rows
    outbox = False

    def open_index(self, store: SpaceStore) -> VectorIndex:
        """The space's index, ready to search (before any reduction wrapper)."""
        raise NotImplementedError

    def writers(self, store: SpaceStore) -> AbstractContextManager[None]:
        """The exclusion an ingest or removal needs."""
        raise NotImplementedError

    def info(self, store: SpaceStore, index: VectorIndex) -> dict:
        raise NotImplementedError

    def stats(self, store: SpaceStore, index: VectorIndex) -> dict:
        info = self.info(store, index)
        sp = store.space
        return {"space": sp.key, "model": sp.model, "detector": sp.detector, "aligner": sp.aligner,
                "dim": info["dim"], "metric": self.metric, "index_key": info["index_key"],
                "ntotal": info["ntotal"], "file": info["file"], "bytes": info["bytes"]}

    metric = "cosine"

    def check_rebuild(self, key: str | None, dim: int) -> None:
        """Refuse a ``key`` this kind of index has no use for, or cannot make for ``dim``-d
        vectors, before anything changes (a PCA is trained and stored before the build)."""

    def rebuild(self, store: SpaceStore, current: IndexSlot, key: str | None, reduced: bool) -> None:
        """Make the index again from the database vectors (``key``: of that type), the
        writers held; ``reduced``: a new PCA was just stored."""
        raise NotImplementedError

    def upkeep(self, store: SpaceStore, current: IndexSlot) -> str | None:
        """After ingest or removal: rebuild if the rules say so; the reason when it did."""
        raise NotImplementedError

    def saved_matches(self, store: SpaceStore, index: VectorIndex) -> bool:
        """Whether what is saved already holds everything the open index holds."""
        return True

    def ready_for(self, store: SpaceStore, reduction: str | None) -> bool:
        """Whether the vectors this backend searches are reduced with the PCA ``reduction``
        (the uid stored now, an answer's): a long-running reader then follows it
        (:meth:`lookalike.index.space_vectors.SpaceVectors.follows`). ``False`` here: a FAISS file names its PCA
        in its manifest and is followed by the file."""
        return False

    def changed(self, index: VectorIndex) -> bool:
        """Whether the open index is older than what another process has since saved."""
        return False

    def after_commit(self, store: SpaceStore, current: IndexSlot) -> None:
        """After a queue worker committed a claim: what must follow the database."""

    def close(self) -> None:
        """When the library closes: connections of the backend's own."""

    def erase(self, store: SpaceStore, current: IndexSlot) -> None:
        """After a removal committed: what the store must do so the removed rows are gone
        from its files too, not merely unlinked."""

    def reduction_coming(self, store: SpaceStore) -> None:
        """A new PCA is trained and about to be stored: what must change before its transaction."""

    def reduction_stored(self, store: SpaceStore, session: Session, space_id: int, red: Reduction) -> None:
        """Inside the transaction that stores a new PCA: make the stored vectors follow."""

    def drop_space(self, store: SpaceStore, session: Session, key: str, space_id: int) -> None:
        """Inside the transaction that deletes a space's rows: its index goes too."""

    def reduction_committed(self, store: SpaceStore) -> None:
        """After that transaction committed."""

    def doctor(self, store: SpaceStore, current: IndexSlot, fix: bool) -> DoctorReport:
        """Compare the space's index with the database's faces; ``fix`` repairs what differs.
        One shape for every backend: :meth:`check` says what differs and how to repair it."""
        with store.session() as session:
            want = photo_rows.face_ids(session, store.existing_space_id())
        report, repair = self.check(store, current, want)
        if fix and not report.ok and repair is not None:
            report.index_faces = repair()
            report.fixed, report.error, report.missing, report.orphans = True, None, 0, 0
        return report

    def check(self, store: SpaceStore, current: IndexSlot, want: np.ndarray) -> tuple[DoctorReport, Repair | None]:
        """How the index compares with the database's face ids ``want``, and how to repair
        it (``None``: it must not be repaired from here)."""
        raise NotImplementedError
