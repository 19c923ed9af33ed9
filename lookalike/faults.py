"""Named crash points: deterministic faults for the crash tests.

A crash test must choose *where* a process dies, not *when*: a SIGKILL after a delay lands
wherever the machine's speed puts it, so a test of "killed after the SQL commit, before
the index save" would only sometimes test that. Instead the code calls
:func:`crash_point` at each place worth dying in, and the environment names one::

    LOOKALIKE_CRASH_AT=ingest.committed      # die the first time this point is reached
    LOOKALIKE_CRASH_AT=ingest.committed:3    # ... the third time, in this process
    LOOKALIKE_CRASH_AT=ingest.photo:x.jpg    # every time it is reached for the file x.jpg

There the process ends at once with :data:`EXIT_CODE` (``os._exit``: no ``finally``, no
``atexit``, no flush — what a power cut or the OOM killer leaves). Spawned worker
processes inherit the variable and count their own arrivals. Unset (every normal run),
the variable is read once at import and each point costs one ``is None`` test.

The points (:data:`POINTS`) and what a resume must repair there are listed below; the
tests (tests/test_reliability.py) crash at each and check nothing is lost or doubled.

A test that needs another process to be *at* a point while it does something (a search
while the writer is between two batches) holds it there instead of hoping it is slow
enough::

    LOOKALIKE_HOLD_AT=ingest.committed@/tmp/gate   # first arrival: write /tmp/gate/held,
                                                   # then wait until /tmp/gate/release exists
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "LOOKALIKE_CRASH_AT"
HOLD_ENV = "LOOKALIKE_HOLD_AT"
EXIT_CODE = 87  # what no other exit of lookalike uses: the test knows the point was hit

POINTS = {
    "schema.created": "a new SQLite library: its tables made, its revision not yet stamped, nothing committed",
    "ingest.committed": "ingest: a batch's SQL transaction committed, its vectors not yet in the index "
                        "(FAISS: not in the file; Milvus: the outbox rows written, not yet sent)",
    "ingest.before_save": "ingest: vectors added to the in-memory index, the index file not yet saved",
    "ingest.worker": "a mapper worker process, after mapping a call's photos (counted a photo at a time), before "
                     "handing the call back (mid-batch)",
    "ingest.photo": "a mapper worker process, about to map the photo the variable names after ':' (a file name): "
                    "a photo that kills whichever worker maps it, every time",
    "index.save.torn": "FAISS save: the new index file in place, its manifest not yet (a torn pair)",
    "outbox.sent": "Milvus outbox drain: Milvus took the upserts and deletes, the outbox rows not yet cleared",
    "queue.claimed": "a PostgreSQL queue worker: photos claimed and their attempts recorded, nothing stored",
    "remove.committed": "removal: the rows deleted and committed, the index not yet updated",
    "reembed.moved": "reembed: one batch of photos embedded into the new space, the next not started",
    "live.match": "the live matching worker, a face crop received, before it is aligned and embedded",
}


KEYED = {"ingest.photo"}  # points reached with a key (a file name): the variable names the key, not a count


def _parse(value: str | None) -> tuple[str, int | str] | None:
    if not value:
        return None
    name, _, nth = value.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}={value!r}: no crash point {name!r} (known: {', '.join(POINTS)})")
    if name in KEYED:
        if not nth:
            raise ValueError(f"{ENV}={value!r}: name the file after ':'")
        return name, nth
    try:
        n = int(nth) if nth else 1
    except ValueError:
        raise ValueError(f"{ENV}={value!r}: the count after ':' must be a whole number") from None
    return name, max(n, 1)


def _parse_hold(value: str | None) -> tuple[str, Path] | None:
    if not value:
        return None
    name, _, folder = value.partition("@")
    if name not in POINTS or not folder:
        raise ValueError(f"{HOLD_ENV}={value!r}: expected POINT@FOLDER (points: {', '.join(POINTS)})")
    return name, Path(folder)


_ARMED = _parse(os.environ.get(ENV))
_HOLD = _parse_hold(os.environ.get(HOLD_ENV))
_ACTIVE = _ARMED is not None or _HOLD is not None
_reached: dict[str, int] = {}


def crash_point(name: str, key: str | None = None) -> None:
    """End this process here (exit code :data:`EXIT_CODE`) when ``LOOKALIKE_CRASH_AT`` names
    ``name`` and this is the n-th time it is reached (or, for a point of :data:`KEYED`, it is
    reached with the ``key`` named); wait here the first time when ``LOOKALIKE_HOLD_AT``
    names it; otherwise nothing."""
    if not _ACTIVE:
        return
    if _HOLD is not None and _HOLD[0] == name:
        _hold(_HOLD[1])
    if _ARMED is None or _ARMED[0] != name:
        return
    if name in KEYED:
        if key == _ARMED[1]:
            os._exit(EXIT_CODE)
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == _ARMED[1]:
        os._exit(EXIT_CODE)


def _hold(folder: Path) -> None:
    """Say "held" (a file), then wait for "release" (a file) — once per process."""
    global _HOLD
    _HOLD = None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "held").write_text(f"{os.getpid()}\n")
    while not (folder / "release").exists():
        time.sleep(0.01)
