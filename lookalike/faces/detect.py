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
* ``yunet`` (the default): OpenCV's YuNet (``face_detection_yunet_2023mar.onnx``, the file
  DeepFace's ``yunet`` wrapper loads), built by lookalike itself with its own thresholds —
  DeepFace's cached detector is left as DeepFace made it — run by OpenVINO (about twice
  as fast) or OpenCV's DNN module, the same rows either way (:mod:`lookalike.models.yunet`), and read
  at full float precision with all five landmarks — DeepFace's ``detect_faces`` rounds
  to integers and keeps only the eyes, and the ArcFace alignment needs the nose and the
  mouth corners too. Photos are detected at ``max_side`` (1,280 px, not DeepFace's 640:
  small faces in group photos survive: at 640 px one group photo of bad-inputs loses 2 of
  its 6); a photo under ``UPSCALE_BELOW`` px where nothing is found is looked at once more
  upscaled 2x (YuNet's smallest anchor is ~10 px: the tiny image of bad-inputs is found only
  that way), and a larger one at 640 px (a face filling a 2,048 px photo is beyond YuNet's
  largest anchors at 1,280).
* every other name: the DeepFace detector of that name (``opencv``, ``mtcnn``,
  ``retinaface``…), built through DeepFace's own registry, once per process
  (:func:`lookalike.models.registry.load`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import Runtime
from ..errors import UnknownName
from ..models import registry

Point = tuple[float, float]
Box = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Detection:
    """A face found in a photo, in full-resolution pixel coordinates."""

    box: tuple[int, int, int, int]  # x, y, w, h
    confidence: float
    left_eye: Point | None = None  # the person's left eye (on the viewer's right)
    right_eye: Point | None = None
    # five landmarks in the ArcFace template's order — the eye, then the mouth corner, on the
    # viewer's left first: (right eye, left eye, nose tip, right mouth corner, left mouth corner)
    landmarks: tuple[Point, Point, Point, Point, Point] | None = None

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
                found = [rescale(d, 1.0 / scale) for d in found]
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
            from ..models.catalog import MMOD

            # one per detector: the network keeps its buffers between calls
            registry.require("dlib")
            self._cnn = dlib.cnn_face_detection_model_v1(str(registry.path("dlib", MMOD.name)))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = super().detect(rgb)
        if found or self._cnn is None or min(rgb.shape[:2]) < self.CNN_MIN_SIDE:
            return found
        small, scale = downscale(rgb, self.CNN_MAX_SIDE)
        found = [Detection(box=(r.rect.left(), r.rect.top(), r.rect.width(), r.rect.height()),
                           confidence=float(r.confidence)) for r in self._cnn(small, 0)]
        if scale != 1.0:
            found = [rescale(d, 1.0 / scale) for d in found]
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


class YuNetDetector(Detector):
    """OpenCV's YuNet, all five landmarks at float precision."""

    name = "yunet"
    # OpenCV and DeepFace keep faces from 0.9, which loses the low-light, overexposed and
    # occluded faces of bad-inputs (0.80-0.89) and 7 lfw-dev photos; the highest non-face
    # score there is 0.58. But weak detections are mostly half faces cut by the frame, with
    # tall boxes larger than the subject's: on lfw-dev keeping them all put the wrong face
    # first in 13 photos (10-fold accuracy 98.91 % instead of 99.00 %). So a weak face
    # (0.7-0.9) counts only in a photo where no strong one (>= 0.9) was found.
    SCORE_THRESHOLD = 0.7
    STRONG = 0.9
    NMS_THRESHOLD = 0.3
    UPSCALE_BELOW = 640  # long side (px) under which an empty photo is looked at again, 2x
    TOP_K = 5000  # OpenCV's default, as DeepFace builds it

    def __init__(self, max_side: int, second_look: bool = True, threads: int | None = None) -> None:
        super().__init__(max_side, second_look)
        from ..config import env_runtime
        from ..models import yunet

        # one per detector, never DeepFace's cached one: OpenCV's keeps its input size
        # between calls, and our thresholds are not DeepFace's. OpenVINO runs the same
        # graph where LOOKALIKE_RUNTIME allows (lookalike.models.yunet)
        registry.require("yunet")
        self._yunet = yunet.build(registry.path("yunet"),
                                  yunet.Thresholds(self.SCORE_THRESHOLD, self.NMS_THRESHOLD, self.TOP_K),
                                  threads, env_runtime())

    @property
    def runtime(self) -> Runtime:
        """The engine that runs the graph (OpenVINO, or OpenCV's DNN module)."""
        return self._yunet.runtime

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = super().detect(rgb)
        if found or not self.second_look or max(rgb.shape[:2]) <= self.UPSCALE_BELOW:
            return found
        # a face filling most of a large photo is beyond YuNet's largest anchors at
        # 1,280 px: DeepFace's 640 px finds it (celeb: paul_rudd/1.jpg, 2048 px)
        small, scale = downscale(rgb, self.UPSCALE_BELOW)
        return _visible([rescale(d, 1.0 / scale) for d in self._run(small)], rgb)

    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        found = self._run(rgb)
        long_side = max(rgb.shape[:2])
        if found or not self.second_look or long_side >= self.UPSCALE_BELOW or 2 * long_side > max_work_side:
            return found
        import cv2

        big = cv2.resize(rgb, (2 * rgb.shape[1], 2 * rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return [rescale(d, 0.5) for d in self._run(big)]

    MIN_SIDE = 8  # YuNet's feature pyramid needs some pixels; on 1 px images it returns inf

    def _run(self, rgb: np.ndarray) -> list[Detection]:
        if min(rgb.shape[:2]) < self.MIN_SIDE:
            return []
        rows = self._yunet.detect(rgb)  # padded (and turned to BGR) the way each engine needs
        out = []
        for row in rows:
            if not np.isfinite(row).all():
                continue
            x, y, w, h = (float(v) for v in row[:4])
            marks = tuple((float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i in range(5))
            out.append(Detection(box=(round(x), round(y), round(w), round(h)), confidence=float(row[14]),
                                 left_eye=marks[1], right_eye=marks[0], landmarks=marks))  # type: ignore[arg-type]
        strong = [d for d in out if d.confidence >= self.STRONG]
        return strong or out


class DeepFaceDetector(Detector):
    """Any detector from DeepFace's registry, by DeepFace's name for it."""

    def __init__(self, name: str, max_side: int, second_look: bool = True) -> None:
        super().__init__(max_side, second_look)
        self.name = name
        self._model = registry.load(name)

    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = []
        for region in self._model.detect_faces(bgr):
            five = (region.right_eye, region.left_eye, region.nose, region.mouth_right, region.mouth_left)
            out.append(
                Detection(
                    box=(int(region.x), int(region.y), int(region.w), int(region.h)),
                    confidence=float(region.confidence or 0.0),
                    left_eye=_point(region.left_eye),
                    right_eye=_point(region.right_eye),
                    landmarks=tuple(_point(p) for p in five) if all(p is not None for p in five) else None,  # type: ignore[arg-type]
                )
            )
        return out


class WholeImage(Detector):
    """``skip``: the photo is already a face crop."""

    name = "skip"

    def _detect(self, rgb: np.ndarray, max_work_side: int) -> list[Detection]:
        return [Detection(box=(0, 0, rgb.shape[1], rgb.shape[0]), confidence=0.0)]


def build(name: str, max_side: int, fallback: bool = True, threads: int | None = None) -> Detector:
    """The detector called ``name``, its weights checked (:func:`lookalike.models.registry.require`).
    ``fallback=False`` skips every slow second look — the CNN, a second resolution,
    upsampling — for one cheap pass per frame (live video). ``threads``: YuNet's in
    OpenVINO (None: every core; ingest workers pass 1)."""
    registry.require(name)
    own = OWN_DETECTORS.get(name)
    if own is not None:
        return own(max_side, fallback, threads)
    from ..models.catalog import deepface_names

    known = deepface_names()["detector"]
    if name not in known:
        raise UnknownName("detector", name, sorted(set(known) | set(OWN_DETECTORS)))
    return DeepFaceDetector(name, max_side, fallback)


# the detectors lookalike runs itself, by name: (max_side, fallback, threads) -> the detector;
# every other name is DeepFace's (DeepFaceDetector)
OWN_DETECTORS: dict[str, Callable[[int, bool, int | None], Detector]] = {
    "yunet": YuNetDetector,
    "dlib": lambda max_side, fallback, _threads: DlibHogDetector(max_side, fallback),
    "skip": lambda max_side, _fallback, _threads: WholeImage(max_side),
}


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


def _point(value: Sequence[float] | None) -> Point | None:
    if value is None:
        return None
    x, y = value
    return (float(x), float(y))


def rescale(d: Detection, factor: float) -> Detection:
    x, y, w, h = d.box

    def scaled(p: Point | None) -> Point | None:
        return None if p is None else (p[0] * factor, p[1] * factor)

    return Detection(
        box=(round(x * factor), round(y * factor), round(w * factor), round(h * factor)),
        confidence=d.confidence,
        left_eye=scaled(d.left_eye),
        right_eye=scaled(d.right_eye),
        landmarks=None if d.landmarks is None else tuple(scaled(p) for p in d.landmarks),  # type: ignore[arg-type]
    )


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """``box`` clipped to a ``width`` x ``height`` photo; ``None`` when under 2 px remain."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 when they do not touch): how the
    live tracker follows a face and how the landmark backfill finds a stored face again."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
