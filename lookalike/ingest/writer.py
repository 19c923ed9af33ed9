"""The writer: the only process that writes, one transaction per batch of photos.

Photo rows, people, faces with their vectors and centroid sums are committed first, and
only then do the vectors go into the index, which is saved atomically every few seconds
and at the end: a crash at any moment loses nothing committed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..faces.landmarks import MODEL as LANDMARK_MODEL
from ..faults import crash_point
from ..store import person_rows, photo_batches
from .report import IngestReport, IngestStatus, Outcome, Processed, Progress

if TYPE_CHECKING:

    from .protocol import IngestTarget
    from .runner import IngestOptions


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
        if result.status is IngestStatus.unchanged:  # a failed re-read kept what was stored: said, not stored
            if result.profile is not None and result.person:  # its manifest row's profile still counts
                with self.target.session() as session:
                    person_rows.upsert_person(session, result.person, result.profile, self.people)
                    session.commit()
            self.record(result.outcome())
            return
        self.buffer.append(result)
        if len(self.buffer) >= self.options.batch:
            self.flush()

    def flush(self, force_save: bool = False) -> None:
        if self.buffer:
            # taken first: Ctrl-C between the commit and the index's update must not have the
            # run's last flush write the committed batch again (the database is the truth; the
            # index follows it at the next open, as after a kill there)
            batch, self.buffer = self.buffer, []
            self._commit(batch)
        if self.dirty and (force_save or time.monotonic() - self.last_save >= self.options.save_every):
            crash_point("ingest.before_save")
            self.target.vectors.index.save()
            self.last_save = time.monotonic()
            self.dirty = False

    def _commit(self, batch: list[Processed]) -> None:
        """One transaction for the whole batch (bulk inserts), then the index follows."""
        import numpy as np

        with self.target.session() as session:
            column = self.target.vectors.db_vector_writer(session)
            stale, new_ids, vectors = photo_batches.store_batch(session, self.target.row.space_id, batch, self.people,
                                                                LANDMARK_MODEL, column)
            session.commit()
        for r in batch:  # said once stored: an interrupted run's count holds what it committed
            self.record(r.outcome())
        crash_point("ingest.committed")
        # the database is committed: now the index may follow (looked up once: each lookup
        # asks whether another process changed the file)
        if not stale and vectors is None:
            return
        index = self.target.vectors.index
        if stale:
            index.remove(np.asarray(stale, dtype=np.int64))
        if vectors is not None:  # the batch gave faces (new_ids and vectors go together)
            index.add(new_ids, vectors)
        self.dirty = True

    def record(self, outcome: Outcome) -> None:
        self.report.outcomes.append(outcome)
        self.progress.advance(outcome)
