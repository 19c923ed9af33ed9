"""fer's emotion model (mini-Xception, trained on FER-2013) as both offline analyzers feed it
(:mod:`.cydral`'s ``offline`` and :mod:`.agender`): a face box made square and grown by
~10 % (fer grows its haar boxes by 10 px), grayscale, 64 x 64, scaled to [-1, 1]; its output
is 7 probabilities in fer's order (:data:`~.base.EMOTIONS`). And the crop both offline
analyzers cut from the full photo (not the aligned chip used for recognition): a network fed
other crops than it was trained on loses accuracy."""

from __future__ import annotations

import numpy as np

EMOTION_MARGIN = 0.05  # per side, on the square box
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


def emotion_input(rgb: np.ndarray, box: tuple[int, int, int, int], margin: float = EMOTION_MARGIN) -> np.ndarray:
    import cv2

    gray = cv2.cvtColor(crop(rgb, box, margin, square=True), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (SIZE, SIZE)).astype(np.float32)
    return ((small / 255.0 - 0.5) * 2.0)[:, :, None]
