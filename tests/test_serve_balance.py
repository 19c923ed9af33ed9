"""Client connections spread over a server's processes (lookalike.serve.balance): a process
over its share of the connections closes one after its answer, one alone never does, and a
connection counts from when it is made until it is lost (tests/test_serve_processes.py: on the real
two-process server, four keep-alive clients end up two and two, and clients that left are
off the board at once)."""

from __future__ import annotations

import asyncio

import pytest

from lookalike.serve import board as boards
from lookalike.serve.balance import Connections, Rebalance
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
    """The headers of ``app``'s answer to a request on 127.0.0.1:``port``'s connection
    (made first if it is not open: its client reconnected, or came for the first time)."""
    if ("127.0.0.1", port) not in app.connections:
        app.connections.made(("127.0.0.1", port))
    return dict(_sent(app, ("127.0.0.1", port)))


def _rebalance(app, board: Board) -> Rebalance:
    """``app`` behind the spreading, its own connections counted onto ``board``."""
    connections = Connections()
    connections.watch(board.say_clients)
    return Rebalance(app, board=board, connections=connections)


def test_a_process_over_its_share_closes_a_connection_and_one_alone_never_does(shared):
    here, sibling = Board(shared), Board(shared)
    app = _rebalance(_ok, here)
    sibling.say_clients(0)
    assert b"connection" not in _answer(app, 1001)
    assert _answer(app, 1002)[b"connection"] == b"close"  # two connections here, none there
    assert app.connections.held() == 1 and app.connections.open() == 2  # closing, not yet lost
    assert here.fair_share() == 1  # the closing one still counted on the board
    app.connections.lost(("127.0.0.1", 1002))
    sibling.say_clients(1)  # its client reconnected to the sibling
    assert b"connection" not in _answer(app, 1001)
    assert b"connection" not in _answer(app, 1003)  # 2 here, 1 there: as even as 3 can be
    assert _answer(app, 1004)[b"connection"] == b"close"  # 3 here, 1 there
    assert _answer(app, 1001).get(b"connection") is None  # 2 staying here: not closed again
    app.connections.lost(("127.0.0.1", 1004))
    sibling.say_clients(2)
    for port in (1001, 1003, 1001, 1003):  # 2 and 2: nobody is closed
        assert b"connection" not in _answer(app, port)
    sibling.close()  # the sibling process is gone: its connections are not counted
    alone = _rebalance(_ok, here)
    for port in range(2001, 2010):  # one process, nine connections: all its own
        assert b"connection" not in _answer(alone, port)


def test_connections_count_from_made_to_lost_and_the_board_hears_each_change(shared):
    """No time window: a connection that was lost is off the board at once, however recently
    it asked something, and an idle one that stays open is still held (the count that hid a
    3 + 1 behind 8 + 8 when a load followed another)."""
    here, sibling = Board(shared), Board(shared)
    heard: list[int] = []
    connections = Connections()
    connections.watch(heard.append)
    connections.watch(here.say_clients)
    for port in (1, 2, 3):
        connections.made(("127.0.0.1", port))
    sibling.say_clients(1)
    assert heard == [0, 1, 2, 3] and here.fair_share() == 2
    connections.closing(("127.0.0.1", 9))  # not open here: nothing to close
    assert connections.held() == 3
    for port in (1, 2, 3):
        connections.lost(("127.0.0.1", port))
    assert heard[-1] == 0 and connections.open() == 0 and here.fair_share() == 1


async def _refused(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"no"})


def test_an_answer_that_closes_anyway_gets_no_second_close_and_a_proxys_visitor_is_not_counted(shared):
    here, sibling = Board(shared), Board(shared)
    sibling.say_clients(0)
    refusing = _rebalance(_refused, here)
    for port in (3001, 3002, 3003):  # over its share each time, but the refusal closes already
        refusing.connections.made(("127.0.0.1", port))
        sent = _sent(refusing, ("127.0.0.1", port))
        assert [v for k, v in sent if k == b"connection"] == [b"close"]
    assert refusing.connections.held() == 0  # each closing connection no longer held
    app = _rebalance(_ok, here)
    app.connections.made(("127.0.0.1", 4001))  # the proxy's one connection, counted
    sibling.say_clients(0)
    for _ in range(5):  # behind a proxy: the visitor's address, port 0, is not a connection
        assert all(k != b"connection" for k, _ in _sent(app, ("203.0.113.9", 0)))
    assert app.connections.held() == 1
