"""The ``deepface`` analyzer: ``DeepFace.analyze``'s own age, gender and emotion models.

Each face is cut from the photo at lookalike's detection box and handed to
``DeepFace.analyze`` with ``detector_backend="skip"``, so DeepFace's own preprocessing
(resize to 224, its per-model crops) and models (ONNX engine, no TensorFlow) do the rest.
Their weights come from GitHub at first use: ``lookalike models install age gender
emotion`` fetches them on a connected machine; offline it fails with one message naming
the files, the URLs and where to put them.
"""

from __future__ import annotations

import numpy as np

from .base import Analyzer, Estimate


class DeepFaceAnalyzer(Analyzer):
    name = "deepface"
    description = "deepface: DeepFace.analyze age, gender and emotion models (ONNX engine)"

    def __init__(self) -> None:
        from ..config import activate_weights_home

        activate_weights_home()
        from deepface import DeepFace

        self._analyze = DeepFace.analyze

    def analyze(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]],
                crop: bool = False) -> list[Estimate]:
        out = []
        height, width = rgb.shape[:2]
        for x, y, w, h in boxes:
            face = rgb[max(0, y):min(height, y + h), max(0, x):min(width, x + w), ::-1]
            (result,) = self._analyze(img_path=np.ascontiguousarray(face), actions=("age", "gender", "emotion"),
                                      detector_backend="skip", enforce_detection=False, silent=True)
            gender = {"woman": result["gender"]["Woman"] / 100.0, "man": result["gender"]["Man"] / 100.0}
            emotion = {k: v / 100.0 for k, v in result["emotion"].items()}
            out.append(Estimate(age=float(result["age"]), gender=gender, emotion=emotion,
                                model=self.description))
        return out
