"""Database reads and writes the rest of the code needs, in one place.

Every function takes a SQLAlchemy ``Session`` (or engine) and plain values, so the
ingest writer, search and doctor share the same queries and nothing else writes SQL:
beside this module only :mod:`lookalike.store.consent` (whose faces an audience's answer
may be made of), :mod:`lookalike.store.queue` (the work queue),
:mod:`lookalike.store.pgvector` (``faces.vec`` and its HNSW indexes) and
:mod:`lookalike.store.db` (engine, migrations, WAL checkpoint, VACUUM) hold any.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import ColumnElement, SQLColumnExpression, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from .schema import (
    ApiKey,
    Base,
    Calibration,
    Face,
    FaceEstimate,
    Person,
    Photo,
    PhotoStatus,
    Reduction,
    Space,
    VectorOutbox,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from ..ingest.corpus import Profile as ManifestProfile

CENTROID_LOCK = 0x6C6B6332  # pg_advisory_xact_lock(CENTROID_LOCK, space id): "lkc2"
VECTORS_LOCK = 0x6C6B7631  # pg_advisory_xact_lock[_shared](VECTORS_LOCK, space id): "lkv1"


@dataclass(frozen=True)
class FaceRow:
    """A stored face joined with its photo and person: what a search hit shows."""

    face_id: int
    person: str | None
    photo: str
    person_id: int | None
    bbox: tuple[int, int, int, int]
    confidence: float


def get_space(session: Session, key: str) -> Space | None:
    return session.scalar(select(Space).where(Space.key == key))


def list_spaces(session: Session) -> list[Space]:
    return list(session.scalars(select(Space).order_by(Space.id)))


def create_space(session: Session, key: str, model: str, detector: str, aligner: str,
                 dim: int) -> Space:
    space = Space(key=key, model=model, detector=detector, aligner=aligner, dim=dim,
                  metric="ip", normalisation="l2")
    session.add(space)
    session.flush()
    return space


def upsert_person(session: Session, name: str, profile: ManifestProfile | None = None,
                  cache: dict | None = None) -> int:
    """Id of the person called ``name``, created if new; a manifest profile overwrites."""
    if cache is not None and name in cache and profile is None:
        return cache[name]
    person = session.scalar(select(Person).where(Person.name == name))
    if person is None:
        # INSERT … ON CONFLICT DO NOTHING: ingest workers on other machines may be creating
        # the same person right now; whoever commits first wins, the other reads that row
        session.execute(_insert(session, Person).values(name=name, consent_display=None)
                        .on_conflict_do_nothing(index_elements=["name"]))
        person = session.scalars(select(Person).where(Person.name == name)).one()
    if profile is not None:
        filtered_on = (person.role, person.organisation, person.tags, person.consent_display)
        person.display_name = profile.display_name
        person.role = profile.role
        person.organisation = profile.organisation
        person.story = profile.story
        person.tags = json.dumps(list(profile.tags)) if profile.tags else None
        person.consent_display = profile.consent_display
        person.source_url = profile.source_url
        person.license = profile.license
        if (person.role, person.organisation, person.tags, person.consent_display) != filtered_on:
            enqueue_people(session, [person.id])  # the filter fields Milvus keeps changed
    session.flush()
    if cache is not None:
        cache[name] = person.id
    return person.id


def _insert(session: Session, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT (both SQLite's and PostgreSQL's have ``on_conflict_do_nothing``)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@dataclass(frozen=True)
class StoredPhoto:
    """A photo stored in some space, as another space would re-embed it."""

    path: str
    sha256: str | None
    person: str | None
    faces: int  # faces kept from it (more than one: it was ingested with --faces all)


def photos_outside(session: Session, space_id: int) -> list[StoredPhoto]:
    """Every ``ok`` photo of the other spaces that ``space_id`` does not hold yet, one per
    path (the oldest space's row), with its person and face count."""
    held = select(Photo.path).where(Photo.space_id == space_id)
    faces = (select(func.count(Face.id)).where(Face.photo_id == Photo.id).scalar_subquery())
    rows = session.execute(
        select(Photo.path, Photo.sha256, Person.name, faces)
        .outerjoin(Person, Person.id == Photo.person_id)
        .where(Photo.space_id != space_id, Photo.status == PhotoStatus.ok.value, Photo.path.not_in(held))
        .order_by(Photo.space_id, Photo.id))
    out: dict[str, StoredPhoto] = {}
    for path, sha, person, n in rows:
        out.setdefault(path, StoredPhoto(path, sha, person, int(n)))
    return list(out.values())


def delete_space(session: Session, space_id: int) -> tuple[int, int]:
    """Every row of one embedding space (photos, faces, estimates, centroids, calibration,
    reduction, queue: all cascade from the space row); returns (photos, faces) removed."""
    photos = session.scalar(select(func.count(Photo.id)).where(Photo.space_id == space_id)) or 0
    faces = session.scalar(select(func.count(Face.id)).where(Face.space_id == space_id)) or 0
    session.execute(delete(Face).where(Face.space_id == space_id))
    session.execute(delete(Photo).where(Photo.space_id == space_id))
    session.execute(delete(Space).where(Space.id == space_id))
    return int(photos), int(faces)


def photo_by_path(session: Session, space_id: int, path: str) -> Photo | None:
    return session.scalar(select(Photo).where(Photo.space_id == space_id, Photo.path == path))


@dataclass(frozen=True)
class Known:
    """What the database already knows of a photo, for the ingest reader."""

    path: str
    sha256: str | None
    status: str
    person: str | None


def _known(session: Session, space_id: int, column: SQLColumnExpression[str | None], values: list[str],
           *where: ColumnElement[bool]) -> list[Known]:
    """Photo rows whose ``column`` is in ``values``, lowest id last (chunked IN queries)."""
    out: list[Known] = []
    for start in range(0, len(values), 900):  # SQLite's bound-parameter limit
        query = (select(Photo.path, Photo.sha256, Photo.status, Person.name)
                 .outerjoin(Person, Person.id == Photo.person_id)
                 .where(Photo.space_id == space_id, column.in_(values[start:start + 900]), *where)
                 .order_by(Photo.id.desc()))
        out.extend(Known(*r) for r in session.execute(query))
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
    enqueue_faces(session, photo.space_id, [r[0] for r in rows])
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
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        chunk = ids[start:start + 900]
        for fid, blob in session.execute(select(Face.id, Face.embedding).where(Face.id.in_(chunk))):
            found[fid] = blob
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for row, fid in enumerate(ids):
        out[row] = decode_vector(found[fid])
    return out


def face_rows(session: Session, ids: Iterable[int]) -> dict[int, FaceRow]:
    """Faces joined with photo path and person name, keyed by face id."""
    ids = [int(i) for i in ids if int(i) >= 0]
    out: dict[int, FaceRow] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        query = (
            select(Face.id, Person.name, Photo.path, Face.person_id, Face.x, Face.y, Face.w, Face.h,
                   Face.confidence)
            .join(Photo, Photo.id == Face.photo_id)
            .outerjoin(Person, Person.id == Face.person_id)
            .where(Face.id.in_(chunk))
        )
        for fid, name, path, pid, x, y, w, h, conf in session.execute(query):
            out[fid] = FaceRow(fid, name, path, pid, (x, y, w, h), float(conf))
    return out


@dataclass(frozen=True)
class Profile:
    """What a person card shows; everything but the name is optional and self-declared."""

    name: str
    display_name: str | None
    role: str | None
    organisation: str | None
    story: str | None
    tags: tuple[str, ...]
    consent_display: bool

    @property
    def title(self) -> str:
        return self.display_name or self.name.replace("_", " ")


def profiles(session: Session, names: Iterable[str]) -> dict[str, Profile]:
    names = sorted({n for n in names if n})
    rows: Iterable[Person] = session.scalars(select(Person).where(Person.name.in_(names))) if names else []
    return {p.name: _profile(p) for p in rows}


@dataclass(frozen=True)
class PersonSummary:
    """One line of the people list: the profile, consent as stated (``None``: never stated),
    and what the library holds of them in one space."""

    profile: Profile
    consent: bool | None
    photos: int
    faces: int


def people(session: Session, space_id: int, *, hide_declined: bool, name: str | None = None) -> list[PersonSummary]:
    """Everyone (or the one called ``name``), by name; ``hide_declined`` leaves out people
    whose profile withholds consent (what visitors may see)."""
    photos = (select(Photo.person_id, func.count().label("n")).where(Photo.space_id == space_id,
                                                                     Photo.status == PhotoStatus.ok.value)
              .group_by(Photo.person_id).subquery())
    faces = (select(Face.person_id, func.count().label("n")).where(Face.space_id == space_id)
             .group_by(Face.person_id).subquery())
    query = (select(Person, func.coalesce(photos.c.n, 0), func.coalesce(faces.c.n, 0))
             .outerjoin(photos, photos.c.person_id == Person.id).outerjoin(faces, faces.c.person_id == Person.id)
             .order_by(Person.name))
    if hide_declined:
        query = query.where(Person.consent_display.is_not(False))
    if name is not None:
        query = query.where(Person.name == name)
    return [PersonSummary(_profile(p), p.consent_display, int(n_photos), int(n_faces))
            for p, n_photos, n_faces in session.execute(query)]


def _profile(p: Person) -> Profile:
    return Profile(p.name, p.display_name, p.role, p.organisation, p.story,
                   tuple(json.loads(p.tags)) if p.tags else (), bool(p.consent_display))


def set_consent(session: Session, name: str, consent: bool) -> bool:
    """Record a person's consent to be displayed; False when nobody has that name. The
    caller commits: from then on no search with ``hide_declined`` returns them."""
    person = person_by_name(session, name)
    if person is None:
        return False
    person.consent_display = consent
    enqueue_people(session, [person.id])
    session.flush()
    return True


def photo_path(session: Session, photo_id: int) -> str | None:
    """The file a photo row stands for (every space holds its own row of that file)."""
    return session.scalar(select(Photo.path).where(Photo.id == photo_id))


def person_photos(session: Session, space_id: int, person_id: int) -> list[tuple[int, str, str, str | None]]:
    """(photo id, path, status, reason) of everything filed under a person, failures included."""
    query = (select(Photo.id, Photo.path, Photo.status, Photo.reason)
             .where(Photo.space_id == space_id, Photo.person_id == person_id).order_by(Photo.id))
    return [(i, path, status, reason) for i, path, status, reason in session.execute(query)]


def add_key(session: Session, *, scope: str, key_hash: str, prefix: str, name: str | None) -> int:
    row = ApiKey(scope=scope, key_hash=key_hash, prefix=prefix, name=name)
    session.add(row)
    session.flush()
    return row.id


def api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def key_scope(session: Session, key_hash: str) -> str | None:
    """The scope of a key that exists and is not revoked."""
    return session.scalar(select(ApiKey.scope).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))


def revoke_key(session: Session, key_id: int) -> bool:
    from datetime import datetime, timezone

    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = datetime.now(timezone.utc)
    session.flush()
    return True


def display_tags(session: Session) -> list[str]:
    """Self-declared tags of the people who consented to be displayed, sorted."""
    tags: set[str] = set()
    for raw in session.scalars(select(Person.tags).where(Person.consent_display.is_(True), Person.tags.is_not(None))):
        if raw is not None:
            tags.update(json.loads(raw))
    return sorted(tags)


def problem_photos(session: Session, space_id: int, limit: int = 1000) -> list[tuple[str, str, str | None]]:
    """(path, status, reason) of photos that gave no face: what an operator must look at."""
    query = (select(Photo.path, Photo.status, Photo.reason)
             .where(Photo.space_id == space_id, Photo.status != PhotoStatus.ok.value)
             .order_by(Photo.status, Photo.path).limit(limit))
    return [(path, status, reason) for path, status, reason in session.execute(query)]


def encode_vector(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def decode_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def lock_vectors(session: Session, space_id: int, exclusive: bool) -> None:
    """PostgreSQL: the space's lock on its outside vector store until ``session``'s
    transaction ends. A collection build takes it alone, every drain of the outbox shares
    it: a build inserts the faces it read, and a drain's upsert of one of them landing
    between that read and the insert would leave the face in Milvus twice."""
    call = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    session.execute(text(f"SELECT {call}(:a, :b)"), {"a": VECTORS_LOCK, "b": int(space_id)})


# -- centroids ---------------------------------------------------------------------------
def update_centroids(session: Session, space_id: int, person_ids: list[int | None],
                     vectors: np.ndarray, sign: int = 1) -> None:
    """Add (``sign=1``) or subtract (``-1``) vectors to their person's and the corpus'
    running sums, in the caller's transaction."""
    from .schema import Centroid

    if len(person_ids) == 0:
        return
    if session.get_bind().dialect.name == "postgresql":
        # concurrent writers (ingest workers, removals) add to the same sums: one at a time
        # per space, until commit; taken last in a writer's transaction, so it is held briefly
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": CENTROID_LOCK, "b": int(space_id)})
    deltas: dict[int | None, tuple[np.ndarray, int]] = {}
    for pid, vec in zip(person_ids, np.asarray(vectors, dtype=np.float64)):
        for key in ((None, pid) if pid is not None else (None,)):
            total, n = deltas.get(key, (np.zeros(vec.shape[0]), 0))
            deltas[key] = (total + sign * vec, n + sign)
    for pid, (delta, n) in deltas.items():
        row = session.scalar(select(Centroid).where(
            Centroid.space_id == space_id,
            Centroid.person_id.is_(None) if pid is None else Centroid.person_id == pid))
        if row is None:
            row = Centroid(space_id=space_id, person_id=pid, count=0,
                           sum=np.zeros(len(delta), dtype="<f8").tobytes())
            session.add(row)
        total = np.frombuffer(row.sum, dtype="<f8") + delta
        row.count = int(row.count or 0) + n
        if row.count <= 0:
            session.delete(row)
        else:
            row.sum = np.asarray(total, dtype="<f8").tobytes()
    session.execute(update(Space).where(Space.id == space_id)
                    .values(centroid_generation=Space.centroid_generation + 1))


def centroid_generation(session: Session, space_id: int) -> int:
    """How many times the space's centroids have changed (:func:`update_centroids`)."""
    return int(session.scalar(select(Space.centroid_generation).where(Space.id == space_id)) or 0)


def centroids(session: Session, space_id: int) -> dict[int | None, tuple[np.ndarray, int]]:
    """Unit centroid and face count per person id (``None`` = corpus)."""
    from .schema import Centroid

    out = {}
    for pid, count, blob in session.execute(select(Centroid.person_id, Centroid.count, Centroid.sum)
                                            .where(Centroid.space_id == space_id)):
        total = np.frombuffer(blob, dtype="<f8")
        norm = np.linalg.norm(total)
        out[pid] = ((total / norm).astype(np.float32) if norm > 0 else total.astype(np.float32), int(count))
    return out


def centroid_means(session: Session, space_id: int, names: Iterable[str]) -> dict[str | None, float]:
    """How close a group's faces are to their own centroid on average, for the corpus
    (key ``None``) and the people ``names``: for unit vectors with sum ``s`` over ``n``
    faces that mean is ``|s| / n``, so it comes from the running sums. What "typical"
    means differs by model (Dlib's corpus mean is 0.92, SFace's 0.33), this does not."""
    from .schema import Centroid

    wanted = list(set(names))
    query = (select(Person.name, Centroid.count, Centroid.sum)
             .outerjoin(Person, Person.id == Centroid.person_id)
             .where(Centroid.space_id == space_id)
             .where(Centroid.person_id.is_(None) | Person.name.in_(wanted)))
    return {name: float(np.linalg.norm(np.frombuffer(blob, dtype="<f8")) / count)
            for name, count, blob in session.execute(query) if count}


def anyone_withholds_consent(session: Session) -> bool:
    """Whether any person's profile withholds consent to be displayed (one indexed probe)."""
    return session.scalar(select(Person.id).where(Person.consent_display.is_(False)).limit(1)) is not None


def literal_like(value: str) -> str:
    """``value`` as a LIKE pattern that matches only itself, for ``.like(…, escape="\\")``
    (a filter or group is a value, never a pattern: ``organisation=%`` must not match everyone)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def normalise_tag(tag: str) -> str:
    """A tag as it is stored and matched: lower case, words joined by ``-``."""
    return "-".join(tag.strip().lower().split())


def person_matches(key: str, value: str) -> ColumnElement[bool]:
    """The one test of "this person is in the group ``key=value``" that search filters and
    face-math groups share. Every value is matched literally (never as a pattern): a tag
    as the JSON list stores it, quotes included; an organisation or role whole and case-
    insensitively; a person by name."""
    if key == "tag":
        quoted = literal_like(json.dumps(normalise_tag(value)))
        return Person.tags.like(f"%{quoted}%", escape="\\")
    if key == "organisation":
        return Person.organisation.ilike(literal_like(value), escape="\\")
    if key == "role":
        return Person.role.ilike(literal_like(value), escape="\\")
    if key == "person":
        return Person.name == value
    raise ValueError(f"no person group {key!r}")


def shown_faces(session: Session, space_id: int, groups: list[tuple[str, str]], *, consented_only: bool = False,
                hide_declined: bool = False) -> np.ndarray | None:
    """Ids of the faces whose person is in every group ``(key, value)`` (:func:`person_matches`)
    and may be shown: ``consented_only`` keeps people whose profile says yes; ``hide_declined``
    drops those whose profile says no (while nobody says no, a public corpus, it filters
    nothing). ``None`` when nothing filters: the search stays unfiltered."""
    conditions = [person_matches(key, value) for key, value in groups]
    if consented_only:
        conditions.append(Person.consent_display.is_(True))
    if hide_declined and anyone_withholds_consent(session):
        conditions.append(Person.consent_display.is_not(False))
    if not conditions:
        return None
    query = (select(Face.id).join(Person, Person.id == Face.person_id)
             .where(Face.space_id == space_id, *conditions).order_by(Face.id))
    return np.fromiter((r[0] for r in session.execute(query)), dtype=np.int64)


def person_ids_of(session: Session, face_ids: np.ndarray) -> set[int]:
    ids = [int(i) for i in face_ids]
    out: set[int] = set()
    for start in range(0, len(ids), 900):
        out.update(pid for (pid,) in session.execute(
            select(Face.person_id).where(Face.id.in_(ids[start:start + 900])).distinct()) if pid is not None)
    return out


def person_face_ids(session: Session, space_id: int, person_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for fid, pid in session.execute(select(Face.id, Face.person_id).where(
            Face.space_id == space_id, Face.person_id.in_(person_ids))):
        if pid is not None:
            out.setdefault(pid, []).append(fid)
    return out


def calibration(session: Session, space_id: int) -> Calibration | None:
    return session.get(Calibration, space_id)


def save_calibration(session: Session, space_id: int, threshold: float, floor: float, source: str,
                     figures: dict) -> None:
    row = session.get(Calibration, space_id) or Calibration(space_id=space_id)
    row.threshold, row.floor, row.source = float(threshold), float(floor), source
    row.figures = json.dumps(figures)
    session.add(row)


def reduction_row(session: Session, space_id: int, lock: bool = False) -> Reduction | None:
    """The space's stored reduction row, if any. ``lock`` (PostgreSQL only) reads it
    ``FOR SHARE``: held for the rest of the caller's transaction."""
    query = select(Reduction).where(Reduction.space_id == space_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return session.scalar(query)


def save_reduction(session: Session, space_id: int, *, uid: str, kind: str, dim_in: int, dim_out: int,
                   mean: np.ndarray, components: np.ndarray, trained_on: int, explained: float) -> None:
    """The space's reduction row := these values (inserted or replaced; ``mean`` and
    ``components`` stored as little-endian float32), flushed; the caller commits. On
    PostgreSQL the reductions table is first locked ``IN EXCLUSIVE MODE`` (waiting for
    writers holding :func:`reduction_row`'s share lock) until that commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE reductions IN EXCLUSIVE MODE"))  # waits for writers using the old one
    row = session.get(Reduction, space_id) or Reduction(space_id=space_id)
    row.uid, row.kind, row.dim_in, row.dim_out = uid, kind, dim_in, dim_out
    row.mean = np.asarray(mean, dtype="<f4").tobytes()
    row.components = np.asarray(components, dtype="<f4").tobytes()
    row.trained_on, row.explained = trained_on, explained
    session.add(row)
    session.flush()


def estimate_rows(faces: list[Face], estimates: list[dict | None]) -> list[FaceEstimate]:
    """Rows for the faces that were analysed (``Estimate.to_dict()`` dicts; None = not asked)."""
    import json

    return [FaceEstimate(face_id=f.id, age=float(e["age"]), woman=float(e["gender"]["woman"]),
                         emotion=e["dominant_emotion"], emotions=json.dumps(e["emotion"]), model=e["model"])
            for f, e in zip(faces, estimates) if e is not None]


def person_ids_by_name(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Each name somebody has -> that person's id (a name nobody has is left out)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    return {name: int(pid) for name, pid in session.execute(select(Person.name, Person.id)
                                                            .where(Person.name.in_(wanted)))}


def person_by_name(session: Session, name: str) -> Person | None:
    return session.scalar(select(Person).where(Person.name == name))


def photos_of_person(session: Session, person_id: int) -> list[Photo]:
    """Every photo filed under the person, in every embedding space."""
    return list(session.scalars(select(Photo).where(Photo.person_id == person_id)))


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


def insert_rows(session: Session, rows: Sequence[Base]) -> None:
    """Add new rows (photos, faces, estimates) and flush, so their ids are known; the caller
    commits."""
    session.add_all(rows)
    session.flush()


def delete_row(session: Session, row: Base) -> None:
    """Delete one row (a person after their photos went); the caller commits."""
    session.delete(row)


# -- the vector outbox (a vector store outside the database: Milvus) -----------------------
# A library whose vectors live in Milvus opens its sessions with this key in ``Session.info``;
# then every change to a face or to the profile fields Milvus filters on also writes outbox
# rows, in the same transaction (:class:`lookalike.store.schema.VectorOutbox`).
OUTBOX = "vector_outbox"


def outboxed(session: Session) -> bool:
    return bool(session.info.get(OUTBOX))


def enqueue_faces(session: Session, space_id: int, face_ids: Iterable[int]) -> None:
    """Record that these faces' vectors must follow the database (added or deleted)."""
    rows = [{"space_id": int(space_id), "face_id": int(f)} for f in face_ids]
    if rows and outboxed(session):
        session.execute(insert(VectorOutbox), rows)


def enqueue_people(session: Session, person_ids: Iterable[int]) -> None:
    """Record that every face of these people must be re-sent (their filter fields changed)."""
    ids = sorted({int(p) for p in person_ids})
    if not ids or not outboxed(session):
        return
    session.execute(insert(VectorOutbox).from_select(
        ["space_id", "face_id"], select(Face.space_id, Face.id).where(Face.person_id.in_(ids))))


def outbox_batch(session: Session, space_id: int, limit: int) -> list[tuple[int, int]]:
    """The oldest ``(outbox id, face id)`` rows of a space. On PostgreSQL they are locked
    (``FOR UPDATE SKIP LOCKED``): writers on other machines drain other rows meanwhile."""
    query = (select(VectorOutbox.id, VectorOutbox.face_id).where(VectorOutbox.space_id == space_id)
             .order_by(VectorOutbox.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [(int(a), int(b)) for a, b in session.execute(query)]


def clear_outbox(session: Session, outbox_ids: Iterable[int]) -> None:
    ids = [int(i) for i in outbox_ids]
    for start in range(0, len(ids), 900):
        session.execute(delete(VectorOutbox).where(VectorOutbox.id.in_(ids[start:start + 900])))


def outbox_count(session: Session, space_id: int) -> int:
    return int(session.scalar(select(func.count(VectorOutbox.id)).where(VectorOutbox.space_id == space_id)) or 0)


@dataclass(frozen=True)
class FilterFields:
    """What a vector store keeps beside a face's vector to filter searches inside it."""

    person_id: int  # -1: no person
    consent: int  # 1 agreed, 0 withheld, -1 never stated
    tags: tuple[str, ...]  # normalised (:func:`normalise_tag`)
    organisation: str
    role: str


def filter_fields(session: Session, face_ids: Iterable[int]) -> dict[int, FilterFields]:
    """The filter fields of the faces that exist (a missing id was deleted)."""
    ids = [int(i) for i in face_ids]
    out: dict[int, FilterFields] = {}
    for start in range(0, len(ids), 900):
        rows = session.execute(
            select(Face.id, Face.person_id, Person.consent_display, Person.tags, Person.organisation, Person.role)
            .outerjoin(Person, Person.id == Face.person_id).where(Face.id.in_(ids[start:start + 900])))
        for fid, pid, consent, tags, org, role in rows:
            out[int(fid)] = FilterFields(
                -1 if pid is None else int(pid), -1 if consent is None else int(bool(consent)),
                tuple(normalise_tag(t) for t in json.loads(tags)) if tags else (),
                (org or "").strip().lower(), (role or "").strip().lower())
    return out
