"""Every request field and answer of the HTTP API, typed (they are the OpenAPI document).

Answers mirror the CLI's ``--json`` objects key for key: ``SearchAnswer`` is what ``lookalike
search --json`` prints, except that a photo is referred to by id (``photo_id``) and, for
everyone but an admin, by ``/v1/photos/{id}`` instead of a path on the server. Profile
text is plain text everywhere: a client shows it as text, never as markup."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..config import MAX_FILTER_TEXT, MAX_FILTERS, MAX_SEARCH_STRENGTH
from ..store.profiles import MAX_TAG_LENGTH, MAX_TAGS, PERSON_NAME_LENGTH, PROFILE_LIMITS


class SearchForm(BaseModel):
    """The form fields of a search beside its photo: the CLI's flags."""

    # read and validated in one call (lookalike.serve.routes.common.form_of), not field
    # by field by FastAPI: that took 40 % of the app's own time of a search
    model_config = ConfigDict(extra="ignore")

    k: int = Field(5, ge=1, le=100, description="Matches per face.")
    per_person: bool = Field(False, description="Best face per person, or every face.")
    by: Literal["face", "centroid"] = Field("face", description="Rank single faces, or people by their average face.")
    filter: list[Annotated[str, StringConstraints(max_length=MAX_FILTER_TEXT)]] | None = Field(
        None, max_length=MAX_FILTERS, description="tag=…, organisation=…, role=… or person=… (repeat the field).")
    consented_only: bool = Field(False, description="Only people who consented to be shown.")
    analyze: bool = Field(False, description="Also estimate age, gender and emotion.")
    toward: str | None = Field(None, max_length=200, description="Face math: tag:…, person:…, age:60-70, emotion:…")
    away: str | None = Field(None, max_length=200)
    strength: float = Field(1.0, ge=-MAX_SEARCH_STRENGTH, le=MAX_SEARCH_STRENGTH,
                            description="How far to move (0 = plain).")


class Problem(BaseModel):
    """An error (RFC 9457 problem details); ``code`` is stable, ``detail`` is for a person."""

    type: str = Field(description="A URI naming the kind of problem: about:blank or lookalike:CODE.")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, e.g. no_face, not_found, busy.")


class Estimate(BaseModel):
    """Estimated attributes of a face: estimates, never facts."""

    age: float
    gender: dict[str, float]
    dominant_gender: str
    emotion: dict[str, float]
    dominant_emotion: str
    estimate: bool
    model: str


PHOTO_REF = ("Where the photo is: `/v1/photos/{photo_id}` (never a path on the server); with an admin "
             "key, the file's path as `lookalike search --json` prints it.")
PHOTO_ID = "The photo's id, for `GET /v1/photos/{photo_id}` (and, with an admin key, `DELETE`)."


class Match(BaseModel):
    rank: int
    person: str | None
    photo: str | None = Field(description=PHOTO_REF)
    photo_id: int | None = Field(None, description=PHOTO_ID)
    face_id: int
    similarity: float
    verdict: str = Field(description="same_person, lookalike or weak (calibrated thresholds).")
    person_centroid_similarity: float | None = None
    face_typicality: float | None = None


class QueryFace(BaseModel):
    bbox: list[int] = Field(description="x, y, width, height in the query photo.")
    confidence: float
    corpus_centroid_similarity: float | None
    matches: list[Match]
    analysis: Estimate | None = Field(None, description="Only with analyze=true.")
    moved: str | None = Field(None, description="Only with toward: how the query was moved.")


class Calibration(BaseModel):
    threshold: float
    floor: float
    source: str


class SearchAnswer(BaseModel):
    """What ``lookalike search --json`` prints, each match with its ``photo_id`` and, without
    an admin key, a photo reference instead of a path."""

    query: str
    faces: list[QueryFace]
    calibration: Calibration | None = None
    # faces the photo holds past the 20 largest, which were not searched
    faces_not_searched: int = 0


class AnalyzedFace(Estimate):
    bbox: list[int] = Field(description="x, y, width, height in the photo.")


class AnalyzeAnswer(BaseModel):
    """What ``lookalike analyze --json`` prints."""

    photo: str
    analyzer: str
    model: str
    faces: list[AnalyzedFace]
    # faces the photo holds past the 20 largest, which were not analysed
    faces_not_analysed: int = 0


class VerifyAnswer(BaseModel):
    similarity: float
    verdict: str
    same_person: bool
    threshold: float
    floor: float
    calibration: str
    bbox_a: list[int]
    bbox_b: list[int]


class Profile(BaseModel):
    """What a role model says about themself; every field is shown as plain text."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, max_length=PROFILE_LIMITS["display_name"])
    role: str | None = Field(None, max_length=PROFILE_LIMITS["role"])
    organisation: str | None = Field(None, max_length=PROFILE_LIMITS["organisation"])
    story: str | None = Field(None, max_length=PROFILE_LIMITS["story"])
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS,
                            description=f"Self-declared; at most {MAX_TAG_LENGTH} characters each.")
    consent_display: bool = Field(False, description="Agreed to be shown to visitors.")
    source_url: str | None = Field(None, max_length=PROFILE_LIMITS["source_url"])
    license: str | None = Field(None, max_length=PROFILE_LIMITS["license"])


class NewPerson(Profile):
    name: str = Field(min_length=1, max_length=PERSON_NAME_LENGTH,
                      description="Identifier: letters, digits, spaces, '_', '.', '-'.")


class PersonLine(BaseModel):
    name: str
    title: str
    display_name: str | None
    role: str | None
    organisation: str | None
    tags: list[str]
    consent_display: bool | None = Field(description="None: never stated (a public corpus).")
    photos: int
    faces: int


class PeopleAnswer(BaseModel):
    people: list[PersonLine]


class PersonFace(BaseModel):
    face_id: int
    photo: str | None = Field(description=PHOTO_REF)
    photo_id: int | None = Field(None, description=PHOTO_ID)
    bbox: list[int]
    similarity: float = Field(description="To the person's average face (centroid).")
    robust_z: float | None
    outlier: bool


class CentroidFigures(BaseModel):
    faces: int
    mean_similarity: float | None = Field(description="Mean similarity of their faces to their average face.")
    median_similarity: float | None
    min_similarity: float | None
    outliers: int | None = Field(description="Faces flagged as outliers; null under 4 faces, where none is judged.")


class PersonAnswer(BaseModel):
    name: str
    profile: dict[str, str | bool | list[str] | None]
    faces: list[PersonFace]
    centroid: CentroidFigures


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consent_display: bool


class PhotoOutcome(BaseModel):
    filename: str
    status: str = Field(description="As lookalike ingest reports it: ok, no_face, decode_error, "
                                    "too_large, duplicate, unchanged, …")
    reason: str | None
    faces: int


class PhotosAnswer(BaseModel):
    person: str
    photos: list[PhotoOutcome]
    statuses: dict[str, int]


class RemovedAnswer(BaseModel):
    person: str | None
    photo: str | None
    photos: int
    faces: int
    index_rebuilt: str | None


class StatsAnswer(BaseModel):
    people: int
    photos: int
    faces: int
    statuses: dict[str, int]
    index: dict
    estimates: dict


class Health(BaseModel):
    status: Literal["loading", "ready", "failed", "unavailable"]
    detail: str | None = None
    worker: int | None = None  # the pid of the server process that answered
    models: Literal["loading", "loaded", "failed"] | None = None
    bodies_in_flight: int | None = None  # requests with a body this process is reading or serving


# what /v1/photos answers with, by the file's first bytes (a photo of an ingested format)
PHOTO_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/tiff", "image/webp", "image/heic",
               "image/x-portable-anymap", "application/octet-stream")


def media_type(data: bytes) -> str:
    """The content type of a photo's bytes, from its signature (never from the file name)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:2] == b"BM":
        return "image/bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
        return "image/heic"
    if data[:1] == b"P" and data[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6"):
        return "image/x-portable-anymap"
    return "application/octet-stream"
