"""``lookalike analyze PHOTO``: every face of a photo with its estimates; no library needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import MAX_QUERY_FACES
from .base import Analyzer, Estimate

if TYPE_CHECKING:
    from ..faces.detect import Box, Detector
    from ..faces.images import QueryPhoto


@dataclass(frozen=True)
class FaceEstimate:
    bbox: tuple[int, int, int, int]  # x, y, w, h in the photo
    estimate: Estimate

    def to_dict(self) -> dict:
        return {"bbox": list(self.bbox), **self.estimate.to_dict()}


@dataclass(frozen=True)
class PhotoAnalysis:
    """Every face of one photo with its estimates, and what made them: the answer of
    ``lookalike analyze`` and ``POST /v1/analyze`` alike (:meth:`to_dict`)."""

    photo: str  # the photo's name (a path, or an upload's file name)
    analyzer: str
    model: str  # what the analyzer runs, in words
    faces: list[FaceEstimate]  # largest first
    faces_not_analysed: int = 0  # found past MAX_QUERY_FACES, the smallest

    def to_dict(self) -> dict:
        return {"photo": self.photo, "analyzer": self.analyzer, "model": self.model,
                "faces": [f.to_dict() for f in self.faces], "faces_not_analysed": self.faces_not_analysed}


def analyze_photo(photo: QueryPhoto, analyzer: Analyzer, detector: Detector,
                  max_pixels: int = 100_000_000, boxes: Sequence[Box] | None = None) -> PhotoAnalysis:
    """The estimates of every face, largest first, or of the faces at ``boxes`` (found
    before, e.g. by the search the web app shows), at most :data:`~lookalike.config.MAX_QUERY_FACES`
    of them (the others counted). Raises :class:`NoFace`.

    ``detector`` is the caller's, built once and kept: the HTTP API hands over its library's
    own, loaded and warm. Building one a photo compiled YuNet again for each request (before
    2026-12-05 22:30 UTC: an ``/v1/analyze`` p50 of ~80 ms where a search took ~8)."""
    from ..errors import NoFace
    from ..faces.detect import clip_box
    from ..faces.images import load_query

    rgb, name = load_query(photo, max_pixels)
    height, width = rgb.shape[:2]
    if boxes is None:
        found = detector.detect(rgb)
        if not found:
            raise NoFace(name, detector.name)
        boxes = [d.box for d in found]
    more = max(0, len(boxes) - MAX_QUERY_FACES)
    boxes = [clip_box(b, width, height) or b for b in list(boxes)[:MAX_QUERY_FACES]]
    faces = [FaceEstimate(b, e) for b, e in zip(boxes, analyzer.analyze(rgb, list(boxes)))]
    return PhotoAnalysis(name, analyzer.name, analyzer.description, faces, more)
