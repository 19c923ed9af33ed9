"""What a space's stored faces say, kept between searches: calibration, centroids and
what an audience may see.

:class:`SpaceFacts` is one of the four parts of a space's view
(:class:`lookalike.verbs.space.SpaceView`), beside its vectors
(:class:`lookalike.index.space_vectors.SpaceVectors`), its row and its models. Every search and every
live match needs the calibration and the centroids, and a visitor's search what it may
show (:mod:`lookalike.query.shown`): each is read once and read again only when the
space's generation says it moved. It is handed the space's row and vectors (the index
layer's, below it), never the view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import config
from ..store import centroid_rows, space_rows
from ..store.values import Audience
from . import shown
from .search import Calibration

if TYPE_CHECKING:
    from ..index.space_vectors import SpaceRow, SpaceVectors
    from .search import Filter
    from .shown import Shown


class SpaceFacts:
    """The calibration, centroids and audiences' views of one space, each read on first use."""

    def __init__(self, row: SpaceRow, vectors: SpaceVectors) -> None:
        self.row, self._vectors = row, vectors
        self._centroids: dict | None = None
        self._centroid_generation = -1  # of the centroids kept
        self._calibration: Calibration | None = None
        self._shown = shown.ShownCache(row.session)  # (filters, audience) -> what they let a search return

    def forget(self) -> None:
        """A write changed the faces: the centroids and what audiences may see are read again
        (a calibration is only changed by :meth:`save_calibration`)."""
        self._centroids = None
        self._shown.clear()

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
        space, space_id, row = self.row.space, self.row.known_id, None
        if space_id is not None:
            with self.row.session() as session:
                row = space_rows.calibration(session, space_id)
        if row is not None:
            return Calibration(row.threshold, row.floor, row.source)
        if space.key in config.DEFAULT_CALIBRATIONS:
            t, f = config.DEFAULT_CALIBRATIONS[space.key]
            return Calibration(t, f, "lookalike default, measured on lfw-dev")
        from deepface.modules.verification import find_threshold

        t = 1.0 - float(find_threshold(space.model, "cosine"))
        return Calibration(t, t - 0.1, f"DeepFace's default threshold for {space.model}; "
                                       "not calibrated (run lookalike eval verify --calibrate)")

    def save_calibration(self, threshold: float, floor: float, source: str, figures: dict) -> None:
        with self.row.session() as session:
            space_rows.save_calibration(session, self.row.space_id, threshold, floor, source, figures)
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
        with self.row.session() as session:
            space_id = self.row.existing_space_id()
            if generation is None:
                generation = centroid_rows.centroid_generation(session, space_id)
            if self._centroids is None or generation != self._centroid_generation:
                self._centroids = centroid_rows.centroids(session, space_id)
                self._centroid_generation = generation
        return self._centroids

    def centroid_means(self, names: tuple[str, ...] | list[str] = (), audience: Audience = Audience.operator) -> dict:
        """Mean similarity of each group's faces to its own centroid (``None`` = the corpus
        ``audience`` may see): :func:`lookalike.query.shown.centroid_means`."""
        with self.row.session() as session:
            return shown.centroid_means(session, self.row.existing_space_id(), names, Audience.of(audience))

    def corpus_centroid(self, audience: Audience = Audience.operator) -> tuple[np.ndarray, int] | None:
        """The unit average of the faces ``audience`` may see and their count, or ``None``
        (no face): the operator's is the kept corpus centroid (:meth:`centroids`); a
        visitor's leaves out the people who withhold consent (:mod:`lookalike.store.consent`)."""
        audience = Audience.of(audience)
        if audience is Audience.operator:
            return self.centroids().get(None)
        with self.row.session() as session:
            return shown.visible_corpus(session, self.row.existing_space_id(), audience)

    def allowed_face_ids(self, filters: tuple[Filter, ...] | list[Filter] = (),
                         audience: Audience = Audience.operator) -> np.ndarray | None:
        """Face ids whose person passes the metadata filters and ``audience`` may see;
        ``None`` when unfiltered."""
        audience = Audience.of(audience)
        if not filters and audience is Audience.operator:
            return None
        with self.row.session() as session:
            return shown.allowed_face_ids(session, self.row.existing_space_id(), filters, audience)

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
        return self._shown.read(self.row.space_id, filters, audience, self._vectors.index.filter_on_fields)
