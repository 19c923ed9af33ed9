"""A batch of rows written through Core: one executemany statement a table, not an ORM
object a row.

Ingest's writer makes hundreds of rows a batch (photos, faces, estimates, landmarks,
centroid sums). Built as ORM objects, each tracked and flushed by the unit of work (and
each new one flushed by an INSERT of its own where ids must come back), they cost an
ingest's main process 0.2 ms more CPU a photo (its batches 0.48 s against 0.23 s over 1,200
photos, 2026-12-07), taken from the workers beside it on two cores. The vector outbox
still sees every new face (:mod:`.changes` runs a faces INSERT that returns their ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from .schema import Base


def core_table(model: type[Base]) -> Table:
    """The mapped class's table, for Core statements: without the ORM's bulk layer, which
    looks each row over for its mapper again (a third of the time, 2026-12-07)."""
    return cast(Table, model.__table__)


def insert_many(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (column -> value) in the caller's transaction, in as few statements as
    the driver allows (an executemany)."""
    if rows:
        session.execute(insert(core_table(model)), list(rows))


def insert_with_ids(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> list[int]:
    """:func:`insert_many`, returning the new rows' ids in ``rows``' order (``RETURNING``, in
    parameter order: SQLite >= 3.35, PostgreSQL; an older SQLite gets them from ORM objects
    flushed, as before 2026-12-07)."""
    if not rows:
        return []
    if not session.get_bind().dialect.insert_returning:
        objects = [model(**row) for row in rows]
        session.add_all(objects)
        session.flush()
        return [int(cast(Any, row).id) for row in objects]
    table = core_table(model)
    found = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows))
    return [int(i) for i in found.scalars()]
