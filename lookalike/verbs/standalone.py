"""Verbs that need no library: a photo's faces estimated, and the estimates measured
against labels.

``lookalike analyze`` and ``lookalike eval attributes`` open no library, but they are
verbs like the others: a shell names what it wants (the photo, the analyzer, the
detector) and gets a result, and the wiring of the models to the stages is here, once, for
every shell (architecture review 56, M9: the CLI built the analyzer and the detector
itself, and checked the detector's weights twice). A library's own
:meth:`lookalike.verbs.library.Library.analyze` uses its kept, warm models instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import DEFAULT_DETECT_MAX_SIDE, DEFAULT_DETECTOR, DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..analysis import Analyzer, AnalyzerName
    from ..analysis.photo import PhotoAnalysis
    from ..faces.detect import Detector
    from ..faces.images import QueryPhoto
    from ..measure.attributes import AttributesReport, Labelled


def _models(analyzer: AnalyzerName | str, detector: str | None) -> tuple[Analyzer, Detector]:
    """The analyzer (``auto`` resolved) and the detector, their weights checked: a missing
    one is a ``ModelMissing`` naming the install command, before any photo is read."""
    from .. import analysis
    from ..faces import detect

    return (analysis.build(analysis.AnalyzerName.named(analyzer)),
            detect.build(detector or DEFAULT_DETECTOR, DEFAULT_DETECT_MAX_SIDE))


def analyze_file(photo: QueryPhoto, analyzer: AnalyzerName | str = "auto", detector: str | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoAnalysis:
    """Estimated age, gender and emotion of every face in ``photo``, largest first
    (estimates, never facts), found by ``detector`` (default: yunet). Never stored."""
    from ..analysis.photo import analyze_photo

    model, found_by = _models(analyzer, detector)
    return analyze_photo(photo, model, found_by, max_pixels)


def evaluate_attributes(rows: list[Labelled], analyzer: AnalyzerName | str = "auto", detector: str | None = None,
                        crops: bool = False, progress: Callable[[], object] | None = None) -> AttributesReport:
    """The estimates of each labelled photo's largest face (``crops``: the photos are face
    crops, not searched) against its labels, overall and per group."""
    from ..measure import attributes

    model, found_by = _models(analyzer, detector)
    return attributes.evaluate(rows, model, found_by, crops=crops, progress=progress)
