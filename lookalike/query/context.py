"""What a query stage needs of the library: one embedding space's data, read-only.

Search, face math, person reports and verification are handed a
:class:`lookalike.space.SpaceView` (or the :class:`lookalike.library.Library`, which
forwards to its current one), but they are typed by this protocol, declared here below
them, so the query layer never names a layer above it: the view satisfies it
structurally. It lists only what the stages call.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..analysis import Analyzer, AnalyzerName
    from ..config import Settings
    from ..faces.pipeline import FacePipeline, Space
    from ..index.protocol import SearchFilters, VectorIndex
    from ..store.schema import Audience
    from .search import Calibration, Filter


class SpaceContext(Protocol):
    """One embedding space as the query stages see it: its index, vectors, centroids,
    calibration, pipeline and a database session."""

    @property
    def settings(self) -> Settings: ...

    @property
    def space(self) -> Space: ...

    @property
    def space_id(self) -> int: ...

    @property
    def index(self) -> VectorIndex: ...

    @property
    def pipeline(self) -> FacePipeline: ...

    def existing_space_id(self) -> int: ...

    def session(self) -> AbstractContextManager[Session]: ...

    def vectors(self, ids: np.ndarray | list[int]) -> np.ndarray: ...

    def analyzer(self, name: AnalyzerName | str) -> Analyzer: ...

    def calibration(self) -> Calibration: ...

    def centroids(self) -> dict: ...

    def corpus_centroid(self, audience: Audience = ...) -> tuple[np.ndarray, int] | None: ...

    def allowed_face_ids(self, filters: tuple[Filter, ...] | list[Filter] = ...,
                         audience: Audience = ...) -> np.ndarray | None: ...

    def search_filters(self, filters: tuple[Filter, ...] | list[Filter] = ...,
                       audience: Audience = ...) -> SearchFilters | None: ...
