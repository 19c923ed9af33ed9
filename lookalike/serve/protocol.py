"""uvicorn's HTTP protocol, telling this process's :data:`~lookalike.serve.balance.PROCESS`
each connection it makes and loses: the one place a server process learns that a client
went (an ASGI app is only told of requests). ``lookalike serve`` names it as uvicorn's
``http`` (``lookalike.serve.protocol:CountedHttp``); httptools' protocol where httptools is
installed (the ``serve`` extra has it), h11's otherwise, as uvicorn's own ``auto`` picks."""

from __future__ import annotations

import asyncio
from typing import Any

from .balance import PROCESS

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Http
except ImportError:  # pragma: no cover - httptools is in the serve extra
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Http  # type: ignore[assignment]

IMPORT = "lookalike.serve.protocol:CountedHttp"  # what uvicorn.Config(http=...) is given


class CountedHttp(_Http):
    """uvicorn's protocol for one connection, counted in :data:`PROCESS` while it is open."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client:  # None on a unix socket: nothing to spread there
            PROCESS.made((str(self.client[0]), int(self.client[1])))

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, *event: Any) -> None:  # noqa: ANN401 - httptools' takes none, h11's one
        # the connection goes over to uvicorn's WebSocket protocol, whose loss is never told
        # here (`lookalike serve` turns WebSockets off: the API has none; this is the guard)
        self._gone()
        super().handle_websocket_upgrade(*event)

    def _gone(self) -> None:
        if self.client:
            PROCESS.lost((str(self.client[0]), int(self.client[1])))
