"""The relational schema: people, photos, faces and embedding spaces (SQLAlchemy 2).

The database is the source of truth; FAISS index files are a derived, rebuildable
cache of the ``faces.embedding`` blobs (see :mod:`lookalike.index`). On PostgreSQL the
vectors are also kept in ``faces.vec`` (pgvector) and searched in SQL instead. Changing this file
means writing an Alembic migration in ``migrations/versions``. A new SQLite library takes its
schema straight from this file (:func:`lookalike.store.db.migrate`), so a migration must not add
what these models cannot express (a trigger, a CHECK written in SQL, seed rows):
tests/test_store.py compares the two.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.engine import Dialect
    from sqlalchemy.types import TypeEngine


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Space(Base):
    """An embedding space = one FAISS index: vectors are comparable only within one."""

    __tablename__ = "indexes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    # written into the index manifest: an index file from another library is refused
    uid: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    model: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    aligner: Mapped[str] = mapped_column(String(32))
    dim: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(16), default="ip")  # inner product
    normalisation: Mapped[str] = mapped_column(String(16), default="l2")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # +1 with every change to the space's centroids (centroid_rows.update_centroids) and to whose
    # faces a filter or consent selects (store/generations.py): a reader that keeps them compares
    # it, one cheap row, instead of reading every centroid and face list again
    centroid_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str | None] = mapped_column(String(300))
    organisation: Mapped[str | None] = mapped_column(String(300))
    story: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list of self-declared tags
    # True: agreed to be displayed; False: a manifest profile without that agreement (never
    # shown to visitors); None: never stated (a public corpus ingested from folders)
    consent_display: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=None)
    # when staff withdrew it (the HTTP API, the admin page, lib.people.set_consent): until staff
    # record it again, no manifest row or profile grants it back (person_rows.upsert_person)
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source_url: Mapped[str | None] = mapped_column(Text)
    license: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        UniqueConstraint("space_id", "path", name="uq_photos_space_path"),
        Index("ix_photos_space_sha256", "space_id", "sha256"),
        Index("ix_photos_space_status", "space_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    # what it was read with: a re-run with other options reads it again (ingest.reader.decide);
    # NULL: not read by the models (or stored before 0011 with one face: not known)
    faces_mode: Mapped[str | None] = mapped_column(String(16))
    analyzed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class VectorColumn(TypeDecorator):
    """The face vector as pgvector's ``vector`` on PostgreSQL, written in the same INSERT as
    the face row and searched in SQL through an HNSW index (no separate index file, no
    drift). On other databases it stays NULL: the FAISS file beside the database is the
    index there, built from ``embedding``."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import Vector

            return dialect.type_descriptor(Vector())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: np.ndarray | None, dialect: Dialect) -> np.ndarray | None:
        return value if dialect.name == "postgresql" else None


class Face(Base):
    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_space", "space_id"),
        Index("ix_faces_person", "person_id"),
        Index("ix_faces_photo", "photo_id"),
        # face ids are FAISS ids: never reuse one after a removal
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"))
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, unit length
    vec = mapped_column(VectorColumn, nullable=True)  # PostgreSQL: the searchable copy (pgvector)


class FaceEstimate(Base):
    """Estimated age / gender / emotion of a corpus face (``ingest --analyze``).

    Estimates describe photos for later browsing (age bands, emotions); they never select
    or filter role models, which use self-declared tags only. No race column, ever."""

    __tablename__ = "face_estimates"
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True)
    age: Mapped[float] = mapped_column(Float)
    woman: Mapped[float] = mapped_column(Float)  # estimated probability; man = 1 - woman
    emotion: Mapped[str] = mapped_column(Text)  # the dominant one
    emotions: Mapped[str] = mapped_column(Text)  # JSON: the seven probabilities
    model: Mapped[str] = mapped_column(Text)


class FaceLandmarks(Base):
    """A corpus face's dense landmarks (:mod:`lookalike.faces.landmarks`), stored at ingest so
    that an average over thousands of faces never detects them again.

    ``points``: float16 pairs (x, y), little-endian, relative to the face's stored box
    (``(p - (x, y)) / max(w, h)``), so the precision is a thousandth of the face's size
    whatever the photo's: 1,872 bytes for MediaPipe's 468 points. ``model``: the landmark
    model's name (points of different models are never mixed). Deleted with its face."""

    __tablename__ = "face_landmarks"
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    points: Mapped[bytes] = mapped_column(LargeBinary)


class Centroid(Base):
    """Running sum of a person's unit vectors (``person_id`` NULL = the whole corpus).

    Sums and counts make ingest and removal exact incremental updates; the centroid is
    the normalised mean, the person's "average face".
    """

    __tablename__ = "centroids"
    __table_args__ = (UniqueConstraint("space_id", "person_id", name="uq_centroids_space_person"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer, default=0)
    sum: Mapped[bytes] = mapped_column(LargeBinary)  # float64, little-endian


class Calibration(Base):
    """Verdict thresholds measured by ``lookalike eval verify --calibrate`` for a space."""

    __tablename__ = "calibrations"
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"), primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)  # >= : same person
    floor: Mapped[float] = mapped_column(Float)  # < : weak, no good match
    source: Mapped[str] = mapped_column(Text)
    figures: Mapped[str | None] = mapped_column(Text)  # JSON of the eval that set them
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class QueueState(str, Enum):
    """Where a photo stands in the PostgreSQL work queue (:mod:`lookalike.store.queue`)."""

    pending = "pending"  # waiting, or being processed under a worker's row lock
    done = "done"  # stored; the outcome waits for the run that queued it to collect it


class QueueItem(Base):
    """One photo waiting for any ingest worker, on any machine (PostgreSQL only).

    A worker claims rows with ``SELECT … FOR UPDATE SKIP LOCKED`` and keeps the lock while
    it processes them, in the same transaction that stores the results: a worker killed
    mid-photo leaves its rows unlocked and pending, to be claimed again."""

    __tablename__ = "ingest_queue"
    __table_args__ = (
        UniqueConstraint("space_id", "path", name="uq_queue_space_path"),
        Index("ix_queue_state", "state", "id"),
        Index("ix_queue_run", "run", "state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"))
    run: Mapped[str] = mapped_column(String(32))  # the ingest run that waits for it
    path: Mapped[str] = mapped_column(Text)
    person: Mapped[str | None] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    replaces: Mapped[bool] = mapped_column(Boolean, default=False)
    faces_mode: Mapped[str] = mapped_column(String(16))
    analyzer: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=QueueState.pending.value)
    status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QueueAttempt(Base):
    """A worker started on a queued photo. Written on its own connection (committed at once,
    unlike the claim), so a photo that kills its worker every time is noticed and settled as
    an error instead of being claimed for ever. No foreign key: the queue row is locked by
    the claiming transaction while this is written."""

    __tablename__ = "ingest_attempts"
    __table_args__ = (Index("ix_attempts_queue", "queue_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Reduction(Base):
    """A space's stored PCA: wide vectors (VGG-Face's 4096-d) are indexed and searched in
    ``dim_out`` dimensions, then re-ranked exactly from the full ``faces.embedding``. The
    index records ``uid``; an index made with another reduction is rebuilt, never mixed."""

    __tablename__ = "reductions"
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"), primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    kind: Mapped[str] = mapped_column(String(16), default="pca")
    dim_in: Mapped[int] = mapped_column(Integer)
    dim_out: Mapped[int] = mapped_column(Integer)
    mean: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, dim_in
    components: Mapped[bytes] = mapped_column(LargeBinary)  # float32, dim_out x dim_in
    trained_on: Mapped[int] = mapped_column(Integer)  # faces in the training sample
    explained: Mapped[float] = mapped_column(Float)  # share of variance kept
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ApiKey(Base):
    """An HTTP API key. Only its SHA-256 is stored: the key itself is printed once, when
    made (keys are 32 random bytes, so a fast hash is enough: nobody can guess a preimage)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell keys apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VectorOutbox(Base):
    """Faces whose vector store (Milvus) has yet to follow the database: the durable record
    written in the same transaction as the change (a face added or deleted, its person's
    profile edited). Draining reads each face's row now: present, its vector and filter
    fields are upserted; gone, its id is deleted. Both are idempotent, so a crash between
    the commit and the drain, or in the middle of one, repeats work and loses none."""

    __tablename__ = "vector_outbox"
    __table_args__ = (Index("ix_vector_outbox_space", "space_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("indexes.id", ondelete="CASCADE"))
    face_id: Mapped[int] = mapped_column(Integer)  # no foreign key: a deleted face stays listed
