"""Client connections spread over a server's processes: a process holding more keep-alive
clients than its share closes one connection after its answer (``Connection: close``), and
the client's next connection is accepted by whichever process takes it first.

Why: ``lookalike serve --workers N`` shares one listening socket, and the process whose event
loop wakes first accepts every connection waiting (uvloop and asyncio accept in a batch), so
clients that connect together land together. A keep-alive client stays where it landed: four
clients of `bench/serve.py` sat 4 + 0 on two processes in one of two loads (2026-12-06 08:24
UTC, 52 requests/s against 73 with 2 + 2), the second process idle while the first queued
every search behind its one-call-at-a-time lock. Each process counts the clients whose
requests came within :data:`FRESH_S` (a closed connection is not seen by an ASGI app, an idle
one drops out of the count) and writes the count on the server's board
(:mod:`lookalike.serve.board`); the share is all the processes' clients over the processes,
rounded up. One server process, or none over its share: nothing is ever closed. Behind a
proxy (``--forwarded-allow-ips``) the client is the visitor's address without a port, not a
connection: nothing is counted or closed there either."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .asgi import HttpMiddleware, Watched

FRESH_S = 2.0  # a client whose request came this recently is still held by the process


class ClientBoard(Protocol):
    """What :class:`Rebalance` needs of the board: :class:`~lookalike.serve.board.Board`."""

    def say_clients(self, clients: int) -> None: ...

    def fair_share(self, fresh_ms: int) -> int: ...


class Clients:
    """The client connections (address, port) whose requests this process saw lately."""

    def __init__(self, fresh_s: float = FRESH_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh_s = fresh_s
        self._clock = clock
        self._seen: dict[tuple[str, int], float] = {}
        self._swept = clock()

    def saw(self, client: tuple[str, int]) -> int:
        """Notes a request from ``client`` now; how many clients are held (seen within
        :attr:`fresh_s`; the others are forgotten at most a quarter of it late, so that a
        server with many clients does not walk them all at every request)."""
        now = self._clock()
        self._seen[client] = now
        if now - self._swept > self.fresh_s / 4:
            self._swept = now
            for c in [c for c, when in self._seen.items() if now - when > self.fresh_s]:
                del self._seen[c]
        return len(self._seen)

    def held(self) -> int:
        """How many clients are held now (as of the last :meth:`saw`)."""
        return len(self._seen)

    def forget(self, client: tuple[str, int]) -> None:
        """``client``'s connection is closing: no longer held."""
        self._seen.pop(client, None)


def _closes(headers: Headers) -> bool:
    return any("close" in value.lower() for value in headers.getlist("connection"))


class Rebalance(HttpMiddleware):
    """ASGI middleware: the answer that finds this process over its share of the server's
    clients closes its connection (see the module's text)."""

    def __init__(self, app: ASGIApp, board: ClientBoard, clients: Clients | None = None) -> None:
        super().__init__(app)
        self.board = board
        self.clients = clients or Clients()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if not client or not client[1]:  # no port: a proxy's visitor
            await self.app(scope, receive, send)
            return
        key = (str(client[0]), int(client[1]))
        self.board.say_clients(self.clients.saw(key))
        leaving = _closes(Headers(scope=scope))  # the client closes it itself

        def answering(message: Message) -> None:
            # decided as the answer starts, not as the request came: requests that waited for
            # the process's one library call all came while it was over its share, and
            # closing every one of them sent them all to the sibling (4 + 0 the other way)
            headers = MutableHeaders(scope=message)
            if leaving or _closes(headers):  # a refusal that closes it anyway
                self.clients.forget(key)
            elif self.clients.held() > self.board.fair_share(int(self.clients.fresh_s * 1000)):
                headers.append("connection", "close")
                # forgotten here, still counted on the board until the next request: the
                # client is on its way to a process that has not counted it yet, and a
                # total one short would shrink the share and close one more
                self.clients.forget(key)

        await self.app(scope, receive, Watched(send, answering))
