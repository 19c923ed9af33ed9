"""Montages: face crops in a grid with a caption under each (Pillow).

Used for "the many faces of …" (``lookalike person --montage``) and, later, for the
explore views. Crops are cut from the original photo files at render time; nothing is
cached on disk, so removing a person leaves no crop behind.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadImage

if TYPE_CHECKING:
    from PIL import Image

TILE = 160
CAPTION = 34


@dataclass(frozen=True)
class Tile:
    photo: str
    bbox: tuple[int, int, int, int]
    caption: str
    highlight: bool = False  # drawn with a red frame (e.g. an outlier)


def crop(photo: str, bbox: tuple[int, int, int, int], size: int = TILE, margin: float = 0.25) -> Image.Image:
    """The face with a margin, square, ``size`` px; EXIF orientation applied as at ingest."""
    from PIL import Image

    from .images import decode_file

    rgb = decode_file(photo, 10**9).rgb
    height, width = rgb.shape[:2]
    x, y, w, h = bbox
    # as much margin as the photo has (a tight face crop gets none), never bars around it
    side = min(int(max(w, h) * (1 + 2 * margin)), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(cx - side / 2, 0), width - side))
    top = int(min(max(cy - side / 2, 0), height - side))
    img = Image.fromarray(rgb).crop((left, top, left + side, top + side))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def render(tiles: Sequence[Tile], path: str | Path, title: str | None = None, columns: int = 0) -> Path:
    """Write a grid of ``tiles`` to ``path`` (format from the extension)."""
    from PIL import Image, ImageDraw, ImageFont

    if not tiles:
        raise ValueError("nothing to draw")
    columns = columns or min(len(tiles), max(4, math.ceil(math.sqrt(len(tiles)))))
    rows = math.ceil(len(tiles) / columns)
    head = 36 if title else 0
    sheet = Image.new("RGB", (columns * TILE, head + rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    if title:
        draw.text((8, 8), title, fill="black", font=ImageFont.load_default(size=18))
    for i, tile in enumerate(tiles):
        left, top = (i % columns) * TILE, head + (i // columns) * (TILE + CAPTION)
        try:
            sheet.paste(crop(tile.photo, tile.bbox), (left, top))
        except BadImage as err:  # a photo gone or broken since ingest: its tile says so, the others are drawn
            logging.getLogger(__name__).warning("montage: %s", err)
            draw.rectangle((left, top, left + TILE - 1, top + TILE - 1), fill="#dddddd")
            draw.text((left + 8, top + TILE // 2 - 8), "photo cannot be read", fill="black", font=font)
        if tile.highlight:
            draw.rectangle((left, top, left + TILE - 1, top + TILE - 1), outline="red", width=4)
        draw.text((left + 4, top + TILE + 4), tile.caption, fill="red" if tile.highlight else "black",
                  font=font)
    path = Path(path)
    sheet.save(path)
    return path
