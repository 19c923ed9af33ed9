"""Embedders: aligned face chips -> L2-normalised float32 vectors.

The model comes from the registry's per-process cache (:func:`lookalike.models.registry.load`),
so every pipeline of a process — the library's, a second space's, the live view's —
shares one model per (name, threads) instead of loading its own. A vector made here is the
vector DeepFace makes for the same chip: DeepFace models are DeepFace's own objects, and
SFace, the default, runs the numerically identical rewrite of
:mod:`lookalike.models.fastgraph` with DeepFace's preprocessing (a test checks the vectors
against DeepFace's own ``SFaceClient``); how each model is fed is
:mod:`lookalike.models.recognizers`' business. Chips are handed over as one array (each
recognizer runs them the way its runtime is fastest: SFace at bf16 up to eight a run); the result is
always an ``(n, dim)`` float32 array with unit rows, so inner product = cosine similarity
everywhere downstream.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnknownName
from ..models import registry
from ..models.catalog import RECOGNITION_DIMS
from ..models.recognizers import Recognizer


class Embedder:
    """A recognition model, shared through the registry's cache."""

    def __init__(self, name: str, threads: int | None = None) -> None:
        """``threads``: intra-op threads for the ONNX graphs lookalike runs itself (SFace);
        ingest workers pass 1 (the processes are the parallelism), queries leave ORT's
        default of one per core."""
        if name not in RECOGNITION_DIMS:
            raise UnknownName("model", name, sorted(RECOGNITION_DIMS))
        self.name = name
        self.model: Recognizer = registry.load(name, threads)
        self.input_size: tuple[int, int] = self.model.input_size  # (h, w)
        self.dim: int = self.model.dim

    def embed(self, chips: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(n, h, w, 3)`` RGB uint8 chips -> ``(n, dim)`` unit float32 vectors."""
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self.model.forward(np.stack(list(chips))))

    def warm(self) -> None:
        """Run the model once on a blank chip of its own input size (``(h, w)``: a chip
        built the other way round fails on a model whose input is not square, DeepID's),
        so that the first real face does not pay for the engine's first run."""
        self.embed(np.zeros((1, *self.input_size, 3), dtype=np.uint8))


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
