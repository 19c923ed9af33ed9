"""What the query and measure stages need of one embedding space, read-only.

Search, face math, person reports and verification are handed a
:class:`lookalike.verbs.space.SpaceView`, typed by :class:`SpaceContext`; evaluation and
exploration (:mod:`lookalike.measure`) by its read part, :class:`SpaceReader`. Both are
declared here, below their users, and start from the index layer's
:class:`lookalike.index.protocol.SpaceRows` (settings, space, sessions), so no stage names
a layer above it. The view is four parts (its row, vectors, facts and models), and each is
typed here by what the stages call of it, nothing more: no stage is handed a way to make a
space's row, store a calibration, train a PCA or take the writers' lock (review 57).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..index.protocol import SpaceRows

if TYPE_CHECKING:
    import numpy as np

    from ..analysis import Analyzer, AnalyzerName
    from ..faces.pipeline import FacePipeline, Space
    from ..index.protocol import VectorIndex
    from ..store.values import Audience
    from .search import Calibration, Filter
    from .shown import Shown


class RowReader(Protocol):
    """The space's row id (:class:`lookalike.index.space_vectors.SpaceRow`)."""

    @property
    def space_id(self) -> int: ...

    def existing_space_id(self) -> int: ...


class VectorsReader(Protocol):
    """The space's index and stored vectors (:class:`lookalike.index.space_vectors.SpaceVectors`)."""

    @property
    def index(self) -> VectorIndex: ...

    def stored(self, ids: np.ndarray | list[int]) -> np.ndarray: ...


class VectorsFollower(VectorsReader, Protocol):
    """... and, for a search, whether the PCA it searched with still holds."""

    def follows(self, stored: str | None) -> bool: ...

    def refollow(self) -> bool: ...


class FactsReader(Protocol):
    """The space's verdict thresholds (:class:`lookalike.query.facts.SpaceFacts`)."""

    def calibration(self) -> Calibration: ...


class Facts(FactsReader, Protocol):
    """... and its centroids and what an audience may see."""

    def centroids(self, generation: int | None = ...) -> dict: ...

    def corpus_centroid(self, audience: Audience = ...) -> tuple[np.ndarray, int] | None: ...

    def allowed_face_ids(self, filters: tuple[Filter, ...] | list[Filter] = ...,
                         audience: Audience = ...) -> np.ndarray | None: ...

    def shown(self, filters: tuple[Filter, ...] | list[Filter] = ..., audience: Audience = ...,
              at: int | None = ...) -> Shown: ...


class Models(Protocol):
    """The models a space is searched with, loaded once and shared."""

    @property
    def pipeline(self) -> FacePipeline: ...

    def analyzer(self, name: AnalyzerName | str) -> Analyzer: ...


class SpaceReader(SpaceRows, Protocol):
    """One embedding space as a reader of its stored faces sees it (a measurement: it is
    handed the verbs it needs, never opens, ingests into or closes a library)."""

    @property
    def space(self) -> Space: ...

    @property
    def row(self) -> RowReader: ...

    @property
    def vectors(self) -> VectorsReader: ...

    @property
    def facts(self) -> FactsReader: ...


class SpaceContext(SpaceReader, Protocol):
    """One embedding space as the query stages see it: beside the reader's parts, the PCA
    followed, the centroids and audiences, and its models."""

    @property
    def vectors(self) -> VectorsFollower: ...

    @property
    def facts(self) -> Facts: ...

    @property
    def models(self) -> Models: ...
