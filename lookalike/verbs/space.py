"""The library seen through one embedding space: what every stage is handed.

A library can hold several embedding spaces (``model__detector__aligner``) side by side
(after ``reembed``). Everything that belongs to one of them is a :class:`SpaceView`, made
of four parts, each loaded lazily and kept: the space's database row
(:class:`lookalike.index.space_vectors.SpaceRow`), its vectors (the index, a FAISS file, a
pgvector column or a Milvus collection, and the PCA reduction:
:class:`lookalike.index.space_vectors.SpaceVectors`), its models (:class:`SpaceModels`) and
what its faces say (calibration, centroids, what an audience may see:
:class:`lookalike.query.facts.SpaceFacts`). Each part lives at the layer it belongs to and
is handed the parts below it, never the view, so no part calls back up into it
(architecture review 56, H2). Search, face math, person reports, explore and evaluation
take a view typed by a narrow protocol declared below them
(:class:`lookalike.query.context.SpaceContext`) and use the parts they need; the index
backends are handed less, the space as values (``view.vectors.store()``) and its open
index (``view.vectors.index_slot()``). The library makes one view for its current space
and one per space for the verbs that touch them all. Index upkeep, rebuilds and PCA
training are :mod:`lookalike.verbs.maintenance`'s.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable, Concatenate, ParamSpec, Protocol, TypeVar

from ..config import Settings
from ..faces.pipeline import FacePipeline, Space
from ..index.backends import VectorBackend
from ..index.space_vectors import SpaceRow, SpaceVectors
from ..query.facts import SpaceFacts

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ..analysis import Analyzer, AnalyzerName


P = ParamSpec("P")
R = TypeVar("R")
# held while a view builds its pipeline or an analyzer (models loading): threads sharing a
# library built them twice, and kept one
_MAKING_MODELS = threading.Lock()


class Serialised(Protocol):
    """An object whose verbs run one at a time under its lock (:func:`serialised`)."""

    @property
    def calls(self) -> AbstractContextManager[Any]: ...


S = TypeVar("S", bound=Serialised)


def serialised(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """The method run under its object's ``calls`` lock (a re-entrant one: a verb may call
    another). The models and the open index of a library are shared by the threads that share
    it (the web app's visitors, the HTTP API's requests), so the verbs that run a model or
    change the index take the library's lock themselves: every caller had to remember to, and
    one that forgot raced (architecture review 50, M2)."""
    @wraps(method)
    def held(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.calls:
            return method(self, *args, **kwargs)
    return held


class SpaceModels:
    """The models one space is searched with: its face pipeline and the analyzers asked
    for, each built on first use, once, whichever thread asks first."""

    def __init__(self, space: Space, settings: Settings, analyzers: dict[AnalyzerName, Analyzer] | None = None) -> None:
        self.space, self.settings = space, settings
        self._analyzers = analyzers if analyzers is not None else {}
        self._pipeline: FacePipeline | None = None

    def analyzer(self, name: AnalyzerName | str) -> Analyzer:
        """The face analyzer ``name`` (:class:`lookalike.analysis.AnalyzerName`), built once."""
        from .. import analysis

        name = analysis.resolve(analysis.AnalyzerName.named(name))
        if name not in self._analyzers:
            with _MAKING_MODELS:  # the dict is every view's of the library: built once, by one thread
                if name not in self._analyzers:
                    self._analyzers[name] = analysis.build(name)
        return self._analyzers[name]

    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            with _MAKING_MODELS:  # two first searches from two threads: one pipeline
                if self._pipeline is None:
                    self._pipeline = FacePipeline(self.space, self.settings.detect_max_side,
                                                  threads=self.settings.model_threads)
        return self._pipeline


class SpaceView:
    """One embedding space of one library, in four parts a stage takes what it needs of:
    its database :attr:`row`, its :attr:`vectors` (index, PCA, writers), its :attr:`models`
    and its :attr:`facts` (calibration, centroids, audiences), each loaded on first use and
    kept until :meth:`refresh`."""

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker, backend: VectorBackend,
                 revision: str, space: Space, space_id: int | None = None,
                 analyzers: dict[AnalyzerName, Analyzer] | None = None) -> None:
        self.settings, self.space = settings, space
        self.row = SpaceRow(settings, sessions, space, space_id)
        self.vectors = SpaceVectors(self.row, engine, backend, revision)
        self.models = SpaceModels(space, settings, analyzers)
        self.facts = SpaceFacts(self.row, self.vectors)

    def refresh(self, index: bool = True) -> None:
        """Forget what a write changed: the centroids and audiences' views, and the open index
        unless the writer kept it up to date itself (``index=False``). Models stay loaded."""
        self.facts.forget()
        if index:
            self.vectors.forget_index()

    def session(self) -> AbstractContextManager[Session]:
        """A new session (``with view.session() as session:``), closed as the block ends."""
        return self.row.session()
