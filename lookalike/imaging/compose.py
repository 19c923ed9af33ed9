"""Pictures put together for a person to look at: a face cut square, a photo cut to its
faces, pictures in a row with captions, a picture as PNG or JPEG bytes. Presentation only
(nothing here moves a face); kept apart from the verbs so that the CLI's ``--render`` and
``path --plot``, the web app and the answers of :mod:`lookalike.verbs.pictures` share one copy."""

from __future__ import annotations

import io

import numpy as np


def png_bytes(image: np.ndarray) -> bytes:
    """``image`` (RGB uint8) as PNG bytes, made in memory."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    """``image`` (RGB uint8) as JPEG bytes, made in memory."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def around(image: np.ndarray, boxes: list[tuple[int, int, int, int]], margin: float = 0.5) -> np.ndarray:
    """The part of ``image`` around ``boxes`` (their union and ``margin`` of its long side on
    each side, kept inside the picture): a photo cut to the faces it was filed for."""
    height, width = image.shape[:2]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    pad = int(max(right - left, bottom - top) * margin)
    left, top = max(0, left - pad), max(0, top - pad)
    right, bottom = min(width, right + pad), min(height, bottom + pad)
    return np.ascontiguousarray(image[top:max(bottom, top + 1), left:max(right, left + 1)])


def square_crop(image: np.ndarray, box: tuple[int, int, int, int], size: int, margin: float = 0.25) -> np.ndarray:
    """The square around ``box`` (``margin`` of its long side on each side, kept inside the
    picture) at ``size`` x ``size`` px."""
    from PIL import Image

    height, width = image.shape[:2]
    x, y, w, h = box
    side = max(2, min(int(max(w, h) * (1 + 2 * margin)), width, height))
    left = int(min(max(x + w / 2 - side / 2, 0), width - side))
    top = int(min(max(y + h / 2 - side / 2, 0), height - side))
    piece = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(piece.resize((size, size), Image.Resampling.LANCZOS))


def side_by_side(pictures: list[tuple[np.ndarray, str]], height: int = 192) -> np.ndarray:
    """Pictures in one row, each scaled to ``height`` px, a caption under each."""
    from PIL import Image, ImageDraw

    tiles = []
    for image, caption in pictures:
        picture = Image.fromarray(image)
        picture = picture.resize((max(1, round(picture.width * height / picture.height)), height))
        tile = Image.new("RGB", (picture.width, height + 18), "white")
        tile.paste(picture, (0, 0))
        ImageDraw.Draw(tile).text((3, height + 3), caption[:40], fill="black")
        tiles.append(np.asarray(tile))
    return np.hstack(tiles)
