"""One person's faces ordered by how typical they are of that person's average face.

Outliers are flagged with a robust z-score (Iglewicz & Hoaglin): with the median and the
median absolute deviation (MAD) of the similarities to the centroid,
``z = 0.6745 (s - median) / MAD``, and a face is an outlier when ``z < -3.5``. Medians do
not move when one photo is mislabelled, so the bad photo cannot hide itself by dragging
the mean down, and nothing is flagged for people with fewer than four faces.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EmptyLibrary, NotFound
from ..store import person_rows, photo_rows
from ..store.values import Audience, decode_vector

if TYPE_CHECKING:
    from .context import SpaceContext

Z_CUTOFF = -3.5
MIN_FACES_FOR_OUTLIERS = 4


@dataclass
class PersonFace:
    face_id: int
    photo: str
    bbox: tuple[int, int, int, int]
    similarity: float  # to the person's centroid
    robust_z: float | None
    outlier: bool


@dataclass
class PersonReport:
    name: str
    profile: dict
    faces: list[PersonFace] = field(default_factory=list)

    def figures(self) -> dict:
        """How tight the person's faces are around their average face: how many, the mean,
        median and lowest similarity to it, and how many are flagged (the CLI's, the HTTP
        API's and the operator page's figures, computed here once)."""
        sims = [f.similarity for f in self.faces]
        return {"faces": len(sims),
                "mean_similarity": round(float(np.mean(sims)), 6) if sims else None,
                "median_similarity": round(float(np.median(sims)), 6) if sims else None,
                "min_similarity": min(sims) if sims else None,
                "outliers": sum(f.outlier for f in self.faces) if len(sims) >= MIN_FACES_FOR_OUTLIERS else None}

    def to_dict(self) -> dict:
        return {"name": self.name, "profile": self.profile, "faces": [asdict(f) for f in self.faces],
                "centroid": self.figures()}


@dataclass(frozen=True)
class Typicality:
    """How typical each of one person's faces is of their average face."""

    similarity: np.ndarray  # each face's cosine to the faces' own centroid
    robust_z: np.ndarray | None  # rounded to 3 places (as shown); None under MIN_FACES_FOR_OUTLIERS faces
    outlier: np.ndarray  # bool: robust_z < Z_CUTOFF


def typicality(vectors: np.ndarray) -> Typicality:
    """The one outlier rule: ``lookalike person``'s flags, the faces an average face leaves
    out and ``explore outliers`` all come from here, so they always agree (the z-score is
    rounded before the cut, as it is shown)."""
    mean = vectors.sum(axis=0)
    sims = vectors @ (mean / (np.linalg.norm(mean) or 1.0))
    z = robust_z(sims)
    if z is None:
        return Typicality(sims, None, np.zeros(len(sims), dtype=bool))
    z = np.round(z, 3)
    return Typicality(sims, z, z < Z_CUTOFF)


def robust_z(values: np.ndarray) -> np.ndarray | None:
    if len(values) < MIN_FACES_FOR_OUTLIERS:
        return None
    median = np.median(values)
    mad = np.median(np.abs(values - median))
    if mad == 0:
        return np.zeros_like(values)
    return 0.6745 * (values - median) / mad


def person_report(view: SpaceContext, name: str, audience: Audience = Audience.operator) -> PersonReport:
    """The person's profile and faces, most typical first. A person the audience may not
    see is not found, in the same words as a person who is not there."""
    audience = Audience.of(audience)
    with view.session() as session:
        person = person_rows.person_seen(session, name, audience)
        if person is None:
            raise NotFound.person(name)
        profile = {k: getattr(person, k) for k in ("display_name", "role", "organisation", "story",
                                                   "consent_display", "source_url", "license")}
        profile["tags"] = json.loads(person.tags) if person.tags else []
    report = PersonReport(name, profile)
    try:
        space_id = view.row.existing_space_id()
    except EmptyLibrary:  # a profile written before any face was: the person, no faces
        return report
    with view.session() as session:
        rows = photo_rows.person_face_rows(session, space_id, person.id)
    if not rows:
        return report
    # the centroid from the rows just read, not the view's cached sums: another server
    # process may have added this person's photos since this one cached them
    typical = typicality(np.stack([decode_vector(r[6]) for r in rows]))
    for i in np.argsort(-typical.similarity):
        r = rows[i]
        zi = None if typical.robust_z is None else float(typical.robust_z[i])
        report.faces.append(PersonFace(int(r[0]), r[1], (r[2], r[3], r[4], r[5]),
                                       round(float(typical.similarity[i]), 6), zi, bool(typical.outlier[i])))
    return report


def montage(report: PersonReport, path: str | Path) -> None:
    from ..faces.montage import Tile, render

    tiles = [Tile(f.photo, f.bbox, f"{f.similarity:.3f}" + (" outlier" if f.outlier else ""), f.outlier)
             for f in report.faces]
    render(tiles, path, title=f"The many faces of {report.profile.get('display_name') or report.name}")
