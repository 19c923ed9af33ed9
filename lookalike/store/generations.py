"""When a reader's kept answer inputs go stale: the space's generation, moved by one
mechanism (events on the session), never by a call each write path must remember.

A search keeps in memory what it would otherwise read with every query: the centroids, and
for a visitor or a kiosk the faces they may see and the average of those faces
(:meth:`lookalike.space.SpaceView.shown`). It trusts them while ``Space.centroid_generation``
stands, which it reads in the same statement as the answer's rows. So every write that
changes what they were computed from moves the generation, in the same transaction:

* the centroids, by :func:`~lookalike.store.centroid_rows.update_centroids` (ingest, removal);
* a person's fields the filters and consent select on (name, role, organisation, tags,
  ``consent_display``), a person deleted, a face deleted or moved to another person, a
  photo deleted (its faces go with it), here: ``before_flush`` sees the session's rows,
  ``do_orm_execute`` the bulk ``UPDATE``/``DELETE`` statements. Consent is a person's, in
  every space: all the spaces move.

A withdrawal of consent is therefore never served from a kept face list: the next answer
carries the new generation and the search reads the list again before it answers.
"""

from __future__ import annotations

from sqlalchemy import event, inspect, update
from sqlalchemy.orm import ORMExecuteState, Session

from .schema import Face, Person, Photo, Space

# what the filters (lookalike.store.person_rows.person_matches) and consent (sees) read of a person
PERSON_FIELDS = ("name", "role", "organisation", "tags", "consent_display")
FACE_FIELDS = ("person_id", "space_id")


def bump(session: Session) -> None:
    """Move every space's generation (Core, so no ORM event sees it again)."""
    session.connection().execute(update(Space).values(centroid_generation=Space.centroid_generation + 1))


def _changed(row: object, fields: tuple[str, ...]) -> bool:
    attrs = inspect(row).attrs
    return any(attrs[name].history.has_changes() for name in fields)


def _moves(session: Session) -> bool:
    if any(isinstance(row, (Person, Face, Photo)) for row in session.deleted):
        return True
    return any(isinstance(row, Person) and _changed(row, PERSON_FIELDS)
               or isinstance(row, Face) and _changed(row, FACE_FIELDS) for row in session.dirty)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: object, _instances: object) -> None:
    if _moves(session):
        bump(session)


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    """``update(Person)…``, ``delete(Face)…`` and the like: the statement's table decides. A
    bulk INSERT adds nothing a kept list leaves out that its centroids' update does not
    announce (new faces come with :func:`~lookalike.store.centroid_rows.update_centroids`)."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is None or table.name not in ("faces", "photos", "people"):
        return
    if table.name == "photos" and state.is_update:
        return  # a photo row's own fields (status, path): no face changes hands
    bump(state.session)
