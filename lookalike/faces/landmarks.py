"""Dense face landmarks: MediaPipe's face mesh, 468 points per face, offline.

The imaging stage (average faces, morphs, transforms) warps faces by their shapes, so it
needs many more points than the detector's five. The model is MediaPipe's face mesh
(``face_landmark.tflite`` from the ``mediapipe==0.10.14`` wheel, Apache-2.0), run by
OpenVINO, or by LiteRT (:mod:`lookalike.models.litert`) under ONNX Runtime; dlib's
68-point predictor was measured beside it (``bench/landmarks.py``) and left out: its
training set's terms exclude commercial use, and the kiosk is recruitment outreach.

The mesh wants a square, upright crop of the face with a margin, 192 x 192 px, RGB in
[0, 1]. It is cut from the detector's face the way MediaPipe cuts it from its own
detector's: centred on the box, ``MARGIN`` times its long side, turned so that the
eyes (the detector's first two points) lie level. When the first pass's own points
say the crop was off (its centre by more than ``REFIT`` of its side, or its size by more
than that share), a second pass re-cuts it from them, as MediaPipe's video tracking
does from the previous frame: a box drawn by another detector, or a bare stored box
(the backfill's fallback), then still gives a crop the mesh knows. On YuNet's faces the
first crop is nearly always right (a second pass on ~5 % of lfw-dev and celeb faces):
two passes everywhere would halve the points' wobble when the box moves, at twice the
cost, which ingest's budget (at most 10 % of its photos/s) does not allow
(bench/landmarks.py measures one, two and this adaptive choice).

Points come back in the photo's own pixel coordinates (x, y), float32, in MediaPipe's
order (its canonical face model's 468 vertices: 1 nose tip, 33 and 263 the outer eye
corners, 61 and 291 the mouth corners, 152 the chin, 10 the top of the forehead).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..models import registry
from .detect import Detection

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..models.runtime import Graph

MODEL = "face-mesh"  # the registry's name for it (``lookalike models install face-mesh``)
POINTS = 468
INPUT = 192  # the crop's side, px
MARGIN = 1.5  # the crop's side over the face box's long side (MediaPipe's ROI scale)
PASSES = 2  # at most: a second pass re-cuts the crop from the first pass's points
REFIT = 0.1  # ... when the first crop's centre or size was off by more than this share

# MediaPipe's indices of a few named points (its canonical face model)
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10
# outer and inner corners of the eye on the viewer's left (the person's right eye), and right
RIGHT_EYE = (33, 133)
LEFT_EYE = (263, 362)
MOUTH = (61, 291)  # corners, viewer's left first


def require() -> None:
    """The mesh's weights in place, else :class:`~lookalike.errors.ModelMissing` saying
    ``run: lookalike models install face-mesh``."""
    registry.require(MODEL)


def landmarks(rgb: np.ndarray, face: Detection, *, threads: int | None = None) -> np.ndarray:
    """The face's :data:`POINTS` landmarks, an (N, 2) float32 array of (x, y) in ``rgb``'s
    pixel coordinates.

    ``rgb``: the decoded photo, (H, W, 3) uint8 RGB (:mod:`.images`' convention, what the
    detector saw); ``face``: one of the detector's faces for it (its box, and its five
    points when the detector gives them: YuNet does, and then the crop is turned upright
    by the eyes). ``threads``: the runtime's threads (None: one per core; ingest workers
    pass 1). Points may lie outside the photo where the face does (a chin cut by the
    frame). Raises :class:`~lookalike.errors.ModelMissing` when the model is not
    installed."""
    return landmarks_of([(rgb, face)], threads=threads)[0]


def landmarks_of(faces: Sequence[tuple[np.ndarray, Detection]], *, threads: int | None = None) -> list[np.ndarray]:
    """:func:`landmarks` of several faces (each with its photo), their crops run through the
    mesh together: at bf16 eight crops a run cost 0.81 ms of CPU a face against 1.30 one at
    a time (one thread, 2026-12-06); an ingest worker sends the faces of eight photos. The
    points are each face's own, whatever else runs with it."""
    model: Graph = registry.load(MODEL, threads)
    rois = [box_roi(face) for _, face in faces]
    points = run_mesh(model, [(rgb, roi) for (rgb, _), roi in zip(faces, rois)])
    for _ in range(PASSES - 1):
        again = []
        for i, ((center, side, _), found) in enumerate(zip(rois, points)):
            fit = points_roi(found)
            if _off(center, side, fit[0], fit[1]):
                rois[i] = fit
                again.append(i)
        if not again:
            break
        for i, found in zip(again, run_mesh(model, [(faces[i][0], rois[i]) for i in again])):
            points[i] = found
    return points


def _off(center: np.ndarray, side: float, fit_center: np.ndarray, fit_side: float) -> bool:
    """Whether the crop the points ask for differs from the one used by more than REFIT."""
    moved = float(np.linalg.norm(fit_center - center)) / side
    return moved > REFIT or abs(fit_side / side - 1.0) > REFIT


def box_roi(face: Detection) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle in radians) of the first crop, from the detector's face."""
    x, y, w, h = face.box
    center = np.array([x + w / 2.0, y + h / 2.0], np.float64)
    angle = 0.0
    if face.landmarks is not None:
        (rx, ry), (lx, ly) = face.landmarks[0], face.landmarks[1]
        angle = math.atan2(ly - ry, lx - rx)
    return center, MARGIN * max(w, h), angle


def points_roi(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle) of the crop around a pass's points: MediaPipe's tracking ROI
    (rotation by the outer eye corners, the points' extent in that frame, times MARGIN)."""
    dx, dy = points[LEFT_EYE[0]] - points[RIGHT_EYE[0]]
    angle = math.atan2(float(dy), float(dx))
    cos, sin = math.cos(angle), math.sin(angle)
    turned = points.astype(np.float64) @ np.array([[cos, -sin], [sin, cos]])  # into the upright frame
    low, high = turned.min(axis=0), turned.max(axis=0)
    mid = (low + high) / 2.0
    center = mid @ np.array([[cos, sin], [-sin, cos]])  # back into the photo
    return center, MARGIN * float((high - low).max()), angle


def crop_matrix(center: np.ndarray, side: float, angle: float) -> np.ndarray:
    """The 2 x 3 affine map from crop pixels (0..INPUT) to photo pixels."""
    scale = side / INPUT
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    offset = center - linear @ np.array([INPUT / 2.0, INPUT / 2.0])
    return np.hstack([linear, offset[:, None]])


def run_mesh(model: Graph, crops: Sequence[tuple[np.ndarray, tuple[np.ndarray, float, float]]]) -> list[np.ndarray]:
    """The mesh's points for each (photo, (centre, side, angle)) crop, in the photo's pixels;
    the crops go through the model :attr:`Graph.batch` at a time."""
    import cv2

    if not crops:
        return []
    matrices = [crop_matrix(*roi) for _, roi in crops]
    batch = np.stack([
        cv2.warpAffine(rgb, matrix, (INPUT, INPUT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        for (rgb, _), matrix in zip(crops, matrices)]).astype(np.float32) / 255.0
    step = max(1, model.batch)
    meshes = np.concatenate([model.run(batch[i:i + step]).reshape(-1, POINTS * 3)
                             for i in range(0, len(batch), step)])
    out = []
    for mesh, matrix in zip(meshes, matrices):
        xy = mesh.reshape(POINTS, 3)[:, :2].astype(np.float64)
        out.append((xy @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32))
    return out
