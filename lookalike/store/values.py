"""The store's plain values: a photo's status, whom an answer is for (``Audience``), what an
API key may do (``KeyScope``), how a tag is normalised, how a vector and a
face's dense landmarks are stored as bytes. No SQLAlchemy here, so the stages that only make
or read these values (an ingest worker maps photos and never touches the database) do not
import it: ~0.25-0.6 s of every worker process's start."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, TypeVar

from ..errors import UnknownName

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

SQL_PARAMS = 900  # values in one IN (...) list: under SQLite's bound-parameter limit


def chunks(values: Sequence[T], size: int = SQL_PARAMS) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most ``size``, one IN (...) list or one transaction each;
    none at all when ``values`` is empty."""
    return (values[start:start + size] for start in range(0, len(values), size))


# one face as ingest found it and the store writes it: (bbox, confidence, vector bytes,
# estimate dict or None, encoded landmarks or None)
FaceFound = tuple[tuple[int, int, int, int], float, bytes, "dict | None", "bytes | None"]


class GroupKey(StrEnum):
    """What a search filter or a face-math group selects by, as the store and the indexes
    take it: a person's self-declared fields (tag, organisation, role) or name, or a face's
    stored estimate (age, emotion). The query layer's ``FilterKey`` and ``GroupKind`` are
    the subsets a user may name; their values are these."""

    tag = "tag"
    organisation = "organisation"
    role = "role"
    person = "person"
    age = "age"
    emotion = "emotion"


# the keys that select people (the others select faces by their estimates)
PERSON_KEYS = frozenset({GroupKey.tag, GroupKey.organisation, GroupKey.role, GroupKey.person})


class KeyScope(str, Enum):
    """What an HTTP API key may do (``lookalike keys create --scope``)."""

    search = "search"  # search, analyze, verify, people, stats, photos, pictures: what a kiosk or website needs
    admin = "admin"  # also add and edit people, their photos and consent, and remove them

    @classmethod
    def of(cls, value: KeyScope | str) -> KeyScope:
        """``value`` as a scope (the Python API takes ``"search"`` too)."""
        return UnknownName.member(cls, value, "key scope")


class Audience(str, Enum):
    """Whom an answer is made for, and so whose faces may go into it: the matches shown,
    the face-math groups and averages, the counts. One rule, applied in SQL where the
    faces are selected (:mod:`lookalike.store.consent`)."""

    operator = "operator"  # everyone: the CLI, admin keys, the operator pages
    visitor = "visitor"  # not people whose profile withholds consent (never stated: shown)
    consented = "consented"  # only people whose profile says yes (role models on a kiosk)

    @classmethod
    def of(cls, value: Audience | str) -> Audience:
        """``value`` as an audience: the Python API takes the plain strings too, and every
        function that decides whose faces an answer holds asks this first. A string was
        compared by identity and so taken for the operator (everyone: a visitor shown the
        people who withhold consent, and a cache kept that answer for the real visitors);
        anything that names no audience is an :class:`~lookalike.errors.UnknownName`."""
        return UnknownName.member(cls, value, "audience")


class ReductionKind(StrEnum):
    """How a wide space's vectors are reduced before they are indexed (``reductions.kind``)."""

    pca = "pca"


class PhotoStatus(StrEnum):
    """What happened to a photo. Every photo an ingest sees gets exactly one. A StrEnum: it
    is stored, printed and compared as its value."""

    ok = "ok"  # at least one face stored
    no_face = "no_face"  # decoded, but the detector found no face
    decode_error = "decode_error"  # corrupt, truncated, empty, not an image
    too_large = "too_large"  # over the pixel limit (decompression-bomb guard)
    duplicate = "duplicate"  # same bytes as a photo already in the library
    rejected = "rejected"  # refused before reading (e.g. a manifest path escaping its folder)
    error = "error"  # unexpected failure while processing; the reason says which


def utc_text(moment: datetime) -> str:
    """A stored time as ISO 8601 text in UTC, ``+00:00`` included: PostgreSQL gives its
    ``timestamptz`` back with the zone, SQLite (no zone type) without it, and an API answer
    must not change its format with the database (move user test, 2026-12-07)."""
    if moment.tzinfo is None:  # SQLite: stored as UTC (schema._now), read back naive
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def normalise_tag(tag: str) -> str:
    """A tag as it is stored and matched: lower case, words joined by ``-``."""
    return "-".join(tag.strip().lower().split())


def encode_vector(vector: np.ndarray) -> bytes:
    """A vector as the ``faces.embedding`` column stores it: little-endian float32."""
    import numpy as np  # here: the CLI reads this module's enums at its start, without numpy

    return np.asarray(vector, dtype="<f4").tobytes()


def decode_vector(blob: bytes) -> np.ndarray:
    import numpy as np  # here: the CLI reads this module's enums at its start, without numpy

    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def encode_points(points: np.ndarray, box: Sequence[int]) -> bytes:
    """(N, 2) photo coordinates -> the stored blob: float16 (x, y) pairs relative to the
    box's corner, in units of its long side (sub-pixel for faces up to ~1,000 px)."""
    import numpy as np  # here: the CLI reads this module's enums at its start, without numpy

    x, y, w, h = box
    side = float(max(w, h, 1))
    relative = (np.asarray(points, np.float64) - (x, y)) / side
    return relative.astype("<f2").tobytes()


def decode_points(blob: bytes, box: Sequence[int]) -> np.ndarray:
    """The stored blob -> (N, 2) float32 photo coordinates (:func:`encode_points` undone)."""
    import numpy as np  # here: the CLI reads this module's enums at its start, without numpy

    x, y, w, h = box
    relative = np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(-1, 2)
    return relative * float(max(w, h, 1)) + np.array([x, y], np.float32)
