"""Who may call what, how often, with how much: API keys and scopes, a per-key rate
limit, and a request-size limit enforced before any byte is parsed or decoded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ..store.schema import KeyScope
from .problems import MEDIA_TYPE, TITLES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def grants(held: KeyScope | None, needed: KeyScope) -> bool:
    """An admin key may do what a search key may; nothing else is implied."""
    return held is not None and (held == needed or held == KeyScope.admin)


@dataclass
class RateLimit:
    """A token bucket per caller: ``per_minute`` requests, refilled continuously, with a
    burst of a tenth of a minute's worth (at least 5). Per server process: with
    ``--workers N`` a caller may get up to N times as much."""

    per_minute: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # caller -> (tokens, when)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def burst(self) -> float:
        return max(5.0, self.per_minute / 10)

    def take(self, caller: str, now: float | None = None) -> float:
        """0.0 when the request may go ahead, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, then = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request whose body is over ``limit`` bytes gets a 413 problem.
    A declared ``Content-Length`` is refused before reading; a chunked body is counted as
    it arrives and cut off at the limit, so nothing larger is ever buffered or parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"type": "lookalike:request_too_large", "title": TITLES[413], "status": 413,
                           "detail": f"the request is over {self.limit} bytes; send smaller photos",
                           "code": "request_too_large"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
