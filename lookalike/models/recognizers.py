"""Recognition models behind one face: RGB uint8 chips in, raw (un-normalised) vectors out.

What differs between models — which runtime, which channel order and scale each one
was trained on — lives here, next to the registry that builds them, so the embedder
(:mod:`lookalike.faces.embed`) has no per-model branch:

* :class:`OnnxRecognizer`: a graph lookalike runs itself (in OpenVINO or ONNX Runtime,
  :mod:`.runtime`), fed the way DeepFace's ``SFaceClient.predict`` feeds SFace (RGB bytes
  as float32, channels first); SFace runs the numerically identical rewrite of
  :mod:`.fastgraph`, as many faces a run as the engine takes best (:attr:`.runtime.Graph.batch`);
* :class:`DeepFaceRecognizer`: DeepFace's own model object, fed as DeepFace feeds it (BGR,
  ``[0, 1]`` floats — except Dlib's ResNet, which takes uint8 as is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from deepface.models.FacialRecognition import FacialRecognition

    from .runtime import Graph


class Recognizer(Protocol):
    """What the embedder needs of a recognition model."""

    input_size: tuple[int, int]  # (h, w) of the chip
    dim: int

    def forward(self, chips: np.ndarray) -> np.ndarray:
        """``(n, h, w, 3)`` RGB uint8 -> ``(n, dim)`` float32, not normalised."""
        ...


class OnnxRecognizer:
    """An ONNX graph taking ``(n, 3, h, w)`` float32 RGB bytes."""

    def __init__(self, graph: Graph, input_size: tuple[int, int], dim: int) -> None:
        self.graph = graph
        self.input_size = input_size  # (h, w)
        self.dim = dim

    def forward(self, chips: np.ndarray) -> np.ndarray:
        """``(n, h, w, 3)`` RGB uint8 -> ``(n, dim)`` float32, not normalised.

        As many faces a run as the graph takes best (:attr:`Graph.batch`): one in ONNX
        Runtime, where a batch costs *more* per face (SFace on AMD EPYC, 2026-12-05: 44.5 ms a
        face one by one against 56.5 ms in a batch of 8 on one thread; a batch's activations
        outgrow the caches), up to eight in OpenVINO at bf16. The graph's vectors do not depend
        on the batch."""
        blob = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        step = max(1, self.graph.batch)
        out = [self.graph.run(blob[i:i + step]) for i in range(0, len(blob), step)]
        return np.asarray(np.concatenate(out), dtype=np.float32).reshape(len(chips), -1)


class DeepFaceRecognizer:
    """DeepFace's model object (``modeling.build_model``): the vector DeepFace makes."""

    def __init__(self, model: FacialRecognition, unit_floats: bool) -> None:
        self.model = model
        width, height = model.input_shape
        self.input_size = (int(height), int(width))
        self.dim = int(model.output_shape)
        self.unit_floats = unit_floats  # [0, 1] floats (preprocessing.resize_image), else uint8

    def forward(self, chips: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(chips[:, :, :, ::-1])  # DeepFace wants BGR
        if self.unit_floats:
            batch = batch.astype(np.float32) / 255.0
        return np.asarray(self.model.forward(batch), dtype=np.float32).reshape(len(chips), -1)
