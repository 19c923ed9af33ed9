"""Embedders: aligned face chips -> L2-normalised float32 vectors, through DeepFace's models.

The model object is DeepFace's own (``deepface.modules.modeling.build_model``), so a
vector made here is the vector DeepFace makes for the same chip. SFace, the default, is
the one exception in *how* it runs, not in what it computes: DeepFace's wrapper feeds
the published graph one face at a time (~59 ms per face on one core here); lookalike
runs the numerically identical rewrite of :mod:`lookalike.models.fastgraph` (~27 ms), with
DeepFace's preprocessing (RGB bytes, channels first), and a test checks the vectors
against DeepFace's own ``SFaceClient``. Chips are fed as a
batch; the result is always an ``(n, dim)`` float32 array with unit rows, so inner
product = cosine similarity everywhere downstream.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnknownName
from ..models.catalog import RECOGNITION_DIMS


class Embedder:
    """A DeepFace recognition model, built once per process."""

    def __init__(self, name: str, threads: int | None = None) -> None:
        """``threads``: intra-op threads for the ONNX graphs lookalike runs itself (SFace);
        ingest workers pass 1 (the processes are the parallelism), queries leave ORT's
        default of one per core."""
        if name not in RECOGNITION_DIMS:
            raise UnknownName("model", name, sorted(RECOGNITION_DIMS))
        self.name = name
        if name == "SFace":
            from ..models.catalog import SFACE_FAST_FILE, weights_dir
            from ..models.fastgraph import session

            self._session = session(weights_dir() / SFACE_FAST_FILE, threads)
            self.input_size: tuple[int, int] = (112, 112)  # (h, w)
            self.dim = 128
            return
        from deepface.modules import modeling

        self._model = modeling.build_model(task="facial_recognition", model_name=name)
        width, height = self._model.input_shape
        self.input_size = (int(height), int(width))
        self.dim = int(self._model.output_shape)

    def embed(self, chips: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(n, h, w, 3)`` RGB uint8 chips -> ``(n, dim)`` unit float32 vectors."""
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.name == "SFace":
            from ..models.fastgraph import run

            # DeepFace's SFaceClient.predict: RGB bytes as float32, channels first
            blob = np.ascontiguousarray(np.stack(list(chips)).transpose(0, 3, 1, 2), dtype=np.float32)
            return l2_normalize(run(self._session, blob).reshape(len(chips), -1))
        batch = np.ascontiguousarray(np.stack(list(chips))[:, :, :, ::-1])  # DeepFace wants BGR
        if self.name != "Dlib":
            # every other DeepFace model takes [0, 1] floats (preprocessing.resize_image);
            # Dlib takes uint8 as is, which avoids a lossy float round trip
            batch = batch.astype(np.float32) / 255.0
        out = self._model.forward(batch)
        vectors = np.asarray(out, dtype=np.float32).reshape(len(chips), -1)
        return l2_normalize(vectors)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
