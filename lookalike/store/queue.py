"""The PostgreSQL work queue: many ingest workers, on one machine or many.

The shape is still reader -> mapper -> writer, but the hand-over is a table:

* **enqueue** — the ``lookalike ingest`` that scanned the corpus reads and hashes each
  file, settles what needs no model (unchanged, duplicate, unreadable, refused) and
  queues the rest, one row per photo, keyed by (space, path).
* **claim** — any worker (``ingest --workers N`` locally, ``lookalike worker`` from
  another machine) takes a few rows with ``SELECT … FOR UPDATE SKIP LOCKED`` and keeps
  them locked while it decodes, detects and embeds, then stores the faces *and* marks the
  rows done in that same transaction. A worker killed mid-photo simply never commits:
  PostgreSQL drops its locks and the rows are claimed again. Nothing is written twice:
  before storing, the worker looks the path and the bytes (sha256) up under a lock.
* **collect** — the run that queued the rows deletes its done rows and reads their
  outcomes (``DELETE … RETURNING``) for its progress bar and report.

A photo that kills its worker every time (a crash inside a native library) would be
claimed for ever; each start is therefore written on a separate, auto-committed
connection (:class:`lookalike.store.schema.QueueAttempt`), and after ``MAX_ATTEMPTS``
starts the photo is stored as an error instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from .schema import QueueAttempt, QueueItem, QueueState
from .values import PhotoStatus


class Task(Protocol):
    """What the queue keeps of a photo the ingest reader hands over (its ``Task``)."""

    @property
    def path(self) -> str: ...
    @property
    def person(self) -> str | None: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def replaces(self) -> bool: ...
    @property
    def faces(self) -> str | None: ...  # its own faces mode (a photo stored with all), else the run's


MAX_ATTEMPTS = 3  # starts on one photo before it is settled as an error
CLAIM = 4  # photos per claim: one transaction, held for about a second per worker
STALE_DONE = timedelta(days=1)  # done rows whose run never collected them (it was killed)


@dataclass(frozen=True)
class Collected:
    """A finished queue row, as the run that queued it reports it."""

    path: str
    person: str | None
    status: str
    reason: str | None
    faces: int
    sha256: str
    conflict: bool


def enqueue(session: Session, space_id: int, run: str, tasks: Iterable[Task], faces_mode: str,
            analyzer: str | None) -> int:
    """Queue ``tasks`` (the photos the ingest reader read and hashed) for
    ``run``. A path already queued is taken over by this run (and set pending again); the
    caller commits."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    now = datetime.now(timezone.utc)
    rows = [dict(space_id=space_id, run=run, path=t.path, person=t.person, sha256=t.sha256,
                 size_bytes=t.size, replaces=t.replaces, faces_mode=t.faces or faces_mode, analyzer=analyzer,
                 state=QueueState.pending.value, status=None, reason=None, faces=0, conflict=False,
                 worker=None, enqueued_at=now, finished_at=None)
            for t in tasks]
    if not rows:
        return 0
    stmt = pg_insert(QueueItem)
    taken_over = {c: stmt.excluded[c] for c in ("run", "person", "sha256", "size_bytes", "replaces",
                                                "faces_mode", "analyzer", "state", "status", "reason",
                                                "faces", "conflict", "worker", "enqueued_at", "finished_at")}
    session.execute(stmt.on_conflict_do_update(constraint="uq_queue_space_path", set_=taken_over), rows)
    session.execute(delete(QueueItem).where(QueueItem.state == QueueState.done.value,
                                            QueueItem.finished_at < now - STALE_DONE))
    return len(rows)


@dataclass(frozen=True)
class Claimed:
    """A queued photo a worker holds (:func:`claim`): values, not a row, so a worker reads
    nothing more of the database through it."""

    id: int
    space_id: int
    path: str
    person: str | None
    faces_mode: str
    analyzer: str | None


def claim(session: Session, limit: int = CLAIM) -> list[Claimed]:
    """Lock up to ``limit`` pending rows no other worker holds, oldest first. The locks last
    until the caller's transaction ends: commit after storing, or die and let go."""
    ids = session.execute(text(
        "SELECT id FROM ingest_queue WHERE state = :p ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"),
        {"p": QueueState.pending.value, "n": int(limit)}).scalars().all()
    if not ids:
        return []
    q = QueueItem
    rows = session.execute(select(q.id, q.space_id, q.path, q.person, q.faces_mode, q.analyzer)
                           .where(q.id.in_(ids)).order_by(q.id))
    return [Claimed(*row) for row in rows]


def record_attempts(engine: Engine, ids: list[int], worker: str) -> dict[int, int]:
    """Note that ``worker`` starts on ``ids`` (committed at once, on a connection of its own,
    so it survives the worker's death); returns how many starts each row has had."""
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(QueueAttempt), [{"queue_id": i, "worker": worker, "started_at": now} for i in ids])
        rows = conn.execute(select(QueueAttempt.queue_id, func.count()).where(QueueAttempt.queue_id.in_(ids))
                            .group_by(QueueAttempt.queue_id)).all()
    return {int(qid): int(n) for qid, n in rows}


def finish(session: Session, item_id: int, status: str, reason: str | None, faces: int,
           conflict: bool, worker: str) -> None:
    """Mark a claimed row done with its outcome (in the transaction that stored it)."""
    session.execute(update(QueueItem).where(QueueItem.id == item_id).values(
        state=QueueState.done.value, status=status, reason=reason, faces=faces, conflict=conflict, worker=worker,
        finished_at=datetime.now(timezone.utc)))
    session.execute(delete(QueueAttempt).where(QueueAttempt.queue_id == item_id))


def lock_bytes(session: Session, space_id: int, shas: list[str]) -> None:
    """Serialise workers storing the same bytes (two paths, one photo): whoever stores first
    is the original, the other finds it and records a duplicate. Sorted: no lock cycles."""
    for sha in sorted(set(shas)):
        session.execute(text("SELECT pg_advisory_xact_lock(:s, hashtext(:h))"), {"s": int(space_id), "h": sha})


def collect(session: Session, run: str) -> list[Collected]:
    """Take the finished rows of ``run`` off the queue, with their outcomes; the caller commits."""
    rows = session.execute(
        delete(QueueItem).where(QueueItem.run == run, QueueItem.state == QueueState.done.value)
        .returning(QueueItem.path, QueueItem.person, QueueItem.status, QueueItem.reason, QueueItem.faces,
                   QueueItem.sha256, QueueItem.conflict)).all()
    # finish() gives every done row its status; a row without one is reported as an error
    return [Collected(path, person, status or PhotoStatus.error.value, reason, faces, sha, conflict)
            for path, person, status, reason, faces, sha, conflict in rows]


def pending(session: Session, run: str | None = None) -> int:
    """Rows still to do (for ``run``, or in all)."""
    query = select(func.count()).select_from(QueueItem).where(QueueItem.state == QueueState.pending.value)
    if run is not None:
        query = query.where(QueueItem.run == run)
    return int(session.scalar(query) or 0)
