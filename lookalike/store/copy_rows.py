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
from .schema import Base

# rows that describe work in progress, not the library: a copy starts without them
TRANSIENT = frozenset({"ingest_queue", "ingest_attempts", "vector_outbox"})
CHUNK = 2000


def refuse_a_library(conn: Connection) -> None:
    """:class:`ConfigError` when the database behind ``conn`` holds any row a copy writes (a
    person, a photo, an API key, a calibration, a space): a copy goes into an empty one,
    never over or into another library (an API key of its own ended as a traceback, or in
    the copy: review of 2026-12-07, M3)."""
    for table in Base.metadata.sorted_tables:
        if table.name not in TRANSIENT and conn.scalar(select(func.count()).select_from(table)):
            where = conn.engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"{where}: already holds a library (rows in {table.name}); copy into an empty "
                              "database (a copy that stopped after its rows went in is finished by: lookalike "
                              "doctor --fix)")


def photo_paths(source: Engine, folder: str) -> set[str]:
    """The photo paths the library's rows name under ``folder`` (its upload folder): what a
    copy carries of it, nothing else that lies there. Only those: a server library names
    millions of corpus photos elsewhere."""
    from .person_rows import literal_like
    from .schema import Photo

    prefix = folder.rstrip("/") + "/"
    with source.connect() as conn:
        return set(conn.execute(select(Photo.path).where(Photo.path.like(literal_like(prefix) + "%", escape="\\"))
                                .distinct()).scalars())


def copy_rows(source: Engine, target: Engine, path_of: Callable[[str], str]) -> dict[str, int]:
    """Copy every library table's rows from ``source`` into ``target`` (both at the schema's
    head; the target without a person or photo), photo paths through ``path_of``. Returns
    the rows copied per table."""
    counts: dict[str, int] = {}
    # one snapshot of the source for every table: a withdrawal or a removal committed by a
    # server meanwhile is in the copy whole or not at all (review of 2026-12-07, M4)
    reading = source.connect()
    if source.dialect.name == "sqlite":
        reading.exec_driver_sql("BEGIN")  # pysqlite begins only before a write; WAL keeps writers going
    else:
        reading = reading.execution_options(isolation_level="REPEATABLE READ")
    with reading as src, target.begin() as dst:
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
