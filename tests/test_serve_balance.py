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


def _sent(app: Rebalance, client: tuple[str, int]) -> list[tuple[bytes, bytes]]:
    """The headers of ``app``'s answer to a request from ``client``."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": client}
    asyncio.run(app(scope, receive, send))
    return list(sent[0]["headers"])


def _answer(app: Rebalance, port: int) -> dict[bytes, bytes]:
    """The headers of ``app``'s answer to a request from 127.0.0.1:``port``."""
    return dict(_sent(app, ("127.0.0.1", port)))


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
    now = [100.0]
    clients = Clients(fresh_s=2.0, clock=lambda: now[0])
    assert clients.saw(("127.0.0.1", 1)) == 1
    now[0] += 1.0
    assert clients.saw(("127.0.0.1", 2)) == 2  # the first came a second ago: still held
    now[0] += 1.5
    assert clients.saw(("127.0.0.1", 2)) == 1  # 2.5 s since the first: gone


async def _refused(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"no"})


def test_an_answer_that_closes_anyway_gets_no_second_close_and_a_proxys_visitor_is_not_counted(shared):
    here, sibling = Board(shared), Board(shared)
    sibling.say_clients(0)
    refusing = Rebalance(_refused, board=here)
    for port in (3001, 3002, 3003):  # over its share each time, but the refusal closes already
        sent = _sent(refusing, ("127.0.0.1", port))
        assert [v for k, v in sent if k == b"connection"] == [b"close"]
    assert refusing.clients.held() == 0  # each closed connection forgotten
    app = Rebalance(_ok, board=here)
    for _ in range(5):  # behind a proxy: the visitor's address, port 0
        assert all(k != b"connection" for k, _ in _sent(app, ("203.0.113.9", 0)))
    assert app.clients.held() == 0
