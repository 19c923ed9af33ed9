"""Colour spaces the pictures are computed in: linear light and CIE L*a*b*.

Photos are stored in sRGB, whose byte values are not proportional to light. Averaging or
cross-dissolving those bytes darkens every mix (the mean of a light and a dark pixel comes
out darker than the light in between) and muddies skin, so every sum here is taken in
linear light and converted back once at the end. Colour *differences* between groups of
faces are taken in CIE L*a*b*, where equal steps look equally large and lightness is kept
apart from hue: a difference added there changes a face's shading and detail without
repainting its complexion, which an RGB difference does (issue 25: the dark-skinned face
of the first sketch turned red). ΔE is the CIE 1976 distance in L*a*b*.

The formulas are IEC 61966-2-1 (sRGB) and OpenCV's L*a*b* conversion (D65 white) on float
images, so there is no pixel loop: a 256-entry table for bytes -> linear, vectorised numpy
for the way back.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _to_linear_table() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


def to_linear(srgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float32 linear light in [0, 1] (a table look-up: no arithmetic per pixel)."""
    return _to_linear_table()[np.asarray(srgb, dtype=np.uint8)]


def to_srgb_float(linear: np.ndarray) -> np.ndarray:
    """float linear light -> float32 sRGB in [0, 1], values outside [0, 1] clipped."""
    c = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


_LEVELS = 65535  # linear light is looked up at 16 bits: the darkest sRGB steps stay exact


@cache
def _to_srgb_table() -> np.ndarray:
    return np.clip(np.rint(to_srgb_float(np.arange(_LEVELS + 1, dtype=np.float32) / _LEVELS) * 255.0),
                   0, 255).astype(np.uint8)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """float linear light -> uint8 sRGB, values outside [0, 1] clipped (a 16-bit table
    look-up: a power per pixel costs more than the warp that made it)."""
    index = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0) * _LEVELS + 0.5
    return _to_srgb_table()[index.astype(np.int32)]


def into_gamut(rgb: np.ndarray) -> np.ndarray:
    """float RGB (linear or encoded) with every pixel brought into [0, 1] along its own grey
    axis: its luminance kept (clipped itself only past black or white) and its saturation
    lowered until no channel leaves the range. Clipping each channel on its own turns hue:
    a face past the model's range went red-black where it should have been darker."""
    rgb = np.asarray(rgb, dtype=np.float32)
    luma = np.clip(rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32), 0.0, 1.0)[..., None]
    over = rgb - luma
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(over > 0, (1.0 - luma) / over, np.where(over < 0, -luma / over, np.inf))
    scale = np.clip(np.min(room, axis=-1, keepdims=True), 0.0, 1.0)
    return (luma + over * scale).astype(np.float32)


def to_lab(srgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 L*a*b* (L in 0..100, a and b about -128..127)."""
    import cv2

    return cv2.cvtColor(np.asarray(srgb, dtype=np.uint8).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 L*a*b* -> uint8 RGB (out-of-gamut colours clipped)."""
    import cv2

    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """CIE 1976 ΔE between two L*a*b* colours (arrays of shape (3,))."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def mean_lab(srgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mean colour of the pixels where ``mask`` is set, as L*a*b*: averaged in linear
    light first (the colour the region gives off as a whole), then converted."""
    import cv2

    selected = to_linear(srgb)[np.asarray(mask, dtype=bool)]
    if selected.size == 0:
        raise ValueError("mean_lab: the mask selects no pixel")
    mean = selected.mean(axis=0).reshape(1, 1, 3)
    return cv2.cvtColor(to_srgb_float(mean), cv2.COLOR_RGB2Lab).reshape(3)
