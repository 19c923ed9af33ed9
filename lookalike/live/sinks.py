"""Where the live session's output goes: a window, an annotated video, a JSONL log.

Each is optional; only ``--out`` and ``--jsonl`` write anything to disk, and only what
was asked for (the annotated picture, or one line per match update).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from ..errors import ConfigError, NoDisplay

if TYPE_CHECKING:
    import cv2

    from .matcher import MatchUpdate


class Sink:
    """Receives every displayed frame and every match update; all methods optional."""

    def show(self, bgr: np.ndarray, t: float) -> bool:
        """Take a displayed frame at source time ``t``; ``False`` asks the session to stop."""
        return True

    def update(self, update: MatchUpdate) -> None:
        """Take one match update."""

    def close(self) -> None:
        """Flush and release (idempotent)."""


def gui_problem() -> str | None:
    """Why an OpenCV window cannot open here, or ``None`` when it can."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI" and value.strip().upper() in ("NONE", "NO", ""):
            return (f"the installed OpenCV {cv2.__version__} has no GUI support (a headless build, "
                    "e.g. opencv-python-headless)")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display to draw on ($DISPLAY is not set)"
    return None


class Window(Sink):
    """An OpenCV window; ``q`` or Esc, or closing it, ends the session."""

    TITLE = "lookalike - who looks like me?"

    def __init__(self) -> None:
        problem = gui_problem()
        if problem is not None:
            raise NoDisplay(problem)
        import cv2

        self._cv2 = cv2
        cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
        self._open = True

    def show(self, bgr: np.ndarray, t: float) -> bool:
        cv2 = self._cv2
        cv2.imshow(self.TITLE, bgr)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        if self._open:
            self._cv2.destroyWindow(self.TITLE)
            self._open = False


class VideoOut(Sink):
    """The annotated picture as a video at the source's frame rate.

    Frames dropped in real time (a slow machine) are filled by repeating the last shown
    one, so the file keeps the source's timing: 10 s of camera make 10 s of video.
    """

    def __init__(self, path: Path, fps: float) -> None:
        if path.suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
            raise ConfigError(f"--out {path}: use a .mp4, .avi, .mkv or .mov file name")
        if not path.parent.is_dir():
            raise ConfigError(f"--out {path}: the folder {path.parent} does not exist")
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None
        self.written = 0

    def show(self, bgr: np.ndarray, t: float) -> bool:
        import cv2

        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".mov") else "MJPG"))
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (bgr.shape[1], bgr.shape[0]))
            if not self._writer.isOpened():
                raise ConfigError(f"--out {self.path}: OpenCV cannot write this video format here")
        writer = self._writer
        target = max(self.written + 1, int(round(t * self.fps)) + 1)
        while self.written < target:
            writer.write(bgr)
            self.written += 1
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class JsonlOut(Sink):
    """One JSON object per match update; ``-`` is standard output."""

    def __init__(self, path: Path) -> None:
        # kept open until close(): one line per update, flushed as it comes
        self._fh: TextIO = sys.stdout if str(path) == "-" else open(path, "w", encoding="utf-8")

    def update(self, update: MatchUpdate) -> None:
        self._fh.write(json.dumps(update.to_json(), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not sys.stdout and not self._fh.closed:
            self._fh.close()
