"""The locks that keep a library's writers apart, across processes.

* :func:`write_lock`: one writer per library folder (SQLite and its FAISS files), refused
  at once with the holder's pid rather than queued behind it.
* :func:`vectors_lock`: a space's lock on a vector store outside the database (Milvus),
  held alone by a collection build and shared by the outbox's drains
  (:func:`lookalike.store.outbox.lock_vectors` says why).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LibraryBusy
from . import outbox

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@contextmanager
def write_lock(folder: Path) -> Iterator[None]:
    """One writer per library folder: a second ingest refuses at once with a clear message."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".write.lock"
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise LibraryBusy(f"{folder}: the library is being written by {holder}; "
                              "wait for it to finish, then run again") from err
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()


@contextmanager
def vectors_lock(session: Session, folder: Path, space_id: int, exclusive: bool) -> Iterator[None]:
    """Space ``space_id``'s lock on its outside vector store until the block ends.
    PostgreSQL: an advisory lock in ``session``'s transaction (the caller's session of its
    own: closing it ends the transaction and the lock); SQLite, whose writers share one
    machine: a file lock in the index ``folder``, beside the write lock."""
    if session.get_bind().dialect.name == "postgresql":
        outbox.lock_vectors(session, space_id, exclusive)
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".vectors-{space_id}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
