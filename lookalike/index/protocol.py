"""What every vector index offers: the interface the library, search and ingest use, and
the protocols every stage's view of a library starts from (:class:`LibraryRows`,
:class:`SpaceRows`). A backend is handed values instead
(:class:`lookalike.index.space_store.SpaceStore`).

Four classes satisfy :class:`VectorIndex`: :class:`lookalike.index.faiss_index.FaissIndex`
(a file per space), :class:`lookalike.index.pgvector_index.PgVectorIndex` (``faces.vec``
searched in SQL), :class:`lookalike.index.milvus_index.MilvusIndex` (a Milvus collection)
and :class:`lookalike.index.reduction.ReducedIndex` (any of them over PCA-reduced vectors,
answering in full ones). Anything else an index has (FAISS's ``reconcile`` and
``changed_on_disk``, pgvector's ``missing``, ``fill`` and ``ensure_index``) belongs to
its backend (:mod:`lookalike.index.backends`), which unwraps a reduced index to reach it.

Both protocols are ``runtime_checkable`` for tests; ``isinstance`` against them reads
every member (on Python 3.11 that includes the properties: a pgvector ``ntotal`` counts
rows), so production code tests for the concrete classes instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..config import Settings
    from ..store.values import Audience, GroupKey

# ids -> their vectors (rows in the order of the ids): what an index re-ranks on
FetchVectors = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class IndexManifest(Protocol):
    """What an index says about itself (``index info``, upkeep): the FAISS
    :class:`~lookalike.index.faiss_index.Manifest`, or :class:`ServiceManifest` for an index a
    service keeps (pgvector, Milvus)."""

    @property
    def space(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def index_key(self) -> str:
        """The FAISS factory string, or a description of the pgvector index."""
        ...

    @property
    def ntotal(self) -> int:
        """Vectors as last saved (FAISS) or counted (pgvector)."""
        ...

    @property
    def params(self) -> dict:
        """Search-time parameters (efSearch, nprobe, rerank; hnsw.ef_search)."""
        ...

    @property
    def tombstones(self) -> list:
        """Ids removed but still stored (HNSW files); always empty on pgvector."""
        ...

    @property
    def pinned(self) -> bool:
        """The key was chosen by hand: upkeep keeps it."""
        ...


@dataclass
class ServiceManifest:
    """The manifest of an index a service keeps (pgvector, Milvus): no file to describe,
    only what ``index info`` shows. Deletion is real there: never a tombstone."""

    space: str
    dim: int
    index_key: str
    ntotal: int = 0
    params: dict = field(default_factory=dict)
    tombstones: list = field(default_factory=list)
    pinned: bool = False


@dataclass(frozen=True)
class SearchFilters:
    """The search filters behind an ``allowed`` id set, for an index that keeps the filter
    fields itself (a Milvus server's scalar fields) and filters on them faster than on a
    list of 100,000 ids sent with every query. The ids stay the truth: an index that uses
    these checks its answers against them. Indexes without such fields ignore it."""

    groups: tuple[tuple[GroupKey, str], ...]  # (key, value): tag, organisation, role, person
    person_ids: Mapping[str, int]  # the names of person filters -> their ids (a name nobody has: absent)
    audience: Audience  # whose faces may be returned (a consent field the index keeps)


@runtime_checkable
class VectorIndex(Protocol):
    """One embedding space's index. Ids are ``faces.id``; vectors are unit length and
    scores are cosine similarities."""

    # optional: ids -> the vectors the index holds, for exact scoring of a small allowed
    # set or re-ranking compressed candidates; set by the backend that opens the index
    vector_source: FetchVectors | None

    @property
    def filter_on_fields(self) -> bool:
        """Whether a search is faster given the ``filters`` behind a large ``allowed`` set
        (fields of its own, Milvus) than the ids alone: only then does search build them."""
        ...

    @property
    def manifest(self) -> IndexManifest: ...

    @property
    def ntotal(self) -> int:
        """How many live vectors the index holds (cheap: every page asks)."""
        ...

    @property
    def tombstone_share(self) -> float:
        """Share of the stored vectors that are removed faces (0 where deletion is real)."""
        ...

    def ids(self) -> np.ndarray:
        """Ids of the live vectors (int64)."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Index ``vectors`` (one row per id, as wide as the space's vectors) under ``ids``."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Drop ``ids``; returns how many the index itself removed."""
        ...

    def save(self) -> None:
        """Make the index durable (a no-op where the database is the index)."""
        ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               filters: SearchFilters | None = None,
               excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each ``(n_queries, k)``; missing slots have id -1.
        ``allowed`` restricts the answer to those ids; ``filters`` says how they were chosen;
        ``excluded`` (with ``allowed`` None) keeps a few ids out of an otherwise whole search:
        a visitor's, without the faces of the people who withhold consent (a list of all the
        others is a million ids at a million faces, 0.37 s a search to pass to FAISS)."""
        ...


class LibraryRows(Protocol):
    """A library's settings and database sessions: what every stage's protocol of a
    library (this module's, :mod:`lookalike.ingest.protocol`'s,
    :mod:`lookalike.query.context`'s) starts from, declared once, here at the lowest layer
    that needs it."""

    @property
    def settings(self) -> Settings: ...

    def session(self) -> AbstractContextManager[Session]: ...


class SpaceName(Protocol):
    """An embedding space's names (:class:`lookalike.faces.pipeline.Space`)."""

    @property
    def key(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def detector(self) -> str: ...

    @property
    def aligner(self) -> str: ...

    @property
    def dim(self) -> int:
        """How wide the model's vectors are (before any PCA)."""
        ...


class SpaceRows(LibraryRows, Protocol):
    """One embedding space of a library: its names and sessions (the stages above narrow
    ``space`` to :class:`lookalike.faces.pipeline.Space`)."""

    @property
    def space(self) -> SpaceName: ...
