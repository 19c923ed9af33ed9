"""The search routes (tag ``search``): who looks like the faces in a photo, what a face is
estimated to be, and whether two photos show the same person. Query photos stay in memory:
read from the request, decoded, searched and dropped; nothing of them is written or logged.
The routes are ``async``: their calls run where :meth:`~lookalike.serve.service.Service.run`
says (a small photo's on the event loop when the library is free)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

from fastapi import File, Request, UploadFile
from fastapi.responses import JSONResponse

from .. import schemas
from .common import PHOTO, Searcher, Served, Topic, form_body, form_of, photo_of, photo_refs

if TYPE_CHECKING:
    from ...verbs.library import Library

router = Topic()


@router.post("/v1/search", response_model=schemas.SearchAnswer, response_model_exclude_unset=True,
             tags=["search"], openapi_extra=form_body(schemas.SearchForm, photo=PHOTO))
async def search(request: Request, caller: Searcher, service: Served) -> JSONResponse:
    """Who looks like the faces in the photo: exactly what `lookalike search --json` prints.
    People whose profile withholds consent are never returned. The form: a `photo` and the
    CLI's flags (`k`, `per_person`, `by`, `filter` repeated, `consented_only`, `analyze`,
    `toward`, `away`, `strength`)."""
    from ...analysis import AnalyzerName
    from ...query.facemath import FaceMath
    from ...query.search import Filter, RankBy
    from ...store.values import Audience

    async with form_of(request, schemas.SearchForm, "photo") as form:
        options = form.fields
        parsed = tuple(Filter.parse(f) for f in options.filter or [])
        math = FaceMath.parse(options.toward, options.away, options.strength)  # a ConfigError is a 400 invalid_option
        (data,) = form.photos(service)  # named: a refusal names the file

    def work(lib: Library) -> dict:
        # at least a visitor for every key: a withheld person is neither shown nor part of
        # any average the query is moved by (a group of theirs is a group with no faces)
        result = lib.search(data, k=options.k, per_person=options.per_person, rank_by=RankBy(options.by),
                            filters=parsed, audience=Audience.consented if options.consented_only else Audience.visitor,
                            analyzer=AnalyzerName.auto if options.analyze else None, math=math)
        answer = replace(result, query=data.name).to_dict()
        photo_refs(lib, [m for f in answer["faces"] for m in f["matches"]], caller.admin)
        return answer

    # the dict is the CLI's JSON with photo references: written out directly (SearchAnswer
    # documents it, the schemathesis test holds it to that) instead of validated again
    return JSONResponse(await service.run(work, [data.data]))


@router.post("/v1/analyze", response_model=schemas.AnalyzeAnswer, tags=["search"])
async def analyze(caller: Searcher, service: Served, photo: Annotated[UploadFile, File(description=PHOTO)]) -> dict:
    """Estimated age, gender and emotion of every face (estimates, never facts)."""
    data = photo_of(service, photo)

    def work(lib: Library) -> dict:
        return lib.analyze(data).to_dict()

    return await service.run(work, [data.data])


@router.post("/v1/verify", response_model=schemas.VerifyAnswer, tags=["search"])
async def verify(caller: Searcher, service: Served, photo_a: Annotated[UploadFile, File(description=PHOTO)],
           photo_b: Annotated[UploadFile, File(description=PHOTO)]) -> dict:
    """Whether the largest faces of two photos are the same person (calibrated threshold)."""
    a, b = photo_of(service, photo_a), photo_of(service, photo_b)
    return await service.run(lambda lib: lib.verify(a, b).to_dict(), [a.data, b.data])
