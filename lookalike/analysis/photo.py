"""``lookalike analyze PHOTO``: every face of a photo with its estimates; no library needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Analyzer, Estimate

if TYPE_CHECKING:
    from ..faces.images import QueryPhoto


@dataclass(frozen=True)
class FaceEstimate:
    bbox: tuple[int, int, int, int]  # x, y, w, h in the photo
    estimate: Estimate

    def to_dict(self) -> dict:
        return {"bbox": list(self.bbox), **self.estimate.to_dict()}


def analyze_photo(photo: QueryPhoto, analyzer: Analyzer, detector_name: str | None = None,
                  detect_max_side: int = 1280, max_pixels: int = 100_000_000) -> tuple[str, list[FaceEstimate]]:
    """(photo name, estimates of every face, largest first). Raises :class:`NoFace`."""
    from ..config import DEFAULT_DETECTOR
    from ..errors import NoFace
    from ..faces import detect
    from ..models import registry

    detector_name = detector_name or DEFAULT_DETECTOR
    from ..faces.images import load_query

    registry.require(detector_name)
    rgb, name = load_query(photo, max_pixels)
    from ..faces.detect import clip_box

    found = detect.build(detector_name, detect_max_side).detect(rgb)
    if not found:
        raise NoFace(name, detector_name)
    height, width = rgb.shape[:2]
    boxes = [clip_box(d.box, width, height) or d.box for d in found]
    return name, [FaceEstimate(b, e) for b, e in zip(boxes, analyzer.analyze(rgb, boxes))]
