"""What a backend is handed for one embedding space: values, and the space's open index.

:class:`SpaceStore` is made of values (the settings, the engine, the session factory,
the space's names, its row id and its stored PCA) by the space's vectors
(:meth:`lookalike.index.space_vectors.SpaceVectors.store`), once per operation; a backend,
an index's vector source and a Milvus outbox keep it, never the object that made it, so
nothing below can reach its caches (architecture review 50, H1). :class:`IndexSlot` is
the space's open index, opened on a backend's first ask and kept: the space's vectors keep
one, and a backend that needs the open index asks the slot (a doctor must not open a file
it is checking, a rebuild has no use for the old index, so the slot opens only when asked).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import config
from ..errors import EmptyLibrary, LookalikeError, ModelMismatch
from ..store import locks, photo_rows, space_rows
from .reduction import ReducedIndex

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from ..config import Settings
    from .backend import VectorBackend
    from .protocol import SpaceName, VectorIndex
    from .reduction import Reduction


def missing_space(session: Session, settings: Settings, key: str) -> LookalikeError:
    """The error for a library that holds no faces of space ``key``: the spaces it holds
    instead, or that it is empty."""
    others = [sp.key for sp in space_rows.list_spaces(session)]
    if others:
        return ModelMismatch(
            f"this library holds faces made with {', '.join(others)}, not {key} "
            "(model__detector__aligner); drop --model/--detector/--aligner or ingest again "
            "with these settings")
    return EmptyLibrary.at(config.shown_url(settings.db_url))


@dataclass(frozen=True)
class SpaceStore:
    """One embedding space's rows, files and locks, as values: where its rows are (the
    engine and its sessions), where its files go (the settings), its row id (``None``:
    the library holds no faces of it yet) and its stored PCA (``None``: full width)."""

    settings: Settings
    engine: Engine
    sessions: Callable[[], Session]
    revision: str  # the database's schema revision (a FAISS manifest records it)
    space: SpaceName
    space_id: int | None
    reduction: Reduction | None

    def session(self) -> AbstractContextManager[Session]:
        return self.sessions()

    def existing_space_id(self) -> int:
        """The space's row id; a clear error when the library does not hold the space."""
        if self.space_id is not None:
            return self.space_id
        with self.session() as session:
            raise missing_space(session, self.settings, self.space.key)

    @property
    def dim(self) -> int:
        """How wide the index's vectors are: the PCA's output, else the model's."""
        return self.reduction.dim_out if self.reduction is not None else self.space.dim

    def vectors(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored full-width vectors of face ``ids``, in that order."""
        with self.session() as session:
            return photo_rows.vectors(session, ids, self.space.dim)

    def index_vectors(self, ids: np.ndarray) -> np.ndarray:
        """What the index holds for ``ids``: their vectors, reduced when the space is."""
        full = self.vectors(ids)
        return self.reduction.apply(full) if self.reduction is not None else full

    def write_lock(self) -> AbstractContextManager[None]:
        """One writer per library folder (:func:`lookalike.store.locks.write_lock`)."""
        return locks.write_lock(self.settings.index_dir)

    @contextmanager
    def vectors_lock(self, exclusive: bool) -> Iterator[None]:
        """The space's lock on a vector store outside the database (Milvus), across
        processes (:func:`lookalike.store.locks.vectors_lock`)."""
        with self.session() as session, locks.vectors_lock(session, self.settings.index_dir,
                                                           self.existing_space_id(), exclusive):
            yield


class IndexSlot:
    """A space's index, opened by its backend on the first :meth:`get` and kept until
    :meth:`forget`; wrapped to re-rank on full vectors when the space is reduced
    (:class:`lookalike.index.reduction.ReducedIndex`). Whoever keeps the slot (the space's vectors)
    asks the backend whether another process saved a newer index, and makes a new slot
    then: the newer file may come with a new PCA, which a slot's store does not have.
    Opened by one thread at a time (a large FAISS file is read once)."""

    def __init__(self, backend: VectorBackend, store: SpaceStore) -> None:
        self.backend, self.store = backend, store
        self._index: VectorIndex | None = None
        self._opening = threading.Lock()

    def get(self) -> VectorIndex:
        index = self._index
        if index is None:
            with self._opening:
                index = self._index
                if index is None:
                    index = self.backend.open_index(self.store)
                    if self.store.reduction is not None:
                        index = ReducedIndex(index, self.store.reduction, self.store.vectors)
                    self._index = index
        return index

    @property
    def opened(self) -> VectorIndex | None:
        """The index if it is open, without opening it."""
        return self._index

    def forget(self) -> None:
        """Drop the open index: the next :meth:`get` opens it afresh (after a rebuild)."""
        self._index = None
