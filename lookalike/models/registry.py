"""One registry of the models lookalike runs, one weights check, one per-process cache.

Every model, detector, aligner and analyzer name the catalog knows has a
:class:`ModelSpec` here (deepface's "one table of models" way): its kind, its vector
size and input size when lookalike knows them, the weight files it needs (with their
sha256 when a release publishes one), the other entries whose files it also uses
(``needs``: dlib's 5-point shape predictor is the ``chip`` entry's file) and how to build
it: the catalog's files (:mod:`.catalog`) and one literal row per name lookalike runs its
own way (:data:`OWN`); every other name is DeepFace's. The classes of the detectors and
aligners lookalike runs itself are picked from one table each in the faces stage
(``detect.OWN_DETECTORS``, ``align.ALIGNER_CLASSES``), which a test holds to the catalog.

* :func:`require` is the one weights check (``lookalike models list`` shows the same
  verdict): each file present, of the release's size where the catalog knows it, and of
  its sha256 where a release publishes one (a truncated download, a file edited by hand)
  — a missing or damaged file raises :class:`~lookalike.errors.ModelMissing` naming the
  file and ``lookalike models install NAME``, before any model is built. A file is hashed
  once per version: the verdict is kept beside it for its size and modification time.
* :func:`load` returns the model, built at most once per process for a (name, threads)
  pair and weights folder, under a lock (immich's ML service: lazy models in a cache):
  the embedder, the aligners and the analyzers of every pipeline in a process share it.
  ``threads`` is part of the key because a session's thread count is fixed when it is
  made (ingest workers run one thread, queries one per core); the weights folder and the
  engine (``LOOKALIKE_RUNTIME``, :mod:`.runtime`) are, because one process may switch them
  (the test suite does).
* Objects that keep state between calls (YuNet's input size, dlib's CNN buffers) are not
  shared: their owner builds its own from :func:`path` after :func:`require`. That is how
  lookalike's YuNet is made, with its own thresholds, leaving DeepFace's cached detector
  (``modeling.build_model("yunet")``) exactly as DeepFace built it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Runtime, env_runtime
from ..errors import ModelMissing
from . import catalog
from .catalog import Kind

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import dlib
    from deepface.models.Detector import Detector
    from onnxruntime import InferenceSession

    from .recognizers import DeepFaceRecognizer, OnnxRecognizer
    from .runtime import Graph


@dataclass(frozen=True)
class WeightFile:
    """A file under the weights folder; ``sha256`` None where no release publishes one
    (DeepFace's downloads, files lookalike derives or converts at install time)."""

    name: str
    sha256: str | None = None
    size: int | None = None  # bytes, when the catalog knows them: checked before hashing


# (weights folder, threads, engine) -> the model object
Loader = Callable[[Path, "int | None", Runtime], object]


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one name."""

    name: str
    kind: Kind
    files: tuple[WeightFile, ...] = ()
    dim: int | None = None  # recognition: the vector size
    input_size: tuple[int, int] | None = None  # (h, w) of the chip, when known without building
    needs: tuple[str, ...] = ()  # other entries whose files this one uses too
    loader: Loader | None = None  # None: its owner builds it from path() (stateful) or none needed
    # where the files come from, when no file list can say it (self-contained detectors,
    # a DeepFace model this engine does not implement)
    source: str = ""


# --- how each model is built (run by load(), after require()) ---------------------------


def _onnx(path: Path, threads: int | None) -> InferenceSession:
    from ..errors import MissingExtra

    try:
        from .fastgraph import session
    except ImportError as err:  # pragma: no cover - onnxruntime is a core dependency
        raise MissingExtra(f"running {path.name}", "analysis", str(err)) from err
    return session(path, threads)


def _sface(folder: Path, threads: int | None, engine: Runtime) -> OnnxRecognizer:
    from . import runtime
    from .recognizers import OnnxRecognizer

    graph = runtime.load(folder / catalog.SFACE_FAST_FILE, threads, engine)
    return OnnxRecognizer(graph, (112, 112), 128)


def _deepface_recognizer(name: str) -> Loader:
    def build(folder: Path, threads: int | None, _engine: Runtime) -> DeepFaceRecognizer:
        from deepface.modules import modeling

        from .recognizers import DeepFaceRecognizer

        # Dlib's ResNet takes uint8 as is (no lossy float round trip); the others [0, 1] floats
        model = modeling.build_model(task="facial_recognition", model_name=name)
        return DeepFaceRecognizer(model, unit_floats=name != "Dlib")

    return build


def _deepface_detector(name: str) -> Loader:
    def build(folder: Path, threads: int | None, _engine: Runtime) -> Detector:
        from deepface.modules import modeling

        return modeling.build_model(task="face_detector", model_name=name)

    return build


def _shape_predictor(folder: Path, threads: int | None, _engine: Runtime) -> dlib.shape_predictor:
    import dlib

    return dlib.shape_predictor(str(folder / catalog.SHAPE_5.name))


def _cydral(folder: Path, threads: int | None, _engine: Runtime) -> tuple[InferenceSession, InferenceSession]:
    return (_onnx(folder / catalog.AGE_DLIB.name, threads), _onnx(folder / catalog.GENDER_DLIB.name, threads))


def _face_mesh(folder: Path, threads: int | None, engine: Runtime) -> Graph:
    """MediaPipe's face mesh: OpenVINO reads its TF Lite file and runs it faster than LiteRT
    (one thread, 2026-12-06: 1.30 ms a crop at bf16, 0.81 in runs of eight, against LiteRT's
    1.39; at f32 the points equal LiteRT's exactly, at bf16 they are 0.2 px apart in the
    192-px crop, median). ONNX Runtime cannot read it: with that engine LiteRT runs it."""
    from . import runtime

    path = folder / catalog.FACE_MESH.name
    chosen = runtime.resolve(engine)
    if chosen is Runtime.onnxruntime:
        from .litert import TfliteModel

        return TfliteModel(path, threads)
    # eight crops a run at either precision (f32: 1.39 -> 1.19 ms a crop, bf16: 1.30 -> 0.81)
    return runtime.OpenVinoGraph(path, threads, f32=chosen is Runtime.openvino_f32, any_batch=True, runs_of=8)


def _offline(file_name: str) -> Loader:
    return lambda folder, threads, _engine: _onnx(folder / file_name, threads)


# --- the table ------------------------------------------------------------------------

@dataclass(frozen=True)
class Own:
    """What lookalike itself knows of a name, beyond the catalog's files and DeepFace's table."""

    loader: Loader | None = None  # built by load(); None: DeepFace's own builder, or none (below)
    input_size: tuple[int, int] | None = None  # (h, w) of the chip, known without building
    needs: tuple[str, ...] = ()  # other entries whose files it also uses


# One row per name lookalike runs its own way; every other name of the catalog is DeepFace's
# (its builder, its download) or needs nothing (an aligner, ``skip``).
OWN: dict[str, Own] = {
    "SFace": Own(_sface, input_size=(112, 112)),
    # no loader: built by their owner from path(), never shared (detect.py)
    "yunet": Own(),  # its input size changes per photo
    "dlib": Own(),  # the CNN's buffers
    "chip": Own(_shape_predictor),
    "eyes": Own(needs=("chip",)),  # falls back to the chip aligner's shape predictor
    "age-gender-dlib": Own(_cydral, needs=("chip",)),  # Cydral's chips are cut by the shape predictor
    "emotion-offline": Own(_offline(catalog.EMOTION_FILE)),
    "age-gender-offline": Own(_offline(catalog.AGE_GENDER_FILE)),
    "face-mesh": Own(_face_mesh, input_size=(192, 192)),
    "skip": Own(),  # no detector: the whole photo is one face
}


def names() -> list[str]:
    """Every name the catalog knows, in ``lookalike models list`` order."""
    found = catalog.deepface_names()
    return [*found["recognition"], *found["detector"], *catalog.ALIGNERS, *catalog.ANALYSIS_WHEELED,
            *catalog.ANALYSIS_OFFLINE, *catalog.ANALYSIS_DEEPFACE, *catalog.LANDMARKS]


def _files(kind: Kind, name: str) -> tuple[tuple[WeightFile, ...], str]:
    if name in catalog.WHEELED:
        derived = (catalog.DERIVED[name],) if name in catalog.DERIVED else ()
        return tuple(WeightFile(i.name, i.sha256, i.size) for i in catalog.WHEELED[name]) + \
            tuple(WeightFile(f) for f in derived), ""
    if name in catalog.PACKAGED:
        return tuple(WeightFile(i.name, i.sha256) for i in catalog.PACKAGED[name]), ""
    if name in catalog.OFFLINE_WEIGHTS:
        return (WeightFile(catalog.OFFLINE_WEIGHTS[name].onnx_file),), ""
    if name in catalog.ANALYSIS_DEEPFACE:
        from .deepface import weight_files

        return (WeightFile(weight_files(name)[0]),), ""
    if name in catalog.SELF_CONTAINED or kind is Kind.aligner:
        return (), catalog.SELF_CONTAINED.get(name, "")
    files = catalog.download_files(kind, name)
    return tuple(WeightFile(f) for f, _ in files), "" if files else "download (DeepFace, needs a network)"


@lru_cache(maxsize=None)
def spec(name: str) -> ModelSpec:
    """The registry's entry for ``name`` (:class:`~lookalike.errors.UnknownName` otherwise)."""
    kind = catalog.kind_of(name)
    files, source = _files(kind, name)
    own = OWN.get(name)
    loader = own.loader if own is not None else None
    if own is None and kind is Kind.recognition:
        loader = _deepface_recognizer(name)
    elif own is None and kind is Kind.detector:
        loader = _deepface_detector(name)
    return ModelSpec(name, kind, files, catalog.RECOGNITION_DIMS.get(name) if kind is Kind.recognition else None,
                     own.input_size if own else None, own.needs if own else (), loader, source)


def registry() -> dict[str, ModelSpec]:
    """The whole table, name -> spec."""
    return {name: spec(name) for name in names()}


# --- the one weights check ------------------------------------------------------------

_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) whose sha256 matched


def require(*wanted: str) -> None:
    """Each name's weight files (and those of the entries it needs) present and, where the
    catalog knows their sha256, intact; else :class:`ModelMissing` naming the file and
    ``lookalike models install NAME``. Names without weights (``skip``) pass."""
    missing = _missing(wanted, set())
    if len(missing) == 1:
        raise missing[0]
    if missing:  # every one named at once: installing one to be told of the next took several runs
        raise ModelMissing.several(missing)


def _missing(wanted: tuple[str, ...] | list[str], seen: set[str]) -> list[ModelMissing]:
    """What is wrong with each of ``wanted`` and the entries they need, each name once."""
    found = []
    for name in wanted:
        if name in seen:
            continue
        seen.add(name)
        error = problem(name)
        if error is not None:
            found.append(error)
        found.extend(_missing(spec(name).needs, seen))
    return found


def problem(name: str) -> ModelMissing | None:
    """What is wrong with ``name``'s own weight files (not those it needs), or None: the
    check :func:`require` makes and ``lookalike models list`` shows."""
    if name == "skip":
        return None
    entry = spec(name)
    folder = catalog.weights_dir()
    if name in catalog.SELF_CONTAINED:
        present = catalog.self_contained_present(name)
        return None if present else ModelMissing(name, [entry.source], str(folder))
    if not entry.files:  # an aligner (nothing to load), or a model this engine cannot fetch
        return ModelMissing(name, [entry.source], str(folder)) if entry.source else None
    for item in entry.files:
        target = folder / item.name
        if not target.is_file():
            return ModelMissing(name, [item.name], str(folder))
        stat = target.stat()
        if item.size is not None and stat.st_size != item.size:
            return ModelMissing(name, [item.name], str(folder),
                                damaged=f"{stat.st_size} bytes instead of the release's {item.size}")
        key = (str(target), stat.st_size, stat.st_mtime_ns)
        if item.sha256 is None or key in _VERIFIED:
            continue
        stamp = folder / _STAMPS / item.name
        seen = f"{stat.st_size} {stat.st_mtime_ns} {item.sha256}"
        if _read(stamp) != seen:
            digest = catalog.sha256_of(target)
            if digest != item.sha256:
                return ModelMissing(name, [item.name], str(folder),
                                    damaged=f"sha256 {digest[:12]}… differs from the release's {item.sha256[:12]}…")
            _write(stamp, seen)
        _VERIFIED.add(key)
    return None


# A file's sha256 verdict is remembered beside it, for that size and modification time:
# every CLI command and worker process would otherwise hash ~60 MB before its first photo.
# Any write to the file changes its mtime, and the file is hashed again.
_STAMPS = ".lookalike-sha256-ok"


def _read(stamp: Path) -> str | None:
    try:
        return stamp.read_text().strip()
    except OSError:
        return None


def _write(stamp: Path, text: str) -> None:
    import os

    try:
        stamp.parent.mkdir(exist_ok=True)
        partial = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
        partial.write_text(text + "\n")
        os.replace(partial, stamp)
    except OSError:  # a read-only weights folder (a kiosk): hashed once per process instead
        log.debug("could not remember the sha256 of %s", stamp.name, exc_info=True)


def path(name: str, file_name: str | None = None) -> Path:
    """Where ``name``'s weight file (its first, or ``file_name``) is; call :func:`require` first."""
    entry = spec(name)
    chosen = file_name or entry.files[0].name
    if chosen not in {f.name for f in entry.files}:
        raise ValueError(f"{name} has no weight file {chosen}")
    return catalog.weights_dir() / chosen


# --- the per-process cache ------------------------------------------------------------

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, int | None, Path, str], Any] = {}


def load(name: str, threads: int | None = None) -> Any:  # noqa: ANN401 - models of many types; the caller knows its entry's
    """``name``'s model, checked by :func:`require` and built once per process for these
    ``threads`` (None: one per core) in the engine ``LOOKALIKE_RUNTIME`` names (SFace's)."""
    entry = spec(name)
    if entry.loader is None:
        raise ValueError(f"{name} is built by its owner from registry.path(), not shared")
    require(name)
    folder = catalog.weights_dir()
    engine = env_runtime()  # read once: the cache key and the loader agree on it
    key = (name, threads, folder, engine.value)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = entry.loader(folder, threads, engine)
        return _CACHE[key]


def forget() -> None:
    """Drop every cached model and sha256 verdict (tests that damage a file on purpose)."""
    with _LOCK:
        _CACHE.clear()
        _VERIFIED.clear()
