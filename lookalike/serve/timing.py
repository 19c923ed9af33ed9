"""The ``Server-Timing`` header of each answer: how long its library calls took inside the
server (``library;dur=7.91``, milliseconds, the wait for the process's one-call-at-a-time
lock left out), so that a client — a browser's developer tools, ``bench/serve.py`` — can
tell what the HTTP stack adds to a request from what the search itself took there.

Why it is worth a header: on a shared VM the same search runs slower after the cores
idled a few milliseconds (as they do between two requests of one client) than right after
another search, in-process too (measured 2026-12-06: SFace 3.5 ms back to back, 4.0-4.5 ms
3 ms after the last call, 7-8 ms 20 ms after). Latency minus this figure is the HTTP
stack's own share; the figure against an in-process search is the rest.

:class:`ServerTiming` (ASGI middleware) gives each HTTP request a :class:`Spent` in a
context variable; the route's worker thread runs in a copy of that context, which holds the
same object, so :func:`record` (called by :meth:`~lookalike.serve.service.Service.call`)
adds to it and the middleware reads it when the answer starts."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Spent:
    """Seconds the library's calls took for one request (None: none was made)."""

    library: float | None = None


_spent: ContextVar[Spent | None] = ContextVar("lookalike_serve_spent", default=None)


def record(seconds: float) -> None:
    """Count ``seconds`` of library work against the current request (nothing outside one)."""
    spent = _spent.get()
    if spent is not None:
        spent.library = (spent.library or 0.0) + seconds


def header(spent: Spent) -> tuple[bytes, bytes] | None:
    """The ``Server-Timing`` header for what was spent, or None when no call was made."""
    if spent.library is None:
        return None
    return b"server-timing", f"library;dur={spent.library * 1000:.2f}".encode()


class ServerTiming:
    """ASGI middleware: adds ``Server-Timing: library;dur=…`` to answers that made a
    library call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        spent = Spent()
        token = _spent.set(spent)

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                added = header(spent)
                if added is not None:
                    message = {**message, "headers": [*message.get("headers", []), added]}
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            _spent.reset(token)
