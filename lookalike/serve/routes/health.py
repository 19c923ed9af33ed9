"""``/v1/health`` (tag ``service``): whether this server process is ready to answer."""

from __future__ import annotations

import logging
import os

from fastapi import Request
from fastapi.responses import JSONResponse

from .. import schemas
from .common import Served, Topic

router = Topic()
log = logging.getLogger(__name__)


@router.get("/v1/health", response_model=schemas.Health, tags=["service"])
async def health(service: Served, request: Request) -> JSONResponse:
    """``ready`` once the library is open and its models are loaded (503 until then, and
    ``unavailable`` while its database cannot be reached);
    ``worker`` is the answering process's pid, ``models`` its models' state and
    ``bodies_in_flight`` how many requests with a body it is reading or serving."""
    bodies = request.app.state.bodies.in_flight
    if service.ready.is_set():
        # a server whose PostgreSQL went away said "ready" while every search failed
        if (why := await service.unreachable()) is not None:  # the driver's words name the host: log only
            log.warning("health: the library's database cannot be reached: %s", why)
            return JSONResponse({"status": "unavailable", "detail": "the library's database cannot be reached now",
                                 "worker": os.getpid(), "models": "loaded", "bodies_in_flight": bodies},
                                status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "detail": None, "worker": os.getpid(), "models": "loaded",
                             "bodies_in_flight": bodies})
    status = "failed" if service.failed else "loading"
    # a failed open does not heal by waiting (the log says why): no Retry-After to poll by
    return JSONResponse({"status": status, "detail": service.failed, "worker": os.getpid(),
                         "models": status, "bodies_in_flight": bodies}, status_code=503,
                        headers=None if service.failed else {"Retry-After": "2"})
