"""Aligners: cut a detected face out of a photo as the model's input chip.

Alignment decides accuracy more than anything else (see README "Choosing the
defaults"), so both ways are kept behind one base class and measured against each other:

* ``chip``: dlib's 5-point shape predictor on the detector's box, then
  ``dlib.get_face_chip(size, padding=0.25)`` — exactly how dlib's ResNet was trained
  (dlib reports 99.38 % on LFW this way).
* ``arcface`` (the default, for SFace): the detector's five landmarks mapped onto the
  ArcFace 112 x 112 template by the least-squares similarity transform (Umeyama) and
  warped with ``cv2.warpAffine`` — how SFace (and ArcFace, insightface, OpenCV's
  ``FaceRecognizerSF.alignCrop``) were trained. It needs a detector that gives five
  landmarks (``yunet``, ``retinaface``).
* ``eyes``: DeepFace's own path — rotate so the eyes are level
  (``deepface.modules.detection.extract_face``), crop the box, then
  ``preprocessing.resize_image`` with black padding to the model's input size.

Both return an RGB ``uint8`` chip of the requested size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, UnknownName
from ..models.catalog import ALIGNERS
from .detect import Detection, Point

if TYPE_CHECKING:
    import dlib

# The ArcFace reference landmarks on a 112 x 112 chip (insightface, OpenCV's alignCrop), in
# Detection.landmarks order: viewer-left eye, viewer-right eye, nose, mouth corners.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


class Aligner(ABC):
    name: str

    @abstractmethod
    def align(self, rgb: np.ndarray, face: Detection, size: tuple[int, int]) -> np.ndarray:
        """The face as an (h, w, 3) RGB uint8 chip, ``size`` = (h, w)."""


class _ShapePredictor:
    """dlib's 5-point landmark model (both aligners use it), the registry's ``chip`` entry:
    loaded once per process and shared (predicting reads the model, never changes it)."""

    def __init__(self) -> None:
        import dlib

        from ..models import registry

        self._dlib = dlib
        self._predict = registry.load("chip")

    def shape(self, rgb: np.ndarray, face: Detection) -> dlib.full_object_detection:
        x, y, w, h = face.box
        return self._predict(rgb, self._dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))


class ChipAligner(Aligner):
    name = "chip"
    PADDING = 0.25  # dlib's training chips: 150 px with 25 % padding

    def __init__(self) -> None:
        self._sp = _ShapePredictor()

    def align(self, rgb: np.ndarray, face: Detection, size: tuple[int, int]) -> np.ndarray:
        import dlib

        shape = self._sp.shape(rgb, face)
        chip = dlib.get_face_chip(rgb, shape, size=int(size[0]), padding=self.PADDING)
        chip = np.asarray(chip, dtype=np.uint8)
        if chip.shape[:2] != size:  # non-square model inputs
            import cv2

            chip = cv2.resize(chip, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return chip


class EyesAligner(Aligner):
    """DeepFace's alignment, called through DeepFace's own functions."""

    name = "eyes"

    def __init__(self) -> None:
        self._sp: _ShapePredictor | None = None

    def align(self, rgb: np.ndarray, face: Detection, size: tuple[int, int]) -> np.ndarray:
        from deepface.models.Detector import FacialAreaRegion
        from deepface.modules import detection, preprocessing

        left, right = face.left_eye, face.right_eye
        if left is None or right is None:
            left, right = self._eyes_from_landmarks(rgb, face)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        x, y, w, h = face.box
        region = FacialAreaRegion(
            x=int(x), y=int(y), w=int(w), h=int(h),
            left_eye=_int_point(left), right_eye=_int_point(right), confidence=face.confidence,
        )
        # borders are 0: deepface pads a local sub-image itself (extract_sub_image)
        cut = detection.extract_face(
            facial_area=region, img=bgr, align=True, expand_percentage=0,
            width_border=0, height_border=0, detector_backend="opencv",
        ).img
        if cut.shape[0] == 0 or cut.shape[1] == 0:
            cut = bgr[max(0, y): y + h, max(0, x): x + w]
        resized = preprocessing.resize_image(img=cut, target_size=size)[0]  # BGR, [0, 1]
        if resized.max() <= 1.0:
            resized = resized * 255.0
        return np.clip(resized[:, :, ::-1] + 0.5, 0, 255).astype(np.uint8)

    def _eyes_from_landmarks(self, rgb: np.ndarray, face: Detection) -> tuple[Point, Point]:
        """Eye centres from the 5-point shape, the way DeepFace's dlib backend does it."""
        if self._sp is None:
            self._sp = _ShapePredictor()
        s = self._sp.shape(rgb, face)
        right = ((s.part(2).x + s.part(3).x) / 2, (s.part(2).y + s.part(3).y) / 2)
        left = ((s.part(0).x + s.part(1).x) / 2, (s.part(0).y + s.part(1).y) / 2)
        return left, right


class ArcFaceAligner(Aligner):
    """Five landmarks -> the ArcFace template by a similarity transform."""

    name = "arcface"

    def align(self, rgb: np.ndarray, face: Detection, size: tuple[int, int]) -> np.ndarray:
        import cv2

        if face.landmarks is None:
            raise ConfigError("the arcface aligner needs five landmarks; use a detector that "
                              "gives them (--detector yunet) or --aligner chip")
        height, width = size
        template = ARCFACE_TEMPLATE * (width / 112.0, height / 112.0)
        matrix = similarity_transform(np.asarray(face.landmarks, dtype=np.float64), template)
        return cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 matrix of the rotation + uniform scale + translation that maps the points
    ``src`` (n, 2) onto ``dst`` (n, 2) with the least squared error (Umeyama, 1991: the
    estimate insightface and scikit-image use)."""
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: flip the weakest axis
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    variance = (src_c ** 2).sum() / n
    scale = float((sigma * d).sum() / variance) if variance > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]]).astype(np.float64)


# the aligners by name (catalog.ALIGNERS lists the same names: a test holds them equal)
ALIGNER_CLASSES: dict[str, type[Aligner]] = {"arcface": ArcFaceAligner, "chip": ChipAligner, "eyes": EyesAligner}


def build(name: str) -> Aligner:
    if name not in ALIGNER_CLASSES:
        raise UnknownName("aligner", name, list(ALIGNERS))
    return ALIGNER_CLASSES[name]()


def _int_point(p: Sequence[float] | None) -> tuple[int, int] | None:
    return None if p is None else (int(round(p[0])), int(round(p[1])))
