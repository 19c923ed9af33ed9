"""Engine set-up, schema migrations and the upkeep of the database files.

SQLite gets WAL (readers never block the single writer), foreign keys and a busy
timeout. Every open brings the schema to this version's head: a new SQLite file gets it
at once, any other database through the Alembic scripts shipped with the package (an older
database is upgraded in place); a database stamped by a *newer* lookalike is refused
rather than guessed at.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from ..config import shown_url
from ..errors import ConfigError, DatabaseReadOnly, DatabaseUnavailable, DatabaseUnreadable, LibraryClosed, SchemaTooNew
from ..faults import crash_point
from ..places import sqlite_path

if TYPE_CHECKING:
    import sqlite3

    import psycopg
    from alembic.config import Config
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.pool import ConnectionPoolEntry

MIGRATION_LOCK = 0x6C6B6C31  # pg_advisory_xact_lock key: "lkl1"

# The newest migration's revision. An open compares the database's revision with it in one
# SELECT and imports Alembic (and parses its script folder) only when they differ: ~0.4 s of
# every new process (a CLI command, a server worker) on a library already at head.
# tests/test_store.py checks it is Alembic's own head, so a new migration cannot forget it.
HEAD = "0013"


# pgvector HNSW candidates per search, set on every connection: as the FAISS HNSW default,
# recall before speed (see README "Indexes")
EF_SEARCH = 256

# how much of a SQLite file is read through a memory map rather than read() (SQLite caps it at 2 GiB)
MMAP_BYTES = 1 << 30


def migrations_dir() -> Path:
    """The Alembic script folder (``lookalike/store/migrations``)."""
    return Path(str(resources.files("lookalike.store.migrations")))


def make_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        if not path.parent.is_dir():
            raise ConfigError(f"{path.parent}: folder for the database does not exist")
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # a search reads a handful of rows scattered over the file; through read() and the
            # 2 MiB page cache of each connection that is ~0.8 ms on a 1 M-face library, mapped
            # 0.05 ms (the OS cache is shared by every connection and process)
            cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            # deleted rows (a removed person) are overwritten with zeros, not left in free
            # pages of the file for anyone with a hex editor
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "handle_error")
        def _read_only(context: ExceptionContext) -> Exception | None:
            """A read-only library's write is one line naming the file, not a traceback
            quoting the statement and its parameters."""
            import sqlite3

            cause = context.original_exception
            if isinstance(cause, sqlite3.OperationalError) and "readonly database" in str(cause):
                return DatabaseReadOnly(f"{path}: the library cannot be written (the file, its folder or its "
                                        "-wal/-shm files are read-only); reading commands still work")
            return None

        return engine
    # a server that does not answer (a host gone from the network): a connect waits 10 s, not
    # the kernel's ~2 min, so /v1/health and a CLI command say so in time (libpq's own
    # connect_timeout in the URL wins)
    connect_args = {} if "connect_timeout" in url or not url.startswith("postgresql") else {"connect_timeout": 10}
    try:
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except Exception as err:  # noqa: BLE001 - not chained: the cause quotes the URL, password and all
        shown = shown_url(url)
        hint = "; write postgresql+psycopg://…" if url.startswith("postgres://") else ""
        raise ConfigError(f"cannot open database {shown!r}: {str(err).replace(url, shown)}{hint}") from None
    if engine.dialect.name == "postgresql":
        shown = shown_url(url)

        @event.listens_for(engine, "handle_error")
        def _unavailable(context: ExceptionContext) -> Exception | None:
            """The server gone (a connection cut, a connect refused or timed out, the server
            shutting down or starting) is a :class:`DatabaseUnavailable`, one line naming the
            database; a wrong password or database name stays the driver's error. The pool's
            own liveness check is left alone: it reconnects."""
            if context.is_pre_ping or not _server_gone(context):
                return None
            why = (str(context.original_exception).strip().splitlines() or [""])[0]
            return DatabaseUnavailable(f"{shown}: the database cannot be reached now ({why}); try again "
                                       "once it is back")

        @event.listens_for(engine, "connect")
        def _pg_session(dbapi_conn: psycopg.Connection[Any], _record: ConnectionPoolEntry) -> None:
            # once per connection, not per search: HNSW walks wide enough for look-alikes
            # (a custom setting; it holds before pgvector's library is loaded, too)
            prior = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            dbapi_conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
            dbapi_conn.autocommit = prior

    return engine


# what a server that answers a connect says when it will take one again later; any other
# refusal it words (no such database or role, a password, pg_hba.conf) is not "try again"
_AGAIN_LATER = ("not currently accepting connections", "starting up", "shutting down", "in recovery mode",
                "too many clients", "terminating connection")


def _server_gone(context: ExceptionContext) -> bool:
    """Whether a PostgreSQL error says the server cannot be reached or went away: a dropped
    connection (the dialect's own judgement); on a statement, the server's "operator
    intervention" class 57P (shutting down, starting, crashed) or a database closed to
    connections (55000); on a connect, no server's answer at all (refused, timed out, no such
    socket) or one that says to come back later. psycopg gives a failed connect no SQLSTATE,
    only the server's words after "FATAL:"."""
    if context.is_disconnect:
        return True
    cause = context.original_exception
    import psycopg

    if not isinstance(cause, psycopg.OperationalError):
        return False
    if context.connection is None:  # a connect
        said = str(cause)
        return "FATAL:" not in said or any(words in said for words in _AGAIN_LATER)
    state: str | None = cause.sqlstate
    return state is not None and (state.startswith("57P") or state == "55000")


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # configparser reads "%" as interpolation: a URL such as ?host=%2Ftmp%2F… must be escaped
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def move_to(engine: Engine, revision: str) -> None:
    """Take the database through the migrations, up or down, to ``revision``: a library as an
    older lookalike left it, which the tests of each later migration start from (revisions
    are zero-padded numbers: they compare as strings)."""
    from alembic import command

    current = current_revision(engine)
    down = current is not None and current > revision
    cfg = _alembic_config(engine)
    if engine.dialect.name == "sqlite":  # foreign keys off, as every SQLite migration runs
        _migrate_sqlite(engine, cfg, revision, down)
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrations_dir())).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The revision Alembic stamped in the database (None: never migrated), read as Alembic
    reads it, without importing it."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _first_read(engine: Engine) -> str | None:
    """The schema revision, read on the first connection: where a file that is not a
    database (a photo, a text file passed as ``--db``) shows itself, as a
    :class:`DatabaseUnreadable` naming it, not a driver's error."""
    from sqlalchemy.exc import DatabaseError

    try:
        return current_revision(engine)
    except DatabaseError as err:
        where = sqlite_path(engine.url.render_as_string(hide_password=True))
        said = str(getattr(err, "orig", None) or err).splitlines()[0]
        if where is not None and "not a database" in said:
            reason = "this file is not an SQLite database (a photo or a text file?); pass --db a library's .db file " \
                     "or a path where a new one may be made"
        else:
            reason = f"it cannot be opened as a database ({said})"
        raise DatabaseUnreadable(f"{where or engine.url.render_as_string(hide_password=True)}: {reason}") from None


def migrate(engine: Engine) -> str:
    """Bring the schema to this version's head; refuse a newer one. Returns the revision.

    A new, empty SQLite file gets the head's schema at once (:func:`_create_sqlite`); every
    other database goes through Alembic's scripts (:func:`upgrade`)."""
    current = _first_read(engine)
    if current == HEAD:
        return HEAD
    if current is None and engine.dialect.name == "sqlite":
        made = _create_sqlite(engine)
        if made is not None:
            return made
    return upgrade(engine)


def _create_sqlite(engine: Engine) -> str | None:
    """Make the schema of a new SQLite library in one transaction: the models' tables
    (``create_all``) stamped with :data:`HEAD`, as Alembic's own docs advise for a database
    built from scratch. Alembic's import and its ten scripts took ~0.22 s of every new
    library (each CLI run into a new file, each test's library; measured 2026-12-06), this
    0.02 s. tests/test_store.py checks both ways build the same schema.

    The write lock is taken first (``BEGIN IMMEDIATE``): two processes opening one new file
    together (a server's workers) queue there, and the second finds the tables made and the
    revision stamped. A file that holds any table already returns None: Alembic decides.
    SQLite runs DDL inside an explicit transaction, so a process that dies here leaves the
    file empty, never half a schema (crash point ``schema.created``)."""
    from .schema import Base

    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type = 'table'").scalar():
                conn.rollback()
                return None
            Base.metadata.create_all(conn)
            crash_point("schema.created")
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                                 "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
            conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD,))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return HEAD


def upgrade(engine: Engine) -> str:
    """Bring the schema to head through Alembic's scripts (``lookalike/store/migrations``)."""
    current = _first_read(engine)
    if current == HEAD:  # another process made or upgraded it meanwhile
        return HEAD
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations_dir()))
    head = script.get_current_head()
    if current == head:
        return head or ""
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaTooNew(
            f"{engine.url.render_as_string(hide_password=True)}: the database schema is at "
            f"revision {current}, written by a newer lookalike than this one (which knows up "
            f"to {head}); upgrade lookalike (pip install -U lookalike) to open it"
        )
    cfg = _alembic_config(engine)
    if engine.dialect.name == "sqlite":
        _migrate_sqlite(engine, cfg)
        return head or ""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # many workers may open a fresh database at once: one migrates, the rest wait
            # for it (the lock goes with the transaction) and then find the schema at head
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            from alembic.runtime.migration import MigrationContext

            if MigrationContext.configure(conn).get_current_revision() == head:
                return head or ""
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head or ""


def _migrate_sqlite(engine: Engine, cfg: Config, revision: str = "head", down: bool = False) -> None:
    """SQLite changes a column by copying its table and dropping the old one; with foreign
    keys on, that drop would cascade (a person's centroids deleted, their faces orphaned).
    So foreign keys are off for the migration (a pragma that only works outside a
    transaction) and checked afterwards."""
    from alembic import command

    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()  # ends SQLAlchemy's autobegun transaction; SQLite itself had none open
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                (command.downgrade if down else command.upgrade)(cfg, revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:  # damaged rows, or a migration's bug: nothing an option changes
                    where = engine.url.render_as_string(hide_password=True)
                    raise DatabaseUnreadable(f"{where}: upgrading its schema would break {len(broken)} "
                                             f"references (first: {tuple(broken[0])}); nothing changed")
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def session_factory(engine: Engine, outbox: bool = False) -> sessionmaker[Session]:
    """Sessions of one library; ``outbox``: its vectors live outside the database, so the
    store's writes also record what the vector store must receive (:data:`outbox.OUTBOX`)."""
    from . import changes, generations
    from .outbox import FOLLOWER as OUTBOX_FOLLOWER
    from .outbox import OUTBOX

    # every session's writes followed by the space's generation and (in sessions opened with
    # OUTBOX) the vector outbox: one set of events (store/changes.py)
    factory = sessionmaker(engine, expire_on_commit=False, info={OUTBOX: True} if outbox else {})
    changes.observe(factory, (generations.FOLLOWER, OUTBOX_FOLLOWER))
    return factory


def unreachable(engine: Engine) -> str | None:
    """Why the database cannot be reached now (the driver's first line, a password never in
    it), or None: one ``SELECT 1`` through the pool."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as err:
        return str(err.orig or err).splitlines()[0]
    except DatabaseUnavailable as err:
        return str(err)
    return None


def close(engine: Engine) -> None:
    """Close the engine's connections for good: a store call made afterwards (through a view,
    a search or a people object kept from before) raises :class:`LibraryClosed` instead of
    quietly opening a new connection, which SQLAlchemy's ``dispose`` alone allows."""
    engine.dispose()

    @event.listens_for(engine, "do_connect")  # before the driver connects: no file made again
    def _closed(*_args: object) -> None:
        where = engine.url.render_as_string(hide_password=True)
        raise LibraryClosed(f"{where}: this library was closed; open it again to use it")


# -- upkeep of the database files -------------------------------------------------------
def checkpoint_wal(engine: Engine) -> None:
    """SQLite: ``PRAGMA wal_checkpoint(TRUNCATE)``, the write-ahead log copied into the
    database file and truncated (so pages zeroed by ``secure_delete`` reach the file)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def scrub(engine: Engine) -> None:
    """What a removal's deleted rows need to leave the database's files: SQLite's
    :func:`checkpoint_wal`, PostgreSQL's :func:`vacuum`."""
    if engine.dialect.name == "sqlite":
        checkpoint_wal(engine)
    elif engine.dialect.name == "postgresql":
        vacuum(engine)


def vacuum(engine: Engine) -> None:
    """PostgreSQL: ``VACUUM faces, photos, people, centroids`` on an autocommit connection
    (VACUUM cannot run in a transaction); dead rows and their index entries are freed for reuse."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM faces, photos, people, centroids")
