"""Embedding spaces and what each keeps beside its faces: calibration and the stored reduction."""

from __future__ import annotations

import json
from typing import Protocol

import numpy as np
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from .schema import (
    Calibration,
    Face,
    Photo,
    Reduction,
    Space,
)
from .values import ReductionKind


def get_space(session: Session, key: str) -> Space | None:
    return session.scalar(select(Space).where(Space.key == key))


def space_by_id(session: Session, space_id: int) -> Space:
    """The space ``space_id``, which must exist (a queue row's: the foreign key says so)."""
    return session.get_one(Space, space_id)


def list_spaces(session: Session) -> list[Space]:
    return list(session.scalars(select(Space).order_by(Space.id)))


def create_space(session: Session, key: str, model: str, detector: str, aligner: str,
                 dim: int) -> Space:
    space = Space(key=key, model=model, detector=detector, aligner=aligner, dim=dim,
                  metric="ip", normalisation="l2")
    session.add(space)
    session.flush()
    return space


def delete_space(session: Session, space_id: int) -> tuple[int, int]:
    """Every row of one embedding space (photos, faces, estimates, centroids, calibration,
    reduction, queue: all cascade from the space row); returns (photos, faces) removed."""
    photos = session.scalar(select(func.count(Photo.id)).where(Photo.space_id == space_id)) or 0
    faces = session.scalar(select(func.count(Face.id)).where(Face.space_id == space_id)) or 0
    session.execute(delete(Face).where(Face.space_id == space_id))
    session.execute(delete(Photo).where(Photo.space_id == space_id))
    session.execute(delete(Space).where(Space.id == space_id))
    return int(photos), int(faces)


def calibration(session: Session, space_id: int) -> Calibration | None:
    return session.get(Calibration, space_id)


def save_calibration(session: Session, space_id: int, threshold: float, floor: float, source: str,
                     figures: dict) -> None:
    row = session.get(Calibration, space_id) or Calibration(space_id=space_id)
    row.threshold, row.floor, row.source = float(threshold), float(floor), source
    row.figures = json.dumps(figures)
    session.add(row)


def reduction_row(session: Session, space_id: int, lock: bool = False) -> Reduction | None:
    """The space's stored reduction row, if any. ``lock`` (PostgreSQL only) reads it
    ``FOR SHARE``: held for the rest of the caller's transaction."""
    query = select(Reduction).where(Reduction.space_id == space_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return session.scalar(query)


def reduction_uid(session: Session, space_id: int) -> str | None:
    """The uid of the space's stored reduction, or None: what a reader compares with its own."""
    return session.scalar(select(Reduction.uid).where(Reduction.space_id == space_id))


class ReductionFields(Protocol):
    """A trained reduction as the store writes it (``lookalike.index.reduction.Reduction``
    is one)."""

    @property
    def uid(self) -> str: ...
    @property
    def dim_in(self) -> int: ...
    @property
    def dim_out(self) -> int: ...
    @property
    def mean(self) -> np.ndarray: ...
    @property
    def components(self) -> np.ndarray: ...
    @property
    def trained_on(self) -> int: ...
    @property
    def explained(self) -> float: ...


def save_reduction(session: Session, space_id: int, reduction: ReductionFields,
                   kind: ReductionKind = ReductionKind.pca) -> None:
    """The space's reduction row := ``reduction`` (inserted or replaced; ``mean`` and
    ``components`` stored as little-endian float32), flushed; the caller commits. On
    PostgreSQL the reductions table is first locked ``IN EXCLUSIVE MODE`` (waiting for
    writers holding :func:`reduction_row`'s share lock) until that commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE reductions IN EXCLUSIVE MODE"))  # waits for writers using the old one
    row = session.get(Reduction, space_id) or Reduction(space_id=space_id)
    row.uid, row.kind, row.dim_in, row.dim_out = reduction.uid, kind.value, reduction.dim_in, reduction.dim_out
    row.mean = np.asarray(reduction.mean, dtype="<f4").tobytes()
    row.components = np.asarray(reduction.components, dtype="<f4").tobytes()
    row.trained_on, row.explained = reduction.trained_on, reduction.explained
    session.add(row)
    session.flush()
