"""Query photo -> its faces -> nearest corpus faces.

The query photo is decoded in memory and never written anywhere (no temp file, no row,
no log line with its pixels). JSON keys are a stable contract: later versions add keys,
never rename them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import BadImage, EmptyLibrary, NoFace
from .faces import FacesMode
from .store import repo


@dataclass
class Match:
    rank: int
    person: str | None
    photo: str
    face_id: int
    similarity: float  # cosine, higher is closer


@dataclass
class QueryFace:
    bbox: tuple[int, int, int, int]
    confidence: float
    matches: list[Match] = field(default_factory=list)


@dataclass
class SearchResult:
    query: str
    faces: list[QueryFace]

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "faces": [
                {"bbox": list(f.bbox), "confidence": round(f.confidence, 4),
                 "matches": [asdict(m) for m in f.matches]}
                for f in self.faces
            ],
        }


def load_query(photo, max_pixels: int) -> tuple[np.ndarray, str]:  # noqa: ANN001
    """RGB pixels of a query given as a path, bytes or an array, and a name for it."""
    from .images import decode, decode_file

    if isinstance(photo, np.ndarray):
        if photo.ndim != 3 or photo.shape[2] != 3:
            raise BadImage("<array>", f"expected an (H, W, 3) RGB array, got shape {photo.shape}")
        return np.ascontiguousarray(photo, dtype=np.uint8), "<array>"
    if isinstance(photo, (bytes, bytearray)):
        return decode(bytes(photo), "<upload>", max_pixels).rgb, "<upload>"
    name = str(Path(photo))
    if not os.path.isfile(name):
        raise BadImage(name, "no such file")
    return decode_file(name, max_pixels).rgb, name


def search(library, photo, k: int) -> SearchResult:  # noqa: ANN001
    """The ``k`` nearest corpus faces to every face in ``photo``."""
    if k < 1:
        raise ValueError("k must be at least 1")
    index = library.index  # fails fast, before any model loads, on an empty library
    if index.ntotal == 0:
        raise EmptyLibrary(f"{library.settings.db_url}: the library has no faces yet; "
                           "run: lookalike ingest PATH")
    rgb, name = load_query(photo, library.settings.max_pixels)
    faces = library.pipeline.faces(rgb, FacesMode.all)
    if not faces:
        raise NoFace(name, library.space.detector)
    sims, ids = index.search(np.stack([f.embedding for f in faces]), k)
    with library.session() as session:
        rows = repo.face_rows(session, np.unique(ids[ids >= 0]))
    out = []
    for face, row_sims, row_ids in zip(faces, sims, ids):
        matches = []
        for sim, fid in zip(row_sims, row_ids):
            hit = rows.get(int(fid))
            if hit is None:  # -1 padding, or a face removed since the index was loaded
                continue
            matches.append(Match(len(matches) + 1, hit.person, hit.photo, hit.face_id,
                                 round(float(sim), 6)))
        out.append(QueryFace(face.bbox, face.confidence, matches))
    return SearchResult(name, out)
