"""uvicorn's HTTP protocol, telling this process's :data:`~lookalike.serve.balance.PROCESS`
each connection it makes and loses: the one place a server process learns that a client
went (an ASGI app is only told of requests). ``lookalike serve`` names it as uvicorn's
``http`` (``lookalike.serve.protocol:CountedHttp``); httptools' protocol where httptools is
installed (the ``serve`` extra has it), h11's otherwise, as uvicorn's own ``auto`` picks.

It also bounds what a request's head may cost, before any key is checked (security
re-probe, 2026-12-07): httptools takes a request line and headers of any size, and one
growing 100 MB header value cost 11.5 s of the event loop (superlinear), so a head over
:data:`HEAD_LIMIT` bytes is answered 431; a head still incomplete the server's read timeout
(``--read-timeout``, uvicorn's keep-alive) after the connection opened or its last byte came
(a silent connection, one that stops mid-header) is answered 408 and closed, where it was
kept open for ever; and the parser's own refusals are ``application/problem+json`` like
every other answer, not plain text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from . import problems
from .balance import PROCESS

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Http
except ImportError:  # pragma: no cover - httptools is in the serve extra
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Http  # type: ignore[assignment]

IMPORT = "lookalike.serve.protocol:CountedHttp"  # what uvicorn.Config(http=...) is given

# a request line and headers, together: nginx takes 8-32 kB, h11 16 kB; an API key, a
# bearer token and a browser's headers take a few
HEAD_LIMIT = 64 * 1024


def _problem(status: int, code: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer: the problem as JSON, the connection closed after it."""
    body = json.dumps(problems.body(status, code, detail)).encode()
    head = (f"HTTP/1.1 {status} {problems.TITLES.get(status, 'Error')}\r\ncontent-type: {problems.MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class CountedHttp(_Http):
    """uvicorn's protocol for one connection, counted in :data:`PROCESS` while it is open,
    its requests' heads bounded in size and time."""

    _head_open = True  # no request's head has been read whole since the last one ended
    _head_bytes = 0  # bytes received while a head is awaited
    _head_size = 0  # bytes of the current request's line and headers (trailers too), as parsed
    _since_head = 0  # bytes received since its head was whole: its body, chunk framing, trailers
    _body = 0  # bytes of its body
    _refused = False  # answered by this protocol itself: what else comes is dropped
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client:  # None on a unix socket: nothing to spread there
            PROCESS.made((str(self.client[0]), int(self.client[1])))
        self._head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self._stop_head_timer()
        super().connection_lost(exc)

    # -- the head: bounded in bytes and in time -----------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_open:
            self._head_bytes += len(data)
        else:
            self._since_head += len(data)
        if self._head_timer is None:  # a deadline is always armed while bytes come (_head_late)
            self._head_deadline()
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        if self._head_open and self._head_bytes > HEAD_LIMIT:
            self._too_large("the request line and headers")
        elif not self._head_open and self._since_head - self._body > HEAD_LIMIT + self._body // 8:
            # what a chunked body sends beside its bytes: its chunk sizes and the trailers after
            # it (one 100 MB trailer cost 12 s of the event loop, before any key: re-probe 52)
            self._too_large("the chunk framing and trailers of the body")

    def on_message_begin(self) -> None:
        self._head_size = self._since_head = self._body = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_size += len(name) + len(value)
        if not self._head_open and self._head_size > HEAD_LIMIT:  # a chunked body's trailers
            self._too_large("the chunk framing and trailers of the body")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open, self._head_bytes = False, 0
        if self._head_size > HEAD_LIMIT:  # a head that came in one read (the count above sees reads)
            self._too_large("the request line and headers")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._head_open = True  # the next request's head, on the same connection

    def send_400_response(self, msg: str) -> None:
        """httptools' refusal of what is not HTTP/1.1 (a bad length, an HTTP/2 preface), as a
        problem like every other answer."""
        self._refuse(400, problems.ServerCode.unreadable_request, "not an HTTP/1.1 request this server reads")

    def _too_large(self, what: str) -> None:
        self._refuse(431, problems.ServerCode.head_too_large, f"{what} are over {HEAD_LIMIT} bytes")

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._refused = True
        self.logger.warning("%s:%s refused: %s", *(self.client or ("-", "-")), detail)
        self.transport.write(_problem(status, code, detail))
        self.transport.close()

    def _head_deadline(self) -> None:
        self._stop_head_timer()
        # uvicorn's keep-alive, which lookalike.serve.launch.server_config sets to the
        # settings' read_seconds: a head may take as long as an idle connection may wait
        seconds = float(self.timeout_keep_alive)
        self._head_timer = self.loop.call_later(seconds, self._head_late, seconds)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self, seconds: float) -> None:
        """The deadline: a head still awaited with bytes of it come (or none on a new
        connection) is a 408; a request already answered whose client still sends a body
        nobody reads is closed (one byte after the answer kept a connection open for ever:
        re-probe 52); a request being read or served is the app's to time, looked at again
        later; a kept-alive connection between requests is uvicorn's keep-alive timeout's (the
        same seconds, :func:`lookalike.serve.launch.server_config`)."""
        self._head_timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._head_open:
            if self._head_bytes or self.cycle is None:
                self._refuse(408, problems.ServerCode.request_too_slow,
                             f"the request's head did not arrive within {seconds:g} s")
        elif self.cycle is not None and self.cycle.response_complete:
            self.transport.close()
        else:
            self._head_deadline()

    def handle_websocket_upgrade(self, *event: Any) -> None:  # noqa: ANN401 - httptools' takes none, h11's one
        # the connection goes over to uvicorn's WebSocket protocol, whose loss is never told
        # here (`lookalike serve` turns WebSockets off: the API has none; this is the guard)
        self._gone()
        super().handle_websocket_upgrade(*event)

    def _gone(self) -> None:
        if self.client:
            PROCESS.lost((str(self.client[0]), int(self.client[1])))
