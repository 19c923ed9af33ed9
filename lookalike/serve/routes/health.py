"""``/v1/health`` (tag ``service``): whether this server process is ready to answer."""

from __future__ import annotations

import os

from fastapi.responses import JSONResponse

from .. import schemas
from .common import Served, Topic

router = Topic()


@router.get("/v1/health", response_model=schemas.Health, tags=["service"])
async def health(service: Served) -> JSONResponse:
    """``ready`` once the library is open and its models are loaded (503 until then);
    ``worker`` is the answering process's pid and ``models`` its models' state."""
    if service.ready.is_set():
        return JSONResponse({"status": "ready", "detail": None, "worker": os.getpid(), "models": "loaded"})
    status = "failed" if service.failed else "loading"
    return JSONResponse({"status": status, "detail": service.failed, "worker": os.getpid(),
                         "models": status}, status_code=503, headers={"Retry-After": "2"})
