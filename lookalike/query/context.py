"""What the query and measure stages need of one embedding space, read-only.

Search, face math, person reports and verification are handed a
:class:`lookalike.verbs.space.SpaceView`, typed by :class:`SpaceContext`; evaluation and
exploration (:mod:`lookalike.measure`) by its read part, :class:`SpaceReader`. Both are
declared here, below their users, and start from the index layer's
:class:`lookalike.index.protocol.SpaceRows` (settings, space, sessions), so no stage names
a layer above it and no member is declared twice: the view satisfies them structurally.
Each lists only what its stages call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..index.protocol import SpaceRows

if TYPE_CHECKING:
    from ..analysis import Analyzer, AnalyzerName
    from ..faces.pipeline import FacePipeline, Space
    from ..index.protocol import VectorIndex
    from ..store.values import Audience
    from .search import Calibration, Filter
    from .shown import Shown


class SpaceReader(SpaceRows, Protocol):
    """One embedding space as a reader of its stored faces sees it (a measurement: it is
    handed the verbs it needs, never opens, ingests into or closes a library)."""

    @property
    def space(self) -> Space: ...

    @property
    def index(self) -> VectorIndex: ...

    def existing_space_id(self) -> int: ...

    def vectors(self, ids: np.ndarray | list[int]) -> np.ndarray: ...

    def calibration(self) -> Calibration: ...


class SpaceContext(SpaceReader, Protocol):
    """One embedding space as the query stages see it: beside the reader's, its pipeline,
    analyzers, centroids and the audience's filters."""

    @property
    def space_id(self) -> int: ...

    @property
    def pipeline(self) -> FacePipeline: ...

    def analyzer(self, name: AnalyzerName | str) -> Analyzer: ...

    def follows(self, stored: str | None) -> bool: ...

    def refollow(self) -> bool: ...

    def centroids(self, generation: int | None = ...) -> dict: ...

    def corpus_centroid(self, audience: Audience = ...) -> tuple[np.ndarray, int] | None: ...

    def shown(self, filters: tuple[Filter, ...] | list[Filter] = ..., audience: Audience = ...,
              at: int | None = ...) -> Shown: ...
