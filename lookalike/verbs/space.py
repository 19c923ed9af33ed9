"""The library seen through one embedding space: what every stage is handed.

A library can hold several embedding spaces (``model__detector__aligner``) side by side
(after ``reembed``). Everything that belongs to one of them lives here, loaded lazily
and kept: its row id, index (a FAISS file or the pgvector column), PCA reduction,
centroids, calibration and face pipeline. Search, face math, person reports, explore and
evaluation take a :class:`SpaceView` and nothing else, typed by a narrow protocol declared
below them (:class:`lookalike.query.context.SpaceContext`), so none of them needs the
:class:`lookalike.verbs.library.Library` or its private state. The index backends are handed
less: the space as values (:meth:`SpaceView.store`) and its open index
(:meth:`SpaceView.index_slot`), never the view. The library makes one view for its
current space and one per space for the verbs that touch them all. Index upkeep, rebuilds
and PCA training are :mod:`lookalike.verbs.maintenance`'s.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np

from .. import config
from ..config import Settings
from ..faces.pipeline import FacePipeline, Space
from ..index.backends import VectorBackend
from ..index.space_store import IndexSlot, SpaceStore, missing_space
from ..models.catalog import RECOGNITION_DIMS
from ..query import shown
from ..query.search import Calibration
from ..store import centroid_rows, space_rows
from ..store.values import Audience

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ..analysis import Analyzer, AnalyzerName
    from ..index.protocol import VectorIndex
    from ..index.reduction import Reduction
    from ..query.search import Filter
    from ..query.shown import Shown


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


class SpaceView:
    """One embedding space of one library: its index, reduction, centroids, calibration and
    pipeline, each loaded on first use and kept until :meth:`refresh`."""

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker, backend: VectorBackend,
                 revision: str, space: Space, space_id: int | None = None,
                 analyzers: dict[AnalyzerName, Analyzer] | None = None) -> None:
        self.settings, self.engine, self.backend, self.revision = settings, engine, backend, revision
        self.space = space
        self._sessions = sessions
        self._space_id = space_id
        self._analyzers = analyzers if analyzers is not None else {}
        self._slot: IndexSlot | None = None  # see index_slot
        self._slot_lock = threading.RLock()
        self._pipeline: FacePipeline | None = None
        self._centroids: dict | None = None
        self._centroid_generation = -1  # of the centroids kept
        self._calibration: Calibration | None = None
        self._reduction: Reduction | None | bool = False  # False: not read yet
        self._shown = shown.ShownCache(sessions)  # (filters, audience) -> what they let a search return

    def refresh(self, index: bool = True) -> None:
        """Forget what a write changed: the centroids, and the open index unless the writer
        kept it up to date itself (``index=False``). Models stay loaded."""
        self._centroids = None
        self._shown.clear()
        if index:
            self.forget_index()

    def session(self) -> AbstractContextManager[Session]:
        """A new session (``with lib.session() as session:``), closed as the block ends."""
        return self._sessions()

    @property
    def vectors_in_db(self) -> bool:
        """PostgreSQL keeps and searches the vectors itself (pgvector); elsewhere a FAISS file does."""
        return self.backend.vectors_in_db

    @property
    def space_id(self) -> int:
        """Database id of :attr:`space` (read once); a clear error when the library does not
        hold the space (:meth:`ensure_space` makes the row)."""
        return self._space_id if self._space_id is not None else self.existing_space_id()

    def ensure_space(self) -> int:
        """The id of :attr:`space`'s row, made now if the library has none: before an ingest
        opens the index, or a calibration is stored for a library with no faces yet."""
        if self._space_id is None:
            with self.session() as session:
                row = space_rows.get_space(session, self.space.key)
                if row is None:
                    row = space_rows.create_space(session, self.space.key, self.space.model,
                                                  self.space.detector, self.space.aligner,
                                                  RECOGNITION_DIMS[self.space.model])
                    session.commit()
                self._space_id = row.id
        return self._space_id

    def existing_space_id(self) -> int:
        """Id of :attr:`space` for reading; explains what the library holds instead."""
        with self.session() as session:
            row = space_rows.get_space(session, self.space.key)
            if row is None:
                raise missing_space(session, self.settings, self.space.key)
        self._space_id = row.id
        return row.id

    @property
    def reduction(self) -> Reduction | None:
        """The space's stored PCA (:mod:`lookalike.index.reduction`), or None: wide vectors
        only, once the corpus is large enough."""
        if self._reduction is False:
            from ..index import reduction

            if self._space_id is None:
                with self.session() as session:
                    row = space_rows.get_space(session, self.space.key)
                if row is None:
                    return None
                self._space_id = row.id
            with self.session() as session:
                self._reduction = reduction.load(session, self._space_id)
        assert not isinstance(self._reduction, bool)
        return self._reduction

    def store(self) -> SpaceStore:
        """The space as a backend is handed it: values (:class:`lookalike.index.space_store.SpaceStore`),
        made afresh for each operation, so no backend, index or outbox holds the view."""
        if self._space_id is None:
            with self.session() as session:
                row = space_rows.get_space(session, self.space.key)
            self._space_id = row.id if row is not None else None
        return SpaceStore(self.settings, self.engine, self._sessions, self.revision, self.space,
                          self._space_id, self.reduction)

    def index_slot(self) -> IndexSlot:
        """The space's open index, opened on first use and kept (:class:`IndexSlot`): made
        again when this view's space row or PCA has changed since (the store it opens with
        holds both) or another process saved a newer index (FAISS: its PCA may be new too,
        read again), and never kept while the library had no row for the space (another
        process may ingest the first faces meanwhile: the next use must see them). One
        thread makes it at a time (the web app's sessions share the view)."""
        with self._slot_lock:
            slot = self._slot
            if slot is not None and slot.opened is not None and self.backend.changed(slot.opened):
                self._reduction, slot = False, None  # a newer file: its PCA is read again with it
            red = self.reduction  # first: reading it may find the space's row
            if slot is None or slot.store.space_id is None or slot.store.space_id != self._space_id \
                    or slot.store.reduction is not red:
                slot = IndexSlot(self.backend, self.store())
            self._slot = slot
            return slot

    @property
    def index(self) -> VectorIndex:
        """The space's index (:mod:`lookalike.index.backends`): a FAISS file topped up from the
        database, a pgvector column or a Milvus collection; wrapped to re-rank on full vectors
        when the space is reduced (:class:`lookalike.index.reduction.ReducedIndex`)."""
        return self.index_slot().get()

    def follows(self, stored: str | None) -> bool:
        """Whether this reader's PCA is still the one to search with: ``stored`` is the uid of
        the space's stored PCA when an answer's rows were read (None: none). Another one is
        followed once the vectors searched are reduced with it (the backend's
        :meth:`~lookalike.index.backend.VectorBackend.ready_for`: pgvector in the PCA's own
        transaction, a Milvus collection once made again; a FAISS file by its manifest,
        :meth:`index_slot`): the index and PCA are dropped and ``False`` says search again."""
        return self._follow(stored, lambda: self.backend.ready_for(self.store(), stored))

    def refollow(self) -> bool:
        """After a query the stored vectors were no longer as wide as: whether the space's
        stored PCA is another than the one held (then dropped, the caller searches again);
        ``False``: nothing stored explains the width."""
        with self.session() as session:
            stored = space_rows.reduction_uid(session, self.space_id)
        return not self._follow(stored, lambda: True)

    def _follow(self, stored: str | None, ready: Callable[[], bool]) -> bool:
        """``True`` while the PCA held is ``stored`` or the store is not ``ready`` for it (it
        still holds what the held PCA made); else the index and PCA dropped, ``False``."""
        with self._slot_lock:
            held = self.reduction
            if stored == (held.uid if held is not None else None) or not ready():
                return True
            self._reduction, self._slot = False, None
            return False

    def forget_index(self) -> None:
        """Drop the open index: the next use opens it afresh (after a rebuild elsewhere)."""
        if self._slot is not None:
            self._slot.forget()

    def adopt_reduction(self, red: Reduction) -> None:
        """A PCA just stored (:meth:`lookalike.verbs.maintenance.IndexMaintenance.train_reduction`):
        kept, and the open index dropped, its width is the old one."""
        self._reduction, self._slot = red, None

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

    def writers(self) -> AbstractContextManager[None]:
        """The exclusion an ingest or removal needs: SQLite + FAISS files have one writer
        (:func:`lookalike.store.locks.write_lock`); PostgreSQL takes any number, its transactions and row locks
        keep them apart (:mod:`lookalike.store.queue`)."""
        return self.backend.writers(self.store())

    def db_vector_writer(self, session: Session) -> Callable[[np.ndarray], np.ndarray] | None:
        """What goes into ``faces.vec`` for a new face: on PostgreSQL the vector itself, or
        its reduction when the space has one (read under a share lock, so a retraining in
        another transaction can never leave a face reduced the old way); elsewhere nothing."""
        if not self.vectors_in_db:
            return None
        from ..index import reduction

        stored = reduction.load(session, self.space_id, lock=True)
        return stored.apply_one if stored is not None else (lambda v: v)

    def after_commit(self) -> None:
        """A write was committed (a queue worker's batch): a vector store outside the
        database follows it now (the Milvus outbox); the others have nothing to do."""
        self.backend.after_commit(self.store(), self.index_slot())

    def vectors(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The stored full-width vectors of face ``ids``, in that order (the store's read)."""
        return self.store().vectors(ids)

    def calibration(self) -> Calibration:
        """Verdict thresholds of this space: stored by ``eval verify --calibrate``, else the
        measured defaults, else DeepFace's own threshold for the model. Read once (every
        search and every live match needs it), like the centroids."""
        if self._calibration is None:
            self._calibration = self._read_calibration()
        return self._calibration

    def _read_calibration(self) -> Calibration:
        # a library with no faces in this space (yet) has no calibration of its own: the
        # defaults below (verifying two photos needs no corpus)
        with self.session() as session:
            space = space_rows.get_space(session, self.space.key)
            row = space_rows.calibration(session, space.id) if space is not None else None
        if row is not None:
            return Calibration(row.threshold, row.floor, row.source)
        if self.space.key in config.DEFAULT_CALIBRATIONS:
            t, f = config.DEFAULT_CALIBRATIONS[self.space.key]
            return Calibration(t, f, "lookalike default, measured on lfw-dev")
        from deepface.modules.verification import find_threshold

        t = 1.0 - float(find_threshold(self.space.model, "cosine"))
        return Calibration(t, t - 0.1, f"DeepFace's default threshold for {self.space.model}; "
                                       "not calibrated (run lookalike eval verify --calibrate)")

    def save_calibration(self, threshold: float, floor: float, source: str, figures: dict) -> None:
        with self.session() as session:
            space_rows.save_calibration(session, self.space_id, threshold, floor, source, figures)
            session.commit()
        self._calibration = None

    def centroids(self, generation: int | None = None) -> dict[int | None, tuple[np.ndarray, int]]:
        """Person id (``None`` = corpus) -> (unit centroid, face count); kept, and read again
        when the space's centroid generation moved (another process ingested or removed:
        a reader on PostgreSQL has no index file whose change would tell it). A caller that
        has just read the generation (a search's answer rows) passes it: no query then
        while it has not moved."""
        if generation is not None and self._centroids is not None and generation == self._centroid_generation:
            return self._centroids
        with self.session() as session:
            if generation is None:
                generation = centroid_rows.centroid_generation(session, self.existing_space_id())
            if self._centroids is None or generation != self._centroid_generation:
                self._centroids = centroid_rows.centroids(session, self.existing_space_id())
                self._centroid_generation = generation
        return self._centroids

    def centroid_means(self, names: tuple[str, ...] | list[str] = (), audience: Audience = Audience.operator) -> dict:
        """Mean similarity of each group's faces to its own centroid (``None`` = the corpus
        ``audience`` may see): :func:`lookalike.query.shown.centroid_means`."""
        with self.session() as session:
            return shown.centroid_means(session, self.existing_space_id(), names, Audience.of(audience))

    def corpus_centroid(self, audience: Audience = Audience.operator) -> tuple[np.ndarray, int] | None:
        """The unit average of the faces ``audience`` may see and their count, or ``None``
        (no face): the operator's is the kept corpus centroid (:meth:`centroids`); a
        visitor's leaves out the people who withhold consent (:mod:`lookalike.store.consent`)."""
        audience = Audience.of(audience)
        if audience is Audience.operator:
            return self.centroids().get(None)
        with self.session() as session:
            return shown.visible_corpus(session, self.existing_space_id(), audience)

    def allowed_face_ids(self, filters: tuple[Filter, ...] | list[Filter] = (),
                         audience: Audience = Audience.operator) -> np.ndarray | None:
        """Face ids whose person passes the metadata filters and ``audience`` may see;
        ``None`` when unfiltered."""
        audience = Audience.of(audience)
        if not filters and audience is Audience.operator:
            return None
        with self.session() as session:
            return shown.allowed_face_ids(session, self.existing_space_id(), filters, audience)

    def shown(self, filters: tuple[Filter, ...] | list[Filter] = (), audience: Audience = Audience.operator,
              at: int | None = None) -> Shown:
        """What a search for ``audience`` with ``filters`` may return
        (:class:`lookalike.query.shown.Shown`), kept (:class:`lookalike.query.shown.ShownCache`):
        the last one read whatever the space's generation now, unless ``at`` names the
        generation wanted. A search checks the kept one against its answer's generation
        and asks again with ``at`` when they differ (:func:`lookalike.query.search.search_vectors`);
        other callers, who read no answer, use :meth:`allowed_face_ids` and
        :meth:`corpus_centroid`, which always read."""
        audience = Audience.of(audience)
        if not filters and audience is Audience.operator:
            return shown.NOTHING_HIDDEN
        kept = self._shown.kept(filters, audience, at)  # a warm search reads nothing here
        if kept is not None:
            return kept
        return self._shown.read(self.space_id, filters, audience, self.index.filter_on_fields)
