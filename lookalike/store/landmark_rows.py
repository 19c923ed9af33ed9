"""Faces' dense landmarks (``face_landmarks``): written at ingest, read for averages.

An average, a morph or an appearance model over thousands of corpus faces needs each
face's shape; detecting and fitting them again would cost a model run per face, so the
points are stored once, beside the face, in a compact blob (float16 relative to the
face's box: :func:`.values.encode_points`), and read back for a list of faces at once
(:func:`landmarks_of`). Rows go with their face (``ON DELETE CASCADE``): removing a person or a
photo removes their landmarks in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .schema import Face, FaceLandmarks, Photo
from .values import chunks, decode_points


def landmark_rows(face_ids: Sequence[int], points: Sequence[bytes | None], model: str) -> list[dict[str, Any]]:
    """Rows (for :func:`.bulk.insert_many`) for new faces and their encoded points;
    faces without points (the model not installed at ingest) get none: a backfill adds them."""
    return [{"face_id": fid, "model": model, "points": blob} for fid, blob in zip(face_ids, points)
            if blob is not None]


def landmarks_of(session: Session, face_ids: Iterable[int], model: str) -> dict[int, np.ndarray]:
    """Each face's stored landmarks of ``model``, (N, 2) float32 in its photo's pixel
    coordinates, by face id; faces without them (not yet backfilled) are left out."""
    ids = [int(i) for i in face_ids]
    out: dict[int, np.ndarray] = {}
    for chunk in chunks(ids):
        rows = session.execute(
            select(Face.id, Face.x, Face.y, Face.w, Face.h, FaceLandmarks.points)
            .join(FaceLandmarks, FaceLandmarks.face_id == Face.id)
            .where(Face.id.in_(chunk), FaceLandmarks.model == model))
        for fid, x, y, w, h, blob in rows:
            out[fid] = decode_points(blob, (x, y, w, h))
    return out


@dataclass(frozen=True)
class Missing:
    """A face without landmarks of a model, and where its photo is."""

    face_id: int
    photo_id: int
    path: str
    sha256: str | None  # the photo's bytes when stored: a changed file is not the face's
    box: tuple[int, int, int, int]


def faces_missing(session: Session, space_id: int, model: str, after: int = 0, limit: int = 500) -> list[Missing]:
    """Up to ``limit`` faces of the space, in id order past ``after``, without ``model``'s
    landmarks: what a backfill works through (resumable: stored ones are never listed)."""
    have = select(FaceLandmarks.face_id).where(FaceLandmarks.model == model)
    rows = session.execute(
        select(Face.id, Face.photo_id, Photo.path, Photo.sha256, Face.x, Face.y, Face.w, Face.h)
        .join(Photo, Photo.id == Face.photo_id)
        .where(Face.space_id == space_id, Face.id > after, Face.id.not_in(have))
        .order_by(Face.id).limit(limit))
    return [Missing(r[0], r[1], r[2], r[3], (r[4], r[5], r[6], r[7])) for r in rows]


def count_missing(session: Session, space_id: int, model: str) -> tuple[int, int]:
    """(faces of the space, those without ``model``'s landmarks)."""
    have = select(FaceLandmarks.face_id).where(FaceLandmarks.model == model)
    total = session.scalar(select(func.count(Face.id)).where(Face.space_id == space_id)) or 0
    missing = session.scalar(select(func.count(Face.id))
                             .where(Face.space_id == space_id, Face.id.not_in(have))) or 0
    return int(total), int(missing)


def store_points(session: Session, points: dict[int, bytes], model: str) -> None:
    """Write (or replace) encoded points of existing faces; the caller commits. A face
    deleted meanwhile (a removal while a backfill ran) is skipped."""
    if not points:
        return
    present = set(session.scalars(select(Face.id).where(Face.id.in_(list(points)))))
    for fid in sorted(present):
        session.merge(FaceLandmarks(face_id=fid, model=model, points=points[fid]))
    session.flush()
