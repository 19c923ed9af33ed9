"""A webcam-like video made from still photos: people step in, sway a little, step out.

For trying ``lookalike webcam`` without a camera (a kiosk demo, the benchmark, the tests):
each photo fills the frame's height for ``seconds`` with a slow zoom and sideways drift, so
the face moves the way a visitor's does and the tracker has real work to do; ``gap``
seconds of empty background separate two people (0 makes a hard cut).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACKGROUND = (96, 104, 112)  # BGR: a neutral wall


@dataclass(frozen=True)
class Segment:
    photo: Path
    label: str  # who this is (for checking answers)
    start: float  # seconds
    end: float


def render(rgb: np.ndarray, size: tuple[int, int], progress: float) -> np.ndarray:
    """One BGR frame of ``size`` (w, h): ``rgb`` scaled to the frame height, zoomed by up to
    6 % and drifted sideways by up to 4 % of the width as ``progress`` goes 0 -> 1."""
    import cv2

    width, height = size
    zoom = (height / rgb.shape[0]) * (1.0 + 0.06 * math.sin(math.pi * progress))
    dx = width / 2 - zoom * rgb.shape[1] / 2 + 0.04 * width * math.sin(2 * math.pi * progress)
    dy = height / 2 - zoom * rgb.shape[0] / 2
    matrix = np.array([[zoom, 0, dx], [0, zoom, dy]], np.float32)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return cv2.warpAffine(bgr, matrix, (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)


def make(people: list[tuple[str, Path]], out: Path, seconds: float = 3.0, gap: float = 0.5,
         size: tuple[int, int] = (640, 480), fps: float = 30.0) -> list[Segment]:
    """Write the video to ``out`` (.mp4 or .avi); the segments, in order, with their times."""
    import cv2

    from ..faces.images import decode_file

    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if out.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, size)
    if not writer.isOpened():
        raise OSError(f"{out}: OpenCV cannot write this video")
    blank = np.empty((size[1], size[0], 3), np.uint8)
    blank[:] = BACKGROUND
    segments, frame_no = [], 0
    try:
        for i, (label, photo) in enumerate(people):
            if i and gap > 0:
                for _ in range(round(gap * fps)):
                    writer.write(blank)
                    frame_no += 1
            # the frame is 640 px or so: a large JPEG is decoded near that size, not in full
            rgb = decode_file(str(photo), 100_000_000, max_side=max(size)).rgb
            n = round(seconds * fps)
            start = frame_no / fps
            for j in range(n):
                writer.write(render(rgb, size, j / max(1, n - 1)))
                frame_no += 1
            segments.append(Segment(photo, label, start, frame_no / fps))
    finally:
        writer.release()
    return segments
