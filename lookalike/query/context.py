"""What the query and measure stages need of one embedding space, read-only.

Search, face math, person reports and verification are handed a
:class:`lookalike.verbs.space.SpaceView`, typed by :class:`SpaceContext`; evaluation and
exploration (:mod:`lookalike.measure`) by its read part, :class:`SpaceReader`. Both are
declared here, below their users, and start from the index layer's
:class:`lookalike.index.protocol.SpaceRows` (settings, space, sessions), so no stage names
a layer above it. The view is four parts, and a stage uses the ones it needs: the space's
row and vectors (:mod:`lookalike.index.space_vectors`, below), what its faces say
(:class:`lookalike.query.facts.SpaceFacts`, at this level) and its models
(:class:`Models`, declared here: the view keeps them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..index.protocol import SpaceRows

if TYPE_CHECKING:
    from ..analysis import Analyzer, AnalyzerName
    from ..faces.pipeline import FacePipeline, Space
    from ..index.space_vectors import SpaceRow, SpaceVectors
    from .facts import SpaceFacts


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
    def row(self) -> SpaceRow: ...

    @property
    def vectors(self) -> SpaceVectors: ...

    @property
    def facts(self) -> SpaceFacts: ...


class SpaceContext(SpaceReader, Protocol):
    """One embedding space as the query stages see it: beside the reader's parts, its models."""

    @property
    def models(self) -> Models: ...
