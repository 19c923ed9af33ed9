"""The writer: the only process that writes, one transaction per batch of photos.

Photo rows, people, faces with their vectors and centroid sums are committed first, and
only then do the vectors go into the index, which is saved atomically every few seconds
and at the end: a crash at any moment loses nothing committed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from ..faces.landmarks import MODEL as LANDMARK_MODEL
from ..faults import crash_point
from ..store import centroid_rows, landmark_rows, person_rows, photo_rows
from ..store.schema import Face, Photo
from ..store.values import decode_vector
from .report import IngestReport, Outcome, Processed, Progress

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from .protocol import IngestTarget
    from .runner import IngestOptions


def store_batch(session: Session, space_id: int, batch: list[Processed], people: dict[str, int],
                db_vector: Callable[[np.ndarray], np.ndarray] | None = None,
                ) -> tuple[list[int], np.ndarray, np.ndarray | None]:
    """Write a batch of results in the caller's transaction: the rows a changed file
    replaces go, people are created (in name order, so concurrent workers on PostgreSQL
    never wait on each other in a cycle), photos, faces (with ``db_vector(v)`` in
    ``faces.vec`` when given), estimates, landmarks and centroid sums. Returns the face ids to drop
    from and add to an index file, and the new vectors; the caller commits."""
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
    photos = [Photo(space_id=space_id, path=r.path, sha256=r.sha256, size_bytes=r.size,
                    width=r.width, height=r.height, person_id=pid, status=r.status.value,
                    reason=r.reason) for r, pid in zip(batch, ids)]
    photo_rows.insert_rows(session, photos)  # ids assigned: the faces refer to them
    faces = [Face(space_id=space_id, photo_id=photo.id, person_id=pid, x=int(x), y=int(y),
                  w=int(w), h=int(h), confidence=float(conf), embedding=blob,
                  vec=db_vector(decode_vector(blob)) if db_vector is not None else None)
             for r, pid, photo in zip(batch, ids, photos)
             for (x, y, w, h), conf, blob, *_ in r.faces]
    photo_rows.insert_rows(session, faces)
    new_ids = np.asarray([f.id for f in faces], dtype=np.int64)
    photo_rows.insert_rows(session, photo_rows.estimate_rows(faces, [f[3] for r in batch for f in r.faces]))
    photo_rows.insert_rows(session, landmark_rows.landmark_rows(faces, [f[4] for r in batch for f in r.faces],
                                                                LANDMARK_MODEL))
    vectors: np.ndarray | None = None
    if faces:
        vectors = np.stack([decode_vector(f.embedding) for f in faces])
        centroid_rows.update_centroids(session, space_id, [f.person_id for f in faces], vectors)
    return stale, new_ids, vectors


class Writer:
    """The single writer: batched commits, then the index follows; every outcome reported."""

    def __init__(self, target: IngestTarget, report: IngestReport, progress: Progress, options: IngestOptions) -> None:
        self.target = target
        self.report = report
        self.progress = progress
        self.options = options
        self.buffer: list[Processed] = []
        self.people: dict[str, int] = {}
        self.last_save = time.monotonic()
        self.dirty = False

    # writer side ---------------------------------------------------------------------
    def take(self, result: Processed) -> None:
        self.buffer.append(result)
        if len(self.buffer) >= self.options.batch:
            self.flush()

    def flush(self, force_save: bool = False) -> None:
        if self.buffer:
            self._commit(self.buffer)
            self.buffer = []
        if self.dirty and (force_save or time.monotonic() - self.last_save >= self.options.save_every):
            crash_point("ingest.before_save")
            self.target.index.save()
            self.last_save = time.monotonic()
            self.dirty = False

    def _commit(self, batch: list[Processed]) -> None:
        """One transaction for the whole batch (bulk inserts), then the index follows."""
        import numpy as np

        with self.target.session() as session:
            stale, new_ids, vectors = store_batch(session, self.target.space_id, batch, self.people,
                                                  self.target.db_vector_writer(session))
            session.commit()
        crash_point("ingest.committed")
        # the database is committed: now the index may follow
        if stale:
            self.target.index.remove(np.asarray(stale, dtype=np.int64))
            self.dirty = True
        if vectors is not None:  # the batch gave faces (new_ids and vectors go together)
            self.target.index.add(new_ids, vectors)
            self.dirty = True
        for r in batch:
            self.record(Outcome(r.path, r.person, r.status, r.reason, len(r.faces), r.sha256, r.conflict))

    def record(self, outcome: Outcome) -> None:
        self.report.outcomes.append(outcome)
        self.progress.advance(outcome)
