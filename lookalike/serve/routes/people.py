"""The reading routes over people (tag ``people``): the list, one person's profile and
faces, the library's counts, and the photos the answers refer to. Without an admin key a
caller sees only the people who have not withheld consent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.responses import Response

from .. import schemas
from .common import PersonName, PhotoId, Searcher, Served, Topic, audience, line, photo_refs

if TYPE_CHECKING:
    from ...verbs.library import Library

router = Topic()


@router.get("/v1/people", response_model=schemas.PeopleAnswer, tags=["people"])
def people(caller: Searcher, service: Served) -> dict:
    """Everyone in the library; without an admin key, not the people who withheld consent."""
    lines = service.read(lambda lib: lib.people.summaries(audience(caller)))
    return {"people": [line(p) for p in lines]}


@router.get("/v1/people/{name}", response_model=schemas.PersonAnswer, tags=["people"])
def person(caller: Searcher, service: Served, name: PersonName) -> dict:
    """A person's profile, their faces by similarity to their average face, outliers flagged."""

    def work(lib: Library) -> dict:
        report = lib.person(name, audience(caller)).to_dict()
        photo_refs(lib, report["faces"], caller.admin)
        return report

    return service.read(work)


@router.get("/v1/stats", response_model=schemas.StatsAnswer, tags=["people"])
def stats(caller: Searcher, service: Served) -> dict:
    """Counts of people, photos, faces and statuses, and the index in use; without an
    admin key, of what the caller may see (not the people who withheld consent)."""
    # a call, not a read: the counts open the index, which a refresh must not swap under a writer
    out = service.call(lambda lib: lib.stats(audience(caller)))
    out.pop("db", None)  # where the library lives never leaves the server, not even to an admin
    out["index"].pop("file", None)
    return out


@router.get("/v1/photos/{photo_id}", response_class=Response, tags=["people"],
            responses={200: {"description": "The photo: cut to the faces stored from it (a JPEG), or, "
                                            "for an admin key, its bytes as stored.",
                             "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                         for t in schemas.PHOTO_TYPES}}})
def photo_file(caller: Searcher, service: Served, photo_id: PhotoId) -> Response:
    """A photo a search or person answer refers to (``/v1/photos/{id}``). Without an
    admin key, only a photo with faces of someone who has not withheld consent, cut to the
    faces stored from it (a JPEG: nobody else in the photo is shown); any other id is a
    404, worded as for an id that does not exist. An admin key gets the bytes as stored."""
    from ...imaging.compose import jpeg_bytes
    from ...store.values import Audience

    shown = audience(caller)
    if shown is not Audience.operator:
        data = jpeg_bytes(service.read(lambda lib: lib.people.portrait(photo_id, shown)))
    else:  # the bytes as stored: a file changed since (swapped, a link to another) is a 404
        data = service.read(lambda lib: lib.photo_bytes(photo_id))
    return Response(data, media_type=schemas.media_type(data),
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
