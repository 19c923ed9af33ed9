"""Face math: move a query face toward a group ("me, but older") and walk between faces.

Vectors are unit length, so a group's direction is the mean of its members' vectors. The
query moves by ``strength x (mean(toward) - mean(away))`` and is re-normalised before the
ordinary search — the "original - average of my group + average of the target group"
arithmetic. Without ``away``, the query's own group of the same kind is subtracted when it
is defined (its estimated age band or emotion, if an analyzer is installed), else the
corpus average.

A GROUP is ``tag:women-in-engineering`` (self-declared), ``person:NAME``, or a stored
estimate (``ingest --analyze``): ``age:60-70`` (estimated years, lower bound included),
``emotion:happy``.

:func:`path` walks the great circle between two faces and shows the nearest corpus face
at each step, never the same face twice: a morph by retrieval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, EmptyLibrary, NotFound
from ..store.values import Audience, GroupKey

if TYPE_CHECKING:
    from ..faces.detect import Box
    from ..faces.images import QueryPhoto
    from .context import SpaceContext


class GroupKind(str, Enum):
    tag = "tag"
    person = "person"
    age = "age"
    emotion = "emotion"


@dataclass(frozen=True)
class Group:
    kind: GroupKind
    value: str

    @classmethod
    def parse(cls, text: str) -> "Group":
        from ..config import parse_pair

        pair = parse_pair(text, ":", GroupKind)
        if pair is None:
            raise ConfigError(f"group {text!r}: use tag:TAG, person:NAME, age:LOW-HIGH or emotion:NAME")
        group = cls(*pair)
        if group.kind is GroupKind.age:
            group.age_range()  # validates
        if group.kind is GroupKind.emotion:
            from ..analysis.base import EMOTIONS

            if group.value not in EMOTIONS:  # it was "no faces … ingest with --analyze"
                raise ConfigError(f"group {text!r}: the emotions estimated are {', '.join(EMOTIONS)}")
        return group

    def age_range(self) -> tuple[float, float]:
        low, _, high = self.value.partition("-")
        usage = f"age group {self.value!r}: use LOW-HIGH in years, e.g. age:60-70 or age:60-"
        try:
            start, end = float(low), float(high) if high else float("inf")
        except ValueError as err:
            raise ConfigError(usage) from err
        # age:nan or age:70-60 parsed, then matched no one: "no faces in group" misled
        if not (0 <= start < end):  # nan compares false: refused here too
            raise ConfigError(f"{usage} (LOW at least 0 and under HIGH)")
        return start, end

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"


@dataclass(frozen=True)
class FaceMath:
    toward: Group
    away: Group | None = None
    strength: float = 1.0

    def __post_init__(self) -> None:
        from ..config import MAX_SEARCH_STRENGTH

        if not -MAX_SEARCH_STRENGTH <= self.strength <= MAX_SEARCH_STRENGTH:
            raise ConfigError(f"strength {self.strength} is outside -{MAX_SEARCH_STRENGTH}..{MAX_SEARCH_STRENGTH}")

    @classmethod
    def parse(cls, toward: str | None, away: str | None, strength: float) -> FaceMath | None:
        """The search options ``toward`` / ``away`` / ``strength`` as the CLI and the HTTP API
        take them: ``None`` without ``toward``; ``away`` alone is a ConfigError."""
        if toward is None:
            if away is not None:
                raise ConfigError("away needs toward: the group to move toward")
            return None
        return cls.of(toward, away, strength)

    @classmethod
    def of(cls, toward: str, away: str | None, strength: float) -> FaceMath:
        """:meth:`parse` where ``toward`` is required (a transform's)."""
        return cls(Group.parse(toward), Group.parse(away) if away else None, strength)


def no_faces(group: Group | None) -> NotFound:
    """What a group (``None``: the corpus) of no faces the caller may see is told, alike
    whether its people are not there or withhold consent from the caller; an age or emotion
    group with the reason it may be empty."""
    if group is None:
        return NotFound("no faces in the corpus")
    hint = " (no face stored has that estimate; estimates are stored for photos ingested with --analyze)" \
        if group.kind in (GroupKind.age, GroupKind.emotion) else ""
    return NotFound(f"no faces in group {group}{hint}")


def group_face_ids(view: SpaceContext, group: Group, audience: Audience = Audience.operator) -> np.ndarray:
    """Ids of the faces in ``group`` (this library's embedding space) that ``audience`` may
    see (:mod:`lookalike.store.consent`): for a visitor, a group made only of people who
    withhold consent has no faces, as a group that does not exist. Every value is matched
    literally (:func:`lookalike.store.person_rows.person_matches`): ``tag:%`` or ``tag:_`` is a tag,
    never a pattern matching every tagged person."""
    audience = Audience.of(audience)
    from ..store import consent

    age_range = group.age_range() if group.kind is GroupKind.age else None
    space_id = view.row.existing_space_id()
    with view.session() as session:
        return consent.group_face_ids(session, space_id, GroupKey(group.kind.value), group.value, age_range, audience)


def group_mean(view: SpaceContext, group: Group, audience: Audience = Audience.operator,
               cache: dict[Group, np.ndarray] | None = None) -> np.ndarray:
    """Mean vector of the faces of ``group`` that ``audience`` may see; ``cache`` (group ->
    mean, for one audience) spares the database when several faces of one query photo move
    toward the same group."""
    audience = Audience.of(audience)
    if cache is not None and group in cache:
        return cache[group]
    ids = group_face_ids(view, group, audience)
    if len(ids) == 0:
        raise no_faces(group)
    mean = view.vectors.stored(ids).mean(axis=0)
    if cache is not None:
        cache[group] = mean
    return mean


def own_group(view: SpaceContext, toward: Group, rgb: np.ndarray, bbox: Box) -> Group | None:
    """The query's own group of ``toward``'s kind, when it can be known: its estimated age
    band (same width as ``toward``'s) or emotion, from the installed analyzer."""
    if toward.kind not in (GroupKind.age, GroupKind.emotion):
        return None
    from ..analysis import AnalyzerName
    from ..errors import LookalikeError

    try:
        (estimate,) = view.models.analyzer(AnalyzerName.auto).analyze(rgb, [bbox])
    except LookalikeError as err:  # no analyzer installed: fall back to the corpus average
        logging.getLogger(__name__).info("face math without an estimate of the face: %s", err)
        return None
    if toward.kind is GroupKind.emotion:
        return Group(GroupKind.emotion, estimate.dominant_emotion)
    low, high = toward.age_range()
    width = 10.0 if high == float("inf") else high - low
    start = width * int(estimate.age // width)
    return Group(GroupKind.age, f"{start:g}-{start + width:g}")


def shift(vector: np.ndarray, toward: np.ndarray, away: np.ndarray, strength: float) -> np.ndarray:
    """``vector + strength (toward - away)``, re-normalised. Strength 0 returns ``vector``."""
    moved = np.asarray(vector, dtype=np.float64) + strength * (np.asarray(toward) - np.asarray(away))
    norm = float(np.linalg.norm(moved))
    if norm < 1e-9:
        raise ConfigError("the face moved to the origin; use a smaller strength")
    return (moved / norm).astype(np.float32)


def moved_query(view: SpaceContext, vector: np.ndarray, math: FaceMath,
                audience: Audience = Audience.operator, rgb: np.ndarray | None = None, bbox: Box | None = None,
                cache: dict[Group, np.ndarray] | None = None) -> tuple[np.ndarray, str]:
    """The shifted query vector, and which group was subtracted (for the answer). Every
    average comes from the faces ``audience`` may see, the corpus average too."""
    audience = Audience.of(audience)
    if math.strength == 0:
        return np.asarray(vector, dtype=np.float32), "nothing (strength 0)"
    toward = group_mean(view, math.toward, audience, cache)
    away_group = math.away
    if away_group is None and rgb is not None and bbox is not None:
        away_group = own_group(view, math.toward, rgb, bbox)
        if away_group == math.toward:
            away_group = None
    if away_group is not None:
        try:
            return (shift(vector, toward, group_mean(view, away_group, audience, cache), math.strength),
                    str(away_group))
        except NotFound:
            if math.away is not None:
                raise
    corpus = view.facts.corpus_centroid(audience)
    if corpus is None:
        raise EmptyLibrary("the library has no faces to average")
    return shift(vector, toward, corpus[0], math.strength), "the corpus average"


# -- paths ------------------------------------------------------------------------------
@dataclass
class Step:
    t: float  # 0 = the first face, 1 = the second
    face_id: int
    person: str | None
    photo: str
    bbox: tuple[int, int, int, int]
    similarity: float  # of the step's point on the great circle to this face


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The point at ``t`` on the great circle from unit ``a`` to unit ``b``."""
    cos = float(np.clip(a @ b, -1.0, 1.0))
    angle = np.arccos(cos)
    if angle < 1e-6:
        return a.astype(np.float32)
    out = (np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / np.sin(angle)
    return (out / np.linalg.norm(out)).astype(np.float32)


def path_between(view: SpaceContext, photo_a: QueryPhoto, photo_b: QueryPhoto, steps: int = 8,
                 audience: Audience = Audience.operator) -> list[Step]:
    """:func:`path` from the largest face of ``photo_a`` to that of ``photo_b``, each read as a
    search reads its query."""
    from .verify import largest_face

    ends = [largest_face(view, photo)[0].embedding for photo in (photo_a, photo_b)]
    return path(view, ends[0], ends[1], steps, audience)


def path(view: SpaceContext, a: np.ndarray, b: np.ndarray, steps: int = 8,
         audience: Audience = Audience.operator) -> list[Step]:
    """Nearest corpus face at ``steps`` evenly spaced points from ``a`` to ``b``, each
    face used once, of the faces ``audience`` may see (as a search for it)."""
    from ..store import photo_rows

    if steps < 2:
        raise ConfigError("a path needs at least 2 steps")
    shown = view.facts.shown((), Audience.of(audience))
    index = view.vectors.index
    used: set[int] = set()
    chosen: list[tuple[float, int, float]] = []
    for t in np.linspace(0.0, 1.0, steps):
        point = slerp(a, b, float(t))
        sims, ids = index.search(point[None], min(index.ntotal, steps + 1), shown.allowed, shown.how, shown.excluded)
        for sim, fid in zip(sims[0], ids[0]):
            if fid >= 0 and int(fid) not in used:
                used.add(int(fid))
                chosen.append((float(t), int(fid), float(sim)))
                break
    with view.session() as session:
        rows = photo_rows.face_rows(session, np.array([c[1] for c in chosen], dtype=np.int64))
    return [Step(round(t, 4), fid, rows[fid].person, rows[fid].photo, rows[fid].bbox, round(sim, 6))
            for t, fid, sim in chosen if fid in rows]
