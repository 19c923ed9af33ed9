"""Bytes -> upright RGB pixels, with Pillow, or a :class:`BadImage` that says why not.

Photos in a real corpus come in every shape: EXIF-rotated phone shots, 16-bit scans,
CMYK press photos, palette PNGs with transparency, animated GIFs, files with the wrong
extension, truncated downloads and decompression bombs. Everything is normalised here
so that the rest of the pipeline only ever sees ``uint8`` RGB arrays.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from ..errors import BadImage

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# a query photo: a path, the file's bytes, or (H, W, 3) RGB pixels
QueryPhoto: TypeAlias = str | os.PathLike[str] | bytes | bytearray | np.ndarray

# what the extension promises, by Pillow format name
_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".gif": "GIF",
    ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
}
IMAGE_EXTENSIONS = frozenset(_EXTENSION_FORMATS) | {".heic", ".jfif", ".pgm", ".ppm"}


@dataclass
class Decoded:
    """An upright RGB photo and what was done to get it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    format: str
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode(data: bytes, name: str, max_pixels: int) -> Decoded:
    """Decode ``data`` (the bytes of the file ``name``) into an upright RGB array.

    Raises :class:`BadImage` with ``status`` ``decode_error`` or ``too_large``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise BadImage(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # our own pixel check below replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise BadImage(name, f"refused as a decompression bomb ({err})", "too_large") from err
    except UnidentifiedImageError as err:
        raise BadImage(name, _not_an_image_reason(data)) from err
    except Exception as err:  # any decoder failure is a bad file
        log.debug("%s: Pillow cannot open it", name, exc_info=True)
        raise BadImage(name, f"cannot be read as an image ({type(err).__name__}: {err})") from err

    notes: list[str] = []
    width, height = img.size
    if width * height > max_pixels:
        raise BadImage(
            name,
            f"{width}x{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} (decompression-bomb guard; raise it with --max-pixels)",
            "too_large",
        )
    fmt = img.format or "unknown"
    ext = _suffix(name)
    promised = _EXTENSION_FORMATS.get(ext)
    if promised and fmt != promised and not (promised == "JPEG" and fmt == "MPO"):
        notes.append(f"extension {ext} but the content is {fmt}")
    try:  # every step may parse more of a hostile file (a TIFF reads its frames lazily)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = getattr(img, "n_frames", 1)
            img.seek(0)
            img.load()
            orientation = img.getexif().get(0x0112, 1)
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError as err:
        raise BadImage(name, f"refused as a decompression bomb ({err})", "too_large") from err
    except OSError as err:
        text = str(err)
        reason = "truncated: the file ends before the image data does" if "truncated" in text \
            else f"corrupt image data ({text})"
        raise BadImage(name, reason) from err
    except Exception as err:  # any other decoder failure: a bad file too
        log.debug("%s: Pillow cannot decode it", name, exc_info=True)
        raise BadImage(name, f"corrupt image data ({type(err).__name__}: {err})") from err
    if frames > 1:
        notes.append(f"first of {frames} frames used")
    if orientation not in (1, None):
        notes.append(f"EXIF orientation {orientation} applied")
    return Decoded(rgb=rgb, format=fmt, notes=notes)


def decode_file(path: str, max_pixels: int) -> Decoded:
    """Read and decode a file; unreadable files become :class:`BadImage`."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise BadImage(path, f"cannot be read ({err.strerror or err})") from err
    return decode(data, path, max_pixels)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> uint8 RGB; transparency is flattened onto white."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:  # 32-bit int or float: stretch to the range actually used
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        img = canvas
    rgb = img.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8).copy()


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 and "/" not in name[dot:] else ""


def _not_an_image_reason(data: bytes) -> str:
    head = data[:512]
    try:
        head.decode("utf-8")
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head) / max(len(head), 1)
    except UnicodeDecodeError:
        printable = 0.0
    if printable > 0.95:
        return "not an image: the file contains text"
    return "not an image Pillow can read (unknown or unsupported format)"


def load_query(photo: QueryPhoto, max_pixels: int) -> tuple[np.ndarray, str]:
    """RGB pixels of a query given as a path, bytes or an array, and a name for it."""
    if isinstance(photo, np.ndarray):
        if photo.ndim != 3 or photo.shape[2] != 3:
            raise BadImage("<array>", f"expected an (H, W, 3) RGB array, got shape {photo.shape}")
        return np.ascontiguousarray(photo, dtype=np.uint8), "<array>"
    if isinstance(photo, (bytes, bytearray)):
        return decode(bytes(photo), "<upload>", max_pixels).rgb, "<upload>"
    name = str(Path(photo))
    if not os.path.isfile(name):
        raise BadImage(name, "no such file")
    return decode_file(name, max_pixels).rgb, name
