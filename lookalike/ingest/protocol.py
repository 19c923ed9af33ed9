"""What ingest needs from the library, declared here, at ingest's own level.

The library's :class:`lookalike.verbs.space.SpaceView` satisfies these protocols structurally:
the library hands one down, and nothing in :mod:`lookalike.ingest` imports upwards. Both
start from the index layer's :class:`lookalike.index.protocol.LibraryRows` (settings and
sessions) and add only what ingest calls.

* :class:`IngestTarget`: one embedding space to write into: its settings and space, a
  session, its id, the index the writer tops up, the face pipeline an in-process mapper
  shares, and how a database-side vector column is filled.
* :class:`QueueAccess`: what a PostgreSQL queue worker is handed, as values, not the
  library: settings, sessions, an engine for the attempt counter, and how to open a target
  for each space named by the rows it claims.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from ..index.protocol import SpaceRows

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from ..config import Settings
    from ..faces.pipeline import FacePipeline, Space
    from ..index.protocol import VectorIndex
    from ..store.schema import Space as SpaceRow


class IngestTarget(SpaceRows, Protocol):
    """One embedding space of a library, as the ingest runner writes into it."""

    @property
    def space(self) -> Space: ...

    @property
    def space_id(self) -> int:
        """The space's row id (:meth:`ensure_space` made it)."""
        ...

    def ensure_space(self) -> int:
        """The space's row id, the row made now if the library has none (a first ingest)."""
        ...

    @property
    def index(self) -> VectorIndex:
        """The index the writer tops up after each commit (saved every few seconds)."""
        ...

    @property
    def pipeline(self) -> FacePipeline:
        """The loaded models, shared by a mapper in this process."""
        ...

    def db_vector_writer(self, session: Session) -> Callable[[np.ndarray], np.ndarray] | None:
        """What goes into ``faces.vec`` for a vector (pgvector), or None."""
        ...

    def after_commit(self) -> None:
        """A vector store outside the database follows a commit (the Milvus outbox)."""
        ...


@dataclass(frozen=True)
class QueueAccess:
    """What a PostgreSQL queue worker is handed of its library: values and two openers,
    never the library itself, so the worker (a stage) holds nothing of the layer above."""

    settings: Settings
    session: Callable[[], AbstractContextManager[Session]]
    engine: Engine  # the attempt counter commits on a connection of its own
    open_target: Callable[[SpaceRow], IngestTarget]  # one per space its claimed rows name
