"""The board a server's processes share to say which of them is busy (lookalike.serve.board):
slots claimed and given back, a sibling's busy mark seen across processes, dead processes
left out, and the cores shared out among the busy ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lookalike.serve import board as boards
from lookalike.serve.board import Board, threads_for


@pytest.fixture()
def shared():
    path = boards.create()
    yield path
    path.unlink(missing_ok=True)


def test_participants_see_each_other_busy_and_give_their_slots_back(shared):
    a, b = Board(shared), Board(shared)
    assert a.slot != b.slot
    assert a.others_busy() == 0 and b.others_busy() == 0
    with a.busy() as others:
        assert others == 0 and b.others_busy() == 1 and a.others_busy() == 0
        with b.busy() as seen_by_b:
            assert seen_by_b == 1 and a.others_busy() == 1
    assert a.others_busy() == 0 and b.others_busy() == 0
    with pytest.raises(RuntimeError):  # a busy mark is cleared whatever the call raised
        with a.busy():
            raise RuntimeError("the call failed")
    assert b.others_busy() == 0
    slot = a.slot
    a.close()
    assert Board(shared).slot == slot  # the slot given back is the next one claimed


def test_a_sibling_process_busy_is_seen_and_a_dead_ones_mark_is_not(shared):
    """A process holding a busy mark (until told to stop) is counted; once it died with the
    mark still set, it is not, and its slot goes to the next participant."""
    here = Board(shared)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys
        from lookalike.serve.board import Board
        board = Board({str(shared)!r})
        with board.busy():
            print(board.slot, flush=True)
            sys.stdin.readline()      # busy until the test says so
            os._exit(0)               # dies with its mark set and its slot claimed
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        slot = int(holder.stdout.readline())  # it is inside its busy block now
        assert slot != here.slot and here.others_busy() == 1
        with here.busy() as others:
            assert others == 1
        holder.stdin.write("stop\n")
        holder.stdin.flush()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
    assert here.others_busy() == 0  # its mark is still on the board, its process is gone
    assert Board(shared).slot == slot


def test_the_cores_are_shared_out_among_the_busy_processes():
    assert threads_for(0, 2) is None  # alone: every core, as the models were compiled
    assert threads_for(1, 2) == 1
    assert threads_for(1, 4) == 2
    assert threads_for(3, 4) == 1
    assert threads_for(5, 2) == 1  # never fewer than one
