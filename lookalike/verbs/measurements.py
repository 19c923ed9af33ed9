"""``lib.measure``: what the library can say about itself, measured on its own faces.

Exploration (the corpus's faces, its main axes, clusters, outliers: :mod:`lookalike.measure.explore`)
and evaluation (verification on labelled pairs and its calibration, identity retrieval:
:mod:`lookalike.measure.evaluate`) of the current embedding space, one verb each, so the
shells (``lookalike explore``, ``lookalike eval``, the web app's explore page) call the
library and never hand a stage its view (architecture review 50, H2). The verbs that run a
model take the library's lock (:func:`lookalike.verbs.space.serialised`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .space import serialised

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from ..measure.evaluate import Pair, RetrievalReport, RetrievalRow, VerifyReport
    from ..measure.explore import ClusterReport, Corpus, Outlier, PcaReport
    from .space import SpaceView


class Measurements:
    """The measurements of one embedding space of a library."""

    def __init__(self, view: SpaceView, calls: AbstractContextManager[Any]) -> None:
        self.view, self._calls = view, calls

    @property
    def calls(self) -> AbstractContextManager[Any]:
        """The library's one-call-at-a-time lock (:func:`lookalike.verbs.space.serialised`)."""
        return self._calls

    # -- exploration: the stored faces only, no model ------------------------------------
    def corpus(self) -> Corpus:
        """Every face of the space with its person and vector."""
        from ..measure import explore

        return explore.corpus(self.view)

    def pca(self, components: int = 5) -> tuple[PcaReport, Corpus]:
        """The face space's main axes, each with the faces at its two ends."""
        from ..measure import explore

        return explore.pca(self.view, components)

    def clusters(self, min_size: int = 2) -> tuple[ClusterReport, Corpus]:
        """Groups of faces that lie close together, whoever they are filed under."""
        from ..measure import explore

        return explore.clusters(self.view, min_size)

    def outliers(self, limit: int = 20) -> list[Outlier]:
        """The faces least like their own person's others: mislabelled or odd photos."""
        from ..measure import explore

        return explore.outliers(self.view, limit)

    # -- evaluation: photos through the space's models -----------------------------------
    @serialised
    def verify(self, pairs: list[Pair], workers: int = 0) -> tuple[VerifyReport, np.ndarray, np.ndarray]:
        """Verification accuracy on labelled ``pairs`` of photos: the report, each pair's
        similarity and whether it is the same person. A library with no faces can be
        evaluated too (nothing is written: :meth:`calibrate` stores the thresholds)."""
        from ..measure import evaluate

        return evaluate.verify(self.view, pairs, workers=workers)

    def calibrate(self, report: VerifyReport, pairs: Path) -> None:
        """Store ``report``'s best threshold and floor as the space's verdict thresholds;
        refused (nothing stored) when the pairs could not tell people apart: every verdict
        of the library would ride on a threshold that is not above the floor."""
        if not report.threshold > report.floor:
            raise ConfigError(f"{pairs}: the best threshold {report.threshold:.4f} is not above the floor "
                              f"{report.floor:.4f} (the median different-person similarity): these pairs cannot "
                              "tell people apart; nothing stored")
        self.view.row.ensure_space()  # a library with no faces yet keeps its calibration too
        self.view.facts.save_calibration(report.threshold, report.floor, f"eval verify {pairs.name}", report.to_dict())

    @serialised
    def retrieval(self, rows: list[RetrievalRow], workers: int = 0) -> RetrievalReport:
        """Identity retrieval: every query row's photo searched in this library (which holds
        the rows' gallery and distractors)."""
        from ..measure import evaluate

        return evaluate.retrieval(self.view, rows, workers=workers)
