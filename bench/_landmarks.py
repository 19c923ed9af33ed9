"""Dense landmarks for the imaging tests and benchmark, in one place: the product's own.

lookalike's YuNet detector (:mod:`lookalike.faces.detect`) finds the largest face and
MediaPipe's face mesh (:mod:`lookalike.faces.landmarks`, the model ingest stores and
:mod:`lookalike.verbs.pictures` draws from) places its 468 points on it, so the issue's
measured properties hold for the landmarks the product actually uses. Everything else
takes (N, 2) float32 arrays.
"""

from __future__ import annotations

import numpy as np

# the face mesh's cheek centres (MediaPipe's canonical face model): for each cheek, the
# vertex on the cheekbone's apple (50 / 280), the one below it towards the mouth's
# corner (205 / 425) and the one out towards the ear (123 / 352); viewer's left first
CHEEKS_MESH = ((50, 205, 101), (280, 425, 330))
FACE_EDGES = (234, 454)  # the mesh's outermost points left and right: the face's width


class Landmarker:
    """rgb photo -> (the largest face's box, its (468, 2) float32 mesh landmarks), or None."""

    def __init__(self) -> None:
        from lookalike.faces import detect, landmarks

        landmarks.require()
        self.detector = detect.build("yunet", 1280)

    def __call__(self, rgb: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        from lookalike.faces import landmarks

        found = self.detector.detect(rgb)
        if not found:
            return None
        return found[0].box, landmarks.landmarks(rgb, found[0])


def cheek_masks(points: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """A bool mask of both cheeks (mesh landmarks): a disc at the centre of each cheek's
    points, a sixth of the face's width across."""
    import cv2

    mask = np.zeros(image_shape[:2], dtype=np.uint8)
    width = float(np.linalg.norm(points[FACE_EDGES[1]] - points[FACE_EDGES[0]]))
    for group in CHEEKS_MESH:
        cx, cy = points[list(group)].mean(axis=0)
        cv2.circle(mask, (int(round(cx)), int(round(cy))), max(2, int(width / 12)), 1, -1)
    return mask.astype(bool)
