"""The FastAPI application: every route, over the library's verbs.

One :class:`Service` per server process: the library opened once, the face models loaded
once at start (``/v1/health`` says ``ready`` only then), and one library call at a time in
the process, as the models and the index are not made for concurrent calls; the processes
(``lookalike serve --workers N``) are the parallelism, as the ingest workers are.

Query photos stay in memory: they are read from the request, decoded, searched and
dropped; nothing of them is written or logged (uvicorn's access log has the path only).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Annotated, TypeVar

from fastapi import Depends, FastAPI, File, Form, Path, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import LookalikeError
from ..store.schema import KeyScope
from . import problems, schemas
from .guard import BodyLimit, RateLimit, grants
from .settings import ServeSettings

if TYPE_CHECKING:
    from ..library import Library
    from ..store.repo import PersonSummary

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Who made a request: ``identity`` for the rate limit, ``scope`` of their key (None for
    an open search without one)."""

    identity: str
    scope: KeyScope | None

    @property
    def admin(self) -> bool:
        return self.scope is KeyScope.admin


class ApiProblem(Exception):
    """A refusal decided by the server itself (key, scope, rate, size, readiness)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


class Service:
    """The process's library and its models, loaded once (in a thread, so that the server
    answers ``/v1/health`` while they load)."""

    KEY_TTL = 2.0  # seconds a key's scope is trusted before the database is asked again

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._keys: dict[str, tuple[KeyScope | None, float]] = {}  # key -> (scope, when read)
        self.lib: Library | None = None
        self.failed: str | None = None
        self.ready = threading.Event()
        self.lock = threading.Lock()  # one library call at a time in this process
        self.limit = RateLimit(settings.rate_per_minute)

    def start(self) -> None:
        threading.Thread(target=self._load, name="lookalike-load", daemon=True).start()

    def _load(self) -> None:
        import cv2

        import lookalike

        cv2.setNumThreads(self.settings.model_threads)  # YuNet runs in OpenCV's DNN module
        try:
            lib = lookalike.open(self.settings.db, index_dir=self.settings.index_dir,
                                 max_pixels=self.settings.max_megapixels * 1_000_000,
                                 model_threads=self.settings.model_threads)
            if self.settings.warm:
                _warm(lib)
            self.lib = lib
            self.ready.set()
            log.info("ready: %s", lib.settings.db_url)
            self._say_ready()
        except LookalikeError as err:
            self.failed = str(err)
            log.error("the library could not be opened: %s", err, exc_info=True)

    def _say_ready(self) -> None:
        """A file named by this process's pid in ``ready_dir`` (when set): whoever started
        ``serve --workers N`` knows every process is ready when N files are there, without
        guessing from which process the kernel happened to hand its health requests to."""
        if self.settings.ready_dir is None:
            return
        from pathlib import Path

        folder = Path(self.settings.ready_dir)
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f".{os.getpid()}.part"
        part.write_text("ready\n")
        part.replace(folder / str(os.getpid()))

    def library(self) -> Library:
        """The open library; a 503 ``not_ready`` until it is (or when it could not be)."""
        if self.lib is None:
            if self.failed is not None:
                raise ApiProblem(503, "not_ready", f"the server could not open its library: {self.failed}")
            raise ApiProblem(503, "not_ready", "the models are still loading", {"Retry-After": "2"})
        return self.lib

    def call(self, work: Callable[[Library], T]) -> T:
        lib = self.library()
        with self.lock:
            return work(lib)

    def scope_of(self, key: str) -> KeyScope | None:
        """The key's scope, read from the database at most every :attr:`KEY_TTL` seconds per
        key (a revoked key is refused within that time, in every server process)."""
        import time

        now = time.monotonic()
        cached = self._keys.get(key)
        if cached is not None and now - cached[1] < self.KEY_TTL:
            return cached[0]
        scope = self.library().key_scope(key)  # its own session: no need to wait for a search
        if len(self._keys) > 10_000:  # made-up keys must not grow this without bound
            self._keys.clear()
        self._keys[key] = (scope, now)
        return scope

    def close(self) -> None:
        if self.lib is not None:
            self.lib.close()


def _warm(lib: Library) -> None:
    """Load the detector and the recognition model now, and open the index, so the first
    visitor does not wait for them."""
    import numpy as np

    pipeline = lib.pipeline
    pipeline.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    size = pipeline.embedder.input_size
    pipeline.embedder.embed([np.zeros((size[1], size[0], 3), dtype=np.uint8)])
    try:
        lib.index  # noqa: B018 - opened now, not at the first search
    except LookalikeError as err:  # an empty library: searches will say so
        log.info("no index yet: %s", err)


# -- keys -----------------------------------------------------------------------------
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A key from `lookalike keys create`.")
_bearer = HTTPBearer(auto_error=False, description="The same key as `Authorization: Bearer KEY`.")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _caller(scope: KeyScope) -> Callable[..., Caller]:
    """A dependency: the :class:`Caller`, once their key grants ``scope``."""

    def check(request: Request, key: Annotated[str | None, Depends(_api_key)] = None,
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None) -> Caller:
        service = _service(request)
        given = key or (bearer.credentials if bearer is not None else None)
        if given:
            held = service.scope_of(given)
            if held is None:
                raise ApiProblem(401, "unauthorized", "this API key is not valid (unknown or revoked)",
                                 {"WWW-Authenticate": "Bearer"})
            if not grants(held, scope):
                raise ApiProblem(403, "forbidden", f"this key's scope is {held.value}; this needs {scope.value}")
            caller = Caller("key:" + given[:10], held)
        elif scope is KeyScope.search and service.settings.open_search:
            caller = Caller("addr:" + (request.client.host if request.client else "?"), None)
        else:
            raise ApiProblem(401, "unauthorized", f"this needs an API key with scope {scope.value} "
                                                  "(header X-API-Key or Authorization: Bearer)",
                             {"WWW-Authenticate": "Bearer"})
        wait = service.limit.take(caller.identity)
        if wait > 0:
            raise ApiProblem(429, "rate_limited", f"too many requests; try again in {wait:.1f} s",
                             {"Retry-After": str(max(1, round(wait + 0.5)))})
        return caller

    return check


Searcher = Annotated[Caller, Depends(_caller(KeyScope.search))]
Admin = Annotated[Caller, Depends(_caller(KeyScope.admin))]
PersonName = Annotated[str, Path(min_length=1, max_length=300)]


def _read(service: Service, upload: UploadFile) -> bytes:
    """The photo's bytes, refused past the per-photo limit without reading further."""
    limit = service.settings.max_upload_mb * 1024 * 1024
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ApiProblem(413, "photo_too_large",
                         f"{_name(upload)}: over {service.settings.max_upload_mb} MB; send a smaller photo")
    if not data:
        raise ApiProblem(422, "unreadable_photo", f"{_name(upload)}: empty file")
    return data


def _name(upload: UploadFile) -> str:
    """The client's file name, for messages only (never a path on this server)."""
    name = (upload.filename or "photo").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:120] or "photo"


class By(str, Enum):
    face = "face"
    centroid = "centroid"


PHOTO = "A photo (JPEG, PNG, WebP, …); it is never stored."


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
        service.start()
        yield
        service.close()

    app = FastAPI(
        title="lookalike", version=__version__, lifespan=lifespan,
        description="Who looks like me? Face look-alike search over a photo corpus. Errors are "
                    "`application/problem+json` with a stable `code`.",
        responses={code: {"model": schemas.Problem, "content": {problems.MEDIA_TYPE: {}}}
                   for code in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)},
    )
    app.state.service = service
    _handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"])

    @app.get("/v1/health", response_model=schemas.Health, tags=["service"])
    async def health() -> JSONResponse:
        """``ready`` once the library is open and its models are loaded (503 until then);
        ``worker`` is the answering process's pid and ``models`` its models' state."""
        if service.ready.is_set():
            return JSONResponse({"status": "ready", "detail": None, "worker": os.getpid(), "models": "loaded"})
        status = "failed" if service.failed else "loading"
        return JSONResponse({"status": status, "detail": service.failed, "worker": os.getpid(),
                             "models": status}, status_code=503, headers={"Retry-After": "2"})

    @app.post("/v1/search", response_model=schemas.SearchAnswer, response_model_exclude_unset=True,
              tags=["search"])
    def search(
        caller: Searcher,
        photo: Annotated[UploadFile, File(description=PHOTO)],
        k: Annotated[int, Form(ge=1, le=100, description="Matches per face.")] = 5,
        per_person: Annotated[bool, Form(description="Best face per person, or every face.")] = False,
        by: Annotated[By, Form(description="Rank single faces, or people by their average face.")] = By.face,
        filter: Annotated[list[str] | None, Form(  # noqa: A002 - the CLI's --filter
            description="tag=…, organisation=…, role=… or person=… (repeat the field).")] = None,
        consented_only: Annotated[bool, Form(description="Only people who consented to be shown.")] = False,
        analyze: Annotated[bool, Form(description="Also estimate age, gender and emotion.")] = False,
        toward: Annotated[str | None, Form(max_length=200, description="Face math: tag:…, person:…, "
                                                                       "age:60-70, emotion:…")] = None,
        away: Annotated[str | None, Form(max_length=200)] = None,
        strength: Annotated[float, Form(ge=-5, le=5, description="How far to move (0 = plain).")] = 1.0,
    ) -> JSONResponse:
        """Who looks like the faces in the photo: exactly what `lookalike search --json` prints.
        People whose profile withholds consent are never returned."""
        from ..analysis import AnalyzerName
        from ..query.facemath import FaceMath
        from ..query.search import Filter, RankBy

        parsed = tuple(Filter.parse(f) for f in filter or [])
        math = FaceMath.parse(toward, away, strength)  # a ConfigError is a 400 invalid_option
        data = _read(service, photo)

        def work(lib: Library) -> dict:
            result = lib.search(data, k=k, per_person=per_person, rank_by=RankBy(by.value), filters=parsed,
                                consented_only=consented_only, hide_declined=True,
                                analyzer=AnalyzerName.auto if analyze else None, math=math)
            return replace(result, query=_name(photo)).to_dict()

        # the dict is the CLI's JSON as it is: written out directly (SearchAnswer documents it,
        # the schemathesis test holds it to that) instead of validated again field by field
        return JSONResponse(service.call(work))

    @app.post("/v1/analyze", response_model=schemas.AnalyzeAnswer, tags=["search"])
    def analyze(caller: Searcher, photo: Annotated[UploadFile, File(description=PHOTO)]) -> dict:
        """Estimated age, gender and emotion of every face (estimates, never facts)."""
        from ..analysis import AnalyzerName
        from ..analysis.photo import analyze_photo

        data = _read(service, photo)

        def work(lib: Library) -> dict:
            model = lib.analyzer(AnalyzerName.auto)
            _, faces = analyze_photo(data, model, lib.space.detector, lib.settings.detect_max_side,
                                     lib.settings.max_pixels)
            return {"photo": _name(photo), "analyzer": model.name, "model": model.description,
                    "faces": [f.to_dict() for f in faces]}

        return service.call(work)

    @app.post("/v1/verify", response_model=schemas.VerifyAnswer, tags=["search"])
    def verify(caller: Searcher, photo_a: Annotated[UploadFile, File(description=PHOTO)],
               photo_b: Annotated[UploadFile, File(description=PHOTO)]) -> dict:
        """Whether the largest faces of two photos are the same person (calibrated threshold)."""
        a, b = _read(service, photo_a), _read(service, photo_b)
        return service.call(lambda lib: lib.verify(a, b).to_dict())

    @app.get("/v1/people", response_model=schemas.PeopleAnswer, tags=["people"])
    def people(caller: Searcher) -> dict:
        """Everyone in the library; without an admin key, not the people who withheld consent."""
        lines = service.call(lambda lib: lib.people(hide_declined=not caller.admin))
        return {"people": [_line(p) for p in lines]}

    @app.get("/v1/people/{name}", response_model=schemas.PersonAnswer, tags=["people"])
    def person(caller: Searcher, name: PersonName) -> dict:
        """A person's profile, their faces by similarity to their average face, outliers flagged."""

        def work(lib: Library) -> dict:
            report = lib.person(name).to_dict()
            if not caller.admin and report["profile"]["consent_display"] is False:
                raise ApiProblem(404, "not_found", f"no person named {name!r} in this library")
            sims = [f["similarity"] for f in report["faces"]]
            report["centroid"] = {"faces": len(sims), "mean_similarity": sum(sims) / len(sims) if sims else None,
                                  "min_similarity": min(sims) if sims else None,
                                  "outliers": sum(1 for f in report["faces"] if f["outlier"])}
            return report

        return service.call(work)

    @app.get("/v1/stats", response_model=schemas.StatsAnswer, tags=["people"])
    def stats(caller: Searcher) -> dict:
        """Counts of people, photos, faces and statuses, and the index in use."""
        out = service.call(lambda lib: lib.stats())
        out.pop("db", None)  # the database URL is the operator's
        out["index"] = {k: v for k, v in out["index"].items() if k not in ("file", "path")}  # server paths too
        return out

    # -- admin ------------------------------------------------------------------------
    @app.post("/v1/people", response_model=schemas.PersonLine, tags=["admin"])
    def save_person(caller: Admin, body: schemas.NewPerson) -> dict:
        """Create a person or replace their profile (display name, organisation, role, story,
        self-declared tags, consent). Text is stored and shown as plain text."""
        from ..ingest.corpus import Profile

        fields = body.model_dump(exclude={"name"})
        profile = Profile(**{**fields, "tags": tuple(fields["tags"])})

        def work(lib: Library) -> dict:
            saved = lib.save_profile(body.name, profile)
            return _line(lib.people(hide_declined=False, name=saved.name)[0])

        return service.call(work)

    @app.post("/v1/people/{name}/photos", response_model=schemas.PhotosAnswer, tags=["admin"])
    def add_photos(caller: Admin, name: PersonName,
                   photos: Annotated[list[UploadFile], File(description="One or more photos of the person.")]
                   ) -> dict:
        """Ingest photos of a person; each gets its status as `lookalike ingest` reports it."""
        uploads = [(_name(p), _read(service, p)) for p in photos]

        def work(lib: Library) -> dict:
            report, names = lib.add_photos(name, uploads)
            lines = [{"filename": names.get(o.path, "?"), "status": o.status, "reason": o.reason,
                      "faces": o.faces} for o in report.outcomes]
            return {"person": name, "photos": lines, "statuses": {k: v for k, v in report.statuses.items() if v}}

        return service.call(work)

    @app.put("/v1/people/{name}/consent", response_model=schemas.PersonLine, tags=["admin"])
    def consent(caller: Admin, name: PersonName, body: schemas.Consent) -> dict:
        """Give or withdraw consent to be shown: withdrawn, the person leaves every search at once."""

        def work(lib: Library) -> dict:
            lib.set_consent(name, body.consent_display)
            return _line(lib.people(hide_declined=False, name=name)[0])

        return service.call(work)

    @app.delete("/v1/people/{name}", response_model=schemas.RemovedAnswer, tags=["admin"])
    def remove_person(caller: Admin, name: PersonName) -> dict:
        """Remove a person entirely: every photo, face, vector and the photos uploaded for them."""
        return service.call(lambda lib: _removed(lib.remove(person=name)))

    @app.delete("/v1/photos/{photo_id}", response_model=schemas.RemovedAnswer, tags=["admin"])
    def remove_photo(caller: Admin, photo_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict:
        """Remove one photo (its faces and vectors, in every embedding space)."""
        return service.call(lambda lib: _removed(lib.remove(photo=lib.photo_path(photo_id))))

    return app


def _removed(out: dict) -> dict:
    return {k: out.get(k) for k in ("person", "photo", "photos", "faces", "index_rebuilt")}


def _line(p: PersonSummary) -> dict:
    pr = p.profile
    return {"name": pr.name, "title": pr.title, "display_name": pr.display_name, "role": pr.role,
            "organisation": pr.organisation, "tags": list(pr.tags), "consent_display": p.consent,
            "photos": p.photos, "faces": p.faces}


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LookalikeError)
    async def library_error(request: Request, err: LookalikeError) -> JSONResponse:
        return problems.from_error(err)

    @app.exception_handler(ApiProblem)
    async def refused(request: Request, err: ApiProblem) -> JSONResponse:
        return problems.response(err.status, err.code, err.detail, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in err.errors()[:5])
        return problems.response(422, "invalid_request", where or "the request does not match its schema")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "no_such_path", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return problems.response(err.status_code, code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return problems.response(500, "internal", "the server failed on this request; it has been logged")


def from_env() -> FastAPI:
    """uvicorn's factory (``lookalike serve``): the settings come from the environment."""
    return create_app(ServeSettings.from_env())
