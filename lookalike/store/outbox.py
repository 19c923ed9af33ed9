"""What a vector store outside the database (Milvus) has yet to receive, recorded by one
mechanism: the session's events (:mod:`.changes`), never a call each write path must remember.

The database is the source of truth and commits first; each change a Milvus library makes
to a face (added, deleted, a new vector or person) or to a person's filter fields (role,
organisation, tags, consent) writes :class:`~lookalike.store.schema.VectorOutbox` rows in the
same transaction, which the index layer drains into Milvus afterwards. :data:`FOLLOWER`
follows every way SQLAlchemy writes, as :mod:`.changes` reports it: before a flush
(deleted and changed rows, and what the database cascades from a deleted photo or person),
after it (new faces, once they have ids), after a bulk ``INSERT`` of faces that returns
their ids (how ingest writes them) and before an ``UPDATE``/``DELETE … WHERE`` statement
(recorded by its own condition). Only raw SQL text goes unseen; the store writes
faces that way only for pgvector's column, which a Milvus library does not use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, insert, literal, select, text
from sqlalchemy.orm import Session

from .changes import Bulk, Flush, Kind
from .schema import (
    Face,
    Person,
    Photo,
    VectorOutbox,
)
from .values import chunks, normalise_tag

VECTORS_LOCK = 0x6C6B7631  # pg_advisory_xact_lock[_shared](VECTORS_LOCK, space id): "lkv1"


def lock_vectors(session: Session, space_id: int, exclusive: bool) -> None:
    """PostgreSQL: the space's lock on its outside vector store until ``session``'s
    transaction ends. A collection build takes it alone, every drain of the outbox shares
    it: a build inserts the faces it read, and a drain's upsert of one of them landing
    between that read and the insert would leave the face in Milvus twice."""
    call = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    session.execute(text(f"SELECT {call}(:a, :b)"), {"a": VECTORS_LOCK, "b": int(space_id)})


# -- the vector outbox (a vector store outside the database: Milvus) -----------------------
# A library whose vectors live in Milvus opens its sessions with this key in ``Session.info``
# (:func:`lookalike.store.db.session_factory`); then every change to a face, or to the
# profile fields Milvus filters on, also writes outbox rows in the same transaction.
OUTBOX = "vector_outbox"
# what Milvus keeps of a face: its vector and person (the space is its collection) ...
FACE_FIELDS = frozenset({"space_id", "person_id", "embedding"})
# ... and of the face's person, to filter on (:class:`FilterFields`)
PERSON_FIELDS = frozenset({"role", "organisation", "tags", "consent_display"})


def outboxed(session: Session) -> bool:
    return bool(session.info.get(OUTBOX))


def enqueue_faces(session: Session, space_id: int, face_ids: Iterable[int]) -> None:
    """Record that these faces must be sent again as they are in the database (a repair:
    ``doctor`` found Milvus missing them or keeping deleted ones). Changes need no call:
    the session's events below record them."""
    rows = [{"space_id": int(space_id), "face_id": int(f)} for f in face_ids]
    if rows and outboxed(session):
        session.connection().execute(insert(VectorOutbox), rows)


def _record(session: Session, faces: Select) -> None:
    """Outbox rows for the faces ``faces`` (a ``SELECT space_id, id FROM faces …``) finds."""
    session.connection().execute(insert(VectorOutbox).from_select(["space_id", "face_id"], faces))


class _Outbox:
    """The follower (:class:`.changes.Follower`) that records what Milvus has yet to receive,
    in sessions opened with :data:`OUTBOX` only."""

    def flushing(self, session: Session, flush: Flush) -> None:
        """What a flush is about to change, recorded while the faces concerned can still be
        found: deleted faces, the faces of a deleted photo (``ON DELETE CASCADE``) or person
        (their person becomes NULL), faces whose vector or person changes, and every face of
        a person whose filter fields change."""
        if not outboxed(session):
            return
        for row in flush.deleted:
            if isinstance(row, Face):
                _record(session, select(literal(row.space_id), literal(row.id)))
            elif isinstance(row, Photo):
                _record(session, select(Face.space_id, Face.id).where(Face.photo_id == row.id))
            else:
                _record(session, select(Face.space_id, Face.id).where(Face.person_id == row.id))
        for row, fields in flush.changed:
            if isinstance(row, Face) and fields & FACE_FIELDS:
                _record(session, select(literal(row.space_id), literal(row.id)))
            elif isinstance(row, Person) and fields & PERSON_FIELDS:
                _record(session, select(Face.space_id, Face.id).where(Face.person_id == row.id))

    def added(self, session: Session, face_ids: Sequence[int]) -> None:
        """New faces, once written with their ids."""
        if outboxed(session):
            for chunk in chunks(list(face_ids)):
                _record(session, select(Face.space_id, Face.id).where(Face.id.in_(chunk)))

    def bulk(self, session: Session, statement: Bulk) -> None:
        """A statement that writes many rows at once (``delete(Face).where(…)``,
        ``update(Person).where(…)``): the faces it touches are recorded first, found by the
        statement's own condition. A bulk INSERT of faces that does not return their ids
        (one that does is :meth:`added`) has no ids to record: refused."""
        if not outboxed(session):
            return
        table, where = statement.table, statement.where
        if statement.kind is Kind.insert and table in ("people", "photos"):
            return  # a new person or photo has no faces yet
        if statement.kind is Kind.insert or statement.by_key:
            raise RuntimeError(f"a bulk {'INSERT' if statement.kind is Kind.insert else 'write by primary key'} "
                               f"into {table} would bypass the vector outbox: add or change the rows through "
                               "the session" + (", or return their ids (RETURNING faces.id)"
                                                if statement.kind is Kind.insert else ""))
        if table == "photos" and statement.kind is Kind.update:
            return  # a photo row's own fields: nothing Milvus keeps
        faces = select(Face.space_id, Face.id)
        if table == "faces":
            faces = faces.where(where) if where is not None else faces
        else:
            key = Photo.id if table == "photos" else Person.id
            owners = select(key).where(where) if where is not None else select(key)
            faces = faces.where((Face.photo_id if table == "photos" else Face.person_id).in_(owners))
        _record(session, faces)


FOLLOWER = _Outbox()


def outbox_batch(session: Session, space_id: int, limit: int) -> list[tuple[int, int]]:
    """The oldest ``(outbox id, face id)`` rows of a space. On PostgreSQL they are locked
    (``FOR UPDATE SKIP LOCKED``): writers on other machines drain other rows meanwhile."""
    query = (select(VectorOutbox.id, VectorOutbox.face_id).where(VectorOutbox.space_id == space_id)
             .order_by(VectorOutbox.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [(int(a), int(b)) for a, b in session.execute(query)]


def clear_outbox(session: Session, outbox_ids: Iterable[int]) -> None:
    ids = [int(i) for i in outbox_ids]
    for chunk in chunks(ids):
        session.execute(delete(VectorOutbox).where(VectorOutbox.id.in_(chunk)))


def outbox_count(session: Session, space_id: int) -> int:
    return int(session.scalar(select(func.count(VectorOutbox.id)).where(VectorOutbox.space_id == space_id)) or 0)


@dataclass(frozen=True)
class FilterFields:
    """What a vector store keeps beside a face's vector to filter searches inside it."""

    person_id: int  # -1: no person
    consent: int  # 1 agreed, 0 withheld, -1 never stated
    tags: tuple[str, ...]  # normalised (:func:`normalise_tag`)
    organisation: str
    role: str


def filter_fields(session: Session, face_ids: Iterable[int]) -> dict[int, FilterFields]:
    """The filter fields of the faces that exist (a missing id was deleted)."""
    ids = [int(i) for i in face_ids]
    out: dict[int, FilterFields] = {}
    for chunk in chunks(ids):
        rows = session.execute(
            select(Face.id, Face.person_id, Person.consent_display, Person.tags, Person.organisation, Person.role)
            .outerjoin(Person, Person.id == Face.person_id).where(Face.id.in_(chunk)))
        for fid, pid, consent, tags, org, role in rows:
            out[int(fid)] = FilterFields(
                -1 if pid is None else int(pid), -1 if consent is None else int(bool(consent)),
                tuple(normalise_tag(t) for t in json.loads(tags)) if tags else (),
                (org or "").strip().lower(), (role or "").strip().lower())
    return out
