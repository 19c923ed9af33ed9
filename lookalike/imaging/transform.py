"""Face math drawn as a face: the prototype method of face-perception research.

"Me, but older" is the photo moved by the difference between two groups' average faces
(prototypes), e.g. the 60+ faces (``toward``) minus the faces of the photo's own age band
(``away``). What the two prototypes share — being faces, lighting, the corpus's mix of
people — cancels; what differs between them is added to the photo:

* shape: the photo's landmarks move by ``strength x (mean shape of toward - mean shape of
  away)``, both means fitted onto each other first (Procrustes), so only the change of form
  (a longer nose, a lower jaw line) moves, never pose or size. The photo is warped
  piecewise-affinely inside a ring round the face (:mod:`.geometry`); the ring and
  everything outside it stay where they are, so the photo needs no seam.
* colour: the difference of the two *shape-normalised* average textures (both drawn on
  the same mean shape, so a pixel is the same place of the face in both), taken in CIE
  L*a*b* and added there. Two things keep the person's own skin tone: the difference's
  mean over the face is taken out (what is left is where the face grows lighter or darker,
  redder or yellower *relative to itself*: creases, shadows under the eyes, lips), and it
  is added in L*a*b*, where lightness and hue are separate. Its fine detail, which
  averaging blurs, is amplified (:data:`DETAIL_GAIN`). The first sketch (issue 25)
  added the full RGB difference, which paints the prototypes' average complexion onto
  every face: a dark-skinned face turned red. :class:`ColourMode` keeps that way as
  ``rgb`` only so the check that it fails can be run (tests, bench).

The colour change is faded out towards the face's outline (:func:`geometry.face_mask`) and
pasted into the photo where the warped face already sits, so nothing outside the face
changes: no seams, no mirrored borders.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from ..config import MAX_DRAWN_STRENGTH
from ..errors import ConfigError
from . import colour, geometry
from .average import Average, check_rgb

RING_SCALE = 1.6  # the warped region: the face's bounding box grown this much
MASK_FEATHER = 0.05  # the colour change fades over this share of the frame inside the outline
MASK_GROWTH = 1.15  # the outline grown about its centre: the hairline ages too
RING_FEATHER = 0.05  # the colour change fades to 0 over this share of the ring's size inside it
# averaging blurs away fine texture (creases, pores), so a difference of two averages
# under-states it; its fine band (finer than DETAIL_SIGMA of the frame) is amplified
# (Tiddeman et al. 2001 restore it with wavelets). First chosen with dlib's 68 points
# (gain 3, the outline grown 1.3x to take in the forehead above the brows); with the face
# mesh (whose outline already reaches the top of the forehead) re-chosen on utkface-dev,
# 20 photos aged 20-39 (5 per group of the race column, not the tests' photos) moved toward
# the 60+ faces (2026-12-05): estimated age +20.2 years with gain 3 and growth 1.3, +12.9
# with growth 1.0 (white only +6.0), +21.3 with gain 3.5 and growth 1.15 (white +19.1,
# black +17.8, asian +30.1, indian +18.2), cheek ΔE at most 6.3. Raised to 5 on 2026-12-07 when
# the eyes, brows and lips stopped taking the groups' colours (geometry.FEATURES): gain 3.5
# with them kept whole gave +5 years (their bleaching was much of what read as "older"); 5 with
# their lightness moving at most 10 L*: +17.4 (white 17.1, black 17.2, asian 18.7, indian 16.4).
DETAIL_GAIN = 5.0
DETAIL_SIGMA = 3 / 256
FEATURE_FEATHER = 0.03  # the eyes', brows' and lips' own colours fade into the change over this share
FEATURE_L_CHANGE = 10.0  # L* the eyes, brows and lips may move at most (of 100)
CHROMA_FULL = 12.0  # a*b* chroma from which a pixel takes the whole hue change; a grey photo takes none


class ColourMode(str, Enum):
    """How the prototypes' colour difference is added."""

    lab = "lab"  # CIE L*a*b*, the difference's own mean taken out: the person's complexion stays
    rgb = "rgb"  # plain sRGB, as the first sketch did: carries the groups' complexion (a known failure)


def shape_difference(toward: Average, away: Average) -> np.ndarray:
    """(N, 2) frame pixels: ``toward``'s mean shape fitted onto ``away``'s, minus ``away``'s."""
    _same_frame(toward, away)
    fitted = geometry.apply(geometry.similarity(toward.shape, away.shape), toward.shape)
    return fitted - away.shape


def colour_difference(toward: Average, away: Average, mode: ColourMode = ColourMode.lab) -> np.ndarray:
    """(size, size, 3) float32: ``toward``'s texture minus ``away``'s, both on ``away``'s
    mean shape, in L*a*b* (or sRGB bytes for ``rgb``), faded to 0 outside the face; in
    ``lab`` mode with its mean over the face taken out (see the module docstring)."""
    _same_frame(toward, away)
    size = away.size
    raster = geometry.frame_raster(away.shape, away.shape, size)
    toward_image = geometry.frame_warp(toward.shape, away.shape, raster, size).apply(toward.image)
    mask = geometry.face_mask(away.shape, (size, size), MASK_FEATHER * size, MASK_GROWTH)[..., None]
    if mode is ColourMode.rgb:
        return (toward_image.astype(np.float32) - away.image.astype(np.float32)) * mask
    import cv2

    difference = colour.to_lab(toward_image) - colour.to_lab(away.image)
    detail = difference - cv2.GaussianBlur(difference, (0, 0), DETAIL_SIGMA * size)
    difference += DETAIL_GAIN * detail
    mean = (difference * mask).sum(axis=(0, 1)) / max(float(mask.sum()), 1e-6)
    out = (difference - mean) * mask
    # the eyes, brows and lips keep their own hue and most of their lightness: the groups'
    # make-up, lashes and teeth, amplified, bleached brows, turned eyeliner white or teal
    # and green eyes brown (lighter lids and greyer brows, up to FEATURE_L_CHANGE, stay)
    features = geometry.features_mask(away.shape, (size, size), FEATURE_FEATHER * size)
    out[..., 0] += features * (np.clip(out[..., 0], -FEATURE_L_CHANGE, FEATURE_L_CHANGE) - out[..., 0])
    out[..., 1:] *= (1.0 - features)[..., None]
    return out.astype(np.float32)


def check_strength(strength: float) -> None:
    """A face can be drawn moved this far (:data:`lookalike.config.MAX_DRAWN_STRENGTH`),
    else a ConfigError; callers check before the work that leads up to the drawing."""
    if not -MAX_DRAWN_STRENGTH <= strength <= MAX_DRAWN_STRENGTH:
        raise ConfigError(f"strength {strength} is outside -{MAX_DRAWN_STRENGTH}..{MAX_DRAWN_STRENGTH}, "
                          "how far a face can be drawn moved")


def transform(image: np.ndarray, points: np.ndarray, toward: Average, away: Average, strength: float = 1.0,
              mode: ColourMode = ColourMode.lab) -> np.ndarray:
    """The photo ``image`` (RGB uint8) with the face whose landmarks are ``points`` moved
    ``strength`` times the way from ``away`` to ``toward`` (two :class:`Average` faces of
    the same size and landmark model), in shape and colour; the rest of the photo as it was."""
    rgb = check_rgb(image)
    points = geometry.check_points(points)
    if len(points) != len(away.shape):
        raise ValueError(f"transform: the face has {len(points)} landmarks and the groups' faces "
                          f"{len(away.shape)}; they must come from the same landmark model")
    check_strength(strength)
    to_frame = geometry.similarity(points, away.shape)
    moved_in_frame = geometry.apply(to_frame, points) + strength * shape_difference(toward, away)
    moved = geometry.apply(geometry.invert(to_frame), moved_in_frame)

    # the region that changes: the ring round the face, within the photo
    height, width = rgb.shape[:2]
    ring = geometry.ring(points, RING_SCALE)
    x0, y0 = np.floor(ring.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(ring.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise ValueError("transform: the face lies outside the photo")  # Pictures.face_of checks its size
    offset = np.array([x0, y0], dtype=np.float64)
    roi = rgb[y0:y1, x0:x1]
    # fixed: the ring's points inside the region and the region's own edge
    inner = ring - offset
    keep = (inner[:, 0] > 1) & (inner[:, 1] > 1) & (inner[:, 0] < x1 - x0 - 2) & (inner[:, 1] < y1 - y0 - 2)
    fixed = np.vstack([inner[keep], geometry.rectangle(x1 - x0, y1 - y0, geometry.EDGE_POINTS + 2)])
    source = np.vstack([points - offset, fixed])
    tris = geometry.triangles(source)  # the photo's own mesh, moved without folding
    target = geometry.unfolded(source, np.vstack([moved - offset, fixed]), tris)
    raster = geometry.Raster(target, tris, (x1 - x0, y1 - y0))
    warped = geometry.Warp(source, raster).apply(roi)

    # the colour difference, drawn on the moved face in the frame, then taken into the photo
    size = away.size
    difference = colour_difference(toward, away, mode)
    on_moved = geometry.frame_warp(away.shape, away.shape, geometry.frame_raster(away.shape, moved_in_frame, size),
                                   size).apply(difference)
    # ... faded out inside the ring: the outline grown about the landmarks' centroid reaches
    # the ring on a turned face (a dense mesh's centroid lies off its box's centre); done in
    # the frame, where the mask costs a 256 px picture, not the photo's resolution
    ring_in_frame = geometry.apply(to_frame, ring)
    feather = RING_FEATHER * float((ring_in_frame.max(axis=0) - ring_in_frame.min(axis=0)).max())
    on_moved *= geometry.face_mask(ring_in_frame, (size, size), feather)[..., None]
    import cv2

    back = geometry.invert(to_frame)
    back[:, 2] -= offset
    in_photo = cv2.warpAffine(on_moved, back, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if mode is ColourMode.rgb:
        changed = np.clip(np.rint(warped.astype(np.float32) + strength * in_photo), 0, 255).astype(np.uint8)
    else:
        lab = colour.to_lab(warped)
        # hue moves as much as the photo has hue: a black-and-white photo's face stays grey
        # (the groups' redder lips and bluer shadows painted cyan and orange onto it)
        chroma = cv2.GaussianBlur(np.hypot(lab[..., 1], lab[..., 2]), (0, 0), 2.0)
        in_photo[..., 1:] *= np.clip(chroma / CHROMA_FULL, 0.0, 1.0)[..., None]
        changed = colour.from_lab(lab + strength * in_photo)
    # the ring's own pixels (and any its chords graze) keep the photo's: where a chord crosses
    # a sharp edge (hair on a background), a triangle's rounding could shift it a sub-pixel
    inside = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    cv2.fillConvexPoly(inside, np.rint(inner * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(bool)
    out = rgb.copy()
    out[y0:y1, x0:x1][inside] = changed[inside]
    return out


def _same_frame(a: Average, b: Average) -> None:
    if a.size != b.size or a.shape.shape != b.shape.shape:
        raise ValueError(f"transform: the two groups' faces differ in size or landmarks "
                          f"({a.size} px, {len(a.shape)} points vs {b.size} px, {len(b.shape)} points)")
