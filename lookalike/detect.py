"""Face detectors: one base class, looked up by name (the deepface backend-registry way).

A detector takes a full-resolution RGB photo and returns boxes in full-resolution
coordinates. Large photos are downscaled for detection only (detection cost grows with
pixels, accuracy does not), and the boxes are mapped back, so the face is later cut from
the sharp original.

* ``dlib``: dlib's HOG frontal-face detector, the same model DeepFace's ``dlib`` backend
  builds, but run at the photo's own scale first and upsampled only when nothing was
  found (DeepFace always upsamples once and pads the photo by 50 % on every side,
  which makes it ~4x slower on LFW-sized photos for no gain in found faces). When HOG
  finds nothing, dlib's CNN (MMOD) detector takes a second look at the photo shrunk to
  ``CNN_MAX_SIDE``: on lfw-dev it finds all 15 faces HOG misses (turned heads, hats,
  shadows) at ~0.35 s each, so the fallback costs 0.4 % of photos a third of a second.
  Callers that must stay cheap on frames without a face (live video) build it with
  ``fallback=False``.
* every other name: the DeepFace detector of that name (``opencv``, ``mtcnn``,
  ``retinaface``, ``yunet``…), built through DeepFace's own registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .errors import UnknownName

Point = tuple[float, float]


@dataclass(frozen=True)
class Detection:
    """A face found in a photo, in full-resolution pixel coordinates."""

    box: tuple[int, int, int, int]  # x, y, w, h
    confidence: float
    left_eye: Point | None = None  # the person's left eye (on the viewer's right)
    right_eye: Point | None = None

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


class Detector(ABC):
    """Finds faces. Subclasses implement :meth:`_detect` on a (possibly downscaled) image."""

    name: str

    def __init__(self, max_side: int, second_look: bool = True) -> None:
        self.max_side = max_side
        # live video wants one cheap pass per frame: no second resolution, no upsampling
        self.second_look = second_look

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in ``rgb`` (H, W, 3 uint8), largest first."""
        found: list[Detection] = []
        # a small face in a huge photo vanishes when the photo is shrunk to max_side:
        # when nothing is found, look once more at twice that resolution
        sides = (self.max_side, 2 * self.max_side) if self.second_look else (self.max_side,)
        for side in sides:
            small, scale = downscale(rgb, side)
            found = self._detect(small, 2 * side if self.second_look else side)
            if scale != 1.0:
                found = [_rescale(d, 1.0 / scale) for d in found]
            if found or scale == 1.0:
                break
        return _visible(found, rgb)

    @abstractmethod
    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        """Faces in ``rgb``; a detector that upsamples stays under ``max_work_side``."""


class DlibHogDetector(Detector):
    """dlib's HOG detector with on-demand upsampling, and the CNN as a second look (see
    module docstring)."""

    name = "dlib"
    # HOG finds faces from ~80 px; upsample small photos until a face of ~1/3 of the
    # photo would reach that size, at most twice.
    _MAX_UPSAMPLE = 2
    CNN_MAX_SIDE = 500  # the CNN costs ~0.35 s at 250 px and grows with the pixel count
    CNN_MIN_SIDE = 40  # its smallest face is ~40 px; on tinier photos dlib's CNN raises

    def __init__(self, max_side: int, fallback: bool = True) -> None:
        super().__init__(max_side, second_look=fallback)
        import dlib

        self._hog = dlib.get_frontal_face_detector()
        self._cnn = None
        if fallback:
            from .weights import MMOD, packaged_path

            self._cnn = dlib.cnn_face_detection_model_v1(packaged_path(MMOD))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = super().detect(rgb)
        if found or self._cnn is None or min(rgb.shape[:2]) < self.CNN_MIN_SIDE:
            return found
        small, scale = downscale(rgb, self.CNN_MAX_SIDE)
        found = [Detection(box=(r.rect.left(), r.rect.top(), r.rect.width(), r.rect.height()),
                           confidence=float(r.confidence)) for r in self._cnn(small, 0)]
        if scale != 1.0:
            found = [_rescale(d, 1.0 / scale) for d in found]
        return _visible(found, rgb)

    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        long_side = max(rgb.shape[:2])
        for upsample in range(self._MAX_UPSAMPLE + 1):
            if upsample and long_side * (2 ** upsample) > max_work_side:
                break  # upsampling past the detection budget costs seconds per photo
            rects, scores, _ = self._hog.run(rgb, upsample, 0.0)
            if rects:
                return [
                    Detection(
                        box=(r.left(), r.top(), r.right() - r.left(), r.bottom() - r.top()),
                        confidence=float(s),
                    )
                    for r, s in zip(rects, scores)
                ]
        return []


class DeepFaceDetector(Detector):
    """Any detector from DeepFace's registry, by DeepFace's name for it."""

    def __init__(self, name: str, max_side: int, second_look: bool = True) -> None:
        super().__init__(max_side, second_look)
        from deepface.modules import modeling

        self.name = name
        self._model = modeling.build_model(task="face_detector", model_name=name)

    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = []
        for region in self._model.detect_faces(bgr):
            out.append(
                Detection(
                    box=(int(region.x), int(region.y), int(region.w), int(region.h)),
                    confidence=float(region.confidence or 0.0),
                    left_eye=_point(region.left_eye),
                    right_eye=_point(region.right_eye),
                )
            )
        return out


class WholeImage(Detector):
    """``skip``: the photo is already a face crop."""

    name = "skip"

    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        return [Detection(box=(0, 0, rgb.shape[1], rgb.shape[0]), confidence=0.0)]


def build(name: str, max_side: int, fallback: bool = True) -> Detector:
    """The detector called ``name``; weights must have been checked by the caller.
    ``fallback=False`` skips every slow second look — the CNN, a second resolution,
    upsampling — for one cheap pass per frame (live video)."""
    if name == "dlib":
        return DlibHogDetector(max_side, fallback)
    if name == "skip":
        return WholeImage(max_side)
    from .weights import deepface_names

    known = deepface_names()["detector"]
    if name not in known:
        raise UnknownName("detector", name, sorted(set(known) | {"skip"}))
    return DeepFaceDetector(name, max_side, fallback)


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``rgb`` shrunk so its long side is at most ``max_side``, and the factor used."""
    height, width = rgb.shape[:2]
    long_side = max(height, width)
    if long_side <= max_side:
        return rgb, 1.0
    import cv2

    scale = max_side / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _visible(found: list[Detection], rgb: np.ndarray) -> list[Detection]:
    """Largest first. Boxes stay unclipped (the aligner needs the whole face's geometry);
    those with nothing inside the photo are dropped."""
    height, width = rgb.shape[:2]
    visible = [d for d in found if clip_box(d.box, width, height) is not None]
    return sorted(visible, key=lambda d: d.area, reverse=True)


def _point(value: object) -> Point | None:
    if value is None:
        return None
    x, y = value  # type: ignore[misc]
    return (float(x), float(y))


def _rescale(d: Detection, factor: float) -> Detection:
    x, y, w, h = d.box

    def scaled(p: Point | None) -> Point | None:
        return None if p is None else (p[0] * factor, p[1] * factor)

    return Detection(
        box=(round(x * factor), round(y * factor), round(w * factor), round(h * factor)),
        confidence=d.confidence,
        left_eye=scaled(d.left_eye),
        right_eye=scaled(d.right_eye),
    )


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """``box`` clipped to a ``width`` x ``height`` photo; ``None`` when under 2 px remain."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)
