"""Running sums of the vectors per person and for the corpus (centroids)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlalchemy import bindparam, delete, or_, select, text, update
from sqlalchemy.orm import Session

from . import generations
from .bulk import core_table, insert_many
from .schema import (
    Person,
    Space,
)
from .values import chunks

CENTROID_LOCK = 0x6C6B6332  # pg_advisory_xact_lock(CENTROID_LOCK, space id): "lkc2"


# -- centroids ---------------------------------------------------------------------------
def update_centroids(session: Session, space_id: int, person_ids: list[int | None],
                     vectors: np.ndarray, sign: int = 1) -> None:
    """Add (``sign=1``) or subtract (``-1``) vectors to their person's and the corpus'
    running sums, in the caller's transaction."""
    from .schema import Centroid

    if len(person_ids) == 0:
        return
    if session.get_bind().dialect.name == "postgresql":
        # concurrent writers (ingest workers, removals) add to the same sums: one at a time
        # per space, until commit; taken last in a writer's transaction, so it is held briefly
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": CENTROID_LOCK, "b": int(space_id)})
    deltas: dict[int | None, tuple[np.ndarray, int]] = {}
    for pid, vec in zip(person_ids, np.asarray(vectors, dtype=np.float64)):
        for key in ((None, pid) if pid is not None else (None,)):
            total, n = deltas.get(key, (np.zeros(vec.shape[0]), 0))
            deltas[key] = (total + sign * vec, n + sign)
    # the rows of every person in the batch (and the corpus') read at once, and written back as
    # one executemany each of updates and of new rows: one SELECT a batch instead of one a
    # person (an ingest's main process ~0.8 s of CPU per 1,200 photos of mostly different
    # people, 2026-12-05), and no ORM object a row, each flushed by an INSERT of its own (a
    # third of the remaining time, 2026-12-07)
    table = core_table(Centroid)
    people = [pid for pid in deltas if pid is not None]
    rows: dict[int | None, tuple[int, int, bytes]] = {}
    for chunk in [*chunks(people)] or [[]]:  # the corpus row even when no face has a person
        found = select(table.c.person_id, table.c.id, table.c.count, table.c.sum).where(
            table.c.space_id == space_id, or_(table.c.person_id.is_(None), table.c.person_id.in_(chunk)))
        rows.update((pid, (row_id, count, blob)) for pid, row_id, count, blob in session.execute(found))
    added, changed, emptied = [], [], []
    for pid, (delta, n) in deltas.items():
        row_id, count, blob = rows.get(pid, (None, 0, None))
        total = (np.frombuffer(blob, dtype="<f8") if blob is not None else 0.0) + delta
        count = int(count or 0) + n
        value = np.asarray(total, dtype="<f8").tobytes()
        if row_id is None:
            if count > 0:
                added.append({"space_id": space_id, "person_id": pid, "count": count, "sum": value})
        elif count <= 0:
            emptied.append(row_id)
        else:
            changed.append({"row_id": row_id, "new_count": count, "new_sum": value})
    if changed:
        session.execute(update(table).where(table.c.id == bindparam("row_id"))
                        .values(count=bindparam("new_count"), sum=bindparam("new_sum")), changed)
    insert_many(session, Centroid, added)
    if emptied:
        session.execute(delete(table).where(table.c.id.in_(emptied)))
    generations.bump(session, space_id)


def centroid_generation(session: Session, space_id: int) -> int:
    """How many times the space's centroids have changed (:func:`update_centroids`)."""
    return int(session.scalar(select(Space.centroid_generation).where(Space.id == space_id)) or 0)


def centroids(session: Session, space_id: int) -> dict[int | None, tuple[np.ndarray, int]]:
    """Unit centroid and face count per person id (``None`` = corpus)."""
    from .schema import Centroid

    out = {}
    for pid, count, blob in session.execute(select(Centroid.person_id, Centroid.count, Centroid.sum)
                                            .where(Centroid.space_id == space_id)):
        total = np.frombuffer(blob, dtype="<f8")
        norm = np.linalg.norm(total)
        out[pid] = ((total / norm).astype(np.float32) if norm > 0 else total.astype(np.float32), int(count))
    return out


def centroid_means(session: Session, space_id: int, names: Iterable[str]) -> dict[str | None, float]:
    """How close a group's faces are to their own centroid on average, for the corpus
    (key ``None``) and the people ``names``: for unit vectors with sum ``s`` over ``n``
    faces that mean is ``|s| / n``, so it comes from the running sums. What "typical"
    means differs by model (Dlib's corpus mean is 0.92, SFace's 0.33), this does not."""
    from .schema import Centroid

    wanted = list(set(names))
    query = (select(Person.name, Centroid.count, Centroid.sum)
             .outerjoin(Person, Person.id == Centroid.person_id)
             .where(Centroid.space_id == space_id)
             .where(Centroid.person_id.is_(None) | Person.name.in_(wanted)))
    return {name: float(np.linalg.norm(np.frombuffer(blob, dtype="<f8")) / count)
            for name, count, blob in session.execute(query) if count}
