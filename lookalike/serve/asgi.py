"""What the server's own ASGI middlewares share (:mod:`.guard`, :mod:`.accesslog`,
:mod:`.timing`, :mod:`.balance`): HTTP requests only, and a watch on the answer as it starts."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """A pure ASGI middleware for HTTP requests: lifespan and websocket scopes pass through
    untouched; a subclass writes :meth:`http`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class Watched:
    """``send``, watched: :attr:`status` is the answer's once it has started (0 before), and
    each of ``on_start`` sees the start message before it goes (its headers may be changed in
    place: ``MutableHeaders(scope=message)``)."""

    def __init__(self, send: Send, *on_start: Callable[[Message], None]) -> None:
        self._send, self._on_start = send, on_start
        self.status = 0

    @property
    def started(self) -> bool:
        return self.status != 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message.setdefault("headers", [])
            for seen in self._on_start:
                seen(message)
        await self._send(message)
