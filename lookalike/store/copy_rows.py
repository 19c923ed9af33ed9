"""A library's rows copied into another database (``lookalike copy``): the way from SQLite to
PostgreSQL that keeps everything a re-ingest loses — consent withdrawn by staff, profiles,
API keys, calibration, estimates, landmarks, uploaded people, and every face and photo id
clients may hold.

Every table of the library but the transient ones (the work queue, its attempts, the vector
outbox), in foreign-key order, in one transaction on the target: a copy that fails leaves
the target as empty as it was. Each embedding space gets a new ``uid``: the copy's index
files and Milvus collections are its own, never the original's (two copies of one library
sharing a Milvus store overwrote each other's collection: scale user test, F7). The
searchable ``faces.vec`` is left empty; the target's vector store fills it when it opens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import Connection, Engine, func, select, text

from ..errors import ConfigError
from .schema import Base, Person, Photo

# rows that describe work in progress, not the library: a copy starts without them
TRANSIENT = frozenset({"ingest_queue", "ingest_attempts", "vector_outbox"})
CHUNK = 2000


def refuse_a_library(conn: Connection) -> None:
    """:class:`ConfigError` when the database behind ``conn`` holds a person or a photo: a
    copy goes into an empty one, never over another library."""
    if conn.scalar(select(func.count()).select_from(Person)) or conn.scalar(select(func.count()).select_from(Photo)):
        where = conn.engine.url.render_as_string(hide_password=True)
        raise ConfigError(f"{where}: already holds a library; copy into an empty database")


def copy_rows(source: Engine, target: Engine, path_of: Callable[[str], str]) -> dict[str, int]:
    """Copy every library table's rows from ``source`` into ``target`` (both at the schema's
    head; the target without a person or photo), photo paths through ``path_of``. Returns
    the rows copied per table."""
    counts: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        refuse_a_library(dst)
        for table in Base.metadata.sorted_tables:
            if table.name in TRANSIENT:
                continue
            columns = [c for c in table.columns if c.name != "vec"]
            counts[table.name] = 0
            rows = src.execute(select(*columns).execution_options(yield_per=CHUNK)).mappings()
            for part in rows.partitions():
                batch = [dict(row) for row in part]
                for row in batch:
                    if table.name == "indexes":
                        row["uid"] = uuid.uuid4().hex  # the copy's own index files and collections
                    elif table.name == "photos":
                        row["path"] = path_of(row["path"])
                dst.execute(table.insert(), batch)
                counts[table.name] += len(batch)
        if target.dialect.name == "postgresql":  # ids were given: the sequences start after them
            for table in Base.metadata.sorted_tables:
                if "id" in table.columns and table.name not in TRANSIENT and table.c.id.autoincrement:
                    dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                     f"GREATEST((SELECT max(id) FROM {table.name}), 1))"))
    return counts
