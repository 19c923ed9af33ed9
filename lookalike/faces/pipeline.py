"""Photo pixels -> faces with vectors: detector + aligner + embedder, numpy in, numpy out.

:class:`FacePipeline` is what both ingest workers and queries use, so a corpus face and
a query face are always made the same way. Models are built when the pipeline is, never
at import time, and come from the registry's per-process cache
(:mod:`lookalike.models.registry`); their weight files are checked first so a missing or
damaged one fails with the ``lookalike models install`` command to run instead of a
download attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np

from ..models import catalog, registry
from . import align, detect
from .detect import Detection, clip_box, rescale
from .embed import Embedder
from .images import QueryImage

SECOND_FACE = 0.5  # another face at least this share of the largest's side: two people, not a face behind


def like_sized(found: list[Detection]) -> int:
    """How many faces of ``found`` (largest first) besides the largest are of like size
    (:data:`SECOND_FACE`): a photo of several people rather than one with a face far behind."""
    if len(found) < 2:
        return 0
    side = max(found[0].box[2], found[0].box[3])
    return sum(max(d.box[2], d.box[3]) >= SECOND_FACE * side for d in found[1:])


class FacesMode(str, Enum):
    """Which faces of a photo to keep."""

    largest = "largest"  # the largest face: a portrait corpus has one subject per photo
    all = "all"  # every face: group photos, queries
    # the one face of a photo uploaded as a person's: with others of like size it is refused,
    # as which one is theirs would be a guess (the largest was a withdrawn colleague's, once)
    alone = "alone"

    @property
    def keeps_one(self) -> bool:
        return self is not FacesMode.all


@dataclass(frozen=True)
class Space:
    """An embedding space: vectors are only comparable within one."""

    model: str
    detector: str
    aligner: str

    @property
    def key(self) -> str:
        """File-name-safe name, e.g. ``Dlib__dlib__chip``."""
        return f"{self.model}__{self.detector}__{self.aligner}"

    def check(self) -> Space:
        """The space, if the user's three names can work together (a ConfigError or
        UnknownName before any photo is read; :func:`catalog.check_space`)."""
        catalog.check_space(self.model, self.detector, self.aligner)
        return self

    @property
    def dim(self) -> int:
        """How wide the model's vectors are (:data:`lookalike.models.catalog.RECOGNITION_DIMS`)."""
        return catalog.RECOGNITION_DIMS[self.model]

    @property
    def names(self) -> tuple[str, str, str]:
        """The registry names whose weights the space needs (:func:`registry.require`)."""
        return (self.model, self.detector, self.aligner)


@dataclass
class Face:
    """A face in a photo: where it is, its chip and its unit vector."""

    bbox: tuple[int, int, int, int]  # x, y, w, h, clipped to the photo
    confidence: float
    chip: np.ndarray  # (h, w, 3) RGB uint8, the model's input
    embedding: np.ndarray  # (dim,) float32, unit length
    # the detector's face (unclipped box, five points): what the dense landmarks start from
    detection: Detection | None = None


class QueryFaces(NamedTuple):
    """A query photo's faces, the pixels their boxes and chips come from, and those pixels'
    scale to the photo's (below 1 when they are a JPEG's draft)."""

    rgb: np.ndarray
    faces: list[Face]
    scale: float = 1.0
    more: int = 0  # faces found past the limit asked for, neither aligned nor embedded

    def in_photo(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """``box`` (in :attr:`rgb`) in the photo's own pixels, as callers report it."""
        if self.scale == 1.0:
            return box
        x, y, w, h = (round(v / self.scale) for v in box)
        return x, y, w, h


class FacePipeline:
    """Detect, align and embed faces in one space."""

    def __init__(self, space: Space, detect_max_side: int, threads: int | None = None) -> None:
        """``threads``: for the models lookalike runs itself (see :class:`Embedder`); worker
        processes pass 1, since the processes are the parallelism."""
        registry.require(*space.names)
        self.space = space
        self.threads = threads
        self.embedder = Embedder(space.model, threads)
        self.detector = detect.build(space.detector, detect_max_side, threads=threads)
        self.aligner = align.build(space.aligner)

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def detect(self, rgb: np.ndarray, mode: FacesMode = FacesMode.all) -> list[Detection]:
        found = self.detector.detect(rgb)
        return found[:1] if mode.keeps_one else found

    def faces(self, rgb: np.ndarray, mode: FacesMode = FacesMode.all) -> list[Face]:
        """Every kept face of ``rgb`` with its vector, largest first."""
        return self._embed(rgb, self.detect(rgb, mode))

    # a face whose shorter side in a draft is under this many chips is taken from the whole photo
    SMALL_FACE_CHIPS = 2.0

    def query_faces(self, query: QueryImage, mode: FacesMode = FacesMode.all, limit: int | None = None) -> QueryFaces:
        """The faces of a query photo and the pixels their boxes refer to: the ``limit``
        largest (None: all), the others counted in :attr:`QueryFaces.more`.

        On a draft (:class:`QueryImage`), the faces are found there and, when every one is
        at least :attr:`SMALL_FACE_CHIPS` model inputs wide in it, aligned from it too: the
        chip then shrinks a face of 224+ pixels to 112 and the detail lost to the draft was
        never going to reach the model. A smaller face is aligned from the whole photo, the
        draft's detections scaled up to it; a draft with no face is searched again whole, so
        the detector's second look at twice its size sees every pixel, as in ingest."""
        def kept(found: list[Detection]) -> tuple[list[Detection], int]:
            return (found, 0) if limit is None else (found[:limit], max(0, len(found) - limit))

        if query.data is None:
            found, more = kept(self.detect(query.rgb, mode))
            return QueryFaces(query.rgb, self._embed(query.rgb, found), more=more)
        found, more = kept(self.detect(query.rgb, mode))
        enough = self.SMALL_FACE_CHIPS * min(self.embedder.input_size)
        if found and min(min(d.box[2], d.box[3]) for d in found) >= enough:
            return QueryFaces(query.rgb, self._embed(query.rgb, found), query.scale, more)
        whole = query.whole()
        if not found:
            found, more = kept(self.detect(whole, mode))
            return QueryFaces(whole, self._embed(whole, found), more=more)
        return QueryFaces(whole, self._embed(whole, [rescale(d, 1.0 / query.scale) for d in found]), more=more)

    def _embed(self, rgb: np.ndarray, found: list[Detection]) -> list[Face]:
        """Align and embed the faces ``found`` in ``rgb``."""
        return self.embed_found([(rgb, found)])[0]

    def embed_found(self, photos: Sequence[tuple[np.ndarray, list[Detection]]]) -> list[list[Face]]:
        """Align the faces found in each of several photos and embed them all in one call:
        the recognition model runs the faces of many photos a few at a time
        (:attr:`lookalike.models.runtime.Graph.batch`), where a photo alone gives it one
        (ingest, :meth:`lookalike.ingest.mapper.Mapper.process_tasks`). The vectors are the
        ones each photo would get alone."""
        size = self.embedder.input_size
        chips = [[self.aligner.align(rgb, d, size) for d in found] for rgb, found in photos]
        vectors = iter(self.embedder.embed([c for each in chips for c in each]))
        out: list[list[Face]] = []
        for (rgb, found), each in zip(photos, chips):
            height, width = rgb.shape[:2]
            out.append([Face(bbox=clip_box(d.box, width, height) or d.box, confidence=d.confidence,
                             chip=chip, embedding=next(vectors), detection=d)
                        for d, chip in zip(found, each)])
        return out
