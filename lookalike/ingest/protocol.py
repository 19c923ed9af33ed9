"""What ingest needs from the library, declared here, at ingest's own level.

The library's :class:`lookalike.verbs.space.SpaceView` satisfies these protocols structurally:
the library hands one down, and nothing in :mod:`lookalike.ingest` imports upwards. Both
start from the index layer's :class:`lookalike.index.protocol.LibraryRows` (settings and
sessions) and add only what ingest calls.

* :class:`IngestTarget`: one embedding space to write into: its settings and space, a
  session, its row (:class:`TargetRow`: made by the first ingest), its vectors
  (:class:`TargetVectors`: the index the writer tops up, how a database-side vector column
  is filled, a commit followed) and the face pipeline an in-process mapper shares
  (:class:`Pipelines`); the view's parts satisfy them, and nothing more of them is named.
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
    from ..store.schema import Space as StoredSpace


class TargetRow(Protocol):
    """The row of the space written into: made by the first ingest."""

    @property
    def space_id(self) -> int: ...

    def ensure_space(self) -> int: ...


class TargetVectors(Protocol):
    """The vectors of the space written into: the index the writer tops up after each
    commit, how a database-side vector column is filled, and the follow-up of a commit."""

    @property
    def index(self) -> VectorIndex: ...

    def db_vector_writer(self, session: Session) -> Callable[[np.ndarray], np.ndarray] | None: ...

    def after_commit(self) -> None: ...


class Pipelines(Protocol):
    """The models of the space written into, loaded once."""

    @property
    def pipeline(self) -> FacePipeline:
        """The loaded models, shared by a mapper in this process."""
        ...


class IngestTarget(SpaceRows, Protocol):
    """One embedding space of a library, as the ingest runner writes into it: its row
    (made by the first ingest), its vectors (the index the writer tops up after each
    commit, and how a database-side vector column is filled) and its models."""

    @property
    def space(self) -> Space: ...

    @property
    def row(self) -> TargetRow: ...

    @property
    def vectors(self) -> TargetVectors: ...

    @property
    def models(self) -> Pipelines: ...


@dataclass(frozen=True)
class QueueAccess:
    """What a PostgreSQL queue worker is handed of its library: values and two openers,
    never the library itself, so the worker (a stage) holds nothing of the layer above."""

    settings: Settings
    session: Callable[[], AbstractContextManager[Session]]
    engine: Engine  # the attempt counter commits on a connection of its own
    open_target: Callable[[StoredSpace], IngestTarget]  # one per space its claimed rows name
