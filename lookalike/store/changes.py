"""What a write changes, seen once: one set of session events, read by each follower.

Two things follow the library's writes in the same transaction: the space's generation
(:mod:`.generations`: the face lists searches keep) and, for a library whose vectors live
in Milvus, the vector outbox (:mod:`.outbox`). Both need the same facts — which people,
photos and faces a flush deletes, which of their watched fields it changes, which faces it
or a bulk ``INSERT … RETURNING id`` adds, what an ``UPDATE``/``DELETE`` statement touches —
so the SQLAlchemy ``Session`` events that gather them are registered here, once for each
library's session factory
(:func:`observe`: on the factory, so no other SQLAlchemy session of a process that imports
lookalike pays for them), and hand each
:class:`Follower` the same :class:`Flush` or :class:`Bulk`. A write path calls nothing; a
new follower is one more object given to :func:`observe`, never another set of events
that could see the same writes differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Result, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from .schema import Face, Person, Photo

# the fields any follower reads of a changed row: a person's filter and consent fields (the
# searches' filters and Milvus's copy of them), a face's owner, space and vector
PERSON_FIELDS = frozenset({"name", "role", "organisation", "tags", "consent_display"})
FACE_FIELDS = frozenset({"person_id", "space_id", "embedding"})
TABLES = ("faces", "photos", "people")  # the tables a bulk statement is reported for


@dataclass(frozen=True)
class Flush:
    """What a flush is about to write, read before it does (the rows concerned can still be
    found): the people, photos and faces it deletes, and the people and faces whose watched
    fields change, with those fields."""

    deleted: tuple[Person | Photo | Face, ...]
    changed: tuple[tuple[Person | Face, frozenset[str]], ...]

    def __bool__(self) -> bool:
        return bool(self.deleted or self.changed)


class Kind(str, Enum):
    insert = "insert"
    update = "update"
    delete = "delete"


@dataclass(frozen=True)
class Bulk:
    """An ``INSERT``/``UPDATE``/``DELETE`` statement run through the session, about to run:
    its table (one of :data:`TABLES`), its kind, its ``WHERE`` clause (None: every row, or,
    with ``by_key``, the rows named by the primary keys in its parameter list)."""

    table: str
    kind: Kind
    where: Any  # a SQL expression (ColumnElement[bool]) or None
    by_key: bool


class Follower(Protocol):
    """What follows the writes: called inside the writing transaction, before or after the
    rows are written as each method says; writes of its own go through
    ``session.connection()`` (Core), which no session event sees again."""

    def flushing(self, session: Session, flush: Flush) -> None:
        """Before a flush that deletes or changes watched rows."""
        ...

    def added(self, session: Session, face_ids: Sequence[int]) -> None:
        """After new faces were written, their ids known: by a flush, or by a bulk ``INSERT``
        that returned them (``RETURNING faces.id``)."""
        ...

    def bulk(self, session: Session, statement: Bulk) -> None:
        """Before a bulk statement on one of :data:`TABLES` runs (a bulk ``INSERT`` of faces
        only when it returns no ids: one that does is announced by :meth:`added`)."""
        ...


def observe(factory: sessionmaker[Session], followers: Sequence[Follower]) -> None:
    """Have every session ``factory`` makes hand its writes to ``followers`` (in order)."""
    chosen = tuple(followers)
    event.listen(factory, "before_flush", partial(_before_flush, chosen))
    event.listen(factory, "after_flush", partial(_after_flush, chosen))
    event.listen(factory, "do_orm_execute", partial(_do_orm_execute, chosen))


def _changed(row: object, fields: frozenset[str]) -> frozenset[str]:
    attrs = inspect(row).attrs
    return frozenset(name for name in fields if attrs[name].history.has_changes())


def flush_of(session: Session) -> Flush:
    """The session's pending deletes and watched changes, as a :class:`Flush`."""
    deleted = tuple(row for row in session.deleted if isinstance(row, (Person, Photo, Face)))
    changed: list[tuple[Person | Face, frozenset[str]]] = []
    for row in session.dirty:
        if isinstance(row, (Person, Face)):
            fields = _changed(row, PERSON_FIELDS if isinstance(row, Person) else FACE_FIELDS)
            if fields:
                changed.append((row, fields))
    return Flush(deleted, tuple(changed))


def _before_flush(followers: tuple[Follower, ...], session: Session, _context: object, _instances: object) -> None:
    flush = flush_of(session)
    if flush:
        for follower in followers:
            follower.flushing(session, flush)


def _after_flush(followers: tuple[Follower, ...], session: Session, _context: object) -> None:
    new_faces = [row.id for row in session.new if isinstance(row, Face)]
    if new_faces:
        for follower in followers:
            follower.added(session, new_faces)


def _do_orm_execute(followers: tuple[Follower, ...], state: ORMExecuteState) -> Result[Any] | None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    table = getattr(state.statement, "table", None)
    if table is None or table.name not in TABLES:
        return None
    where = getattr(state.statement, "whereclause", None)
    kind = Kind.insert if state.is_insert else Kind.update if state.is_update else Kind.delete
    if kind is Kind.insert and table.name == "faces":
        returned = [c["name"] for c in getattr(state.statement, "returning_column_descriptions", [])]
        if "id" in returned:
            return _faces_inserted(followers, state, returned.index("id"))
    bulk = Bulk(table.name, kind, where, where is None and isinstance(state.parameters, list))
    for follower in followers:
        follower.bulk(state.session, bulk)
    return None


def _faces_inserted(followers: tuple[Follower, ...], state: ORMExecuteState, column: int) -> Result[Any]:
    """A bulk INSERT of faces that returns their ids (the ingest's batches,
    :func:`.bulk.insert_with_ids`): run here, its new faces handed to the followers as
    a flush's are, and its rows handed on to the caller unread."""
    rows = state.invoke_statement().freeze()
    ids = [int(row[column]) for row in rows().all()]
    if ids:
        for follower in followers:
            follower.added(state.session, ids)
    return rows()
