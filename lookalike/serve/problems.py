"""The library's typed errors as HTTP problems (RFC 9457 ``application/problem+json``):
the status and stable ``code`` each error class declares (``http_status``,
``problem_code`` in :mod:`lookalike.errors`), the error's own one-line message as
``detail``. A 500 ``internal`` has its traceback logged, never sent to the client."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from ..errors import EmptyLibrary, LookalikeError, public_text

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_BUSY = 5  # seconds: a write lock is held for one ingest batch or one removal


class ServerCode(StrEnum):
    """The ``code`` of a refusal the server decides itself, before or around the library
    (the library's own are declared by its error classes). Stable: clients branch on them;
    docs/http.md lists them."""

    not_ready = "not_ready"  # 503: the library and models are still loading, or failed to
    busy = "busy"  # 503: every place for a request with a body is taken (also LibraryBusy's: the write lock)
    rate_limited = "rate_limited"  # 429
    unauthorized = "unauthorized"  # 401: no key, or one that is not valid
    forbidden = "forbidden"  # 403: a key whose scope does not reach the route
    not_found = "not_found"  # 404: a stored photo the caller may not see (also the library's NotFound)
    request_too_large = "request_too_large"  # 413: a body over the limit
    invalid_request = "invalid_request"  # 422: a body or form that does not match the route
    unreadable_request = "unreadable_request"  # 400: a body that could not be parsed at all
    no_such_path = "no_such_path"  # 404
    method_not_allowed = "method_not_allowed"  # 405
    cors_refused = "cors_refused"  # 400: a CORS preflight from an origin, or for a method or header, not allowed
    http_error = "http_error"  # any other refusal of the HTTP layer
    internal = "internal"  # 500: logged with its traceback, never sent
    database_unavailable = "database_unavailable"  # 503: the library's database cannot be reached now
    request_too_slow = "request_too_slow"  # 408: a request's head or body that did not arrive in time
    head_too_large = "head_too_large"  # 431: a request line and headers over HEAD_LIMIT


TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          408: "Request timeout", 409: "Conflict", 431: "Request header fields too large",
          413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
          429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}


def classify(err: LookalikeError) -> tuple[int, str]:
    """The status and code the error's class declares (a subclass may declare its own;
    :class:`~lookalike.errors.BadImage` by the photo's status)."""
    return err.http_status, err.problem_code


def detail_of(err: LookalikeError, private: Mapping[str, str] | None = None) -> str:
    """The message without what only the operator should see: the library's places said in
    words (:func:`lookalike.errors.public_text`)."""
    if isinstance(err, EmptyLibrary):
        return "the library has no faces yet"
    return public_text(err, private or {})


def body(status: int, code: str, detail: str) -> dict:
    """A problem's JSON object (RFC 9457), whoever sends it."""
    return {"type": "about:blank" if code == ServerCode.internal else f"lookalike:{code}",
            "title": TITLES.get(status, "Error"), "status": status, "detail": detail, "code": str(code)}


def response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    from fastapi.responses import JSONResponse

    return JSONResponse(body(status, code, detail), status_code=status, media_type=MEDIA_TYPE, headers=headers)


# when a client may ask again, by code: a library busy writing, a database gone away
RETRY_AFTER: dict[str, int] = {ServerCode.busy: RETRY_AFTER_BUSY, ServerCode.database_unavailable: 5}


def answer_of(err: LookalikeError, private: Mapping[str, str] | None = None) -> tuple[int, str, str, dict | None]:
    """The status, code, detail and headers a library error is answered with, wherever the
    server meets it (a route, the key check at the gate)."""
    status, code = classify(err)
    if status >= 500 and code == ServerCode.internal:
        log.error("request failed: %s", err, exc_info=err)
    elif code == ServerCode.database_unavailable:  # the driver's words name the host: logged, not answered
        log.warning("the library's database cannot be reached: %s", err)
    wait = RETRY_AFTER.get(code)
    return status, code, detail_of(err, private), ({"Retry-After": str(wait)} if wait else None)


def from_error(err: LookalikeError, private: Mapping[str, str] | None = None) -> JSONResponse:
    return response(*answer_of(err, private))
