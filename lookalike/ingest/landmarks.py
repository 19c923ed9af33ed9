"""Dense landmarks for faces stored without them: ``lookalike landmarks backfill``.

Libraries ingested before landmarks were stored (or while the model was not installed)
have faces without points. The backfill reads each such face's photo again, finds the
face with the space's own detector (the stored box says which of the photo's faces it
is), fits the landmarks and stores them, one commit per batch of faces. It is resumable
by construction: only faces still without points are listed, so a run stopped at any
moment goes on where it stopped when started again. Photos whose file is gone or whose
bytes changed since they were stored are left alone and counted (their faces keep no
points; ``reembed`` or a new ingest is the way to refresh them).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadImage
from ..faces import landmarks as dense
from ..faces.detect import Detection, clip_box, iou
from ..faces.images import decode
from ..store import landmark_rows
from ..store.values import encode_points

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from ..faces.detect import Detector

log = logging.getLogger(__name__)

MATCH_IOU = 0.3  # a detection is the stored face when their boxes overlap at least this much


@dataclass
class BackfillReport:
    """What a backfill did, in faces."""

    faces: int = 0  # faces of the space
    missing: int = 0  # without landmarks before the run
    filled: int = 0
    gone: list[str] = field(default_factory=list)  # photos whose file is no longer there
    changed: list[str] = field(default_factory=list)  # photos whose bytes changed since ingest
    unreadable: list[str] = field(default_factory=list)
    remaining: int = 0  # still without landmarks after the run
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"faces": self.faces, "missing": self.missing, "filled": self.filled, "gone": self.gone,
                "changed": self.changed, "unreadable": self.unreadable, "remaining": self.remaining,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class BackfillSource:
    """Where the faces are and how they were found: the space's sessions, id, detector and
    pixel limit (what ingest used, so the boxes agree)."""

    sessions: Callable[[], AbstractContextManager[Session]]
    space_id: int
    detector: Detector
    max_pixels: int
    threads: int | None = None


def backfill(source: BackfillSource, *, batch: int = 200, limit: int | None = None,
             progress: Callable[[int], None] | None = None) -> BackfillReport:
    """Fill the space's faces that lack landmarks, ``batch`` faces per commit, at most
    ``limit`` faces (None: all). ``progress(n)`` is called with the faces done after each
    commit. Raises :class:`~lookalike.errors.ModelMissing` (with the install command)
    before touching anything when the landmark model is not installed."""
    dense.require()
    started = time.perf_counter()
    report = BackfillReport()
    with source.sessions() as session:
        report.faces, report.missing = landmark_rows.count_missing(session, source.space_id, dense.MODEL)
    after, done = 0, 0
    while limit is None or done < limit:
        size = batch if limit is None else min(batch, limit - done)
        with source.sessions() as session:
            todo = landmark_rows.faces_missing(session, source.space_id, dense.MODEL, after, size)
        if not todo:
            break
        after = todo[-1].face_id
        points = _fit(source, todo, report)
        with source.sessions() as session:
            landmark_rows.store_points(session, points, dense.MODEL)
            session.commit()
        report.filled += len(points)
        done += len(todo)
        if progress is not None:
            progress(done)
    with source.sessions() as session:
        report.remaining = landmark_rows.count_missing(session, source.space_id, dense.MODEL)[1]
    report.seconds = time.perf_counter() - started
    return report


def _fit(source: BackfillSource, todo: list[landmark_rows.Missing], report: BackfillReport) -> dict[int, bytes]:
    """Encoded points for the faces of ``todo`` whose photo is still the one stored."""
    by_photo: dict[int, list[landmark_rows.Missing]] = {}
    for face in todo:
        by_photo.setdefault(face.photo_id, []).append(face)
    out: dict[int, bytes] = {}
    for faces in by_photo.values():
        path = faces[0].path
        rgb = _read(path, faces[0].sha256, source.max_pixels, report)
        if rgb is None:
            continue
        found = source.detector.detect(rgb)
        height, width = rgb.shape[:2]
        points = dense.landmarks_of([(rgb, _matching(face.box, found, width, height)) for face in faces],
                                    threads=source.threads)  # a photo's faces through the mesh together
        for face, face_points in zip(faces, points):
            out[face.face_id] = encode_points(face_points, face.box)
    return out


def _read(path: str, sha256: str | None, max_pixels: int, report: BackfillReport) -> np.ndarray | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        report.gone.append(path)
        return None
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        report.changed.append(path)
        return None
    try:
        return decode(data, path, max_pixels).rgb
    except BadImage as err:  # it decoded at ingest: a damaged disk, a changed decoder
        log.warning("%s", err)
        report.unreadable.append(path)
        return None


def _matching(box: tuple[int, int, int, int], found: list[Detection], width: int, height: int) -> Detection:
    """The detection that is the stored face (the best overlap), else the stored box alone
    (the mesh's second pass re-cuts its crop from its own points, so a box is enough)."""
    best, best_iou = None, MATCH_IOU
    for d in found:
        clipped = clip_box(d.box, width, height)
        if clipped is None:
            continue
        overlap = iou(box, clipped)
        if overlap >= best_iou:
            best, best_iou = d, overlap
    return best if best is not None else Detection(box=box, confidence=0.0)

