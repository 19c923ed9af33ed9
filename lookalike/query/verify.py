"""Are two photos of the same person? The largest face of each, one similarity, a verdict
by the library's calibrated threshold (what ``POST /v1/verify`` answers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NoFace
from ..faces.images import open_query
from ..faces.pipeline import FacesMode

if TYPE_CHECKING:
    from ..faces.images import QueryPhoto
    from ..faces.pipeline import Face
    from .context import SpaceContext
    from .search import Verdict


@dataclass(frozen=True)
class Verification:
    similarity: float  # cosine of the two unit vectors
    verdict: Verdict  # same_person / lookalike / weak, as search's verdicts
    same_person: bool
    threshold: float  # similarity >= threshold: same person
    floor: float  # below: not even a look-alike
    calibration: str  # where the threshold comes from
    bbox_a: tuple[int, int, int, int]
    bbox_b: tuple[int, int, int, int]

    def to_dict(self) -> dict:
        return {"similarity": round(self.similarity, 6), "verdict": self.verdict,
                "same_person": self.same_person, "threshold": self.threshold, "floor": self.floor,
                "calibration": self.calibration, "bbox_a": list(self.bbox_a), "bbox_b": list(self.bbox_b)}


def largest_face(view: SpaceContext, photo: QueryPhoto) -> tuple[Face, tuple[int, int, int, int]]:
    """The largest face of ``photo`` and its box in the photo as given, read as a search reads
    a query (a draft decode, a small face re-aligned from the full photo): the same photo
    embeds alike in a search, a verification and a path. :class:`NoFace` when it has none."""
    query = open_query(photo, view.settings.max_pixels, view.settings.detect_max_side)
    faces = view.models.pipeline.query_faces(query, FacesMode.largest)
    if not faces.faces:
        raise NoFace(query.name, view.space.detector)
    return faces.faces[0], faces.in_photo(faces.faces[0].bbox)


def verify(view: SpaceContext, photo_a: QueryPhoto, photo_b: QueryPhoto) -> Verification:
    """The largest face of each photo, compared in the library's embedding space."""
    (face_a, box_a), (face_b, box_b) = largest_face(view, photo_a), largest_face(view, photo_b)
    similarity = float(face_a.embedding @ face_b.embedding)
    cal = view.facts.calibration()
    verdict = cal.verdict(similarity)
    return Verification(similarity, verdict, similarity >= cal.threshold, cal.threshold, cal.floor,
                        cal.source, box_a, box_b)
