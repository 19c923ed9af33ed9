"""The library's typed errors as HTTP problems (RFC 9457 ``application/problem+json``):
one table, a stable ``code`` per kind, the error's own one-line message as ``detail``.
Anything else is a 500 ``internal`` whose traceback goes to the log, never to the client."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import (
    BadImage,
    BadPersonName,
    ConfigError,
    DownloadFailed,
    EmptyLibrary,
    LibraryBusy,
    LookalikeError,
    ManifestError,
    MissingExtra,
    ModelMismatch,
    ModelMissing,
    NoFace,
    NotFound,
    NothingIngested,
    UnknownName,
    WheelUnavailable,
)

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_BUSY = 5  # seconds: a write lock is held for one ingest batch or one removal

# error class -> (HTTP status, code); the first class an error is an instance of wins
ERRORS: list[tuple[type[LookalikeError], int, str]] = [
    (NoFace, 422, "no_face"),
    (NotFound, 404, "not_found"),
    (LibraryBusy, 503, "busy"),
    (EmptyLibrary, 409, "empty_library"),
    (ModelMismatch, 409, "model_mismatch"),
    (UnknownName, 400, "unknown_name"),
    (ManifestError, 400, "invalid_manifest"),
    (BadPersonName, 422, "invalid_person_name"),  # before ConfigError, which it is
    (ConfigError, 400, "invalid_option"),
    (NothingIngested, 422, "nothing_ingested"),
    (ModelMissing, 503, "model_missing"),
    (DownloadFailed, 503, "model_missing"),
    (WheelUnavailable, 503, "model_missing"),
    (MissingExtra, 503, "missing_extra"),
]
# BadImage by its status: the photo is too big, not an image, or refused
BAD_IMAGE = {"too_large": (413, "photo_too_large"), "decode_error": (415, "unreadable_photo")}

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict",
          413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
          429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}


def classify(err: LookalikeError) -> tuple[int, str]:
    if isinstance(err, BadImage):
        return BAD_IMAGE.get(err.status, (422, "unreadable_photo"))
    for kind, status, code in ERRORS:
        if isinstance(err, kind):
            return status, code
    return 500, "internal"


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
