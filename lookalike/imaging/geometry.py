"""Face geometry: similarity-normalised shapes, a fixed boundary, triangles, warping.

A face's *shape* is its N landmark points, an (N, 2) float array in image pixels, in the
landmark model's order (any N: dlib's 68, MediaPipe's 468); nothing here knows what a
point means. Every picture of :mod:`lookalike.imaging` is made in one square *frame* of
``size`` px, where the group's mean shape sits upright, at a fixed place and scale
(:data:`FACE_EXTENT`, :data:`FACE_CENTRE`), so faces from photos of any size and pose
line up.

* :func:`mean_shape`: generalised Procrustes analysis (each shape rotated, scaled and
  moved onto the running mean, a few rounds), turned to the *average pose of the photos*
  rather than to the first shape, so the mean of upright photos is upright whatever the
  landmark model.
* :func:`boundary`: points the warp keeps fixed — a ring around the face and the frame's
  edges. Without them the triangles stop at the face's outline and everything outside
  (hair, ears, background) is either cut off or torn; with them, the region between the
  outline and the ring stretches smoothly, and outside the ring each photo moves by one
  similarity only. :func:`anchored` gives a photo's points with the boundary mapped
  into that photo.
* :func:`triangles`: Delaunay triangles of the destination points (scipy's Qhull), made
  once per destination and reused for every face warped onto it, so a triangle is the
  same three landmarks in every face.
* :class:`Raster` and :class:`Warp`: the piecewise-affine map. Triangles are rasterised
  into a label image with ``cv2.fillConvexPoly`` once per destination shape, each
  triangle's affine map is solved (the three-point solve ``cv2.getAffineTransform`` does,
  batched in numpy), and one ``cv2.remap`` pulls every output pixel from the source.
  This is OpenCV's per-triangle warp without its classic defect: warping each triangle's
  bounding box with ``cv2.warpAffine`` and a mask leaves one-pixel cracks (black
  hairlines) where the masks of two triangles meet, and pays for every pixel of every box;
  here each pixel belongs to exactly one triangle and is resampled once. Pixels that
  fall outside the source photo repeat its border (``BORDER_REPLICATE``) — never a
  reflected border, which paints mirror images of the face around it — and
  :meth:`Warp.coverage` says how far inside the photo each pixel came from, so an
  average can weigh such pixels down.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

FACE_EXTENT = 0.5  # the mean shape's larger side, as a share of the frame
FACE_CENTRE = (0.5, 0.55)  # where the centre of its bounding box sits (x, y), as shares
RING_SCALE = 1.5  # the ring around the face: its bounding box grown this much
RING_POINTS = 24
EDGE_POINTS = 4  # points per frame side, corners included
PROCRUSTES_ROUNDS = 4


def check_points(points: np.ndarray, what: str = "landmarks") -> np.ndarray:
    """``points`` as a float64 (N, 2) array; a clear error if it is not one (N >= 3, finite)."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < 3 or not np.isfinite(array).all():
        raise ValueError(f"{what}: expected an (N, 2) array of at least 3 finite points, "
                          f"got shape {array.shape}")
    return array


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (rotation, uniform scale, shift; no reflection) that maps
    ``source`` onto ``target`` best in least squares (Umeyama's closed form)."""
    src, dst = check_points(source), check_points(target)
    if src.shape != dst.shape:
        raise ValueError(f"landmarks: {len(src)} points cannot be matched with {len(dst)}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    # for centred 2-D point sets the optimal rotation+scale is one complex number
    dot = float((a * b).sum())
    cross = float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum())
    norm = float((a * a).sum()) or 1e-12
    c, s = dot / norm, cross / norm
    rotation = np.array([[c, -s], [s, c]])
    return np.hstack([rotation, (mu_d - rotation @ mu_s)[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) moved by the 2 x 3 affine ``matrix``."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2 x 3 affine map."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, (-linear @ matrix[:, 2])[:, None]])


def _unit(shapes: np.ndarray) -> np.ndarray:
    """Each (N, 2) shape of ``shapes`` (M, N, 2) centred and scaled to unit RMS radius."""
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred ** 2).sum(axis=(1, 2), keepdims=True) / shapes.shape[1])
    return centred / np.maximum(radius, 1e-12)


def _rotate_onto(shapes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each centred shape rotated (and scaled) onto the centred ``reference``, all at once."""
    dot = np.einsum("mnk,nk->m", shapes, reference)
    cross = np.einsum("mn,n->m", shapes[:, :, 0], reference[:, 1]) - np.einsum("mn,n->m", shapes[:, :, 1],
                                                                                 reference[:, 0])
    norm = np.maximum((shapes ** 2).sum(axis=(1, 2)), 1e-12)
    c, s = (dot / norm)[:, None], (cross / norm)[:, None]
    x, y = shapes[:, :, 0], shapes[:, :, 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def place(shape: np.ndarray, size: int) -> np.ndarray:
    """``shape`` scaled and moved (never rotated) so its bounding box's larger side is
    :data:`FACE_EXTENT` of a ``size`` px frame, centred at :data:`FACE_CENTRE`."""
    shape = check_points(shape)
    low, high = shape.min(axis=0), shape.max(axis=0)
    scale = FACE_EXTENT * size / max(float((high - low).max()), 1e-12)
    centre = np.array(FACE_CENTRE) * size
    return (shape - (low + high) / 2) * scale + centre


def mean_shape(shapes: Iterable[np.ndarray], size: int) -> np.ndarray:
    """The Procrustes mean of ``shapes`` (each (N, 2), any pose and scale), upright in a
    ``size`` px frame (see the module docstring)."""
    stack = np.stack([check_points(s) for s in shapes]) if not isinstance(shapes, np.ndarray) \
        else np.asarray(shapes, dtype=np.float64)
    if stack.ndim != 3 or len(stack) == 0:
        raise ValueError("mean shape: no faces given")
    unit = _unit(stack)
    mean = unit[0]
    for _ in range(PROCRUSTES_ROUNDS):
        mean = _unit(_rotate_onto(unit, mean).mean(axis=0)[None])[0]
    # the photos' own average pose (upright photos: upright), not the first face's tilt
    pose = _unit(unit.mean(axis=0)[None])[0]
    upright = apply(similarity(mean, pose), mean)
    return place(upright, size)


def ring(shape: np.ndarray, scale: float = RING_SCALE, count: int = RING_POINTS) -> np.ndarray:
    """``count`` points on the ellipse round ``shape``'s bounding box grown ``scale`` times."""
    pts = check_points(shape)
    low, high = pts.min(axis=0), pts.max(axis=0)
    centre, half = (low + high) / 2, (high - low) / 2 * scale
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return centre + half * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def rectangle(width: int, height: int, per_side: int = EDGE_POINTS) -> np.ndarray:
    """``per_side`` points along each side of a ``width`` x ``height`` picture, corners included."""
    xs, ys = np.linspace(0, width - 1, per_side), np.linspace(0, height - 1, per_side)
    right, bottom = float(width - 1), float(height - 1)
    edges = [(x, 0.0) for x in xs] + [(x, bottom) for x in xs] \
        + [(0.0, y) for y in ys[1:-1]] + [(right, y) for y in ys[1:-1]]
    return np.array(edges, dtype=np.float64)


def boundary(reference: np.ndarray, size: int) -> np.ndarray:
    """The fixed points of a ``size`` px frame around the face ``reference``: its
    :func:`ring` and :data:`EDGE_POINTS` per side of the frame."""
    return np.vstack([ring(reference), rectangle(size, size)])


def anchored(points: np.ndarray, reference: np.ndarray, size: int) -> np.ndarray:
    """A photo's landmarks followed by the frame's :func:`boundary`, mapped into the photo
    by the inverse of the similarity that takes ``points`` onto ``reference``: the source
    points of a warp into the frame."""
    points = check_points(points)
    back = invert(similarity(points, reference))
    return np.vstack([points, apply(back, boundary(reference, size))])


def triangles(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles of ``points``, as (T, 3) indices into it."""
    from scipy.spatial import Delaunay

    return np.asarray(Delaunay(check_points(points, "triangle points")).simplices, dtype=np.int32)


def unfolded(source: np.ndarray, target: np.ndarray, tris: np.ndarray, rounds: int = 16) -> np.ndarray:
    """``target`` with the moves of the points that would fold ``tris`` (triangles of
    ``source``) shortened: a triangle that turns over, or shrinks under a tenth of its
    area, has its corners' moves halved, round after round, and the last round's still
    folded corners do not move. A moved mesh that folds draws the photo's pixels twice
    over and tears the outline: a turned face's far cheek, its points packed close, moved
    by a frontal shape difference, became a saw-tooth edge."""
    src, dst = check_points(source, "source points"), check_points(target, "target points")
    if src.shape != dst.shape:
        raise ValueError(f"unfold: {len(src)} source points for {len(dst)} target points")
    tris = np.asarray(tris, dtype=np.int64)

    def area(points: np.ndarray) -> np.ndarray:
        a, b, c = points[tris[:, 0]], points[tris[:, 1]], points[tris[:, 2]]
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    before = area(src)
    move = dst - src
    scale = np.ones(len(src))
    for round_no in range(rounds + 1):
        after = area(src + move * scale[:, None])
        bad = after * np.sign(before) < 0.1 * np.abs(before)
        if not bad.any():
            break
        corners = np.unique(tris[bad].ravel())
        scale[corners] = 0.0 if round_no == rounds else scale[corners] * 0.5
    return src + move * scale[:, None]


class Raster:
    """The destination half of a piecewise-affine warp: which triangle covers each output
    pixel. It depends only on the destination points, so every face warped onto the same
    shape (an average's faces, the two ends of a morph frame) shares one."""

    def __init__(self, target: np.ndarray, tris: np.ndarray, out_size: tuple[int, int]) -> None:
        import cv2

        self.target = check_points(target, "target points")
        self.tris = np.asarray(tris, dtype=np.int32)
        width, height = out_size
        labels = np.full((height, width), -1, dtype=np.int32)
        fixed = np.rint(self.target * 16).astype(np.int32)  # 4 fractional bits: edges land where the points are
        for index, tri in enumerate(self.tris):
            cv2.fillConvexPoly(labels, fixed[tri], index, cv2.LINE_8, 4)
        self.inside = labels >= 0  # pixels some triangle covers
        self.labels = np.maximum(labels, 0)
        # [x y 1] @ A = source for each triangle: the solve cv2.getAffineTransform does,
        # batched; a flat triangle (none in a Delaunay triangulation) falls back to pinv
        corners = np.concatenate([self.target[self.tris], np.ones((len(self.tris), 3, 1))], axis=2)
        try:
            self.solve = np.linalg.inv(corners)  # (T, 3, 3)
        except np.linalg.LinAlgError:
            self.solve = np.linalg.pinv(corners)
        ys, xs = np.indices((height, width), dtype=np.float32)
        self.xs, self.ys = xs, ys
        self.size = (width, height)


class Warp:
    """A piecewise-affine map from source points onto a :class:`Raster`'s destination,
    computed once and applied to any number of images of the source."""

    def __init__(self, source: np.ndarray, raster: Raster) -> None:
        src = check_points(source, "source points")
        if src.shape != raster.target.shape:
            raise ValueError(f"warp: {len(src)} source points for {len(raster.target)} target points")
        coeffs = (raster.solve @ src[raster.tris]).reshape(len(raster.tris), 6).astype(np.float32)
        chosen = coeffs[raster.labels]  # (H, W, 6): a_x, a_y, b_x, b_y, c_x, c_y
        self.map_x = raster.xs * chosen[..., 0] + raster.ys * chosen[..., 2] + chosen[..., 4]
        self.map_y = raster.xs * chosen[..., 1] + raster.ys * chosen[..., 3] + chosen[..., 5]
        self.inside = raster.inside
        self.map_x[~self.inside] = -1e6  # nothing drawn there: left black by apply
        self.map_y[~self.inside] = -1e6
        self.size = raster.size

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``image`` (the source photo, any channels, uint8 or float) warped; source pixels
        beyond the photo's edge repeat its border."""
        import cv2

        out = cv2.remap(image, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[~self.inside] = 0
        return out

    def coverage(self, source_shape: tuple[int, ...], feather: float) -> np.ndarray:
        """Per output pixel, how much an average should trust it: 1 well inside the source
        photo, falling to 0 over the last ``feather`` px before its edge (a crop's edge
        pixels are often its worst, and a hard step there draws the crop's outline)."""
        height, width = source_shape[:2]
        distance = np.minimum.reduce([self.map_x + 0.5, self.map_y + 0.5,
                                      width - 0.5 - self.map_x, height - 0.5 - self.map_y])
        weight = np.clip(distance / max(feather, 1e-6), 0.0, 1.0).astype(np.float32)
        weight[~self.inside] = 0.0
        return weight


def frame_raster(reference: np.ndarray, target: np.ndarray, size: int, tris: np.ndarray | None = None) -> Raster:
    """The :class:`Raster` of a ``size`` px frame built around ``reference`` whose landmarks
    are moved to ``target`` (the reference itself, or a shape on the way to another face);
    ``tris``: :func:`frame_triangles` of the reference, when many frames share it."""
    dst = np.vstack([check_points(target, "target shape"), boundary(reference, size)])
    return Raster(dst, triangles(dst) if tris is None else tris, (size, size))


def frame_warp(points: np.ndarray, reference: np.ndarray, raster: Raster, size: int) -> Warp:
    """The warp that takes a photo whose landmarks are ``points`` into the frame of
    ``raster`` (made by :func:`frame_raster` around ``reference``)."""
    return Warp(anchored(points, reference, size), raster)


def frame_triangles(reference: np.ndarray, size: int) -> np.ndarray:
    """The triangles of a frame around ``reference`` (its landmarks, then its boundary)."""
    return triangles(np.vstack([check_points(reference), boundary(reference, size)]))


# The points round the eyes, brows and lips in the landmark models lookalike stores (the face
# mesh's 468, MediaPipe's FACEMESH_* sets; dlib's 68), and how much each outline is grown to
# take in lashes, eyeliner and the lips' edge. What a person's eyes, brows and mouth look
# like is theirs: a transform leaves them (:func:`features_mask`).
FEATURES: dict[int, tuple[tuple[tuple[int, ...], float], ...]] = {
    468: (((33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173), 1.2),
          ((263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398), 1.2),
          ((46, 53, 52, 65, 55, 70, 63, 105, 66, 107), 1.15),
          ((276, 283, 282, 295, 285, 300, 293, 334, 296, 336), 1.15),
          ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185), 1.0)),
    68: ((tuple(range(36, 42)), 1.2), (tuple(range(42, 48)), 1.2), (tuple(range(17, 22)), 1.15),
         (tuple(range(22, 27)), 1.15), (tuple(range(48, 60)), 1.0)),
}


def features_mask(shape: np.ndarray, out_size: tuple[int, int], feather: float) -> np.ndarray:
    """float32 (H, W): 1 over the eyes, brows and lips of ``shape`` (:data:`FEATURES`),
    fading to 0 over ``feather`` px outside them; all 0 for a landmark model not listed."""
    import cv2

    pts = check_points(shape)
    width, height = out_size
    mask = np.zeros((height, width), dtype=np.uint8)
    for indices, growth in FEATURES.get(len(pts), ()):
        part = pts[list(indices)]
        centre = part.mean(axis=0)
        hull = cv2.convexHull(np.rint((centre + (part - centre) * growth) * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, 4)
    soft = mask.astype(np.float32) / 255.0
    if feather > 0 and soft.any():
        radius = max(1, int(round(feather)))
        grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
        soft = np.maximum(soft, cv2.GaussianBlur(grown.astype(np.float32) / 255.0, (0, 0), sigmaX=feather / 2))
    return np.clip(soft, 0.0, 1.0)


def face_mask(shape: np.ndarray, out_size: tuple[int, int], feather: float, growth: float = 1.0) -> np.ndarray:
    """float32 (H, W) mask: 1 inside the convex hull of ``shape`` grown ``growth`` times
    about its centre (a landmark model's outline may stop at the brows: growing it takes in
    the forehead), fading to 0 over about ``feather`` px *inside* the hull's edge."""
    import cv2

    width, height = out_size
    pts = check_points(shape)
    centre = pts.mean(axis=0)
    pts = np.vstack([pts, centre + (pts - centre) * growth])
    mask = np.zeros((height, width), dtype=np.uint8)
    hull = cv2.convexHull(np.rint(pts * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, 4)
    if feather <= 0:
        return mask.astype(np.float32) / 255.0
    radius = max(1, int(round(feather)))
    inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    soft = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), sigmaX=feather / 2)
    return np.minimum(soft, mask.astype(np.float32) / 255.0)
