"""Which of one server's processes are running a library call right now, so that each
takes its share of the cores (:meth:`Board.busy`).

``lookalike serve --workers N`` starts N processes, each with the models compiled for every
core: a lone request then takes both cores of a 2-core VM and is answered as fast as
in-process. When two processes are busy at once, their runs on two threads each fight over
the two cores; on one thread each the same search costs 20 % less CPU
(:func:`lookalike.models.runtime.threads_at_most`). Each process only knows its own
requests, and which process holds a keep-alive connection is the kernel's choice (four
connections have sat in one process while the other idled, until :mod:`.balance` spread
them), so the processes say what they are doing on a board they share: a small file mapped
into each of them, one slot a process, holding its pid, whether it is in a library call, and
how many client connections it holds (:meth:`Board.say_clients`, written as they are made and
lost, read by :mod:`lookalike.serve.balance`).

The board is a hint, never a lock: a process reads its siblings' slots without waiting for
them, so a read racing a sibling's write only picks a thread count one call too early or
too late. A slot whose process died is taken over by the next process that starts (its pid
is gone), and a dead process's busy mark is not counted.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SLOTS = 64  # server processes one board holds (uvicorn workers of one `lookalike serve`)
_PID, _BUSY, _CLIENTS = 0, 1, 2  # the int64 cells of a slot
_CELLS = 3


def create() -> Path:
    """A new, empty board file (in ``/dev/shm`` where there is one: memory, not disk); its
    path goes to the server's processes in ``LOOKALIKE_SERVE_BOARD``, and whoever created it
    removes it when the server stops."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    fd, name = tempfile.mkstemp(prefix="lookalike-board-", dir=folder)
    with os.fdopen(fd, "wb") as fh:
        fh.write(bytes(SLOTS * _CELLS * 8))
    return Path(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


class Board:
    """This process's slot on a shared board (:func:`create`). Two ``Board`` objects of one
    process take two slots: each is one participant."""

    def __init__(self, path: Path | str) -> None:
        import fcntl

        self.path = Path(path)
        with open(self.path, "r+b") as fh:
            self._map = mmap.mmap(fh.fileno(), SLOTS * _CELLS * 8)
            self._cells = np.frombuffer(self._map, dtype=np.int64).reshape(SLOTS, _CELLS)
            fcntl.flock(fh, fcntl.LOCK_EX)  # one process claims a slot at a time
            try:
                self.slot = self._claim()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _claim(self) -> int:
        claimed = {int(pid) for pid in self._cells[:, _PID] if pid}
        for slot in range(SLOTS):
            pid = int(self._cells[slot, _PID])
            # free, or left by a process that is gone; a live pid of this very process is
            # another Board of it (a participant of its own)
            if pid == 0 or (pid != os.getpid() and not _alive(pid)):
                self._cells[slot] = (os.getpid(), 0, 0)
                return slot
        raise RuntimeError(f"{self.path}: all {SLOTS} slots of the server's board are taken ({len(claimed)} processes)")

    def others_busy(self) -> int:
        """How many other participants are in a library call now."""
        busy = np.flatnonzero(self._cells[:, _BUSY])
        return sum(1 for slot in busy if slot != self.slot and _alive(int(self._cells[slot, _PID])))

    @contextlib.contextmanager
    def busy(self) -> Iterator[int]:
        """Marks this participant busy for the ``with`` block; gives how many others were
        busy as it began."""
        self._cells[self.slot, _BUSY] = 1
        try:
            yield self.others_busy()
        finally:
            self._cells[self.slot, _BUSY] = 0

    def say_clients(self, clients: int) -> None:
        """Writes how many client connections this participant holds now."""
        self._cells[self.slot, _CLIENTS] = clients

    def fair_share(self) -> int:
        """The most client connections one participant should hold: every live participant's
        count over the live participants, rounded up."""
        live = [slot for slot in np.flatnonzero(self._cells[:, _PID])
                if slot == self.slot or _alive(int(self._cells[slot, _PID]))]
        held = sum(int(self._cells[slot, _CLIENTS]) for slot in live)
        return -(-held // max(1, len(live)))

    def close(self) -> None:
        """Gives the slot back."""
        if self._map.closed:
            return
        self._cells[self.slot] = (0, 0, 0)
        del self._cells
        self._map.close()


def said_clients(path: Path | str) -> dict[int, int]:
    """What each live participant of the board at ``path`` says it holds: pid -> client
    connections (for those watching a server from outside: the tests, the load bench)."""
    cells = np.fromfile(path, dtype=np.int64).reshape(SLOTS, _CELLS)
    return {int(pid): int(clients) for pid, _, clients in cells if pid and _alive(int(pid))}


def threads_for(others_busy: int, cores: int) -> int | None:
    """The threads a library call takes when ``others_busy`` sibling processes are running
    one too: the cores shared out among the busy processes (at least one), or None — every
    core, as the models were compiled — when it is alone."""
    if others_busy <= 0:
        return None
    return max(1, cores // (others_busy + 1))
