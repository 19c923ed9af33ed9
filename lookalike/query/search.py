"""Query photo -> its faces -> nearest corpus faces (or people), with honest verdicts.

The query photo is decoded in memory and never written anywhere (no temp file, no row,
no log line with its pixels). JSON keys are a stable contract: later versions add keys,
never rename them.

Every match says how close it really is:

* ``similarity``: cosine between the query face and the matched face;
* ``verdict``: ``same_person`` at or above the calibrated verification threshold,
  ``weak`` below the "no good match" floor (the median similarity of two *different*
  people: no closer than a random stranger), ``lookalike`` in between;
* ``person_centroid_similarity``: query vs the matched person's average face;
* ``face_typicality``: the matched face vs its own person's average face;
* per query face, ``corpus_centroid_similarity``: how typical the face is of the corpus.

Metadata filters (self-declared tags, organisation, consent) are applied *inside* the
index search (a FAISS id selector), so ``k`` results come back whenever ``k`` exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from numbers import Integral
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np

from ..config import MAX_QUERY_FACES, shown_url
from ..errors import ConfigError, EmptyLibrary, IndexWidthChanged, LibraryBusy, NoFace
from ..faces.images import open_query
from ..faces.pipeline import FacesMode
from ..store import photo_rows
from ..store.values import Audience, GroupKey

if TYPE_CHECKING:
    from ..analysis import AnalyzerName, Estimate
    from ..faces.detect import Box
    from ..faces.images import QueryPhoto
    from ..index.protocol import VectorIndex
    from .context import SpaceContext
    from .facemath import FaceMath
    from .shown import Shown

Centroids = dict[int | None, tuple[np.ndarray, int]]  # person id (None: the corpus) -> (unit mean, faces)

# how often a search is made again because its filters moved under it before it gives up
MAX_RETRIES = 5


class Verdict(StrEnum):
    """How alike a match is, by the space's calibrated thresholds. A StrEnum: it prints, is
    written to JSON and compares as its value, so a match's ``verdict`` reads as before."""

    same_person = "same_person"
    lookalike = "lookalike"
    weak = "weak"


class RankBy(str, Enum):
    face = "face"  # nearest single faces
    centroid = "centroid"  # people ranked by their average face


class FilterKey(str, Enum):
    tag = "tag"
    organisation = "organisation"
    role = "role"
    person = "person"


@dataclass(frozen=True)
class Filter:
    key: FilterKey
    value: str

    @property
    def group(self) -> tuple[GroupKey, str]:
        """The filter as the store and the indexes take it."""
        return GroupKey(self.key.value), self.value

    @classmethod
    def parse(cls, text: str) -> "Filter":
        """``tag=women-in-engineering``, ``organisation=Navy``, ``role=…``, ``person=…`` (at
        most :data:`~lookalike.config.MAX_FILTER_TEXT` characters)."""
        from ..config import MAX_FILTER_TEXT, parse_pair

        keys = ", ".join(k.value for k in FilterKey)
        if len(text) > MAX_FILTER_TEXT:
            raise ConfigError(f"filter {text[:40]!r}… is {len(text)} characters long; "
                              f"a filter is at most {MAX_FILTER_TEXT}")
        pair = parse_pair(text, "=", FilterKey)
        if pair is not None:
            return cls(*pair)
        key, sep, value = text.partition("=")
        if not sep or not value.strip():
            raise ConfigError(f"filter {text!r} must look like KEY=VALUE (KEY one of {keys})")
        raise ConfigError(f"unknown filter key {key!r}; use one of {keys}")


@dataclass(frozen=True)
class Calibration:
    threshold: float  # cosine >= threshold: same person
    floor: float  # cosine < floor: weak
    source: str

    def verdict(self, similarity: float) -> Verdict:
        if similarity >= self.threshold:
            return Verdict.same_person
        return Verdict.weak if similarity < self.floor else Verdict.lookalike


class SearchKeywords(TypedDict, total=False):
    """The keywords :meth:`lookalike.verbs.library.Library.search` takes beside ``k``:
    :class:`SearchOptions`' fields, each enum's value as text too (checked there)."""

    per_person: bool
    rank_by: RankBy | str
    filters: Sequence[Filter | str] | Filter | str  # one alone too
    audience: Audience | str
    analyzer: AnalyzerName | str | None
    math: FaceMath | str | None


@dataclass(frozen=True)
class SearchOptions:
    k: int = 5
    per_person: bool = False  # best face per person
    rank_by: RankBy = RankBy.face
    filters: tuple[Filter, ...] = ()
    # whom the answer is for, and so whose faces it may show and be computed from (face-math
    # groups, the corpus average): a visitor's display leaves out the people whose profile
    # withholds consent (no stated consent, a public corpus ingested from folders: shown);
    # a role-model kiosk shows only those who said yes
    audience: Audience = Audience.operator
    # estimate age / gender / emotion of each query face with this analyzer (opt-in)
    analyzer: AnalyzerName | None = None
    # move each query face toward a group before searching ("me, but older")
    math: FaceMath | None = None

    @classmethod
    def given(cls, k: int = 5, **keywords: Unpack[SearchKeywords]) -> SearchOptions:
        """The options from the Python API's keywords, which take each enum's value as text
        too: :meth:`__post_init__` checks each and makes it the enum."""
        return cls(k=k, **keywords)  # type: ignore[arg-type]  # text made the enum in __post_init__

    def __post_init__(self) -> None:
        """Every field checked, and the names the Python API takes as plain strings made the
        enums the search compares by identity (``rank_by="centroid"`` ranked by face,
        ``audience="visitor"`` showed everyone; ``filters=["tag=x"]`` and ``math="age:60-"``
        are parsed as the CLI parses them); anything else is a ConfigError naming the field."""
        from ..analysis import AnalyzerName
        from ..config import MAX_FILTERS
        from .facemath import FaceMath

        def bad(field: str, value: object, wanted: str) -> ConfigError:
            return ConfigError(f"search option {field}={value!r}: {wanted}")

        if isinstance(self.k, bool) or not isinstance(self.k, Integral) or self.k < 1:
            raise bad("k", self.k, "a whole number of matches, at least 1")
        if not isinstance(self.per_person, (bool, np.bool_)):
            raise bad("per_person", self.per_person, "True or False")
        try:
            rank_by = RankBy(self.rank_by)
        except ValueError:
            raise bad("rank_by", self.rank_by, f"one of {', '.join(r.value for r in RankBy)}") from None
        given = (self.filters,) if isinstance(self.filters, (str, Filter)) else self.filters  # one filter alone
        filters = tuple(Filter.parse(f) if isinstance(f, str) else f for f in given)
        if not all(isinstance(f, Filter) for f in filters):
            raise bad("filters", self.filters, "Filter values, or KEY=VALUE texts")
        if len(filters) > MAX_FILTERS:
            raise ConfigError(f"{len(filters)} filters given; a search takes at most {MAX_FILTERS}")
        math = FaceMath.of(self.math, None, 1.0) if isinstance(self.math, str) else self.math
        if math is not None and not isinstance(math, FaceMath):
            raise bad("math", self.math, "a FaceMath, or a group's text such as age:60-")
        analyzer = AnalyzerName.named(self.analyzer) if self.analyzer is not None else None
        for name, value in (("k", int(self.k)), ("per_person", bool(self.per_person)), ("rank_by", rank_by),
                            ("filters", filters), ("math", math), ("analyzer", analyzer),
                            ("audience", Audience.of(self.audience))):
            object.__setattr__(self, name, value)


@dataclass
class Match:
    rank: int
    person: str | None
    photo: str
    face_id: int
    similarity: float
    verdict: Verdict = Verdict.weak
    person_centroid_similarity: float | None = None
    face_typicality: float | None = None
    photo_id: int | None = None  # the photo's row (the HTTP API's /v1/photos/{id})


@dataclass
class QueryFace:
    bbox: tuple[int, int, int, int]
    confidence: float
    matches: list[Match] = field(default_factory=list)
    corpus_centroid_similarity: float | None = None
    estimate: Estimate | None = None  # only with SearchOptions.analyzer
    moved: str | None = None  # only with SearchOptions.math: "toward X, away from Y"


@dataclass
class SearchResult:
    query: str
    faces: list[QueryFace]
    calibration: Calibration | None = None
    faces_not_searched: int = 0  # found past MAX_QUERY_FACES, the smallest

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "query": self.query,
            "faces": [
                {"bbox": list(f.bbox), "confidence": round(f.confidence, 4),
                 "corpus_centroid_similarity": _round(f.corpus_centroid_similarity),
                 "matches": [dict(vars(m)) for m in f.matches]}  # flat: asdict's deep copy is 5x slower
                | ({"analysis": f.estimate.to_dict()} if f.estimate is not None else {})
                | ({"moved": f.moved} if f.moved is not None else {})
                for f in self.faces
            ],
        }
        if self.calibration is not None:
            out["calibration"] = asdict(self.calibration)
        out["faces_not_searched"] = self.faces_not_searched
        return out


def search(view: SpaceContext, photo: QueryPhoto, options: SearchOptions) -> SearchResult:
    """Matches for every face in ``photo``."""
    if options.k < 1:
        raise ConfigError("k must be at least 1")
    index = view.vectors.index  # fails fast, before any model loads, on an empty library
    if index.ntotal == 0:
        raise EmptyLibrary.at(shown_url(view.settings.db_url))
    query = open_query(photo, view.settings.max_pixels, view.settings.detect_max_side)
    found = view.models.pipeline.query_faces(query, FacesMode.all, limit=MAX_QUERY_FACES)
    rgb, faces, name = found.rgb, found.faces, query.name
    if not faces:
        raise NoFace(name, view.space.detector)
    vectors = [f.embedding for f in faces]
    moved: list[str | None] = [None] * len(faces)
    if options.math is not None:
        from .facemath import Group, moved_query

        means: dict[Group, np.ndarray] = {}  # group means, fetched once per query photo
        for i, f in enumerate(faces):
            vectors[i], away = moved_query(view, f.embedding, options.math, options.audience, rgb, f.bbox,
                                           means)
            moved[i] = f"toward {options.math.toward} x {options.math.strength:g}, away from {away}"
    result = search_vectors(view, [(found.in_photo(f.bbox), f.confidence, v) for f, v in zip(faces, vectors)],
                            options, name)
    for face, text in zip(result.faces, moved):
        face.moved = text
    result.faces_not_searched = found.more
    if options.analyzer is not None:
        estimates = view.models.analyzer(options.analyzer).analyze(rgb, [f.bbox for f in faces])
        for face, estimate in zip(result.faces, estimates):
            face.estimate = estimate
    return result


def search_vectors(view: SpaceContext, faces: Iterable[tuple[Box, float, np.ndarray]], options: SearchOptions,
                   name: str = "<vectors>") -> SearchResult:
    """The search proper, on already embedded query faces ``(bbox, confidence, vector)``.

    A search by face takes one database round trip per query face once the library is
    warm: the found faces' rows and vectors with the space's generation
    (:func:`photo_rows.answer_rows`). The calibration, the centroids and what the
    audience's filters let through (:class:`~lookalike.query.context.Shown`) are kept in
    memory; when the answer's generation says they moved (an ingest, a withdrawn consent),
    they are read again and the search made again on them, so nothing withdrawn is shown;
    and a PCA another process stored meanwhile is followed
    (:meth:`lookalike.index.space_vectors.SpaceVectors.follows`)."""
    cal = view.facts.calibration()
    faces = list(faces)
    shown = view.facts.shown(options.filters, options.audience)
    for _ in range(MAX_RETRIES):
        try:
            out, generations, pcas = _search_faces(view, faces, options, shown, cal)
        except IndexWidthChanged:
            if not view.vectors.refollow():
                raise  # nothing stored explains it
            continue
        if not all(view.vectors.follows(uid) for uid in pcas):
            continue  # another process stored a new PCA: the index is opened again with it
        if shown.holds_for(generations):
            return SearchResult(name, out, cal)
        shown = view.facts.shown(options.filters, options.audience, at=max(generations))
    raise LibraryBusy(f"{shown_url(view.settings.db_url)}: the library changed under {MAX_RETRIES} searches in a row; "
                      "try again when its writer has finished")


def _search_faces(view: SpaceContext, faces: list[tuple[Box, float, np.ndarray]], options: SearchOptions,
                  shown: Shown, cal: Calibration) -> tuple[list[QueryFace], set[int], set[str | None]]:
    """Each face's matches within ``shown``, and the generations and stored PCAs their
    answers were read at. The index is looked up once an attempt, not once a face: each
    lookup asks whether its file changed."""
    out, generations, pcas = [], set(), set()
    index = view.vectors.index
    for bbox, conf, vec in faces:
        if options.rank_by is RankBy.centroid:
            cents = view.facts.centroids()
            hits = _by_centroid(view, index, vec, options.k, cents, shown)
            answer = _answer(view, [fid for fid, _ in hits])
        else:
            hits, answer = _by_face(view, index, vec, options.k, options.per_person, shown)
            cents = view.facts.centroids(answer.centroid_generation)
        generations.add(answer.centroid_generation)
        pcas.add(answer.reduction_uid)
        matches = _describe(vec, hits, cal, cents, answer)
        corpus = cents.get(None) if options.audience is Audience.operator else shown.corpus
        corpus_sim = float(vec @ corpus[0]) if corpus else None
        out.append(QueryFace(bbox, conf, matches, corpus_sim))
    return out, generations, pcas


def _answer(view: SpaceContext, ids: list[int] | np.ndarray) -> photo_rows.Answer:
    with view.session() as session:
        return photo_rows.answer_rows(session, view.row.space_id, ids)


def _by_face(view: SpaceContext, index: VectorIndex, vec: np.ndarray, k: int, per_person: bool,
             shown: Shown) -> tuple[list[tuple[int, float]], photo_rows.Answer]:
    """(face id, similarity), best first, and their answer rows; per person, the best
    face of each of k people."""
    allowed, excluded = shown.allowed, shown.excluded
    limit = len(allowed) if allowed is not None else index.ntotal - (len(excluded) if excluded is not None else 0)
    fetch = k if not per_person else 4 * k
    while True:
        sims, ids = index.search(vec[None], min(fetch, max(limit, 1)), allowed, shown.how, excluded)
        answer = _answer(view, ids[0][ids[0] >= 0])
        hits, seen = [], set()
        for sim, fid in zip(sims[0], ids[0]):
            row = answer.rows.get(int(fid))
            if row is None:
                continue
            if per_person:
                key = row.person_id if row.person_id is not None else ("face", row.face_id)
                if key in seen:
                    continue
                seen.add(key)
            hits.append((int(fid), float(sim)))
        if len(hits) >= k or fetch >= limit:
            return hits[:k], answer
        fetch *= 4


def _by_centroid(view: SpaceContext, index: VectorIndex, vec: np.ndarray, k: int, cents: Centroids,
                 shown: Shown) -> list[tuple[int, float]]:
    """People ranked by query vs their average face; each shown by their face nearest the query."""
    allowed, excluded = shown.allowed, shown.excluded
    with view.session() as session:
        allowed_people = photo_rows.person_ids_of(session, allowed) if allowed is not None else None
        left_out = photo_rows.person_ids_of(session, excluded) if excluded is not None else set()
        people = [(pid, float(vec @ c)) for pid, (c, _) in cents.items()
                  if pid is not None and (allowed_people is None or pid in allowed_people) and pid not in left_out]
        people.sort(key=lambda p: p[1], reverse=True)
        top = people[:k]
        by_person = photo_rows.person_face_ids(session, view.row.space_id, [p for p, _ in top])
    hits = []
    for pid, _ in top:
        ids = np.asarray(by_person.get(pid, []), dtype=np.int64)
        if allowed is not None:
            ids = np.intersect1d(ids, allowed)
        if len(ids) == 0:
            continue
        sims, found = index.search(vec[None], 1, ids)
        if found[0][0] >= 0:  # none of their faces in the index (a KeyError of -1 in _describe)
            hits.append((int(found[0][0]), float(sims[0][0])))
    return hits


def _describe(vec: np.ndarray, hits: list[tuple[int, float]], cal: Calibration, cents: Centroids,
              answer: photo_rows.Answer) -> list[Match]:
    matches: list[Match] = []
    for fid, sim in hits:
        row = answer.rows[fid]
        cent = cents.get(row.person_id)
        matches.append(Match(
            rank=len(matches) + 1, person=row.person, photo=row.photo, face_id=fid,
            similarity=round(sim, 6), verdict=cal.verdict(sim),
            person_centroid_similarity=_round(float(vec @ cent[0])) if cent else None,
            face_typicality=_round(float(answer.vectors[fid] @ cent[0])) if cent else None,
            photo_id=row.photo_id,
        ))
    return matches


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
