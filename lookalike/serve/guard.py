"""Who may call what, how often, with how much, enforced before any byte of a body is
read, parsed or decoded: the gate that asks :mod:`lookalike.serve.keys` who a request's
caller is (its key's scope and its rate) and holds a bound on the request bodies held at
once (:class:`Gate`), the scopes' order and the per-key rate limit it uses, and a
request-size limit (:class:`BodyLimit`); and the last word on a request that crashed
(:class:`CatchAll`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store.values import KeyScope
from . import problems
from .asgi import HttpMiddleware, Watched
from .problems import MEDIA_TYPE, ServerCode

log = logging.getLogger(__name__)


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

    def take(self, caller: str, now: float | None = None, cost: float = 1.0) -> float:
        """0.0 when the request may go ahead, else the seconds until it may. ``cost``: how
        many requests' worth it takes (:data:`PICTURE_COST` for a picture; never more than
        a burst, so every route stays reachable at any rate)."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        cost = min(cost, self.burst)
        with self._lock:
            tokens = self._filled(caller, now)
            if tokens >= cost:
                self._buckets[caller] = (tokens - cost, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (cost - tokens) / (self.per_minute / 60.0)

    def owe(self, caller: str, cost: float, now: float | None = None) -> None:
        """Take ``cost`` more of ``caller``'s rate after the work, for work larger than its
        admission paid for (a morph's frames past :data:`FRAMES_PAID`, known once the body
        is read): never refused, the bucket may go below empty, and the caller's next
        request waits until it has filled again."""
        if self.per_minute <= 0 or cost <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            self._buckets[caller] = (self._filled(caller, now) - cost, now)

    def _filled(self, caller: str, now: float) -> float:
        """``caller``'s tokens at ``now``: refilled at the rate since last counted, up to a
        burst (a new caller starts with a whole one). Under :attr:`_lock`."""
        tokens, then = self._buckets.get(caller, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.per_minute / 60.0)


# a picture (a morph, a transform, an average face) costs 10 to 50 times a search on the
# library's one lock: it takes as many requests' worth of its caller's rate (security probe
# of 2026-12-07: one key's 48-frame morphs within 120 a minute held honest searches 7.8 s)
PICTURE_COST = 8.0
# ...for a morph of at most this many frames; each frame past them costs its share more, owed
# after the morph (RateLimit.owe): a key's 48-frame morphs at the flat cost still held about
# 40 % of the library's lock (security probe of 2026-12-07)
FRAMES_PAID = 12


def frames_owed(frames: int, burst: float) -> float:
    """What a morph of ``frames`` frames owes past what it paid to come in: :data:`PICTURE_COST`,
    or the caller's whole ``burst`` where that is less (a slow ``--rate``), for
    :data:`FRAMES_PAID` frames, and as much again for each as many more."""
    return min(PICTURE_COST, burst) * max(0, frames - FRAMES_PAID) / FRAMES_PAID


def caller_address(host: str) -> str:
    """The address a keyless caller is counted by: an IPv4 address, or an IPv6 address's
    /64 (one household or machine is handed a whole /64, and may send from any address in it)."""
    if ":" not in host:
        return host
    import ipaddress

    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket (--host ::)
        return str(address.ipv4_mapped)
    if address.is_loopback:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


class ApiProblem(Exception):
    """A refusal decided by the server itself (key, scope, rate, size, readiness)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        """``code``: a :class:`~.problems.ServerCode`, or the code a library error declares."""
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


async def send_problem(send: Send, problem: ApiProblem) -> None:
    """A problem answer written straight to the connection, closing it afterwards: the
    request's body (if any) is never read, so the connection cannot carry another."""
    body = json.dumps(problems.body(problem.status, problem.code, problem.detail)).encode()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (problem.headers or {}).items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a length over 0, or chunks)."""
    headers = dict(scope.get("headers") or [])
    length = headers.get(b"content-length", b"").strip()
    return (length.isdigit() and int(length) > 0) or b"transfer-encoding" in headers


# What the gate asks the application: the caller of this request once their key (read from
# the headers), its scope and their rate allow it, or None for a route that needs no key.
# It raises ApiProblem to refuse.
Admit = Callable[[Scope], Awaitable[Any]]


class BodySlots:
    """The places for requests with a body in this server process: at most ``size`` are read
    and answered at once (a place is given back as its answer's last bytes are sent); one
    more waits up to ``wait`` seconds for a place. One object the :class:`Gate` fills and
    ``/v1/health`` reports (``bodies_in_flight``), so an operator, and a test, can see how
    many are taken without taking one."""

    def __init__(self, size: int, wait: float) -> None:
        self.size, self.wait = size, wait
        self.in_flight = 0
        # one caller (a key, or an address without one) holds at most a quarter of the places:
        # two clients sending just above the least rate held every place of a small server
        # for most of an hour (security re-probe 52, N5)
        self.per_caller = max(1, size // 4)
        self.held: dict[str, int] = {}
        self._freed: Any = None  # an asyncio.Event, made on the server's loop

    def claim(self, caller: str) -> bool:
        """Count one more request of ``caller``'s, whether it holds a place or waits for one;
        ``False`` (nothing counted) if it already has its share. Checked and counted in one
        step, before any wait: a check before the wait and a count after it let two waiting
        requests of one caller both in (security re-probe 52). Give it back with
        :meth:`release`."""
        if self.held.get(caller, 0) >= self.per_caller:
            return False
        self.held[caller] = self.held.get(caller, 0) + 1
        return True

    def release(self, caller: str) -> None:
        left = self.held.get(caller, 1) - 1
        if left > 0:
            self.held[caller] = left
        else:
            self.held.pop(caller, None)

    async def enter(self) -> bool:
        """A place, waited for up to :attr:`wait` seconds; ``False`` if none came free."""
        import asyncio

        if self._freed is None:
            self._freed = asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while self.in_flight >= self.size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1
        self._freed.set()


class Gate(HttpMiddleware):
    """ASGI middleware in front of everything that reads a body.

    The caller is admitted from the request's headers alone (key, scope, rate limit); a
    refusal is answered at once and the connection closed, so a caller without a key never
    has a byte of their body buffered beyond the socket's. Then the request takes one of
    the :class:`BodySlots` (or gets a 503 ``busy`` with ``Retry-After`` when none comes free
    in time). The admitted caller is left in ``scope["state"]["caller"]``."""

    def __init__(self, app: ASGIApp, admit: Admit, slots: BodySlots) -> None:
        super().__init__(app)
        self.admit, self.slots = admit, slots

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            caller = await self.admit(scope)
        except ApiProblem as problem:
            await send_problem(send, problem)
            return
        scope.setdefault("state", {})["caller"] = caller
        if not has_body(scope):
            await self.app(scope, receive, send)
            return
        who = str(getattr(caller, "identity", ""))
        if not self.slots.claim(who):
            await send_problem(send, ApiProblem(
                429, ServerCode.rate_limited, f"this caller is already sending {self.slots.per_caller} requests "
                "with a body at once; send the next when one is answered", {"Retry-After": "1"}))
            return
        entered, claimed = False, True

        def free() -> None:
            """Give back the place and the caller's share, once."""
            nonlocal entered, claimed
            if entered:
                entered = False
                self.slots.leave()
            if claimed:
                claimed = False
                self.slots.release(who)

        async def answering(message: Message) -> None:
            # both are given back before the answer's last bytes are sent: a client that sends
            # its next request on its answer found its own share or the one place still taken
            # (a 429 or 503 to an honest keep-alive client, CI 2026-12-07). An answer ending
            # otherwise (a server's "pathsend" extension: uvicorn offers none) frees them as the
            # request ends, below
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                free()
            await send(message)

        try:
            if not await self.slots.enter():
                await send_problem(send, ApiProblem(
                    503, ServerCode.busy, f"the server is already reading {self.slots.size} requests with a body; "
                                 "try again in a moment", {"Retry-After": "1"}))
                return
            entered = True
            await self.app(scope, receive, answering)
        finally:
            free()


def too_large(limit: int) -> str:
    """The 413's words, whether the declared length or the bytes read went over."""
    return f"the request is over {limit} bytes; send smaller photos"


class _TooLarge(HTTPException):
    """Raised from a body read past the limit: an HTTPException, so that FastAPI's body
    parsing passes it on as it is (any other error there becomes FastAPI's own 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))
        self.limit = limit


# a JSON body is a profile, a consent or a key's name: a few kB. Its own limit, far under a
# photo's: 1 M keys in 10 MB took 8.4 s of the event loop and 1.3 GB to refuse (re-probe, M6)
JSON_LIMIT = 1 << 20


class _TooSlow(HTTPException):
    """Raised from a body read that fell behind the least rate a client must keep."""

    def __init__(self, detail: str) -> None:
        super().__init__(408, detail)


class BodyLimit(HttpMiddleware):
    """ASGI middleware: a request whose body is over ``limit`` bytes (a JSON body over
    :data:`JSON_LIMIT`) gets a 413 problem; one whose body arrives slower than
    ``read_seconds`` of grace and then :data:`~lookalike.serve.settings.MIN_BODY_RATE` on
    average gets a 408 and gives up its place. A declared ``Content-Length`` is refused before
    reading; a chunked body is counted as it arrives and cut off at the limit, so nothing
    larger is ever buffered or parsed. Before the deadline a client that dribbled a byte
    every few seconds held one of the few body places for ever (security re-probe, M5)."""

    def __init__(self, app: ASGIApp, limit: int, read_seconds: float) -> None:
        super().__init__(app)
        self.limit, self.read_seconds = limit, read_seconds

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio
        import time

        from .settings import MIN_BODY_RATE

        headers = dict(scope.get("headers") or [])
        # photos come only as multipart forms: any other body (JSON, or one that names no type,
        # which the routes read as JSON all the same: re-probe 52) is held to JSON's limit
        form = headers.get(b"content-type", b"").split(b";")[0].strip().lower().startswith(b"multipart/")
        limit = self.limit if form else min(self.limit, JSON_LIMIT)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, not form)
            return
        received, started, whole = 0, time.monotonic(), False

        async def counted() -> Message:
            nonlocal received, whole
            if whole:  # the body is all here: what is awaited now is the client leaving, untimed
                return await receive()
            due = started + self.read_seconds + received / MIN_BODY_RATE  # when it must have more
            try:
                message = await asyncio.wait_for(receive(), max(0.0, due - time.monotonic()))
            except TimeoutError:
                raise _TooSlow(f"the request's body came slower than {MIN_BODY_RATE // 1024} kB/s after "
                               f"{self.read_seconds:g} s; send it again") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
                whole = not message.get("more_body", False)
            return message

        answer = Watched(send)
        try:
            await self.app(scope, counted, answer)
        except _TooLarge as err:
            if not answer.started:
                await self._refuse(send, err.limit, not form)
        except _TooSlow as err:
            if not answer.started:
                await send_problem(send, ApiProblem(408, ServerCode.request_too_slow, str(err.detail)))

    async def _refuse(self, send: Send, limit: int, json_body: bool) -> None:
        detail = f"a JSON body is at most {limit} bytes" if json_body else too_large(limit)
        await send_problem(send, ApiProblem(413, ServerCode.request_too_large, detail))


class CatchAll(HttpMiddleware):
    """ASGI middleware just outside the routes' own error handlers: a request that crashed
    is logged as its route and the error's class with the stack (never the error's message,
    which for a database error holds the SQL statement and its parameters: a visitor's
    filter values), and answered as a 500 problem; nothing is raised further (Starlette's
    outermost layer would log the whole error a second time)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = Watched(send)
        try:
            await self.app(scope, receive, answer)
        except Exception as err:  # noqa: BLE001 - the last word on any crash: logged, answered
            import traceback

            kind = f"{type(err).__module__}.{type(err).__qualname__}"
            stack = "".join(traceback.format_tb(err.__traceback__)).rstrip()
            log.error("%s %s failed: %s (its message is not logged: it may quote the request)\n%s",
                      scope.get("method"), _route(scope), kind, stack)
            if not answer.started:
                await send_problem(send, ApiProblem(500, ServerCode.internal,
                                                    "the server failed on this request; it has been logged"))


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/people/{name}``), else the path."""
    route = scope.get("route")
    return str(getattr(route, "path", None) or scope.get("path", "?"))


class Cors(CORSMiddleware):
    """Starlette's CORS middleware, its refusal of a preflight a problem (``400
    cors_refused``) like every other 4xx of this API, not its plain-text "Disallowed CORS
    origin"; the headers it would send stay."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        refused = bytes(answer.body).decode("utf-8", "replace").removeprefix("Disallowed CORS ").split(", ")
        detail = (f"this cross-origin request is refused: its {' and '.join(refused)} "
                  f"{'is' if len(refused) == 1 else 'are'} not allowed (the server allows the origins given "
                  "with --cors-origin, and GET, POST, PUT, DELETE with the headers X-API-Key, Authorization "
                  "and Content-Type)")
        keep = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-type", "content-length")}
        return problems.response(400, ServerCode.cors_refused, detail, keep)
