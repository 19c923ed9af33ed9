"""Client connections spread over a server's processes (lookalike.serve.balance): a process
over its share of the clients closes a connection after its answer, one alone never does,
and a count not said lately is none (tests/test_serve.py: on the real two-process server,
four keep-alive clients end up two and two)."""

from __future__ import annotations

import asyncio

import pytest

from lookalike.serve import board as boards
from lookalike.serve.balance import Clients, Rebalance
from lookalike.serve.board import Board


@pytest.fixture()
def shared():
    path = boards.create()
    yield path
    path.unlink(missing_ok=True)


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _answer(app: Rebalance, port: int) -> dict[bytes, bytes]:
    """The headers of ``app``'s answer to a request from 127.0.0.1:``port``."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("127.0.0.1", port)}
    asyncio.run(app(scope, receive, send))
    return dict(sent[0]["headers"])


def test_a_process_over_its_share_closes_a_connection_and_one_alone_never_does(shared):
    here, sibling = Board(shared), Board(shared)
    app = Rebalance(_ok, board=here)
    sibling.say_clients(0)
    assert b"connection" not in _answer(app, 1001)
    assert _answer(app, 1002)[b"connection"] == b"close"  # two clients here, none there
    sibling.say_clients(1)  # the closed one reconnected to the sibling
    assert b"connection" not in _answer(app, 1001)
    assert b"connection" not in _answer(app, 1003)  # 2 here, 1 there: as even as 3 can be
    assert _answer(app, 1004)[b"connection"] == b"close"  # 3 here, 1 there
    sibling.say_clients(2)
    for port in (1001, 1003, 1001, 1003):  # 2 and 2: nobody is closed
        assert b"connection" not in _answer(app, port)
    sibling.close()  # the sibling process is gone: its clients are not counted
    alone = Rebalance(_ok, board=here, clients=Clients())
    for port in range(2001, 2010):  # one process, nine clients: all its own
        assert b"connection" not in _answer(alone, port)


def test_a_count_not_said_lately_is_taken_as_none(shared, monkeypatch):
    here, sibling = Board(shared), Board(shared)
    here.say_clients(3)
    sibling.say_clients(5)
    assert here.fair_share(fresh_ms=2000) == 4
    later = boards._now_ms() + 10_000  # the board's own clock, ten seconds on
    monkeypatch.setattr(boards, "_now_ms", lambda: later)
    here.say_clients(3)
    assert here.fair_share(fresh_ms=2000) == 2  # the sibling's 5 are ten seconds old


def test_an_idle_client_drops_out_of_the_count():
    clients = Clients(fresh_s=0.0)  # every earlier answer is already stale, and swept at once
    assert clients.saw(("127.0.0.1", 1)) == 1
    assert clients.saw(("127.0.0.1", 2)) == 1
    assert clients.saw(("127.0.0.1", 2)) == 1
