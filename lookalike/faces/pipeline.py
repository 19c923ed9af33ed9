"""Photo pixels -> faces with vectors: detector + aligner + embedder, numpy in, numpy out.

:class:`FacePipeline` is what both ingest workers and queries use, so a corpus face and
a query face are always made the same way. Models are built when the pipeline is, never
at import time, and come from the registry's per-process cache
(:mod:`lookalike.models.registry`); their weight files are checked first so a missing or
damaged one fails with the ``lookalike models install`` command to run instead of a
download attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..models import registry
from . import align, detect
from .detect import Detection, clip_box
from .embed import Embedder


class FacesMode(str, Enum):
    """Which faces of a photo to keep."""

    largest = "largest"  # the largest face: a portrait corpus has one subject per photo
    all = "all"  # every face: group photos, queries


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


class FacePipeline:
    """Detect, align and embed faces in one space."""

    def __init__(self, space: Space, detect_max_side: int, threads: int | None = None) -> None:
        """``threads``: for the models lookalike runs itself (see :class:`Embedder`); worker
        processes pass 1, since the processes are the parallelism."""
        registry.require(*space.names)
        self.space = space
        self.threads = threads
        self.embedder = Embedder(space.model, threads)
        self.detector = detect.build(space.detector, detect_max_side)
        self.aligner = align.build(space.aligner)

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def detect(self, rgb: np.ndarray, mode: FacesMode = FacesMode.all) -> list[Detection]:
        found = self.detector.detect(rgb)
        return found[:1] if mode is FacesMode.largest else found

    def faces(self, rgb: np.ndarray, mode: FacesMode = FacesMode.all) -> list[Face]:
        """Every kept face of ``rgb`` with its vector, largest first."""
        found = self.detect(rgb, mode)
        if not found:
            return []
        height, width = rgb.shape[:2]
        size = self.embedder.input_size
        chips = [self.aligner.align(rgb, d, size) for d in found]
        vectors = self.embedder.embed(chips)
        return [
            Face(
                bbox=clip_box(d.box, width, height) or d.box,
                confidence=d.confidence,
                chip=chip,
                embedding=vec,
                detection=d,
            )
            for d, chip, vec in zip(found, chips, vectors)
        ]
