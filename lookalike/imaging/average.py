"""Average faces: every face warped onto the group's mean shape and averaged in linear light.

The face of one person averaged over their photos loses what varies between photos
(lighting, expression, blur) and keeps what stays (the person); the face of a group keeps
what its members share. Two things make that average sharp rather than a blur:

* shape first: each face is warped onto the Procrustes mean of all the faces' landmarks
  (:func:`lookalike.imaging.geometry.mean_shape`), so eyes fall on eyes and mouths on
  mouths before any pixel is added;
* light, not bytes: pixels are added in linear light (:mod:`.colour`) and converted back
  to sRGB once, so the mean is the colour the faces give off together, not a darker one.

Pixels a photo does not have (a tight crop's face frame reaches beyond its edge) are
weighed by :meth:`~lookalike.imaging.geometry.Warp.coverage`, so the average there comes
from the photos that do have them instead of smeared border pixels. Where no photo has
them at all (a corpus of tight crops), the frame is filled by a normalised convolution of
the pixels the photos do have — a soft continuation of the background — never by
replicated edge pixels, which paint streaks.

:class:`Accumulator` keeps only running sums (two float32 frames), so thousands of faces
stream through in the memory of one: the caller computes the mean shape from the stored
landmarks first (points only, cheap), then feeds the photos one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import colour, geometry

DEFAULT_SIZE = 256
FEATHER = 0.06  # coverage falls off over this share of the frame before a photo's edge
FILL_SIGMA = 0.08  # the fill's blur, a share of the frame: wide enough to reach across a margin


COVERED = 0.98  # a framed picture's share of pixels that the photos themselves cover (not fill)
FACE_MARGIN = 1.1  # a framed picture shows at least the face's box grown this much


@dataclass(frozen=True)
class Average:
    """An average face: the sRGB picture, the mean shape it is drawn in (frame pixels),
    how many faces went into it, and the square of the frame the photos cover
    (:func:`covered_square`: what a picture of it shows, :func:`framed`)."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    shape: np.ndarray  # (N, 2) float64, frame pixels
    count: int
    window: tuple[int, int, int] | None = None  # (x, y, side) in the frame; None: all of it

    @property
    def size(self) -> int:
        return int(self.image.shape[0])


def covered_square(trust: np.ndarray, shape: np.ndarray) -> tuple[int, int, int] | None:
    """The largest square of the frame, round the face, whose pixels the photos cover
    (``trust`` >= 0.5, :meth:`Accumulator.trust`) at least :data:`COVERED` of; None when
    that is the whole frame. Never smaller than the face's box grown :data:`FACE_MARGIN` times.

    Why: the frame leaves the face about half its side, for the hair, ears and shoulders of
    ordinary photos. Tight crops (a detector's face crops, close portraits) do not reach
    that far, and their average was a small face in a box of blurred fill, cut where the
    photos end; the picture shown is this square of it, the face larger, the fill gone."""
    import cv2

    size = trust.shape[0]
    covered = np.ascontiguousarray(trust[..., 0] >= 0.5, dtype=np.uint8)
    if covered.mean() >= COVERED:
        return None
    sums = cv2.integral(covered)  # (size + 1, size + 1): any square's count in four reads
    low, high = shape.min(axis=0), shape.max(axis=0)
    centre = (low + high) / 2
    smallest = min(size, int(np.ceil(FACE_MARGIN * float((high - low).max()))))
    if smallest >= size:  # the face's box fills the frame: nothing to cut
        return None
    for side in range(size - 1, smallest - 1, -1):
        x = int(np.clip(round(centre[0] - side / 2), 0, size - side))
        y = int(np.clip(round(centre[1] - side / 2), 0, size - side))
        held = sums[y + side, x + side] - sums[y, x + side] - sums[y + side, x] + sums[y, x]
        if held >= COVERED * side * side:
            return x, y, side
    return x, y, smallest


def framed(image: np.ndarray, shape: np.ndarray, window: tuple[int, int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (a frame) cut to ``window`` and brought back to its size, with ``shape`` moved
    along: the picture an average shows, and the points a morph from it needs."""
    if window is None:
        return image, shape
    import cv2

    x, y, side = window
    size = image.shape[0]
    picture = cv2.resize(image[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_CUBIC)
    return picture, (shape - (x, y)) * (size / side)


class Accumulator:
    """Running sums of faces warped onto one mean shape, in linear light."""

    def __init__(self, shape: np.ndarray, size: int = DEFAULT_SIZE, cover: int = 1) -> None:
        """``cover``: how many photos a pixel needs before it is shown as their mean; pixels
        fewer photos have fade into the fill. A group's average asks for as many as the
        people it needs: where one wide photo alone reaches past the others' tight crops,
        its hair, clothes and background were the picture's whole margin — that member,
        recognisably, around a blended face."""
        if size < 32:
            raise ConfigError(f"average: a size of {size} px is too small to draw a face (at least 32)")
        if cover < 1:
            raise ValueError(f"average: a pixel needs at least one photo to be shown (cover {cover})")
        self.cover = cover
        self.shape = geometry.check_points(shape, "mean shape")
        self.size = size
        self._raster = geometry.frame_raster(self.shape, self.shape, size)
        self._sum = np.zeros((size, size, 3), dtype=np.float32)
        self._weight = np.zeros((size, size, 1), dtype=np.float32)
        self._spare = np.zeros((size, size, 3), dtype=np.float32)  # replicated borders, if nothing else
        self.count = 0

    def add(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One face: its RGB uint8 photo and its landmarks (the mean shape's N points).
        Returns the photo warped onto the mean shape (the appearance model takes its texture
        from it rather than warp each face a second time)."""
        rgb = check_rgb(image)
        points = geometry.check_points(points)
        if len(points) != len(self.shape):
            raise ValueError(f"average: a face with {len(points)} landmarks cannot join faces "
                              f"with {len(self.shape)}")
        warp = geometry.frame_warp(points, self.shape, self._raster, self.size)
        weight = warp.coverage(rgb.shape, FEATHER * self.size)[..., None]
        warped = warp.apply(rgb)
        linear = colour.to_linear(warped)
        self._sum += linear * weight
        self._weight += weight
        if self.count < 8:  # a few faces' own borders, for a frame no photo covers anywhere
            self._spare += linear
        self.count += 1
        return warped

    def trust(self) -> np.ndarray:
        """How far each pixel is the photos' own mean rather than fill, 0-1, (size, size, 1):
        ``cover`` whole faces' coverage (one, for a person's average)."""
        weight = self._weight
        trust = np.clip(weight - (self.cover - 1), 0.0, 1.0)
        if not float(trust.max()) > 0.0:  # never where the faces themselves overlap; kept total
            trust = np.clip(weight, 0.0, 1.0)
        return trust

    def linear(self) -> np.ndarray:
        """The average so far in linear light, float32 (size, size, 3)."""
        if self.count == 0:
            raise ValueError("average: no faces to average")
        weight = self._weight
        if not float(weight.max()) > 0.0:  # no photo covers any pixel: only their borders are left
            return self._spare / min(self.count, 8)
        mean = self._sum / np.maximum(weight, 1e-12)
        trust = self.trust()
        if float(trust.min()) >= 1.0:
            return mean
        return trust * mean + (1.0 - trust) * fill(mean * trust, trust, self.size)

    def result(self) -> Average:
        window = covered_square(self.trust(), self.shape) if float(self._weight.max()) > 0.0 else None
        return Average(colour.to_srgb(self.linear()), self.shape.copy(), self.count, window)


def fill(weighted: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """Colours for the pixels of a ``size`` px frame that too few photos cover: ``weighted``
    (colours times ``weight``, summed over the photos) blurred outwards and divided by the
    blurred ``weight`` (a normalised convolution), widened until it reaches every pixel. Only
    what is weighed feeds it, so a photo's replicated edge is not smeared back in."""
    import cv2

    sigma = FILL_SIGMA * size
    for _ in range(4):
        spread = cv2.GaussianBlur(weight[..., 0], (0, 0), sigma)[..., None]
        if float(spread.min()) > 1e-6:
            break
        sigma *= 2.0
    colours = cv2.GaussianBlur(weighted, (0, 0), sigma)
    out = colours / np.maximum(spread, 1e-12)
    overall = weighted.sum(axis=(0, 1)) / max(float(weight.sum()), 1e-12)
    return np.where(spread > 1e-6, out, overall).astype(np.float32)


def average(faces: Iterable[tuple[np.ndarray, np.ndarray]], size: int = DEFAULT_SIZE,
            shape: np.ndarray | None = None) -> Average:
    """The average of ``faces`` — (RGB uint8 photo, (N, 2) landmarks) pairs — at ``size`` px.

    Without ``shape`` the mean shape is computed from the faces first, which needs them
    all at hand (a sequence). For thousands, pass ``shape=mean_shape(points, size)`` and a
    generator that reads one photo at a time: only the running sums stay in memory."""
    if shape is None:
        if not isinstance(faces, Sequence):
            faces = list(faces)
        if not faces:
            raise ValueError("average: no faces to average")
        shape = geometry.mean_shape([p for _, p in faces], size)
    acc = Accumulator(shape, size)
    for image, points in faces:
        acc.add(image, points)
    return acc.result()


def check_rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 2:
        raise ValueError(f"expected an RGB uint8 photo of shape (H, W, 3), got {array.dtype} {array.shape}")
    return array
