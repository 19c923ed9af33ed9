"""``/v1/health`` (tag ``service``): whether this server process is ready to answer."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from .. import schemas
from .common import Served, Topic

router = Topic()


@router.get("/v1/health", response_model=schemas.Health, tags=["service"])
async def health(service: Served) -> JSONResponse:
    """``ready`` once the library is open and its models are loaded (503 until then)."""
    if service.ready.is_set():
        return JSONResponse({"status": "ready", "detail": None})
    status = "failed" if service.failed else "loading"
    return JSONResponse({"status": status, "detail": service.failed}, status_code=503,
                        headers={"Retry-After": "2"})
