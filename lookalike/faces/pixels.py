"""Pillow image -> uint8 RGB array at a bounded cost, and frame counts that never walk a file.

Two things make a small file expensive to decode: the conversion of a wide mode (16-bit,
32-bit int, float) through full-size float64 copies — a 252 KB float TIFF of 6300 x 6300
once peaked at 1.5 GB — and the frame count of a multi-page file, which Pillow gets by
walking every page (a 14 MB TIFF of 160,000 pages held a worker for 135 s). Here every
conversion runs in strips of about a megapixel into one preallocated output, so the only
full-size buffers are Pillow's decoded image and the RGB array returned; and frames are
counted from the file's own bytes, at most :data:`FRAME_COUNT_CAP` of them, or not at all.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

# rows per strip are chosen so that a strip holds about this many pixels: the temporaries of a
# conversion (a float32 strip is 4 MB) stay small whatever the photo's size
STRIP_PIXELS = 1 << 20
# frames are counted only for the note "first of N frames used"; past this many the note says
# "over N", and the count costs at most this many small reads
FRAME_COUNT_CAP = 1000

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA = ("RGBA", "LA", "RGBa", "La", "P", "PA")

Strip = Callable[["Image.Image"], np.ndarray]


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> a new (H, W, 3) uint8 array; transparency is flattened onto white.

    16-bit gray is scaled to 8 bits (not clipped); 32-bit int and float gray are stretched
    to the range the photo actually uses (NaN and infinities set to its ends)."""
    width, height = img.size
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, STRIP_PIXELS // max(width, 1))
    convert = _converter(img, rows)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        pixels = convert(img.crop((0, top, width, bottom)))
        if pixels.shape[2] == 1:  # gray: one plane per channel, 6x faster than broadcasting
            for channel in range(3):
                out[top:bottom, :, channel] = pixels[:, :, 0]
        else:
            out[top:bottom] = pixels
    return out


def _converter(img: Image.Image, rows: int) -> Strip:
    mode = img.mode
    if mode in _SIXTEEN_BIT:
        return _sixteen_bit
    if mode in ("I", "F"):
        lo, hi = _finite_range(img, rows)
        return lambda strip: _stretched(strip, lo, hi)
    if mode in _ALPHA:
        return _on_white
    if mode == "RGB":
        return np.asarray
    return lambda strip: np.asarray(strip.convert("RGB"))


# round(v / 257) for every 16-bit value: 65535 -> 255, a scaling, not a clip at 255
_SIXTEEN_TO_EIGHT = ((np.arange(65536, dtype=np.uint32) + 128) // 257).astype(np.uint8)


def _sixteen_bit(strip: Image.Image) -> np.ndarray:
    return _SIXTEEN_TO_EIGHT[np.asarray(strip)][:, :, None]


def _finite_range(img: Image.Image, rows: int) -> tuple[float, float]:
    """The smallest and largest finite value of a 32-bit int or float image, strip by strip."""
    width, height = img.size
    lo, hi = np.inf, -np.inf
    for top in range(0, height, rows):
        values = np.asarray(img.crop((0, top, width, min(height, top + rows))))
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (lo, hi) if lo <= hi else (0.0, 0.0)


def _stretched(strip: Image.Image, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros((strip.size[1], strip.size[0], 1), np.uint8)
    # float32 is exact enough for 256 levels and halves the strip's temporaries
    values = np.nan_to_num(np.asarray(strip, dtype=np.float32), nan=lo, posinf=hi, neginf=lo)
    values -= lo
    values *= 255.0 / (hi - lo)
    values += 0.5
    np.clip(values, 0, 255, out=values)
    return values.astype(np.uint8)[:, :, None]


def _on_white(strip: Image.Image) -> np.ndarray:
    from PIL import Image

    rgba = strip.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return np.asarray(canvas.convert("RGB"))


# -- frame counts from the bytes ------------------------------------------------------------
def tiff_pages(data: bytes, cap: int = FRAME_COUNT_CAP) -> int:
    """How many pages the IFD chain of a classic TIFF holds, stopping at ``cap`` + 1, at a
    loop (an IFD pointing back to one already seen) or at a pointer out of the file."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if data[:2] == b"II" else ">"
    if struct.unpack_from(f"{order}H", data, 2)[0] != 42:  # BigTIFF (43): not counted
        return 1
    offset = struct.unpack_from(f"{order}I", data, 4)[0]
    seen: set[int] = set()
    while offset and offset not in seen and offset + 2 <= len(data) and len(seen) <= cap:
        seen.add(offset)
        entries = struct.unpack_from(f"{order}H", data, offset)[0]
        link = offset + 2 + 12 * entries
        if link + 4 > len(data):
            break
        offset = struct.unpack_from(f"{order}I", data, link)[0]
    return max(1, len(seen))


def gif_frames(data: bytes, cap: int = FRAME_COUNT_CAP) -> int:
    """How many images a GIF holds, stopping at ``cap`` + 1, where the data ends, or once
    the walk has stepped through as many data sub-blocks as a GIF of its size may hold
    (:func:`lookalike.faces.structure.sub_blocks_budget`: millions of one-byte comment
    blocks after the first image would otherwise be walked one by one, for a note)."""
    from .structure import skip_sub_blocks, sub_blocks_budget

    if len(data) < 13 or data[:3] != b"GIF":
        return 1
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    frames, budget = 0, [sub_blocks_budget(len(data))]
    while pos < len(data) and frames <= cap:
        if budget[0] <= 0:
            return max(frames, cap + 1)  # "over N frames": too many blocks to count them
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            pos = skip_sub_blocks(data, pos + 2, budget)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            if pos + 10 > len(data):
                break
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            pos = skip_sub_blocks(data, pos, budget)
            frames += 1
        else:
            break
    return max(1, frames)
