"""The FastAPI application: every route, over the library's verbs.

One :class:`~lookalike.serve.service.Service` per server process: the library opened once, the face models loaded
once at start (``/v1/health`` says ``ready`` only then), and one library call at a time in
the process, as the models and the index are not made for concurrent calls; the processes
(``lookalike serve --workers N``) are the parallelism, as the ingest workers are.

Query photos stay in memory: they are read from the request, decoded, searched and
dropped; nothing of them is written or logged (uvicorn's access log has the path only).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import Enum
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, File, Form, Path, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import MAX_FILTER_TEXT, MAX_FILTERS
from ..errors import LookalikeError
from ..store.schema import Audience, KeyScope
from . import problems, schemas
from .guard import ApiProblem, BodyLimit, CatchAll, Gate
from .service import Caller, Service, admitter, caller_of
from .settings import ServeSettings

if TYPE_CHECKING:
    from ..library import Library
    from ..store.person_rows import PersonSummary

log = logging.getLogger(__name__)


Searcher = Annotated[Caller, Depends(caller_of(KeyScope.search))]
Admin = Annotated[Caller, Depends(caller_of(KeyScope.admin))]
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

    # Swagger UI and ReDoc load their scripts from a CDN: off unless the operator asks
    docs = {} if settings.docs else {"docs_url": None, "redoc_url": None}
    app = FastAPI(
        title="lookalike", version=__version__, lifespan=lifespan, **docs,  # type: ignore[arg-type]
        description="Who looks like me? Face look-alike search over a photo corpus. Errors are "
                    "`application/problem+json` with a stable `code`.",
        responses={code: {"model": schemas.Problem, "content": {problems.MEDIA_TYPE: {}}}
                   for code in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)},
    )
    app.state.service = service
    _handlers(app)
    # outermost last: the gate decides from the headers before the size limit counts a byte
    # of the body; CatchAll sits just outside the routes' own error handlers
    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(Gate, admit=admitter(app, service), max_bodies=settings.max_bodies,
                       wait=float(settings.body_wait))
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"])

    @app.get("/v1/health", response_model=schemas.Health, tags=["service"])
    async def health() -> JSONResponse:
        """``ready`` once the library is open and its models are loaded (503 until then)."""
        if service.ready.is_set():
            return JSONResponse({"status": "ready", "detail": None})
        status = "failed" if service.failed else "loading"
        return JSONResponse({"status": status, "detail": service.failed}, status_code=503,
                            headers={"Retry-After": "2"})

    @app.post("/v1/search", response_model=schemas.SearchAnswer, response_model_exclude_unset=True,
              tags=["search"])
    def search(
        caller: Searcher,
        photo: Annotated[UploadFile, File(description=PHOTO)],
        k: Annotated[int, Form(ge=1, le=100, description="Matches per face.")] = 5,
        per_person: Annotated[bool, Form(description="Best face per person, or every face.")] = False,
        by: Annotated[By, Form(description="Rank single faces, or people by their average face.")] = By.face,
        filter: Annotated[list[Annotated[str, StringConstraints(max_length=MAX_FILTER_TEXT)]] | None, Form(  # noqa: A002 - the CLI's --filter
            max_length=MAX_FILTERS,
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
        from ..faces.images import Upload
        from ..query.facemath import FaceMath
        from ..query.search import Filter, RankBy

        parsed = tuple(Filter.parse(f) for f in filter or [])
        math = FaceMath.parse(toward, away, strength)  # a ConfigError is a 400 invalid_option
        data = Upload(_name(photo), _read(service, photo))  # named: a refusal names the file

        def work(lib: Library) -> dict:
            # hide_declined for every key: a withheld person is neither shown nor part of any
            # average the query is moved by (a group of theirs is a group with no faces)
            result = lib.search(data, k=k, per_person=per_person, rank_by=RankBy(by.value), filters=parsed,
                                consented_only=consented_only, hide_declined=True,
                                analyzer=AnalyzerName.auto if analyze else None, math=math)
            answer = replace(result, query=_name(photo)).to_dict()
            _photo_refs(lib, [m for f in answer["faces"] for m in f["matches"]], caller.admin)
            return answer

        # the dict is the CLI's JSON with photo references: written out directly (SearchAnswer
        # documents it, the schemathesis test holds it to that) instead of validated again
        return JSONResponse(service.call(work))

    @app.post("/v1/analyze", response_model=schemas.AnalyzeAnswer, tags=["search"])
    def analyze(caller: Searcher, photo: Annotated[UploadFile, File(description=PHOTO)]) -> dict:
        """Estimated age, gender and emotion of every face (estimates, never facts)."""
        from ..analysis import AnalyzerName
        from ..analysis.photo import analyze_photo
        from ..faces.images import Upload

        data = Upload(_name(photo), _read(service, photo))  # named: a refusal names the file

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
        from ..faces.images import Upload

        # named, so that a refused photo is named in the answer
        a, b = Upload(_name(photo_a), _read(service, photo_a)), Upload(_name(photo_b), _read(service, photo_b))
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
            _photo_refs(lib, report["faces"], caller.admin)
            sims = [f["similarity"] for f in report["faces"]]
            report["centroid"] = {"faces": len(sims), "mean_similarity": sum(sims) / len(sims) if sims else None,
                                  "min_similarity": min(sims) if sims else None,
                                  "outliers": sum(1 for f in report["faces"] if f["outlier"])}
            return report

        return service.call(work)

    @app.get("/v1/stats", response_model=schemas.StatsAnswer, tags=["people"])
    def stats(caller: Searcher) -> dict:
        """Counts of people, photos, faces and statuses, and the index in use; without an
        admin key, of what the caller may see (not the people who withheld consent)."""
        out = service.call(lambda lib: lib.stats(_audience(caller)))
        out.pop("db", None)  # the database URL is the operator's
        hidden = ("file", "path") if caller.admin else ("file", "path", "ntotal", "bytes")  # counts everyone
        out["index"] = {k: v for k, v in out["index"].items() if k not in hidden}  # server paths too
        return out

    @app.get("/v1/photos/{photo_id}", response_class=Response, tags=["people"],
             responses={200: {"description": "The photo's bytes as stored.",
                              "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                          for t in schemas.PHOTO_TYPES}}})
    def photo_file(caller: Searcher, photo_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
        """A photo a search or person answer refers to (``/v1/photos/{id}``). Without an
        admin key, only a photo with faces of someone who has not withheld consent: any other
        id is a 404, worded as for an id that does not exist."""
        path = service.call(lambda lib: lib.photo_file(photo_id, _audience(caller)))
        try:
            data = path.read_bytes()
        except OSError:
            raise ApiProblem(404, "not_found", f"no photo {photo_id} in this library") from None
        return Response(data, media_type=schemas.media_type(data),
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})

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


def _audience(caller: Caller) -> Audience:
    """An admin sees everyone; every other caller (a search key, or none) is a visitor."""
    return Audience.operator if caller.admin else Audience.visitor


def _photo_refs(lib: Library, entries: list[dict], admin: bool) -> None:
    """Give each matched or listed face its ``photo_id``; for everyone but an admin, the
    ``photo`` becomes ``/v1/photos/{id}`` instead of the file's path on this server."""
    ids = lib.photo_ids(e["face_id"] for e in entries)
    for entry in entries:
        photo_id = ids.get(entry["face_id"])  # None: the face was removed a moment ago
        entry["photo_id"] = photo_id
        if not admin:
            entry["photo"] = f"/v1/photos/{photo_id}" if photo_id is not None else None


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
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {_said(e)}" for e in err.errors()[:5])
        return problems.response(422, "invalid_request", where or "the request does not match its schema")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "no_such_path", 405: "method_not_allowed", 413: "request_too_large"}.get(err.status_code,
                                                                                              "http_error")
        detail = str(err.detail)
        if detail == HTTPStatus(err.status_code).phrase:  # Starlette's bare "Not Found": say what it means
            detail = {404: "no such path here; the routes are listed in /openapi.json",
                      405: f"{request.method} is not a method of this path (see /openapi.json)"}.get(err.status_code,
                                                                                                      detail)
        if err.status_code == 400:  # a body FastAPI or Starlette could not parse; in their words otherwise
            code, detail = "unreadable_request", ("the request's body could not be read as the route's form "
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
    return str(error.get("msg"))


def from_env() -> FastAPI:
    """uvicorn's factory (``lookalike serve``): the settings come from the environment."""
    return create_app(ServeSettings.from_env())
