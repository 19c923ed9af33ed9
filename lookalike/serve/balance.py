"""Client connections spread over a server's processes: a process holding more connections
than its share closes one after its answer (``Connection: close``), and the client's next
connection is accepted by whichever process takes it first.

Why: ``lookalike serve --workers N`` shares one listening socket, and the process whose event
loop wakes first accepts every connection waiting (uvloop and asyncio accept in a batch), so
clients that connect together land together. A keep-alive client stays where it landed: four
clients of `bench/serve.py` sat 4 + 0 on two processes in one of two loads (2026-12-06 08:24
UTC, 52 requests/s against 73 with 2 + 2), the second process idle while the first queued
every search behind its one-call-at-a-time lock.

Each process counts the connections it holds where they are made and lost: uvicorn's HTTP
protocol tells :data:`PROCESS` (:mod:`lookalike.serve.protocol`), and every change is written
on the server's board (:mod:`lookalike.serve.board`) at once. The share is all the
processes' connections over the processes, rounded up (what a least-connections balancer
weighs). One server process, or none over its share: nothing is ever closed. Behind a proxy
(``--forwarded-allow-ips``) the request's client is the visitor's address without a port, not
the connection: nothing is closed for it there (the proxy's connections are still counted).

Until 2026-12-06 the count was of the clients whose requests came within two seconds (an ASGI
app is never told that a connection closed): the clients of a load that had just ended stayed
counted into the next one (the board said 8 + 8 for four clients) and hid a 3 + 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .asgi import HttpMiddleware, Watched

Peer = tuple[str, int]  # a connection's client end: address and port


class ClientBoard(Protocol):
    """What the spreading needs of the board: :class:`~lookalike.serve.board.Board`."""

    def say_clients(self, clients: int) -> None: ...

    def fair_share(self) -> int: ...


class Connections:
    """The connections one server process holds, as its HTTP protocol made and lost them, and
    which of them are closing (their answer said ``Connection: close``)."""

    def __init__(self) -> None:
        self._open: set[Peer] = set()
        self._closing: set[Peer] = set()
        self._watchers: list[Callable[[int], None]] = []

    def watch(self, said: Callable[[int], None]) -> Callable[[], None]:
        """``said(count)`` is called with the open connections' count now and at each
        change, until the function returned is called (an app's lifespan ends)."""
        self._watchers.append(said)
        said(len(self._open))
        return lambda: self._watchers.remove(said)

    def made(self, peer: Peer) -> None:
        self._open.add(peer)
        self._said()

    def lost(self, peer: Peer) -> None:
        self._open.discard(peer)
        self._closing.discard(peer)
        self._said()

    def closing(self, peer: Peer) -> None:
        """``peer``'s connection closes after this answer: no longer held here, though still
        open (and on the board) until it is lost — the client is on its way to a process that
        has not counted it yet, and a total one short would shrink the share and close one
        more."""
        if peer in self._open:
            self._closing.add(peer)

    def __contains__(self, peer: object) -> bool:
        return peer in self._open

    def open(self) -> int:
        """Connections open now, closing ones included (what the board says)."""
        return len(self._open)

    def held(self) -> int:
        """Connections open now and staying."""
        return len(self._open) - len(self._closing)

    def _said(self) -> None:
        for said in self._watchers:
            said(len(self._open))


PROCESS = Connections()  # this process's, told by lookalike.serve.protocol.CountedHttp


def _closes(headers: Headers) -> bool:
    return any("close" in value.lower() for value in headers.getlist("connection"))


class Rebalance(HttpMiddleware):
    """ASGI middleware: the answer that finds this process over its share of the server's
    connections closes its own (see the module's text)."""

    def __init__(self, app: ASGIApp, board: ClientBoard, connections: Connections = PROCESS) -> None:
        super().__init__(app)
        self.board = board
        self.connections = connections

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if not client or not client[1]:  # no port: a proxy's visitor
            await self.app(scope, receive, send)
            return
        peer = (str(client[0]), int(client[1]))
        leaving = _closes(Headers(scope=scope))  # the client closes it itself

        def answering(message: Message) -> None:
            # decided as the answer starts, not as the request came: requests that waited for
            # the process's one library call all came while it was over its share, and
            # closing every one of them sent them all to the sibling (4 + 0 the other way)
            headers = MutableHeaders(scope=message)
            if leaving or _closes(headers):  # a refusal that closes it anyway
                self.connections.closing(peer)
            elif self.connections.held() > self.board.fair_share():
                headers.append("connection", "close")
                self.connections.closing(peer)

        await self.app(scope, receive, Watched(send, answering))
