"""Where a library keeps its files: the database, and beside a SQLite file the index and
upload folders named after it (``kiosk.db``: ``kiosk.indexes/``, ``kiosk.uploads/``), so one
``--db`` names a whole library everywhere and two libraries in one folder never share one.

Pure paths, decided from what the folder holds: no settings, no SQL, and the database file
is never opened here (:func:`_beside` says why); :mod:`lookalike.config` resolves the
defaults from here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import LookalikeError

log = logging.getLogger(__name__)

DEFAULT_DB = "lookalike.db"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (without its ``?query``), or ``None`` for other databases."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):].split("?", 1)[0])
    return None


def _beside(url: str, kind: str) -> Path:
    """The library's ``kind`` folder (``indexes``, ``uploads``) beside its SQLite file, named
    after it: ``kiosk.db`` -> ``kiosk.indexes/``, ``kiosk.uploads/``. Two libraries in one
    folder shared a plain ``indexes/`` (the second was refused: "this index belongs to another
    library") and ``uploads/`` (removing a person from one deleted the other's uploads of a
    namesake). The default library, ``lookalike.db``, keeps the plain names, and so does a
    library made before that, for each folder whose plain one is there and own one is not. A
    library made since has its own folders from the start (:func:`claim_folders`, before its
    file), and its own ``NAME.indexes/`` keeps both its own: an empty ``NAME.uploads/``
    deleted, or skipped by a backup, sent the library to ``lookalike.db``'s ``uploads/``. Not
    ``NAME.uploads/`` for the index: an older library's first upload makes it, and its index
    folder moved to an empty ``NAME.indexes/`` (review of 2026-12-07, H1). A server
    database: in the current folder.

    Decided from what the folder holds, never by reading the database file: a process that
    opens and closes that file beside its own SQLite connections drops their POSIX locks, and
    another process's exit then deletes the write-ahead log under them (a library was damaged
    that way: SQLite's "How To Corrupt", 2.2)."""
    path = sqlite_path(url)
    if path is None:
        return Path.cwd() / kind
    plain, own = path.parent / kind, path.parent / f"{path.stem}.{kind}"
    if path.name in (DEFAULT_DB, ":memory:"):
        return plain
    if own.exists() or (path.parent / f"{path.stem}.indexes").exists():
        return own
    return plain if _holds_a_library(path) and plain.is_dir() else own


def _holds_a_library(path: Path) -> bool:
    """A SQLite file with something in it (an empty file is a library not made yet)."""
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def sqlite_files(path: Path) -> list[Path]:
    """A SQLite database file and the files SQLite keeps beside it (``-wal``, ``-shm``,
    ``-journal``), whether or not they are there."""
    return [path.with_name(path.name + end) for end in ("", "-wal", "-shm", "-journal")]


def library_files(url: str) -> frozenset[str]:
    """The real paths of a SQLite library's own files (the database and its ``-wal``, ``-shm``
    and ``-journal``), or none for a server database: a photo is never read from one. Opening
    and closing any of them in a process that holds the library's connections drops their
    POSIX locks (:func:`_beside`), and an ingest writing beside a server could then damage it."""
    path = sqlite_path(url)
    if path is None:
        return frozenset()
    return frozenset(str(f) for f in sqlite_files(Path(os.path.realpath(path))))


def claim_folders(url: str, folders: Iterable[Path | None]) -> None:
    """A new SQLite library's ``folders`` (its index and upload folders), made before its file
    is: from then on they are its own whatever else the folder holds (:func:`_beside`). Only
    where their parent folder is there (a mistyped path is the open's to refuse, not made here)."""
    path = sqlite_path(url)
    if path is None or path.name in (DEFAULT_DB, ":memory:") or _holds_a_library(path):
        return  # the default library's folders are the plain ones whatever is there
    for folder in folders:
        if folder is not None and folder.parent.is_dir():
            try:
                folder.mkdir(exist_ok=True)
            except OSError:  # a read-only folder: the open that follows says so, in its words
                log.debug("%s: not made", folder, exc_info=True)


def default_index_dir(url: str) -> Path:
    """``NAME.indexes/`` beside the SQLite file ``NAME.db`` (``indexes/`` for ``lookalike.db``
    and for a library made before, :func:`_beside`); for a server database, in the current
    folder."""
    return _beside(url, "indexes")


def default_upload_dir(url: str) -> Path | None:
    """``NAME.uploads/`` beside the SQLite file ``NAME.db`` (``uploads/`` for ``lookalike.db``
    and for a library made before, :func:`_beside`): photos added through the HTTP API or the
    admin page are kept there, and removing their person deletes them (the library owns that
    folder, never a corpus's). A server database has none: its uploads go where
    ``LOOKALIKE_UPLOAD_DIR`` says, on storage every machine mounts at the same path. They
    went to ``uploads/`` in whatever folder a server was started from, and a ``remove`` run
    elsewhere left the person's photos there (scale user test, F3)."""
    return _beside(url, "uploads") if sqlite_path(url) is not None else None


def upload_folder(upload_dir: Path, person: str) -> Path:
    """The folder under ``upload_dir`` that keeps ``person``'s uploaded photos: the name
    itself when it is one plain path segment (letters, digits, spaces, ``_ . -``, not
    starting with a dot), else ``person-<hash of the name>``; either way a folder directly
    inside ``upload_dir``, checked after resolving, whatever the name holds."""
    import hashlib
    import re

    plain = re.fullmatch(r"[\w .-]+", person) is not None and not person.startswith(".")
    slug = person if plain else "person-" + hashlib.sha256(person.encode()).hexdigest()[:20]
    folder = upload_dir / slug
    if folder.resolve().parent != upload_dir.resolve():
        # the server's folder, not the caller's option: a 500 the server logs
        raise LookalikeError(f"the photos of {person[:60]!r} would not be kept inside {upload_dir}; refused")
    return folder
