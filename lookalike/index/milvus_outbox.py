"""The Milvus side of the outbox: how a collection follows the database.

Every change to the faces is written to the database first, with outbox rows in the same
transaction (recorded by :mod:`lookalike.store.outbox`, the store side);
:meth:`Outbox.drain` then sends them to the collection, and anything a crash left behind
is sent by the next drain, so after a resume SQL ids == Milvus ids. The outbox is handed
the space's store (rows, vectors, lock) as values
(:class:`lookalike.index.space_store.SpaceStore`); the collection
(:class:`lookalike.index.milvus_index.MilvusIndex`) holds it and drains through it
whenever it is asked to add or remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..faults import crash_point
from ..store import outbox, photo_rows

if TYPE_CHECKING:
    from .milvus_index import MilvusIndex
    from .space_store import SpaceStore

DRAIN = 2_000  # outbox rows per round trip


@dataclass
class Outbox:
    """One space's outbox rows, drained into its collection."""

    store: SpaceStore

    def drain(self, index: MilvusIndex) -> int:
        """Drain the space's outbox: upsert the faces that exist (vector and filter fields
        read from the database now), delete the ids that do not; the rows go only after
        Milvus took them. Returns how many outbox rows were settled."""
        store = self.store
        done = 0
        space_id = store.existing_space_id()
        with store.vectors_lock(exclusive=False):  # not while a build inserts
            while True:
                with store.session() as session:
                    batch = outbox.outbox_batch(session, space_id, DRAIN)
                    if not batch:
                        break
                    ids = sorted({face for _, face in batch})
                    fields = outbox.filter_fields(session, ids)
                    present = [i for i in ids if i in fields]
                    gone = [i for i in ids if i not in fields]
                    if present:
                        index.upsert(present, store.index_vectors(np.asarray(present, dtype=np.int64)), fields)
                    index.delete(gone)
                    crash_point("outbox.sent")
                    outbox.clear_outbox(session, [row for row, _ in batch])
                    session.commit()
                done += len(batch)
        return done

    def reconcile(self, index: MilvusIndex) -> tuple[int, int]:
        """Queue every face Milvus lacks and every id it has that the database does not,
        then drain: (missing, orphans) found."""
        store = self.store
        with store.session() as session:
            want = photo_rows.face_ids(session, store.existing_space_id())
        have = index.ids()
        missing, orphans = np.setdiff1d(want, have), np.setdiff1d(have, want)
        with store.session() as session:
            outbox.enqueue_faces(session, store.existing_space_id(), np.concatenate([missing, orphans]).tolist())
            session.commit()
        self.drain(index)
        return len(missing), len(orphans)
