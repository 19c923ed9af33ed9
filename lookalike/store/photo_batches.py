"""A batch of ingested photos written in the caller's transaction: every row it makes.

Ingest decides what each photo is (its status, faces, vectors, estimates, landmarks); the
rows are built here, in the store, from the narrow view of a result declared below
(:class:`PhotoToWrite`: ``lookalike.ingest.report.Processed`` is one), so no ORM class is
named outside this package. Both writers use it: the local run's single writer
(``lookalike.ingest.writer``) and a PostgreSQL queue worker in its claiming transaction
(``lookalike.ingest.queued``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from . import centroid_rows, landmark_rows, person_rows, photo_rows
from .bulk import insert_many, insert_with_ids
from .schema import Face, FaceEstimate, FaceLandmarks, Photo
from .values import FaceFound, decode_vector

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from .profiles import Profile

class StatusValue(Protocol):
    @property
    def value(self) -> str: ...


class PhotoToWrite(Protocol):
    """What the store reads of one ingested photo."""

    @property
    def path(self) -> str: ...
    @property
    def person(self) -> str | None: ...
    @property
    def profile(self) -> Profile | None: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def status(self) -> StatusValue: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def faces(self) -> Sequence[FaceFound]: ...
    @property
    def replaces(self) -> bool: ...  # a row for this path exists (changed file, or an error retried)
    @property
    def faces_mode(self) -> str | None: ...  # what the models read it with (None: not read by them)
    @property
    def analyzed(self) -> bool: ...  # its faces were given estimates


def store_batch(session: Session, space_id: int, batch: Sequence[PhotoToWrite], people: dict[str, int],
                landmark_model: str, db_vector: Callable[[np.ndarray], np.ndarray] | None = None,
                ) -> tuple[list[int], np.ndarray, np.ndarray | None]:
    """Write a batch of results in the caller's transaction: the rows a changed file
    replaces go, people are created (in name order, so concurrent workers on PostgreSQL
    never wait on each other in a cycle), photos, faces (with ``db_vector(v)`` in
    ``faces.vec`` when given), estimates, landmarks (of ``landmark_model``) and centroid
    sums. ``people`` caches name -> id across batches. Returns the face ids to drop from
    and add to an index file, and the new vectors; the caller commits."""
    import numpy as np

    stale: list[int] = []
    for r in batch:
        if r.replaces:  # changed file, or a retry of an error: the old row goes
            old = photo_rows.photo_by_path(session, space_id, r.path)
            if old is not None:
                stale.extend(photo_rows.delete_photo(session, old))
    session.flush()
    by_name = person_rows.person_ids(session, [r.person for r in batch if r.person and r.profile is None], people)
    for name, r in sorted(((r.person, r) for r in batch if r.person and r.profile is not None), key=lambda n: n[0]):
        by_name[name] = person_rows.upsert_person(session, name, r.profile, people)  # its profile written
    ids = [by_name[r.person] if r.person else None for r in batch]
    photo_ids = insert_with_ids(session, Photo, [
        {"space_id": space_id, "path": r.path, "sha256": r.sha256, "size_bytes": r.size, "width": r.width,
         "height": r.height, "person_id": pid, "status": r.status.value, "reason": r.reason,
         "faces_mode": r.faces_mode, "analyzed": r.analyzed}
        for r, pid in zip(batch, ids)])  # the faces refer to them
    # each face with its person and photo: (person id, photo id, (box, confidence, vector bytes,
    # estimate, landmarks))
    found = [(pid, photo_id, face) for r, pid, photo_id in zip(batch, ids, photo_ids) for face in r.faces]
    face_ids = insert_with_ids(session, Face, [
        {"space_id": space_id, "photo_id": photo_id, "person_id": pid, "x": int(x), "y": int(y), "w": int(w),
         "h": int(h), "confidence": float(conf), "embedding": blob,
         "vec": db_vector(decode_vector(blob)) if db_vector is not None else None}
        for pid, photo_id, ((x, y, w, h), conf, blob, _, _) in found])
    estimates = [estimate for _, _, (_, _, _, estimate, _) in found]
    points = [landmarks for _, _, (_, _, _, _, landmarks) in found]
    insert_many(session, FaceEstimate, photo_rows.estimate_rows(face_ids, estimates))
    insert_many(session, FaceLandmarks, landmark_rows.landmark_rows(face_ids, points, landmark_model))
    new_ids = np.asarray(face_ids, dtype=np.int64)
    vectors: np.ndarray | None = None
    if found:
        vectors = np.stack([decode_vector(blob) for _, _, (_, _, blob, _, _) in found])
        centroid_rows.update_centroids(session, space_id, [pid for pid, _, _ in found], vectors)
    return stale, new_ids, vectors
