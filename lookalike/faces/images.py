"""Bytes -> upright RGB pixels, with Pillow, or a :class:`BadImage` that says why not
(a whole, plain JPEG's pixels come from OpenCV's copy of the same libjpeg-turbo decoder,
once Pillow has read its header: the hot path of search and ingest).

Photos in a real corpus come in every shape: EXIF-rotated phone shots, 16-bit scans,
CMYK press photos, palette PNGs with transparency, animated GIFs, files with the wrong
extension, truncated downloads and decompression bombs. Everything is normalised here
so that the rest of the pipeline only ever sees ``uint8`` RGB arrays.

This is the one place photos are decoded (ingest, search, the API, the web app), so it
is also where the cost of one hostile file is bounded, before any pixel is decoded:

* only the first frame is ever read, and frames are never counted by Pillow (its
  ``n_frames`` walks every page of a TIFF; see :mod:`.pixels`);
* the decoded size is checked against ``max_pixels`` from the header, and a JPEG asked
  for at ``max_side`` is decoded at that size by the decoder itself (DCT scaling);
* wide modes (16-bit, 32-bit, float) are converted strip by strip, never as full-size
  float copies, so a photo costs its decoded image plus the RGB array and no more
  (Pillow keeps every mode in at most 4 bytes a pixel);
* every refusal says what is wrong with the photo in our words, never Pillow's.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from ..errors import BadImage, ConfigError, ImageProblem
from .pixels import gif_frames, tiff_pages, to_rgb

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Upload:
    """A photo's bytes with the name its sender gave it, so that a refusal names the file
    (the API's uploads; bare bytes are called ``<upload>``)."""

    name: str
    data: bytes


# a query photo: a path, the file's bytes (named or not), or (H, W, 3) RGB pixels
QueryPhoto: TypeAlias = str | os.PathLike[str] | bytes | bytearray | Upload | np.ndarray

# what the extension promises, by Pillow format name
_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".gif": "GIF",
    ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
}
IMAGE_EXTENSIONS = frozenset(_EXTENSION_FORMATS) | {".heic", ".jfif", ".pgm", ".ppm"}

# the formats a photo comes in, and the only ones Pillow is asked to open: each of the ~40
# others it knows (PSD, QOI, ICO, PCX, EPS, ...) is another header parser of its own, some in
# Python a byte at a time (a 14 MB PSD of resources took 3.3 s: security re-probe 52)
# (JPEG's opener also makes MPO; HEIF is there when a plugin such as pillow-heif registers it)
PHOTO_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "PPM", "HEIF", "AVIF")

TRUNCATED = "truncated: the file ends before the image data does"
TEXT_CHUNK = "a PNG text chunk is too large: the file is damaged or not a photo"


@dataclass
class Decoded:
    """An upright RGB photo and what was done to get it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    format: str
    notes: list[str] = field(default_factory=list)
    # decoded pixels per pixel of the file: 1.0 unless a ``max_side`` let the decoder shrink it
    scale: float = 1.0

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode(data: bytes, name: str, max_pixels: int, *, max_side: int | None = None) -> Decoded:
    """Decode ``data`` (the bytes of the file ``name``) into an upright RGB array.

    ``max_pixels`` bounds the decoded photo (checked from the header, before decoding).
    ``max_side``: the caller needs no more than this many pixels on the longer side, so a
    JPEG may be decoded smaller, by a power of two that keeps it at least that large
    (:attr:`Decoded.scale` says by how much; coordinates are then those of the smaller photo).
    Raises :class:`BadImage` with ``status`` ``decode_error`` or ``too_large``.
    """
    if not data:
        raise BadImage(name, "empty file (0 bytes)")
    img = _open(data, name, max_pixels)
    original_width = img.size[0]
    if max_side and img.format in ("JPEG", "MPO"):
        _draft(img, max_side)
    width, height = img.size
    if width * height > max_pixels:
        raise BadImage(name, _too_many_pixels(width, height, max_pixels), ImageProblem.too_large)
    fmt = img.format or "unknown"
    notes = _format_notes(name, fmt)
    frames = _frames(img, data)
    try:  # every step may parse more of a hostile file
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = _by_libjpeg(data, img, original_width)
            if rgb is not None:  # a JPEG's EXIF is in its header, read when it was opened
                orientation = img.getexif().get(0x0112, 1)
                rgb = _turned(rgb, orientation)
            else:
                img.load()  # the first frame only: nothing here seeks or counts frames
                orientation = img.getexif().get(0x0112, 1)  # a PNG's may follow its pixels
                img = _upright(img, orientation)
                rgb = to_rgb(img)
    except BadImage:
        raise
    except Exception as err:  # a decoder failure of any kind is a bad file
        log.debug("%s: Pillow cannot decode it", name, exc_info=True)
        status = ImageProblem.too_large if isinstance(err, MemoryError) else ImageProblem.decode_error
        raise BadImage(name, _damaged(err, fmt, max_pixels), status) from err
    finally:
        img.close()
    if frames > 1:
        more = f"over {frames - 1:,}" if frames > _FRAME_CAP else f"{frames:,}"
        notes.append(f"first of {more} frames used")
    if orientation not in (1, None):
        notes.append(f"EXIF orientation {orientation} applied")
    scale = width / original_width if original_width else 1.0  # drafted, before any turn
    if scale != 1.0:
        notes.append(f"decoded at 1/{round(1 / scale)} size")
    return Decoded(rgb=rgb, format=fmt, notes=notes, scale=scale)


def pixels(data: bytes) -> int | None:
    """How many pixels ``data``'s header gives its first frame (None: not a photo Pillow
    opens), no pixel decoded (~25 µs): for a caller choosing where a decode will run (the
    API's event loop or a worker thread), never a check — :func:`decode` makes its own."""
    try:
        img = _open(data, "<photo>", 0)  # the limit only words a refusal, and none is made here
    except BadImage:
        return None
    with img:
        width, height = img.size
    return int(width) * int(height)


def decode_file(path: str, max_pixels: int, *, max_side: int | None = None) -> Decoded:
    """Read and decode a file; missing and unreadable files become :class:`BadImage`."""
    return decode(_read(path), path, max_pixels, max_side=max_side)


def decode_stored(path: str, sha256: str | None, max_pixels: int, *, max_side: int | None = None) -> Decoded:
    """A stored photo decoded again to draw from it with what was stored of it (landmarks,
    a box): :class:`BadImage` naming the file when it is gone, unreadable or no longer the
    bytes stored (``sha256``) — another picture under the same name would have those
    points land on someone else (an average showed a ghost of the new photo's head)."""
    return decode(read_stored(path, sha256), path, max_pixels, max_side=max_side)


def read_stored(path: str, sha256: str | None) -> bytes:
    """A stored photo's bytes while they are the ones stored (``sha256``; None: not known):
    :class:`BadImage` naming the file when it is gone, not a regular file (a link to a
    device or a FIFO would be read for ever), unreadable or changed since it was ingested."""
    import hashlib

    if os.path.exists(path) and not os.path.isfile(path):
        raise BadImage(path, "not a regular file")
    data = _read(path)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise BadImage(path, "changed since it was ingested (its stored landmarks are not this picture's); "
                             "ingest it again")
    return data


def _read(path: str) -> bytes:
    """A file's bytes; a missing or unreadable file (a folder among them: "Is a directory")
    is a :class:`BadImage` naming it."""
    if not os.path.exists(path):
        raise BadImage(path, "no such file")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise BadImage(path, f"cannot be read ({err.strerror or err})") from err


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Pillow's lazy open: the header and the first frame's description, no pixels; a file
    whose structure would make that slow is refused before Pillow reads it (:mod:`.structure`)."""
    from PIL import Image, UnidentifiedImageError

    from . import structure

    if (why := structure.problem(data)) is not None:
        raise BadImage(name, why)
    try:
        with warnings.catch_warnings():
            # our own pixel check replaces Pillow's bomb warning; its tag warnings are noise
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data), formats=_openers())
    except Image.DecompressionBombError as err:  # far over any limit: Pillow's own guard
        raise BadImage(name, _bomb(err, max_pixels), ImageProblem.too_large) from err
    except UnidentifiedImageError as err:
        raise BadImage(name, _not_an_image_reason(data)) from err
    except Exception as err:  # any decoder failure is a bad file
        log.debug("%s: Pillow cannot open it", name, exc_info=True)
        raise BadImage(name, _damaged(err, _format_guess(data), max_pixels)) from err


@functools.cache
def _openers() -> tuple[str, ...]:
    """:data:`PHOTO_FORMATS` that this Pillow has an opener for (it refuses a name it lacks);
    asked once a process, not at every decode."""
    from PIL import Image

    Image.init()
    return tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)


def _draft(img: Image.Image, max_side: int) -> None:
    """Ask the JPEG decoder for the smallest DCT scale (1/2, 1/4, 1/8) that keeps the longer
    side at least ``max_side``: an 8000 px photo wanted at 1,280 decodes 1/4 of its pixels."""
    width, height = img.size
    shrink = max(width, height) / max_side
    if shrink >= 2:
        img.draft(img.mode, (max(1, int(width / shrink)), max(1, int(height / shrink))))


_FRAME_CAP = 1000


def _frames(img: Image.Image, data: bytes) -> int:
    """The number of frames, when knowing it costs nothing: a count the header declares
    (PNG, WebP, MPO), or one read from the bytes up to a cap (TIFF pages, GIF images).
    Pillow's ``n_frames`` and ``is_animated`` are never touched for TIFF and GIF: they seek
    through the file, page by page (a TIFF's IFD chain can hold 160,000 pages, or loop)."""
    if img.format == "TIFF":
        return tiff_pages(data, _FRAME_CAP)
    if img.format == "GIF":
        return gif_frames(data, _FRAME_CAP)
    declared = vars(img).get("n_frames")  # a plain attribute set from the header, never a walk
    return declared if isinstance(declared, int) and declared > 0 else 1


def _by_libjpeg(data: bytes, img: Image.Image, original_width: int) -> np.ndarray | None:
    """A whole, plain JPEG (baseline or progressive, RGB or gray, ending with its end-of-image
    marker) decoded by OpenCV straight into an array, at the DCT scale Pillow's draft chose;
    None for anything else, which Pillow then decodes (and, if it must, says why not).

    The same libjpeg-turbo decoder, so the same pixels (checked on 356 LFW and celeb photos,
    at 1/1, 1/2 and 1/4), in 0.75x of Pillow's time at the celeb photos' median: Pillow hands
    its image to numpy through a copy made in chunks, and turns it into one more copy. A file
    that stops before its end marker is left to Pillow: libjpeg fills a truncated file's
    missing rows with gray and OpenCV returns them as a photo; Pillow refuses it as truncated."""
    if img.format != "JPEG" or img.mode not in ("RGB", "L") or not data.endswith(b"\xff\xd9"):
        return None
    import cv2

    width = img.size[0]
    reduce = next((r for r in (1, 2, 4, 8) if -(-original_width // r) == width), None)
    if reduce is None:
        return None
    # the DCT scale's bit (OpenCV names it by its gray flags) and the colour order: RGB
    # written by libjpeg itself in OpenCV 4.10+ (IMREAD_COLOR_RGB), else BGR turned after
    scaled = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
              8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce]
    rgb_order = getattr(cv2, "IMREAD_COLOR_RGB", 0)
    flags = scaled | (rgb_order or cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or pixels.shape[:2] != (img.size[1], width):
        return None
    return pixels if rgb_order else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)


def _turned(rgb: np.ndarray, orientation: object) -> np.ndarray:
    """:func:`_upright` for an array: the same eight EXIF orientations, as numpy views made
    contiguous (a copy only when the photo must turn)."""
    views = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
             7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    turn = views.get(orientation if isinstance(orientation, int) else 1)
    return np.ascontiguousarray(turn(rgb)) if turn is not None else rgb


def _upright(img: Image.Image, orientation: object) -> Image.Image:
    """The photo turned as its EXIF orientation says (a new image only when it must turn)."""
    from PIL import Image

    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
    }.get(orientation if isinstance(orientation, int) else 1)
    return img.transpose(method) if method is not None else img


def _format_notes(name: str, fmt: str) -> list[str]:
    ext = _suffix(name)
    promised = _EXTENSION_FORMATS.get(ext)
    if promised and fmt != promised and not (promised == "JPEG" and fmt == "MPO"):
        return [f"extension {ext} but the content is {fmt}"]
    return []


# -- reasons, in our words --------------------------------------------------------------------
def _megapixels(pixels: int) -> str:
    if pixels < 100_000:  # a limit set that low (a test's, a cautious operator's) said "0.0 MP"
        return f"{pixels:,} px"
    return f"{pixels / 1e6:,.0f} MP" if pixels >= 10**7 else f"{pixels / 1e6:,.1f} MP"


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return (f"the photo is {width:,} × {height:,} pixels ({width * height:,}), over the "
            f"{_megapixels(max_pixels)} limit ({max_pixels:,} pixels, a guard against decompression "
            "bombs); send a smaller photo, or raise the pixel limit")


def _bomb(err: Exception, max_pixels: int) -> str:
    found = re.search(r"\((\d+) pixels\)", str(err))
    size = f"{int(found[1]):,} pixels" if found else "far more pixels than any photo has"
    return (f"the photo is {size}, over the {_megapixels(max_pixels)} limit "
            "(a guard against decompression bombs); send a smaller photo")


def _damaged(err: BaseException, fmt: str, max_pixels: int) -> str:
    """What a decoder failure means for the photo; Pillow's own words stay in the debug log."""
    text = str(err)
    if isinstance(err, MemoryError):
        return f"there is not enough memory to decode this photo (limit {_megapixels(max_pixels)})"
    if "MAX_TEXT" in text or "text chunk" in text:
        return TEXT_CHUNK
    if "truncated" in text or isinstance(err, EOFError):
        return TRUNCATED
    if "decompression bomb" in text:
        return "the photo's pixel data is far larger than its header says (a decompression bomb)"
    kind = "a photo" if fmt == "unknown" else f"a {fmt} photo"
    return f"the image data is damaged, or {kind} in a variant this program cannot read"


def _format_guess(data: bytes) -> str:
    for magic, fmt in ((b"\xff\xd8", "JPEG"), (b"\x89PNG", "PNG"), (b"GIF8", "GIF"), (b"II*\0", "TIFF"),
                       (b"MM\0*", "TIFF"), (b"BM", "BMP"), (b"RIFF", "WEBP")):
        if data.startswith(magic):
            return fmt
    return "unknown"


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
    fmt = _format_guess(data)
    if fmt != "unknown":
        return f"it starts like a {fmt} file but its header is damaged or of a kind this program cannot read"
    return "not an image this program can read (unknown or unsupported format)"


@dataclass(frozen=True)
class QueryImage:
    """A query photo decoded for finding and embedding its faces: a JPEG larger than the
    detector's size is decoded at that size by the decoder itself (DCT scaling: a 12 MP
    phone photo in ~1/3 of a full decode's time), and the whole photo only when a face is
    too small in the draft for its chip (:meth:`FacePipeline.query_faces`)."""

    name: str
    rgb: np.ndarray  # (H, W, 3) uint8: the draft, or the whole photo
    scale: float = 1.0  # rgb pixels per pixel of the photo: below 1 for a draft
    data: bytes | None = field(default=None, repr=False)  # the file's bytes, kept while rgb is a draft
    max_pixels: int = 0

    def whole(self) -> np.ndarray:
        """The photo decoded at full size (the draft's bytes decoded again, once; rgb if it
        was whole)."""
        return self._whole

    @cached_property
    def _whole(self) -> np.ndarray:
        if self.data is None:
            return self.rgb
        return decode(self.data, self.name, self.max_pixels).rgb


def open_query(photo: QueryPhoto, max_pixels: int, max_side: int) -> QueryImage:
    """A query photo as :class:`QueryImage`: drafted down to ``max_side`` (the detector's
    side) when it is a JPEG that large; arrays and other formats whole."""
    if isinstance(photo, np.ndarray):
        rgb, name = load_query(photo, max_pixels)
        return QueryImage(name, rgb)
    data, name = _query_bytes(photo)
    decoded = decode(data, name, max_pixels, max_side=max_side)
    if decoded.scale == 1.0:
        return QueryImage(name, decoded.rgb)
    return QueryImage(name, decoded.rgb, decoded.scale, data, max_pixels)


def load_query(photo: QueryPhoto, max_pixels: int, max_side: int | None = None) -> tuple[np.ndarray, str]:
    """RGB pixels of a query given as a path, bytes or an array, and a name for it;
    ``max_side``: at most this many pixels on the longer side (a JPEG decoded from a draft,
    then any photo shrunk), for a caller that draws from it, not one that searches."""
    rgb, name = _query_pixels(photo, max_pixels, max_side)
    return (shrink(rgb, max_side) if max_side else rgb), name


def shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` shrunk so its long side is at most ``side`` px (never enlarged): area
    averaging, a downscale's filter, and quick on a 40 MP photo."""
    height, width = rgb.shape[:2]
    if max(height, width) <= side:
        return rgb
    import cv2

    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _query_pixels(photo: QueryPhoto, max_pixels: int, max_side: int | None) -> tuple[np.ndarray, str]:
    if isinstance(photo, np.ndarray):
        if photo.ndim != 3 or photo.shape[2] != 3 or min(photo.shape[:2]) < 1:
            raise BadImage("<array>", f"expected an (H, W, 3) RGB array, got shape {photo.shape}")
        if photo.dtype != np.uint8:  # 0-1 floats cast to uint8 were a black picture: "no face"
            raise BadImage("<array>", f"expected RGB values as uint8 (0-255), got {photo.dtype}")
        return np.ascontiguousarray(photo), "<array>"
    data, name = _query_bytes(photo)
    return decode(data, name, max_pixels, max_side=max_side).rgb, name


def _query_bytes(photo: QueryPhoto) -> tuple[bytes, str]:
    """A query photo that is not an array: its bytes and the name a refusal gives it."""
    if isinstance(photo, (bytes, bytearray, memoryview)):
        return bytes(photo), "<upload>"
    if isinstance(photo, Upload):
        return photo.data, photo.name
    if not isinstance(photo, (str, os.PathLike)):  # None, a list: a TypeError from pathlib before
        raise ConfigError(f"a query photo is a path, bytes or an RGB array, not {type(photo).__name__}")
    name = str(Path(photo))
    return _read(name), name
