"""Photos and their faces: what ingest reads and writes, what search and reports show."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    SQLColumnExpression,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Session

from .centroid_rows import update_centroids
from .person_rows import anyone_withholds_consent, person_matches, sees
from .schema import (
    Base,
    Face,
    Person,
    Photo,
    Reduction,
    Space,
)
from .values import Audience, GroupKey, PhotoStatus, chunks, decode_vector


@dataclass(frozen=True)
class FaceRow:
    """A stored face joined with its photo and person: what a search hit shows."""

    face_id: int
    person: str | None
    photo: str
    person_id: int | None
    bbox: tuple[int, int, int, int]
    confidence: float
    photo_id: int  # the HTTP API's reference to the photo instead of its path on the server


@dataclass(frozen=True)
class StoredPhoto:
    """A photo stored in some space, as another space would re-embed it."""

    path: str
    sha256: str | None
    person: str | None
    faces: int  # faces kept from it (more than one: it was ingested with --faces all)
    faces_mode: str | None = None  # what it was read with (None: stored before that was kept)

    @property
    def mode(self) -> str:
        """The faces mode to read it with again: as stored, else told by its face count."""
        return self.faces_mode or ("all" if self.faces > 1 else "largest")


def photos_outside(session: Session, space_id: int) -> list[StoredPhoto]:
    """Every ``ok`` photo of the other spaces that ``space_id`` does not hold yet, one per
    path (the oldest space's row), with its person and face count."""
    held = select(Photo.path).where(Photo.space_id == space_id)
    faces = (select(func.count(Face.id)).where(Face.photo_id == Photo.id).scalar_subquery())
    rows = session.execute(
        select(Photo.path, Photo.sha256, Person.name, faces, Photo.faces_mode)
        .outerjoin(Person, Person.id == Photo.person_id)
        .where(Photo.space_id != space_id, Photo.status == PhotoStatus.ok.value, Photo.path.not_in(held))
        .order_by(Photo.space_id, Photo.id))
    out: dict[str, StoredPhoto] = {}
    for path, sha, person, n, mode in rows:
        out.setdefault(path, StoredPhoto(path, sha, person, int(n), mode))
    return list(out.values())


def held_nowhere_else(session: Session, space_id: int) -> list[str]:
    """The paths of the ``ok`` photos of ``space_id`` that no other space holds: what
    dropping the space would lose."""
    elsewhere = select(Photo.path).where(Photo.space_id != space_id, Photo.status == PhotoStatus.ok.value)
    return list(session.scalars(select(Photo.path).where(
        Photo.space_id == space_id, Photo.status == PhotoStatus.ok.value, Photo.path.not_in(elsewhere))))


def photo_by_path(session: Session, space_id: int, path: str) -> Photo | None:
    return session.scalar(select(Photo).where(Photo.space_id == space_id, Photo.path == path))


@dataclass(frozen=True)
class Known:
    """What the database already knows of a photo, for the ingest reader."""

    path: str
    sha256: str | None
    status: str
    person: str | None
    faces_mode: str | None = None  # what it was read with (None: not read by the models, or not known)
    analyzed: bool = False
    withheld: bool = False  # its person withholds consent to be displayed


def _known(session: Session, space_id: int, column: SQLColumnExpression[str | None], values: list[str],
           *where: ColumnElement[bool]) -> list[Known]:
    """Photo rows whose ``column`` is in ``values``, lowest id last (chunked IN queries)."""
    out: list[Known] = []
    for chunk in chunks(values):
        query = (select(Photo.path, Photo.sha256, Photo.status, Person.name, Photo.faces_mode, Photo.analyzed,
                        Person.consent_display.is_(False))
                 .outerjoin(Person, Person.id == Photo.person_id)
                 .where(Photo.space_id == space_id, column.in_(chunk), *where)
                 .order_by(Photo.id.desc()))
        out.extend(Known(*r[:6], withheld=bool(r[6])) for r in session.execute(query))
    return out


def photo_hashes(session: Session, photo_ids: Iterable[int]) -> dict[int, str | None]:
    """Photo id -> the sha256 of the bytes stored (what a picture drawn from the photo again
    checks the file against)."""
    out: dict[int, str | None] = {}
    for chunk in chunks([int(i) for i in photo_ids]):
        out.update((int(i), sha) for i, sha in session.execute(select(Photo.id, Photo.sha256)
                                                                 .where(Photo.id.in_(chunk))))
    return out


def known_by_path(session: Session, space_id: int, paths: list[str]) -> dict[str, Known]:
    """Existing photo rows for ``paths``."""
    return {k.path: k for k in _known(session, space_id, Photo.path, paths)}


def first_by_sha(session: Session, space_id: int, shas: list[str]) -> dict[str, Known]:
    """For each sha256, the first (lowest id) non-duplicate photo with those bytes."""
    return {k.sha256: k for k in _known(session, space_id, Photo.sha256, shas,
                                        Photo.status != PhotoStatus.duplicate.value) if k.sha256 is not None}


def delete_photo(session: Session, photo: Photo) -> list[int]:
    """Delete a photo and its faces (taking them out of the centroids); returns the face
    ids, to drop from the index once the transaction commits."""
    rows = session.execute(select(Face.id, Face.person_id, Face.embedding)
                           .where(Face.photo_id == photo.id)).all()
    if rows:
        update_centroids(session, photo.space_id, [r[1] for r in rows],
                         np.stack([decode_vector(r[2]) for r in rows]), sign=-1)
    session.execute(delete(Face).where(Face.photo_id == photo.id))
    session.delete(photo)
    return [r[0] for r in rows]


def face_ids(session: Session, space_id: int) -> np.ndarray:
    rows = session.execute(select(Face.id).where(Face.space_id == space_id).order_by(Face.id))
    return np.fromiter((r[0] for r in rows), dtype=np.int64)


def face_count_and_max(session: Session, space_id: int) -> tuple[int, int]:
    count, top = session.execute(
        select(func.count(Face.id), func.max(Face.id)).where(Face.space_id == space_id)).one()
    return int(count or 0), int(top or 0)


def vectors(session: Session, ids: Iterable[int], dim: int) -> np.ndarray:
    """Embeddings of ``ids`` in the order given."""
    ids = [int(i) for i in ids]
    found: dict[int, bytes] = {}
    for chunk in chunks(ids):
        for fid, blob in session.execute(select(Face.id, Face.embedding).where(Face.id.in_(chunk))):
            found[fid] = blob
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for row, fid in enumerate(ids):
        out[row] = decode_vector(found[fid])
    return out


def _face_query(ids: Sequence[int] | BindParameter[Any], *extra: SQLColumnExpression[Any]) -> Select[Any]:
    """A :class:`FaceRow`'s columns (then ``extra``) for the faces ``ids`` (or an expanding
    parameter, bound at execution)."""
    # ten typed columns and the extras: past what SQLAlchemy's select() overloads spell out
    query = (
        select(Face.id, Person.name, Photo.path, Face.person_id, Face.x, Face.y, Face.w, Face.h,
               Face.confidence, Face.photo_id, *extra)
        .join(Photo, Photo.id == Face.photo_id)
        .outerjoin(Person, Person.id == Face.person_id)
        .where(Face.id.in_(ids))
    )
    return cast("Select[Any]", query)


def photo_face_boxes(session: Session, photo_id: int) -> list[tuple[int, int, int, int]]:
    """The boxes (x, y, w, h) of the faces stored from photo ``photo_id``, in any space."""
    rows = session.execute(select(Face.x, Face.y, Face.w, Face.h).where(Face.photo_id == photo_id))
    return sorted({(int(x), int(y), int(w), int(h)) for x, y, w, h in rows})


def face_rows(session: Session, ids: Iterable[int]) -> dict[int, FaceRow]:
    """Faces joined with photo path and person name, keyed by face id."""
    ids = [int(i) for i in ids if int(i) >= 0]
    out: dict[int, FaceRow] = {}
    for chunk in chunks(ids):
        for fid, name, path, pid, x, y, w, h, conf, photo in session.execute(_face_query(chunk)):
            out[fid] = FaceRow(fid, name, path, pid, (x, y, w, h), float(conf), int(photo))
    return out


@dataclass(frozen=True)
class Answer:
    """What a search answer shows of the faces the index found, and the space's centroid
    generation at that moment (kept centroids are good while it has not moved)."""

    rows: dict[int, FaceRow]
    vectors: dict[int, np.ndarray]  # each face's stored full-width vector
    centroid_generation: int
    reduction_uid: str | None = None  # the space's stored PCA then (None: none), for a reader to follow


# a search's answer, built once: its IN list expands at execution, and it runs on the
# session's connection as a Core statement (what the ORM adds to a plain SELECT of columns
# cost ~0.25 ms of a 7 ms search, 2026-12-05)
_GENERATION = select(Space.centroid_generation).where(Space.id == bindparam("space")).scalar_subquery()
# read with the rows, never locked: a plain SELECT does not wait for a PCA being stored
_REDUCTION = select(Reduction.uid).where(Reduction.space_id == bindparam("space")).scalar_subquery()
_ANSWER = _face_query(bindparam("ids", expanding=True), Face.embedding, _GENERATION, _REDUCTION)


def answer_rows(session: Session, space_id: int, ids: Iterable[int]) -> Answer:
    """The found faces with photo, person and vector, the centroid generation and the
    stored PCA's uid: one round trip for a search's answer (a query's model time is all that
    should remain)."""
    ids = [int(i) for i in ids if int(i) >= 0]
    rows: dict[int, FaceRow] = {}
    vectors: dict[int, np.ndarray] = {}
    current: int | None = None
    uid: str | None = None
    for chunk in chunks(ids):
        found = session.connection().execute(_ANSWER, {"ids": list(chunk), "space": space_id})
        for fid, name, path, pid, x, y, w, h, conf, photo, blob, gen, red in found:
            rows[fid] = FaceRow(fid, name, path, pid, (x, y, w, h), float(conf), int(photo))
            vectors[fid] = decode_vector(blob)
            current, uid = gen, red
    if current is None:  # no face found (or all gone): the generation and the PCA alone
        current, uid = session.execute(select(_GENERATION, _REDUCTION), {"space": space_id}).one()
    return Answer(rows, vectors, int(current or 0), uid)


def photo_sha256(session: Session, photo_id: int) -> str | None:
    """The sha256 of the bytes a photo row was read from (None: not known)."""
    return session.scalar(select(Photo.sha256).where(Photo.id == photo_id))


def photo_path(session: Session, photo_id: int) -> str | None:
    """The file a photo row stands for (every space holds its own row of that file)."""
    return session.scalar(select(Photo.path).where(Photo.id == photo_id))


def person_photos(session: Session, space_id: int, person_id: int) -> list[tuple[int, str, str, str | None]]:
    """(photo id, path, status, reason) of everything filed under a person, failures included."""
    query = (select(Photo.id, Photo.path, Photo.status, Photo.reason)
             .where(Photo.space_id == space_id, Photo.person_id == person_id).order_by(Photo.id))
    return [(i, path, status, reason) for i, path, status, reason in session.execute(query)]


def problem_photos(session: Session, space_id: int, limit: int = 1000) -> list[tuple[str, str, str | None]]:
    """(path, status, reason) of photos that gave no face: what an operator must look at."""
    query = (select(Photo.path, Photo.status, Photo.reason)
             .where(Photo.space_id == space_id, Photo.status != PhotoStatus.ok.value)
             .order_by(Photo.status, Photo.path).limit(limit))
    return [(path, status, reason) for path, status, reason in session.execute(query)]


def shown_faces(session: Session, space_id: int, groups: Sequence[tuple[GroupKey, str]],
                audience: Audience = Audience.operator) -> np.ndarray | None:
    """Ids of the faces whose person is in every group ``(key, value)`` (:func:`person_matches`)
    and ``audience`` may see (:func:`~lookalike.store.person_rows.sees`): a role-model kiosk
    keeps people whose profile says yes; a visitor loses those whose profile says no (while
    nobody says no, a public corpus, that filters nothing). ``None`` when nothing filters:
    the search stays unfiltered."""
    audience = Audience.of(audience)
    conditions = [person_matches(key, value) for key, value in groups]
    condition = sees(audience)
    if condition is not None and (audience is not Audience.visitor or anyone_withholds_consent(session)):
        conditions.append(condition)
    if not conditions:
        return None
    query = (select(Face.id).join(Person, Person.id == Face.person_id)
             .where(Face.space_id == space_id, *conditions).order_by(Face.id))
    return np.fromiter((r[0] for r in session.execute(query)), dtype=np.int64)


def person_ids_of(session: Session, face_ids: np.ndarray) -> set[int]:
    ids = [int(i) for i in face_ids]
    out: set[int] = set()
    for chunk in chunks(ids):
        out.update(pid for (pid,) in session.execute(
            select(Face.person_id).where(Face.id.in_(chunk)).distinct()) if pid is not None)
    return out


def person_face_ids(session: Session, space_id: int, person_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for fid, pid in session.execute(select(Face.id, Face.person_id).where(
            Face.space_id == space_id, Face.person_id.in_(person_ids))):
        if pid is not None:
            out.setdefault(pid, []).append(fid)
    return out


def estimate_rows(face_ids: Sequence[int], estimates: Sequence[dict | None]) -> list[dict[str, Any]]:
    """Rows (for :func:`insert_many`) for the faces that were analysed
    (``Estimate.to_dict()`` dicts; None = not asked)."""
    import json

    return [{"face_id": fid, "age": float(e["age"]), "woman": float(e["gender"]["woman"]),
             "emotion": e["dominant_emotion"], "emotions": json.dumps(e["emotion"]), "model": e["model"]}
            for fid, e in zip(face_ids, estimates) if e is not None]


def photos_of_person(session: Session, person_id: int) -> list[Photo]:
    """Every photo filed under the person, in every embedding space."""
    return list(session.scalars(select(Photo).where(Photo.person_id == person_id)))


def copies_of(session: Session, photos: list[Photo]) -> list[Photo]:
    """The photos refused as duplicates of ``photos`` (the same bytes, in the same space,
    filed under anyone): a removal takes them too, as they are the removed person's picture
    and their reasons name the removed file and person (kiosk user test, F2)."""
    # the originals only (any status but duplicate: a photo with no face found is one too):
    # a removed duplicate's bytes are another photo's, whose copies stay
    # with it (removing Alice's copy of Bob's photo took Carol's copy of it too: review, M5)
    wanted = {(p.space_id, p.sha256) for p in photos if p.sha256 and p.status != PhotoStatus.duplicate.value}
    seen = {p.id for p in photos}
    found: list[Photo] = []
    for part in chunks(sorted({sha for _, sha in wanted})):
        found += session.scalars(select(Photo).where(Photo.status == PhotoStatus.duplicate.value,
                                                     Photo.sha256.in_(part)))
    return [p for p in found if (p.space_id, p.sha256) in wanted and p.id not in seen]


def photos_at(session: Session, path: str) -> list[Photo]:
    """The photo rows of one file, in every embedding space."""
    return list(session.scalars(select(Photo).where(Photo.path == path)))


PersonFaceRow = tuple[int, str, int, int, int, int, bytes]  # face id, photo path, x, y, w, h, vector bytes


def person_face_rows(session: Session, space_id: int, person_id: int) -> list[PersonFaceRow]:
    """Each of the person's faces in the space (:data:`PersonFaceRow`)."""
    rows = session.execute(select(Face.id, Photo.path, Face.x, Face.y, Face.w, Face.h, Face.embedding)
                           .join(Photo, Photo.id == Face.photo_id)
                           .where(Face.person_id == person_id, Face.space_id == space_id))
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


# face id, person name (None: no person), photo path, x, y, w, h, vector bytes
CorpusFaceRow = tuple[int, str | None, str, int, int, int, int, bytes]


def corpus_face_rows(session: Session, space_id: int) -> list[CorpusFaceRow]:
    """Every face of the space with its person and photo (:data:`CorpusFaceRow`), by face id."""
    rows = session.execute(
        select(Face.id, Person.name, Photo.path, Face.x, Face.y, Face.w, Face.h, Face.embedding)
        .join(Photo, Photo.id == Face.photo_id).outerjoin(Person, Person.id == Face.person_id)
        .where(Face.space_id == space_id).order_by(Face.id)).all()
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]


def delete_row(session: Session, row: Base) -> None:
    """Delete one row (a person after their photos went); the caller commits."""
    session.delete(row)
