"""The picture routes (tag ``pictures``): morphs, transforms and average faces, as image bytes.

A visitor's photo and every picture made from it stay in memory: read from the request,
drawn, sent and dropped; nothing is written or logged (tests/test_pictures.py scans the
library folder and the temporary folder around these calls). Every picture is made as a
visitor may see it, whatever the key, as every search is: never of the people who withhold
consent, and a withheld person's average is the 404 of a person who does not exist. A front
end that holds an admin key (to add people) and passes visitors' morphs on showed them the
withheld people's faces (move user test, F5); the operator's pictures of everyone are the
CLI's (``lookalike average``, its default audience)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

from fastapi import File, Form, Query, UploadFile
from fastapi.responses import Response

from ...config import MAX_DRAWN_STRENGTH
from ...store.values import Audience
from ..guard import frames_owed
from .common import PHOTO, Admin, PersonName, Searcher, Served, Topic, photo_of

if TYPE_CHECKING:
    from ...verbs.library import Library
    from ...verbs.pictures import Morph, Transformed

router = Topic()

MAX_FRAMES = 48  # a morph over HTTP: a GIF of at most this many frames
GROUP = "tag:…, person:…, age:60-70, age:60-, emotion:…"


class PictureFormat(str, Enum):
    gif = "gif"
    png = "png"


def _image(data: bytes, media: str = "image/png") -> Response:
    return Response(data, media_type=media, headers={"Cache-Control": "private, no-store",
                                                     "X-Content-Type-Options": "nosniff"})


def _binary(media: str, what: str) -> dict:
    return {200: {"description": what, "content": {media: {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/v1/morph", response_class=Response, tags=["pictures"],
             responses={200: {"description": "The morph: a looping GIF, or a PNG strip of frames.",
                              "content": {m: {"schema": {"type": "string", "format": "binary"}}
                                          for m in ("image/gif", "image/png")}}})
def morph(
    caller: Searcher,
    service: Served,
    photo: Annotated[UploadFile, File(description=PHOTO)],
    person: Annotated[str | None, Form(max_length=300, description="Morph into this person's average face.")] = None,
    photo_b: Annotated[UploadFile | None, File(description="…or into the face of a second photo (never stored).")
                       ] = None,
    format: Annotated[PictureFormat, Form(description="gif (looping) or png (a strip of frames).")  # noqa: A002 - the field's name
                      ] = PictureFormat.gif,
    frames: Annotated[int, Form(ge=2, le=MAX_FRAMES, description="Frames from the photo to B.")] = 12,
) -> Response:
    """The photo's face morphing into a person's average face or into a second photo's face."""
    from ...errors import ConfigError
    from ...imaging.morph import STRIP_MAX, MorphFormat
    from ...query.facemath import Group, GroupKind

    if (person is None) == (photo_b is None):
        raise ConfigError("name exactly one of person (a person's name) or photo_b (a second photo)")
    a = photo_of(service, photo)
    b = Group(GroupKind.person, person) if person is not None else photo_of(service, photo_b) if photo_b else None
    assert b is not None
    kind = MorphFormat(format.value)
    if kind is MorphFormat.png:  # a strip shows at most STRIP_MAX of them: no more are drawn
        frames = min(frames, STRIP_MAX)

    def work(lib: Library) -> Morph:
        return lib.pictures.morph(a, b, frames, Audience.visitor)

    made = service.call(work)
    service.limit.owe(caller.identity, frames_owed(frames, service.limit.burst))  # past what admission paid for
    # encoded once the library is free for the next caller
    return _image(made.encode(kind), f"image/{format.value}")


@router.post("/v1/transform", response_class=Response, tags=["pictures"],
             responses=_binary("image/png", "The photo with its face moved toward the group, as a PNG."))
def transform(
    caller: Searcher,
    service: Served,
    photo: Annotated[UploadFile, File(description=PHOTO)],
    toward: Annotated[str, Form(max_length=200, description=f"Move the face toward this group: {GROUP}")],
    away: Annotated[str | None, Form(max_length=200, description="…and away from this group [default: the "
                                                                 "photo's own age band, else the corpus].")] = None,
    strength: Annotated[float, Form(ge=-MAX_DRAWN_STRENGTH, le=MAX_DRAWN_STRENGTH,
                                    description="How far to move.")] = 1.0,
) -> Response:
    """Face math drawn as a face: the photo moved by the difference of two groups' average
    faces, made of the people a visitor may see (at least 5 per group)."""
    from ...query.facemath import FaceMath

    math = FaceMath.of(toward, away, strength)  # a ConfigError is a 400 invalid_option
    data = photo_of(service, photo)

    def work(lib: Library) -> Transformed:
        return lib.pictures.transform(data, math.toward, math.away, strength, Audience.visitor)

    return _image(service.call(work).png())  # encoded once the library is free for the next caller


@router.get("/v1/people/{name}/average.png", response_class=Response, tags=["pictures"],
            responses=_binary("image/png", "The person's average face, 256 px."))
def person_average(caller: Searcher, service: Served, name: PersonName) -> Response:
    """A person's average face (their outlier photos left out). A person who withholds
    consent is a 404, as one who does not exist."""
    from ...query.facemath import Group, GroupKind
    from ...verbs.pictures import FACE_MATH_LIMIT

    group = Group(GroupKind.person, name)
    # an even sample of a person's faces, as morphs and transforms draw them: every one of a
    # 400-face person cost 1.5 s a cold request (security probe of 2026-12-07)
    made = service.call(lambda lib: lib.pictures.average(group, Audience.visitor, limit=FACE_MATH_LIMIT))
    return _image(made.png())


@router.get("/v1/average.png", response_class=Response, tags=["pictures"],
            responses=_binary("image/png", "The group's (or the corpus's) average face."))
def group_average(
    caller: Admin,
    service: Served,
    group: Annotated[str | None, Query(max_length=200, description=f"{GROUP} [default: the corpus]")] = None,
    size: Annotated[int, Query(ge=32, le=512, description="Side of the picture, px.")] = 256,
    limit: Annotated[int, Query(ge=5, le=2000, description="At most this many faces (an even sample).")] = 500,
) -> Response:
    """The average face of a group (at least 5 different people) or of the corpus, of the
    people a visitor may see (a face for the kiosk's screen or a poster): an admin key's,
    since a group can be narrowed until it shows few people."""
    from ...query.facemath import Group

    chosen = Group.parse(group) if group else None
    return _image(service.call(lambda lib: lib.pictures.average(chosen, Audience.visitor, size, limit).png()))
