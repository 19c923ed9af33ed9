"""Morphs: the frames between face A and face B, and files to show them in.

A cross-dissolve alone shows two faces at once (four eyes half-way); a warp alone moves
one face's features into the other's places. A morph does both together: at step ``t``
both faces are warped onto the shape ``(1 - t) * A + t * B`` (their landmarks after a
Procrustes fit into one frame, :mod:`.geometry`) and the two warped pictures are mixed
``(1 - t) : t`` in linear light (:mod:`.colour`), so the half-way face is one face with
both people's features and no grey veil. The first frame is A (similarity-normalised into
the frame), the last is B.

A and B are any (RGB photo, landmarks) pairs: two photos, or a person's average face
(:class:`lookalike.imaging.average.Average`'s image and shape).

Writers: GIF (Pillow; a palette per frame, looping), MP4 (OpenCV's ``mp4v``), PNG (one
strip of frames side by side: what a page or a test can show at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ConfigError
from . import average as averaging
from . import colour, geometry
from .average import FEATHER, check_rgb

DEFAULT_FRAMES = 24
DEFAULT_SIZE = 256
MAX_FRAMES = 240
STRIP_MAX = 12  # a PNG strip shows at most this many frames (spread evenly over the morph)


class MorphFormat(str, Enum):
    """What a morph is written as, chosen by the output file's suffix."""

    gif = "gif"
    mp4 = "mp4"
    png = "png"

    @classmethod
    def of(cls, path: str | Path) -> MorphFormat:
        suffix = Path(path).suffix.lower().lstrip(".")
        try:
            return cls(suffix)
        except ValueError:
            raise ConfigError(f"{path}: a morph is written as .gif, .mp4 or .png, not {suffix or 'no suffix'!r}") \
                from None


def frames(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], count: int = DEFAULT_FRAMES,
           size: int = DEFAULT_SIZE) -> list[np.ndarray]:
    """``count`` RGB uint8 frames (``size`` px square) from A to B; ``a`` and ``b`` are
    (RGB uint8 photo, (N, 2) landmarks) pairs with the same N."""
    if not 2 <= count <= MAX_FRAMES:
        raise ConfigError(f"morph: {count} frames asked; a morph has 2 to {MAX_FRAMES}")
    if size < 32:
        raise ConfigError(f"morph: a size of {size} px is too small to draw a face (at least 32)")
    (image_a, points_a), (image_b, points_b) = a, b
    image_a, image_b = check_rgb(image_a), check_rgb(image_b)
    points_a, points_b = geometry.check_points(points_a), geometry.check_points(points_b)
    if len(points_a) != len(points_b):
        raise ValueError(f"morph: A has {len(points_a)} landmarks and B {len(points_b)}; they must match")
    reference = geometry.mean_shape([points_a, points_b], size)
    # each face's landmarks in the frame (by its own similarity): the two ends of the shape path
    shape_a = geometry.apply(geometry.similarity(points_a, reference), points_a)
    shape_b = geometry.apply(geometry.similarity(points_b, reference), points_b)
    tris = geometry.frame_triangles(reference, size)
    out = []
    for t in np.linspace(0.0, 1.0, count):
        target = (1 - t) * shape_a + t * shape_b
        raster = geometry.frame_raster(reference, target, size, tris)  # shared by both faces
        layers = []
        for image, points, share in ((image_a, points_a, 1 - t), (image_b, points_b, t)):
            warp = geometry.frame_warp(points, reference, raster, size)
            layers.append((colour.to_linear(warp.apply(image)), warp.coverage(image.shape, FEATHER * size)[..., None],
                           float(share)))
        out.append(colour.to_srgb(_mixed(layers, size)))
    return out


def _mixed(layers: list[tuple[np.ndarray, np.ndarray, float]], size: int) -> np.ndarray:
    """Linear frames mixed by their shares, each layer's share split between its own pixels
    (as far as its photo covers them) and the fill where it does not (:func:`average.fill`,
    from the pixels the photos do have): a tight crop's replicated edges painted streaks over
    most of a 256 px frame."""
    weighted = np.zeros_like(layers[0][0])
    weight = np.zeros_like(layers[0][1])
    for linear, cover, share in layers:
        weighted += share * cover * linear
        weight += share * cover
    uncovered = sum(share for _, _, share in layers) - weight
    if not float(np.max(uncovered)) > 1e-6:
        return weighted
    return weighted + uncovered * averaging.fill(weighted, weight, size)


FPS = 12.0  # a morph's frames a second, unless a caller asks otherwise


def write(frames_: list[np.ndarray], path: str | Path, fps: float = FPS) -> Path:
    """``frames_`` written to ``path`` in the format its suffix names (:class:`MorphFormat`)."""
    if not frames_:
        raise ValueError(f"{path}: no frames to write")
    path = Path(path)
    kind = MorphFormat.of(path)
    if kind is MorphFormat.gif:
        write_gif(frames_, path, fps)
    elif kind is MorphFormat.mp4:
        write_mp4(frames_, path, fps)
    else:
        write_strip(frames_, path)
    return path


HOLD_MS = 600  # each end of a GIF's loop, A and B, is shown this long: a face, then the next


def write_gif(frames_: Sequence[np.ndarray], path: str | Path | BinaryIO, fps: float) -> None:
    """A looping GIF; it plays there and back, so the loop has no jump from B to A, and rests
    on each face (:data:`HOLD_MS`). ``path`` may be a file object (a visitor's morph is made
    in memory and never touches disk).

    One palette for every frame, taken from all of them, and each frame dithered onto it
    (Floyd-Steinberg): a palette per frame without dithering drew contour bands across smooth
    skin and backgrounds, and made them flicker from frame to frame. Pillow dithers only onto
    a palette it is given; the fast octree quantizer makes it (median cut took ~0.15 s)."""
    from PIL import Image

    there_and_back = list(frames_) + list(frames_[-2:0:-1])
    sample = np.concatenate([np.asarray(f)[::4, ::4] for f in frames_], axis=0)  # every frame's colours
    palette = Image.fromarray(sample).quantize(256, method=Image.Quantize.FASTOCTREE)
    pictures = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
                for f in there_and_back]
    step = int(round(1000 / fps))
    durations = [HOLD_MS if i in (0, len(frames_) - 1) else step for i in range(len(pictures))]
    pictures[0].save(path, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=durations, loop=0, optimize=False, disposal=1)


def gif_bytes(frames_: Sequence[np.ndarray], fps: float = FPS) -> bytes:
    """:func:`write_gif` in memory: the GIF's bytes (a visitor's morph never touches disk)."""
    import io

    out = io.BytesIO()
    write_gif(frames_, out, fps)
    return out.getvalue()


def write_mp4(frames_: list[np.ndarray], path: Path, fps: float) -> None:
    """An MP4 (MPEG-4 part 2, ``mp4v``: the codec every OpenCV build can write)."""
    import cv2

    height, width = frames_[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise ConfigError(f"{path}: cannot write an MP4 video there")
    try:
        for frame in frames_:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()


def strip(frames_: list[np.ndarray], most: int = STRIP_MAX) -> np.ndarray:
    """At most ``most`` frames, evenly spread and always with the first and the last, side by side."""
    picks = np.unique(np.rint(np.linspace(0, len(frames_) - 1, min(most, len(frames_)))).astype(int))
    return np.hstack([frames_[i] for i in picks])


def write_strip(frames_: list[np.ndarray], path: Path) -> None:
    from PIL import Image

    Image.fromarray(strip(frames_)).save(path, format="PNG")
