"""What measuring needs from a library, declared at measure's own level.

Evaluation and exploration read one embedding space: its settings and space (to embed
photos with the same pipeline), its calibration, its stored vectors and index, and a
session for the face rows. The library's :class:`lookalike.space.SpaceView` (and the
library itself, which forwards to its current view) satisfies :class:`MeasuredSpace`
structurally; a measurement never opens, ingests into or closes a library: it is handed
the verbs it needs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from ..config import Settings
    from ..faces.pipeline import Space
    from ..index.protocol import VectorIndex
    from ..query.search import Calibration


class MeasuredSpace(Protocol):
    """One embedding space, read by a measurement."""

    @property
    def settings(self) -> Settings: ...

    @property
    def space(self) -> Space: ...

    @property
    def index(self) -> VectorIndex: ...

    def session(self) -> AbstractContextManager[Session]: ...

    def existing_space_id(self) -> int: ...

    def calibration(self) -> Calibration: ...

    def vectors(self, ids: np.ndarray | list[int]) -> np.ndarray: ...
