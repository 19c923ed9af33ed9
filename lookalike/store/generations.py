"""When a reader's kept answer inputs go stale: the space's generation, moved by one
mechanism (the session's events, :mod:`.changes`), never by a call each write path must remember.

A search keeps in memory what it would otherwise read with every query: the centroids, and
for a visitor or a kiosk the faces they may see and the average of those faces
(:meth:`lookalike.query.facts.SpaceFacts.shown`). It trusts them while ``Space.centroid_generation``
stands, which it reads in the same statement as the answer's rows. So every write that
changes what they were computed from moves the generation, in the same transaction:

* the centroids, by :func:`~lookalike.store.centroid_rows.update_centroids` (ingest, removal);
* a person's fields the filters and consent select on (name, role, organisation, tags,
  ``consent_display``), a person deleted, a face deleted or moved to another person, a
  photo deleted (its faces go with it), here, as :data:`FOLLOWER` of the writes
  :mod:`.changes` reports: a flush's rows, and bulk ``UPDATE``/``DELETE`` statements.
  Consent is a person's, in every space: all the spaces move.

A withdrawal of consent is therefore never served from a kept face list: the next answer
carries the new generation and the search reads the list again before it answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.orm import Session

from .changes import Bulk, Flush, Kind
from .schema import Person, Space

# what the filters (lookalike.store.person_rows.person_matches) and consent (sees) read of a
# person, and what moves a face to other hands
PERSON_FIELDS = frozenset({"name", "role", "organisation", "tags", "consent_display"})
FACE_FIELDS = frozenset({"person_id", "space_id"})


def bump(session: Session, space_id: int | None = None) -> None:
    """Move the generation of the space ``space_id`` (its centroids changed), or of every
    space (``None``: whose faces a filter or consent selects changed; consent is a person's,
    in every space). Core, so no ORM event sees it again; the one place it moves."""
    statement = update(Space).values(centroid_generation=Space.centroid_generation + 1)
    if space_id is not None:
        statement = statement.where(Space.id == space_id)
    session.connection().execute(statement)


class _Generations:
    """The follower (:class:`.changes.Follower`) that moves the generation."""

    def flushing(self, session: Session, flush: Flush) -> None:
        if flush.deleted or any(fields & (PERSON_FIELDS if isinstance(row, Person) else FACE_FIELDS)
                                for row, fields in flush.changed):
            bump(session)

    def added(self, session: Session, face_ids: Sequence[int]) -> None:
        """New faces add nothing a kept list leaves out that their centroids' update does not
        announce (:func:`~lookalike.store.centroid_rows.update_centroids`)."""

    def bulk(self, session: Session, statement: Bulk) -> None:
        """``update(Person)…``, ``delete(Face)…`` and the like: the statement's table decides;
        a bulk INSERT is announced as new faces are."""
        if statement.kind is Kind.insert:
            return
        if statement.table == "photos" and statement.kind is Kind.update:
            return  # a photo row's own fields (status, path): no face changes hands
        bump(session)


FOLLOWER = _Generations()
