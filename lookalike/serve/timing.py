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
context variable; a library call runs in that context (on the event loop) or in a worker
thread's copy of it, which holds the same object, so :func:`recorded` (around
:class:`~lookalike.serve.service.Service`'s calls) adds to it and the middleware
reads it when the answer starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from .asgi import HttpMiddleware, Watched


@dataclass
class Spent:
    """Seconds the library's calls took for one request (None: none was made)."""

    library: float | None = None


_spent: ContextVar[Spent | None] = ContextVar("lookalike_serve_spent", default=None)


@contextmanager
def recorded() -> Iterator[None]:
    """The block's time counted as library work against the current request, however it
    ends (nothing outside a request)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent = _spent.get()
        if spent is not None:
            spent.library = (spent.library or 0.0) + time.perf_counter() - started


class ServerTiming(HttpMiddleware):
    """ASGI middleware: adds ``Server-Timing: library;dur=…`` to answers that made a
    library call."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        spent = Spent()
        token = _spent.set(spent)

        def say(message: Message) -> None:
            if spent.library is not None:
                MutableHeaders(scope=message).append("server-timing", f"library;dur={spent.library * 1000:.2f}")

        try:
            await self.app(scope, receive, Watched(send, say))
        finally:
            _spent.reset(token)
