"""``HEAD`` on a route that answers ``GET``: the GET's status and headers, no body.

RFC 9110 (9.3.2) expects a resource that supports GET to support HEAD, and monitors and load
balancers probe with it; FastAPI routes only the methods a route declares, so HEAD was a
405. Declaring HEAD on every GET route would put a second operation per path into the
OpenAPI document; this middleware answers it instead, outside the gate, so a HEAD needs the
key its GET needs and counts against the same rate limit. A path with no GET route keeps
its own answer (405, or 404 for no route at all)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .asgi import HttpMiddleware


class HeadAsGet(HttpMiddleware):
    """``routes``: the application's own list (``app.router.routes``), read per request, so
    the routes declared after the middleware was added count."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        super().__init__(app)
        self.routes = routes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}
        if not any(route.matches(as_get)[0] is Match.FULL for route in self.routes):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the GET's body, dropped; its Content-Length stays, as HEAD's should
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(as_get, receive, headers_only)
