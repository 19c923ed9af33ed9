"""Pictures made from faces: ``lib.pictures`` (average faces, morphs, transforms, sliders).

The verbs that feed :mod:`lookalike.imaging` (pure functions over (photo, landmarks)
pairs) from a library, through the stage that chooses the faces
(:mod:`lookalike.query.drawn`: which faces a group holds for an audience, their stored
landmarks, never detected again, their photos read with the library's decode limits),
with the rules a picture of people must keep:

* an average of a group needs :data:`~lookalike.query.drawn.MIN_PEOPLE` different people,
  so no group average is one person in disguise (a ``person:NAME`` average is of one
  person by design);
* a visitor's averages are made only of people the visitor may see
  (:mod:`lookalike.store.consent`, the rule search follows);
* faces ``lookalike person`` flags as outliers (robust z against their person's own faces,
  :mod:`lookalike.query.person`) are left out unless asked for;
* a visitor's photo, morph or transform lives in memory only: nothing here writes a file
  unless the caller (the CLI's ``--out``) names one.

Averages are kept in memory per process (:class:`AverageCache`), keyed by the exact faces
that went in: a removed person or photo, or a consent change, gives another key, and
:meth:`AverageCache.forget` drops every cached average a removed face was part of.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError, NoFace, NotFound, TooFewPeople, UnusableFace
from ..imaging import appearance as appearance_model
from ..imaging import average as averaging
from ..imaging import geometry
from ..imaging import morph as morphing
from ..imaging import transform as transforming
from ..imaging.compose import png_bytes, square_crop
from ..query.drawn import MIN_PEOPLE, chosen_faces, readable_faces
from ..query.facemath import Group, GroupKind
from ..store.values import Audience
from .space import serialised

if TYPE_CHECKING:
    from ..faces.detect import Detection
    from ..faces.images import QueryPhoto
    from .space import SpaceView

MIN_FACE_PX = 64  # a face narrower than this has no landmarks worth drawing from
DRAWN_SIDE = 2048  # a photo drawn from at most this long a side (a 40 MP one's transform took 13 s)
FACE_MATH_LIMIT = 200  # faces per group average behind a transform or a person's morph
APPEARANCE_LIMIT = 300  # faces the appearance model is fitted on (a sample of the corpus)
SIGMAS = (-2.0, -1.0, 0.0, 1.0, 2.0)
CACHE_ENTRIES = 32


# -- answers -------------------------------------------------------------------------------
class _Picture:
    """One still picture (``image``, RGB uint8) as PNG bytes or a file: a mixin, not a
    dataclass, so the dataclasses below keep their own field order."""

    image: np.ndarray

    def png(self) -> bytes:
        return png_bytes(self.image)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.png())
        return path


@dataclass(frozen=True)
class AverageFace(_Picture):
    """An average face and what went into it."""

    group: str  # "corpus", or the group as given (person:NAME, tag:…, age:60-)
    image: np.ndarray = field(repr=False)  # (size, size, 3) uint8 RGB
    shape: np.ndarray = field(repr=False)  # (N, 2) the mean shape, frame pixels
    faces: int
    people: int
    left_out: dict[str, int] = field(default_factory=dict)  # outliers, without landmarks, unreadable (or changed)
    window: tuple[int, int, int] | None = None  # the square of the frame its photos cover (averaging.framed)

    def framed(self) -> tuple[np.ndarray, np.ndarray]:
        """The picture shown (the frame cut to what the photos cover, at the same size) and
        the mean shape in it: what a morph from this face starts from."""
        return averaging.framed(self.image, self.shape, self.window)

    def png(self) -> bytes:
        return png_bytes(self.framed()[0])

    def to_dict(self) -> dict:
        return {"group": self.group, "size": int(self.image.shape[0]), "faces": self.faces,
                "people": self.people, "left_out": dict(self.left_out)}


@dataclass(frozen=True)
class Morph:
    """The frames from face A to face B."""

    a: str
    b: str
    frames: list[np.ndarray] = field(repr=False)

    def encode(self, kind: morphing.MorphFormat) -> bytes:
        """The morph as GIF or PNG strip bytes, made in memory (a visitor's never touches disk)."""
        if kind is morphing.MorphFormat.gif:
            return morphing.gif_bytes(self.frames)
        if kind is morphing.MorphFormat.png:
            return png_bytes(morphing.strip(self.frames))
        raise ValueError(f"a morph is encoded in memory as gif or png, not {kind.value}")

    def write(self, path: str | Path) -> Path:
        return morphing.write(self.frames, path)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "frames": len(self.frames), "size": int(self.frames[0].shape[0])}


@dataclass(frozen=True)
class Transformed(_Picture):
    """A photo whose face was moved toward a group (and away from another)."""

    photo: str
    image: np.ndarray = field(repr=False)  # the whole photo, RGB uint8
    box: tuple[int, int, int, int]  # the face moved, x, y, w, h
    toward: str
    away: str
    strength: float


    def face(self, size: int = 256) -> np.ndarray:
        """The moved face with a margin, square, ``size`` px (for a picture beside an answer)."""
        return square_crop(self.image, self.box, size)

    def to_dict(self) -> dict:
        return {"photo": self.photo, "bbox": list(self.box), "toward": self.toward, "away": self.away,
                "strength": self.strength}


@dataclass(frozen=True)
class Appearance:
    """An appearance model of the corpus and its sliders drawn as pictures."""

    model: appearance_model.AppearanceModel
    sigmas: tuple[float, ...]
    frames: list[list[np.ndarray]]  # per component, one picture per sigma

    @property
    def shares(self) -> list[float]:
        """Each component's share of the faces' variance, largest first."""
        return [float(s) for s in np.asarray(self.model.shares)]

    @property
    def faces(self) -> int:
        """How many faces the model was fitted on."""
        return int(self.model.count)

    def face(self, sigmas: Sequence[float]) -> np.ndarray:
        """The face ``sigmas[i]`` standard deviations along component ``i`` (the sliders at
        any positions, not only the fixed frames)."""
        return appearance_model.render(self.model, list(sigmas))

    def write(self, folder: str | Path) -> list[Path]:
        """``component-K.png`` strips (one picture per sigma) and ``mean.png`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "mean.png"]
        written[0].write_bytes(png_bytes(appearance_model.render(self.model, [])))
        for k, row in enumerate(self.frames, start=1):
            path = folder / f"component-{k}.png"
            path.write_bytes(png_bytes(np.hstack(row)))
            written.append(path)
        return written

    def to_dict(self) -> dict:
        return {"faces": self.model.count, "size": self.model.size, "sigmas": list(self.sigmas),
                "components": [{"component": k, "share": round(float(s), 6)}
                               for k, s in enumerate(self.model.shares, start=1)]}


# -- the cache -------------------------------------------------------------------------------
class AverageCache:
    """Averages made in this process, by the exact faces in them (least recently used out)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, tuple[frozenset[int], object]] = OrderedDict()

    def get(self, key: tuple) -> object | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple, faces: Iterable[int], value: object) -> None:
        with self._lock:
            self._items[key] = (frozenset(int(f) for f in faces), value)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def forget(self, face_ids: Iterable[int]) -> int:
        """Drop every average one of ``face_ids`` went into (a removed person's or photo's
        faces); returns how many were dropped."""
        gone = {int(f) for f in face_ids}
        with self._lock:
            stale = [k for k, (faces, _) in self._items.items() if faces & gone]
            for key in stale:
                del self._items[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._items)


def _key(kind: str, space_id: int, ids: Iterable[int], *params: object) -> tuple:
    digest = hashlib.sha256(np.asarray(sorted(int(i) for i in ids), dtype=np.int64).tobytes()).hexdigest()
    return (kind, space_id, digest, *params)


# -- the verbs -------------------------------------------------------------------------------
def morph_side(text: str) -> str | Group:
    """A morph's side as a person types it: ``person:NAME`` is that person's group, any
    other ``KIND:VALUE`` with a group kind is refused (a ConfigError, not a photo that is
    not there), anything else is a photo's path."""
    kind, sep, _ = text.partition(":")
    if sep and kind in {k.value for k in GroupKind}:
        return _morphable(Group.parse(text))
    return text


def _morphable(group: Group) -> Group:
    if group.kind is not GroupKind.person:
        raise ConfigError(f"a morph goes from and to a photo or a person's average face (person:NAME), not {group}")
    return group


@dataclass(frozen=True)
class Pictures:
    """Pictures of a library's faces: ``lib.pictures``."""

    view: SpaceView
    max_pixels: int
    threads: int | None
    cache: AverageCache
    calls: AbstractContextManager[Any]  # the library's lock: each picture runs under it (space.serialised)

    # -- averages ------------------------------------------------------------------------
    @serialised
    def average(self, group: Group | None = None, audience: Audience = Audience.operator, size: int = 256,
                limit: int | None = None, outliers: bool = False) -> AverageFace:
        """The average face of ``group`` (None: the corpus) as ``audience`` may see it: every
        face warped to the group's mean shape and averaged in linear light."""
        audience = Audience.of(audience)
        group = Group.parse(group) if isinstance(group, str) else group  # "person:NAME" too
        label = "corpus" if group is None else str(group)
        chosen, left_out, people = chosen_faces(self.view, group, audience, limit, outliers)
        # the space id the view holds: chosen_faces has just read the space's faces
        key = _key("average", self.view.row.space_id, [c[0] for c in chosen], size)
        cached = self.cache.get(key)
        if isinstance(cached, AverageFace):
            return AverageFace(label, cached.image, cached.shape, cached.faces, cached.people, left_out,
                               cached.window)
        shape = geometry.mean_shape([p for *_, p in chosen], size)
        # a group's picture shows only what MIN_PEOPLE photos have: never one member's margin
        acc = averaging.Accumulator(shape, size, 1 if group is not None and group.kind is GroupKind.person
                                    else MIN_PEOPLE)
        used: list[int] = []
        for face_id, face in readable_faces(chosen, size, self.max_pixels, f"average of {label}"):
            acc.add(*face)
            used.append(face_id)
        left_out["unreadable"] += len(chosen) - len(used)
        if not used:
            raise NotFound(f"{label}: none of its {len(chosen)} photos can be read any more")
        result = acc.result()
        made = AverageFace(label, result.image, result.shape, result.count, people, left_out, result.window)
        self.cache.put(key, used, made)
        return made

    # -- a visitor's photo ----------------------------------------------------------------
    @serialised
    def face_of(self, photo: QueryPhoto) -> tuple[str, np.ndarray, np.ndarray, Detection]:
        """(name, RGB, landmarks, detection) of the one face of a photo; a clear error for a
        photo without a face, with two faces of like size, or with a face too small."""
        from ..faces import landmarks
        from ..faces.images import load_query
        from ..faces.pipeline import SECOND_FACE

        landmarks.require()
        rgb, name = load_query(photo, self.max_pixels, DRAWN_SIDE)
        found = self.view.models.pipeline.detect(rgb)
        if not found:
            raise NoFace(name, self.view.space.detector)
        face = max(found, key=lambda d: max(d.box[2], d.box[3]))
        side = max(face.box[2], face.box[3])
        rivals = [d for d in found if d is not face and max(d.box[2], d.box[3]) >= SECOND_FACE * side]
        if rivals:
            raise UnusableFace(name, f"{len(rivals) + 1} faces of like size; use a photo of one face (or crop it)")
        if side < MIN_FACE_PX:
            where = f" in the photo shrunk to {DRAWN_SIDE:,} px" if max(rgb.shape[:2]) == DRAWN_SIDE else ""
            raise UnusableFace(name, f"the face is {side} px across{where}; at least {MIN_FACE_PX} px are needed")
        points = landmarks.landmarks(rgb, face, threads=self.threads)
        return name, rgb, points.astype(np.float64), face

    def _side(self, given: QueryPhoto | Group, audience: Audience, size: int) -> tuple[str, np.ndarray, np.ndarray]:
        if isinstance(given, Group):
            made = self.average(_morphable(given), audience, size, limit=FACE_MATH_LIMIT)
            return str(given), *made.framed()
        name, rgb, points, _ = self.face_of(given)
        return name, rgb, points

    @serialised
    def morph(self, a: QueryPhoto | Group, b: QueryPhoto | Group, frames: int = morphing.DEFAULT_FRAMES,
              audience: Audience = Audience.operator, size: int = 256) -> Morph:
        """The morph from A to B; each is a photo (path or bytes) or a person's group
        (``Group(GroupKind.person, name)``: their average face, of the faces ``audience``
        may see). :func:`morph_side` reads either from a command line's text."""
        audience = Audience.of(audience)
        name_a, image_a, points_a = self._side(a, audience, size)
        name_b, image_b, points_b = self._side(b, audience, size)
        return Morph(name_a, name_b, morphing.frames((image_a, points_a), (image_b, points_b), frames, size))

    @serialised
    def transform(self, photo: QueryPhoto, toward: Group, away: Group | None = None, strength: float = 1.0,
                  audience: Audience = Audience.operator) -> Transformed:
        """The photo's face moved by the difference of two groups' average faces, in shape
        and colour (:mod:`lookalike.imaging.transform`). Without ``away``: as ``search
        --toward``, the photo's own age band or emotion when an analyzer can tell it, else
        the corpus average."""
        from ..query.facemath import own_group

        audience = Audience.of(audience)
        toward = Group.parse(toward) if isinstance(toward, str) else toward  # "age:60-" too
        away = Group.parse(away) if isinstance(away, str) else away
        transforming.check_strength(strength)  # before the detection and the averages it would draw from
        name, rgb, points, face = self.face_of(photo)
        toward_face = self.average(toward, audience, limit=FACE_MATH_LIMIT)
        away_face, away_label = None, "the corpus average"
        chosen = away
        if chosen is None:
            chosen = own_group(self.view, toward, rgb, face.box)
            if chosen == toward:
                chosen = None
        if chosen is not None:
            try:
                away_face, away_label = self.average(chosen, audience, limit=FACE_MATH_LIMIT), str(chosen)
            except (NotFound, TooFewPeople):
                if away is not None:
                    raise
        if away_face is None:
            away_face = self.average(None, audience, limit=FACE_MATH_LIMIT)
        moved = transforming.transform(rgb, points, self._as_average(toward_face), self._as_average(away_face),
                                       strength)
        x, y, w, h = face.box
        height, width = rgb.shape[:2]
        box = (max(0, x), max(0, y), min(w, width - max(0, x)), min(h, height - max(0, y)))
        return Transformed(name, moved, box, str(toward), away_label, strength)

    @staticmethod
    def _as_average(face: AverageFace) -> averaging.Average:
        return averaging.Average(face.image, face.shape, face.faces)

    # -- sliders -------------------------------------------------------------------------
    @serialised
    def appearance(self, components: int = appearance_model.DEFAULT_COMPONENTS,
                   audience: Audience = Audience.operator, limit: int = APPEARANCE_LIMIT,
                   size: int = appearance_model.DEFAULT_SIZE) -> Appearance:
        """The corpus's appearance model (of a sample of ``limit`` faces) and, for each
        component, its faces at :data:`SIGMAS` standard deviations."""
        audience = Audience.of(audience)
        chosen, _, _ = chosen_faces(self.view, None, audience, limit, outliers=False)
        key = _key("appearance", self.view.row.space_id, [c[0] for c in chosen], components, size)
        model = self.cache.get(key)
        if not isinstance(model, appearance_model.AppearanceModel):
            readable = list(readable_faces(chosen, size, self.max_pixels, "appearance model"))
            faces, used = [face for _, face in readable], [face_id for face_id, _ in readable]
            if len(faces) < appearance_model.MIN_FACES:
                raise TooFewPeople(f"sliders: {len(faces)} of the corpus's {len(chosen)} faces can be read; "
                                   f"the appearance model needs at least {appearance_model.MIN_FACES}")
            model = appearance_model.fit(faces, components, size)
            self.cache.put(key, used, model)
        frames = [[appearance_model.draw(model, k, s) for s in SIGMAS] for k in range(len(model.sd))]
        return Appearance(model, SIGMAS, frames)
