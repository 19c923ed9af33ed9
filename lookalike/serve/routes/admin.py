"""The admin routes (tag ``admin``, an admin key): profiles, photos of a person, consent,
and removal. Text is stored and shown as plain text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import File, UploadFile

from ...errors import in_words
from ...store.values import Audience
from .. import schemas
from .common import Admin, OneValueEach, PersonName, PhotoId, Served, Topic, line, name_of, read_capped

if TYPE_CHECKING:
    from ...verbs.library import Library

router = Topic()


@router.post("/v1/people", response_model=schemas.PersonLine, tags=["admin"], dependencies=[OneValueEach])
def save_person(caller: Admin, service: Served, body: schemas.NewPerson) -> dict:
    """Create a person or replace their profile (display name, organisation, role, story,
    self-declared tags, consent). Text is stored and shown as plain text."""
    from ...store.profiles import Profile

    fields = body.model_dump(exclude={"name"})
    profile = Profile(**{**fields, "tags": tuple(fields["tags"])})

    def work(lib: Library) -> dict:
        saved = lib.people.save_profile(body.name, profile)
        return line(lib.people.summaries(Audience.operator, name=saved.name)[0])

    return service.call(work)


@router.post("/v1/people/{name}/photos", response_model=schemas.PhotosAnswer, tags=["admin"])
def add_photos(caller: Admin, service: Served, name: PersonName,
               photos: Annotated[list[UploadFile], File(description="One or more photos of the person.")]
               ) -> dict:
    """Ingest photos of a person; each gets its status as `lookalike ingest` reports it (an
    empty or broken file too: it does not stop the others). A file over the per-photo limit
    refuses the request (413) before any is stored."""
    uploads = [(name_of(p), read_capped(service, p)) for p in photos]

    def work(lib: Library) -> dict:
        report, names = lib.add_photos(name, uploads)
        places = service.private()  # a reason may name a stored copy: said as "the upload folder/…"
        lines = [{"filename": names.get(o.path, "?"), "status": o.status,
                  "reason": in_words(o.reason, places) if o.reason else o.reason, "faces": o.faces}
                 for o in report.outcomes]
        return {"person": name, "photos": lines, "statuses": {k: v for k, v in report.statuses.items() if v}}

    return service.call(work)


@router.put("/v1/people/{name}/consent", response_model=schemas.PersonLine, tags=["admin"],
            dependencies=[OneValueEach])
def consent(caller: Admin, service: Served, name: PersonName, body: schemas.Consent) -> dict:
    """Give or withdraw consent to be shown: withdrawn, the person leaves every search at once."""

    def work(lib: Library) -> dict:
        lib.people.set_consent(name, body.consent_display)
        return line(lib.people.summaries(Audience.operator, name=name)[0])

    return service.call(work)


@router.delete("/v1/people/{name}", response_model=schemas.RemovedAnswer, tags=["admin"])
def remove_person(caller: Admin, service: Served, name: PersonName) -> dict:
    """Remove a person entirely: every photo, face, vector and the photos uploaded for them."""
    return service.call(lambda lib: lib.remove_person(name).to_dict())  # RemovedAnswer: its fields


@router.delete("/v1/photos/{photo_id}", response_model=schemas.RemovedAnswer, tags=["admin"])
def remove_photo(caller: Admin, service: Served, photo_id: PhotoId) -> dict:
    """Remove one photo (its faces and vectors, in every embedding space)."""
    return service.call(lambda lib: lib.remove_photo(lib.photo_path(photo_id)).to_dict())
