"""The library's typed errors as HTTP problems (RFC 9457 ``application/problem+json``):
the status and stable ``code`` each error class declares (``http_status``,
``problem_code`` in :mod:`lookalike.errors`), the error's own one-line message as
``detail``. A 500 ``internal`` has its traceback logged, never sent to the client."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import EmptyLibrary, LookalikeError

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_BUSY = 5  # seconds: a write lock is held for one ingest batch or one removal

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict",
          413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
          429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}


def classify(err: LookalikeError) -> tuple[int, str]:
    """The status and code the error's class declares (a subclass may declare its own;
    :class:`~lookalike.errors.BadImage` by the photo's status)."""
    return err.http_status, err.problem_code


def detail_of(err: LookalikeError) -> str:
    """The message, without what only the operator should see (the database URL)."""
    if isinstance(err, EmptyLibrary):
        return "the library has no faces yet"
    return str(err)


def response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    from fastapi.responses import JSONResponse

    body = {"type": "about:blank" if code == "internal" else f"lookalike:{code}",
            "title": TITLES.get(status, "Error"), "status": status, "detail": detail, "code": code}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def from_error(err: LookalikeError) -> JSONResponse:
    status, code = classify(err)
    if status >= 500 and code == "internal":
        log.error("request failed: %s", err, exc_info=err)
    headers = {"Retry-After": str(RETRY_AFTER_BUSY)} if code == "busy" else None
    return response(status, code, detail_of(err), headers)
