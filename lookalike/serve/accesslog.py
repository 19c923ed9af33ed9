"""What ``lookalike serve`` logs of each request: method, path (without the query string)
and status; never the client's address or port (a visitor's whereabouts), never the query
string (a key passed as ``?access_token=…`` would land in the log).

Written by :class:`AccessLog` once the answer has been handed to the socket, not by uvicorn
when the answer starts (its own access log is off): the line's ~0.2 ms of formatting and
writing no longer sits between a search's end and the client's first byte (measured,
2026-12-06: a quarter of the event loop's CPU per search). The record keeps the shape of
uvicorn's, so its formatter and the same filter apply; the filter rewrites each record
before any handler formats it, so no handler can write what it dropped."""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import Receive, Scope, Send

from .asgi import HttpMiddleware, Watched

log = logging.getLogger("lookalike.access")  # uvicorn's "access" handler and formatter (log_config)


class PathOnly(logging.Filter):
    """Rewrites uvicorn's access record ``(client, method, path?query, version, status)``
    to ``("-", method, path, version, status)``; a record of another shape loses its
    arguments altogether rather than pass through unread."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _, method, full_path, version, status = args
            record.args = ("-", method, str(full_path).split("?", 1)[0], version, status)
        else:
            record.msg, record.args = "request (unrecognised access record)", ()
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging set-up (its default), with the access lines (:class:`AccessLog`'s
    logger) as ``INFO: "POST /v1/search HTTP/1.1" 200 OK``."""
    from copy import deepcopy

    from uvicorn.config import LOGGING_CONFIG

    config = deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = '%(levelprefix)s "%(request_line)s" %(status_code)s'
    config.setdefault("filters", {})["path_only"] = {"()": f"{__name__}.PathOnly"}
    config["handlers"]["access"]["filters"] = ["path_only"]
    # uvicorn's own access logger stays silent (``access_log=False`` empties it): AccessLog's is ours
    config["loggers"][log.name] = {"handlers": ["access"], "level": "INFO", "propagate": False}
    # the multipart parser warns about a malformed body in its own words, a byte of the body
    # among them, through Python's last-resort handler: the request's 400 already says it
    config["loggers"]["python_multipart"] = {"level": "ERROR"}
    return config


class AccessLog(HttpMiddleware):
    """ASGI middleware (the outermost): one access line for each HTTP request that was
    answered, written after the answer's last byte was handed to the server."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = Watched(send)
        try:
            await self.app(scope, receive, answer)
        except Exception:
            # raised past every handler inside: Starlette's ServerErrorMiddleware, outside
            # this one, answers 500 through the server's own send
            answer.status = answer.status or 500
            raise
        finally:
            if answer.status and log.isEnabledFor(logging.INFO):
                log.info('%s - "%s %s HTTP/%s" %d', "-", scope["method"], _path(scope), scope["http_version"],
                         answer.status)


def _path(scope: Scope) -> str:
    """The request's path as the client sent it (``raw_path``, the root path included, as
    uvicorn's own line had it): still percent-encoded, so an encoded newline or quote cannot
    start a forged line or close the quoted request line early."""
    raw = scope.get("raw_path")
    path = raw.decode("latin1") if isinstance(raw, bytes) else scope["path"]
    return path.replace('"', "%22").replace("\n", "%0A").replace("\r", "%0D")
