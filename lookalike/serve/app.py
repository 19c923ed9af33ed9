"""The FastAPI application: its middlewares, error handlers and routers (the routes are in
:mod:`lookalike.serve.routes`, one router per topic).

One :class:`~lookalike.serve.service.Service` per server process: the library opened once, the face models loaded
once at start (``/v1/health`` says ``ready`` only then), and one library call that runs a
model or touches the index at a time in the process, as the models and the index are not
made for concurrent calls (reads of people and photos run beside them); the processes
(``lookalike serve --workers N``) are the parallelism, as the ingest workers are.

Query photos stay in memory: they are read from the request, decoded, searched and
dropped; nothing of them is written or logged (the access log has the path only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import LookalikeError
from . import problems, schemas
from .accesslog import AccessLog
from .balance import PROCESS, Rebalance
from .guard import ApiProblem, BodyLimit, BodySlots, CatchAll, Cors, Gate
from .head import HeadAsGet
from .keys import admitter
from .problems import ServerCode
from .routes import TOPICS
from .service import Service
from .settings import ServeSettings
from .timing import ServerTiming

log = logging.getLogger(__name__)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The application for one server process (uvicorn calls this once per worker)."""
    from contextlib import asynccontextmanager

    settings = settings or ServeSettings.from_env()
    service = Service(settings)
    # Starlette spools an uploaded file past 1 MB into a temporary file on disk: a visitor's
    # photo must never be written anywhere, so parts stay in memory up to the request limit
    # (which BodyLimit enforces before parsing). A class attribute: this server process only.
    from starlette.formparsers import MultiPartParser

    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, settings.max_request_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - FastAPI's lifespan protocol
        app.state.service.start()
        # the connections uvicorn's protocol counts (lookalike.serve.protocol), on the board
        unwatch = PROCESS.watch(service.board.say_clients) if service.board is not None else None
        yield
        if unwatch is not None:
            unwatch()
        app.state.service.close()

    # Swagger UI and ReDoc load their scripts from a CDN: off unless the operator asks
    docs = {} if settings.docs else {"docs_url": None, "redoc_url": None}
    app = FastAPI(
        title="lookalike", version=__version__, lifespan=lifespan, **docs,  # type: ignore[arg-type]
        # "/v1/people/x/" is no route: a 404, not a keyless 307 to a Location built from the Host header
        redirect_slashes=False,
        description="Who looks like me? Face look-alike search over a photo corpus. Errors are "
                    "`application/problem+json` with a stable `code`.",
        responses={code: {"model": schemas.Problem, "content": {problems.MEDIA_TYPE: {}}}
                   for code in (400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 431, 503)},
    )
    app.state.service = service
    app.state.bodies = BodySlots(settings.max_bodies, float(settings.body_wait))
    _handlers(app)
    # outermost last: the gate decides from the headers before the size limit counts a byte
    # of the body; CatchAll sits just outside the routes' own error handlers
    app.add_middleware(CatchAll)
    app.add_middleware(ServerTiming)  # inside the gate: a refused request made no library call
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, read_seconds=settings.read_seconds)
    app.add_middleware(Gate, admit=admitter(app, service), slots=app.state.bodies)
    if settings.cors_origins:
        app.add_middleware(Cors, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"])
    app.add_middleware(HeadAsGet, routes=app.router.routes)  # outside the gate: a HEAD needs its GET's key
    if service.board is not None:  # more than one server process: their clients spread out
        app.add_middleware(Rebalance, board=service.board, connections=PROCESS)
    app.add_middleware(AccessLog)  # outermost: every answer is logged, refusals too

    for topic in TOPICS:
        topic.declare_on(app.router)
    app.openapi = _bodies_named(app.openapi)  # type: ignore[method-assign]
    return app


def _bodies_named(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document, with each form body a route reads itself
    (:func:`~lookalike.serve.routes.common.form_body`) moved to a component named as FastAPI
    names the bodies it reads (``Body_search_v1_search_post``): a client generated from the
    document keeps its type names."""
    def named() -> dict[str, Any]:
        spec = openapi()  # made once, then FastAPI's cached copy: this edit runs once
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                body = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
                if "properties" in body.get("schema", {}):  # written out in place: form_body's
                    name = f"Body_{operation['operationId']}"
                    schemas[name] = {**body["schema"], "title": name}
                    body["schema"] = {"$ref": f"#/components/schemas/{name}"}
        return spec

    return named


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LookalikeError)
    async def library_error(request: Request, err: LookalikeError) -> JSONResponse:
        return problems.from_error(err, request.app.state.service.private())

    @app.exception_handler(ApiProblem)
    async def refused(request: Request, err: ApiProblem) -> JSONResponse:
        return problems.response(err.status, err.code, err.detail, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {_said(e)}" for e in err.errors()[:5])
        return problems.response(422, ServerCode.invalid_request, where or "the request does not match its schema")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: ServerCode.no_such_path, 405: ServerCode.method_not_allowed, 408: ServerCode.request_too_slow,
                413: ServerCode.request_too_large}.get(err.status_code, ServerCode.http_error)
        detail = str(err.detail)
        if detail == HTTPStatus(err.status_code).phrase:  # Starlette's bare "Not Found": say what it means
            detail = {404: "no such path here; the routes are listed in /openapi.json",
                      405: f"{request.method} is not a method of this path (see /openapi.json)"}.get(err.status_code,
                                                                                                      detail)
        if err.status_code == 400:  # a body FastAPI or Starlette could not parse; in their words otherwise
            code, detail = ServerCode.unreadable_request, ("the request's body could not be read as the route's form "
                                                  "or JSON (see /openapi.json)")
        return problems.response(err.status_code, code, detail, getattr(err, "headers", None))


def _said(error: dict) -> str:
    """One validation error in our words where pydantic's would be vague."""
    limit = (error.get("ctx") or {}).get("max_length")
    if error.get("type") == "string_too_long":
        return f"longer than {limit} characters"
    if error.get("type") == "too_long":
        return f"more than {limit} given"
    if error.get("type") == "json_invalid":
        return "not valid JSON"
    if error.get("type") == "model_attributes_type":  # a form, or JSON sent as text/plain
        return "a JSON object was expected (Content-Type: application/json)"
    if "Expected UploadFile" in str(error.get("msg")):  # pydantic's words name a Python class
        return "a photo file, not a text field"
    return str(error.get("msg"))


def from_env() -> FastAPI:
    """uvicorn's factory (``lookalike serve``): the settings come from the environment."""
    return create_app(ServeSettings.from_env())
