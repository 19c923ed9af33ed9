"""What the routers share: the dependencies that hand a route its :class:`Service` and its
:class:`Caller`, the path parameters several routes take, and the small helpers that turn
an upload into bytes and a library answer into the API's shape.

The Service is the application's (``app.state.service``, set by
:func:`~lookalike.serve.app.create_app`), read per request by :func:`served`: a router
holds no state of its own, so the same routers serve every app built in one process (the
tests build several)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, get_args, get_origin

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile  # what a parsed form holds (FastAPI's is a subclass)

from ...errors import BadImage, ImageProblem
from ...store.values import Audience, KeyScope
from ..guard import ApiProblem
from ..keys import Caller, caller_of, service_of
from ..service import Service

if TYPE_CHECKING:
    from ...faces.images import Upload
    from ...store.person_rows import PersonSummary
    from ...verbs.library import Library

M = TypeVar("M", bound=BaseModel)


class Topic(APIRouter):
    """The routes of one topic. Each route's declaration is kept, so that :meth:`declare_on`
    declares it again on the application's own router: ``app.routes`` then lists every
    route itself (what :func:`~lookalike.serve.keys.needed_scopes` reads for the gate,
    and the docs test for the reference) with the application's problem responses, in every
    FastAPI version (``include_router`` copied the routes so in older versions; the FastAPI
    0.165 this was written with adds a router as one opaque entry of ``app.routes``)."""

    def __init__(self) -> None:
        super().__init__()
        self.declared: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []

    def add_api_route(  # every option of APIRouter.add_api_route, passed on as given
        self, path: str, endpoint: Callable[..., Any], **options: Any,  # noqa: ANN401 - FastAPI's own options
    ) -> None:
        self.declared.append((path, endpoint, options))
        super().add_api_route(path, endpoint, **options)

    def declare_on(self, router: APIRouter) -> None:
        for path, endpoint, options in self.declared:
            router.add_api_route(path, endpoint, **options)


async def served(request: Request) -> Service:
    """The application's :class:`Service` (async: no thread is taken to read an attribute,
    so ``/v1/health`` does not wait for a worker thread, even while every one is busy)."""
    return service_of(request)


Served = Annotated[Service, Depends(served)]
Searcher = Annotated[Caller, Depends(caller_of(KeyScope.search))]
Admin = Annotated[Caller, Depends(caller_of(KeyScope.admin))]
async def one_value_each(request: Request) -> None:
    """A JSON object that names a key twice is refused (422 ``invalid_request``), at any depth:
    JSON parsers keep the last one, so ``{"name": "amy", "name": "penny", …}`` rewrote penny's
    profile where a proxy or an audit log reading the first name recorded amy's (security
    re-probe, 2026-12-07). The body is Starlette's copy, already read (at most 1 MB)."""
    import json

    from fastapi.exceptions import RequestValidationError

    def pairs(items: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise RequestValidationError([{"loc": ("body", key), "msg": "named twice in one object",
                                               "type": "value_error"}])
            seen.add(key)
        return dict(items)

    try:
        json.loads(await request.body(), object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return  # not JSON, or nested past Python's depth: the route's own parsing says why


OneValueEach = Depends(one_value_each)
PersonName = Annotated[str, Path(min_length=1, max_length=300)]
PhotoId = Annotated[int, Path(ge=1, le=2**62)]

PHOTO = "A photo (JPEG, PNG, WebP, …); it is never stored."


def photo_of(service: Service, upload: UploadFile) -> Upload:
    """The upload as a query photo: its bytes (:func:`read`), named as its sender named it,
    so that a refusal names the file."""
    from ...faces.images import Upload

    return Upload(name_of(upload), read(service, upload))


def read_capped(service: Service, upload: UploadFile) -> bytes:
    """The file's bytes, refused past the per-photo limit without reading further; an empty
    file is returned as it is (a batch of photos to ingest gives it its own status)."""
    limit = service.settings.max_upload_mb * 1024 * 1024
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ApiProblem(*BadImage.BY_STATUS[ImageProblem.too_large],
                         f"{name_of(upload)}: over {service.settings.max_upload_mb} MB; send a smaller photo")
    return data


def read(service: Service, upload: UploadFile) -> bytes:
    """The photo a query is about: :func:`read_capped`, an empty file refused."""
    data = read_capped(service, upload)
    if not data:
        raise ApiProblem(422, BadImage.problem_code, f"{name_of(upload)}: empty file")
    return data


def form_body(model: type[BaseModel], **photos: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its form with :func:`form_of`
    (``openapi_extra``): ``model``'s fields and the ``photos`` (name -> description) as
    file fields, all of them required, as FastAPI documents a form it reads itself."""
    schema = model.model_json_schema()
    if "$defs" in schema:  # their "#/$defs/…" references would not resolve in an OpenAPI document
        raise TypeError(f"{model.__name__}: a form's fields must not refer to other types (use Literal for a choice)")
    files = {name: {"type": "string", "contentMediaType": "application/octet-stream", "title": name.title(),
                    "description": text} for name, text in photos.items()}
    schema["properties"] = files | schema["properties"]
    schema["required"] = [*photos, *schema.get("required", [])]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@dataclass
class ReadForm(Generic[M]):
    """A route's multipart form: its fields, validated, and its photo files, read on request
    (:meth:`photos`) so that the route refuses bad options before it reads a byte of them."""

    fields: M
    _files: list[UploadFile]

    def photos(self, service: Service) -> list[Upload]:
        """The photos (:func:`photo_of`), each refused past the per-photo limit."""
        return [photo_of(service, upload) for upload in self._files]


@contextlib.asynccontextmanager
async def form_of(request: Request, model: type[M], *photos: str) -> AsyncIterator[ReadForm[M]]:
    """A multipart form's fields validated by ``model`` in one call, with its ``photos``
    (file fields, required); the parsed form is closed when the block ends. What FastAPI's
    ``Form()`` and ``File()`` parameters would answer, in the same order: a body that cannot
    be parsed is a 400, a field missing or refused a 422 naming its place (``body.k: …``),
    before the route sees anything; an empty text field, or a file field with no file
    chosen (a browser's empty part), is as good as none.

    Why not those parameters: FastAPI re-derives every field's shape for every request (a
    search's ten fields: 0.13 of the app's 0.35 ms a request, its own time without the
    library call, measured 2026-12-06 on this VM)."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    try:
        form = await request.form()
    except StarletteHTTPException:  # the body limit's 413, raised from the body's reading
        raise
    except Exception as err:  # as FastAPI answers a body it cannot parse (our handler: a 400 problem)
        raise StarletteHTTPException(400, "There was an error parsing the body") from err
    try:
        values: dict[str, Any] = {}
        repeated = _repeated(model)
        for name in model.model_fields:
            if name in repeated:
                if given := [v for v in form.getlist(name) if not _no_file(v)]:
                    values[name] = given
            elif (value := form.get(name)) is not None and value != "" and not _no_file(value):
                values[name] = value
        errors: list[dict[str, Any]] = []
        files = []
        for name in photos:
            upload = form.get(name)
            if len(sent := [v for v in form.getlist(name) if not _no_file(v)]) > 1:  # the last one won, unsaid
                errors.append({"type": "value_error", "loc": ("body", name),
                               "msg": f"one photo here, not {len(sent)}", "input": None})
            elif isinstance(upload, UploadFile) and not _no_file(upload):
                files.append(upload)
            else:
                missing = upload is None or upload == "" or _no_file(upload)
                errors.append({"type": "missing" if missing else "value_error", "loc": ("body", name),
                               "msg": "Field required" if missing else "a photo file, not a text field",
                               "input": None})
        try:
            fields = model.model_validate(values)
        except ValidationError as err:
            errors += [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
        if errors:
            raise RequestValidationError(errors)
        yield ReadForm(fields, files)
    finally:
        await form.close()


def _no_file(value: object) -> bool:
    """A file field a browser sent with no file chosen (an empty name and no bytes)."""
    return isinstance(value, UploadFile) and value.filename == "" and value.size == 0


@functools.cache
def _repeated(model: type[BaseModel]) -> frozenset[str]:
    """``model``'s list fields: a form repeats them (``filter=…&filter=…``)."""
    def is_list(annotation: Any) -> bool:  # noqa: ANN401 - any annotation
        return get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))

    return frozenset(name for name, field in model.model_fields.items() if is_list(field.annotation))


def name_of(upload: UploadFile) -> str:
    """The client's file name, for messages only (never a path on this server)."""
    name = (upload.filename or "photo").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:120] or "photo"


def audience(caller: Caller) -> Audience:
    """An admin sees everyone; every other caller (a search key, or none) is a visitor."""
    return Audience.operator if caller.admin else Audience.visitor


def photo_refs(lib: Library, entries: list[dict], admin: bool) -> None:
    """Give each matched or listed face its ``photo_id`` (a search's matches carry it from
    their answer rows; other lists are looked up); for everyone but an admin, the ``photo``
    becomes ``/v1/photos/{id}`` instead of the file's path on this server."""
    missing = [e["face_id"] for e in entries if e.get("photo_id") is None]
    ids = lib.photo_ids(missing) if missing else {}
    for entry in entries:
        photo_id = entry.get("photo_id") or ids.get(entry["face_id"])  # None: the face was removed a moment ago
        entry["photo_id"] = photo_id
        if not admin:
            entry["photo"] = f"/v1/photos/{photo_id}" if photo_id is not None else None


def line(p: PersonSummary) -> dict:
    """A person as ``/v1/people`` lists them (:class:`~lookalike.serve.schemas.PersonLine`)."""
    pr = p.profile
    return {"name": pr.name, "title": pr.title, "display_name": pr.display_name, "role": pr.role,
            "organisation": pr.organisation, "tags": list(pr.tags), "consent_display": p.consent,
            "photos": p.photos, "faces": p.faces}
