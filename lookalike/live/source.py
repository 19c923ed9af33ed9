"""Where frames come from: a camera, a video file or a stream URL, read on a thread of its own.

The reader thread never waits for matching. In *latest* mode (cameras, and files or
streams played in real time) it keeps only the newest frame: when the consumer is slow,
old frames are dropped rather than queued, so the picture on screen is always "now". In
*every* mode (``--no-realtime`` on a file or stream) it hands over every frame, in order,
as fast as the consumer takes them.

Frame times (``Frame.t``) are seconds on the source's clock: frame number / frame rate
for files and URLs (which are paced to it in real time, so an ``http://…/clip.mp4`` that
downloads faster than it plays still plays at its own speed), time since opening for
cameras.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SourceUnavailable

if TYPE_CHECKING:
    import cv2

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # when a file does not say


@dataclass(frozen=True)
class Frame:
    index: int
    t: float  # seconds, source clock
    bgr: np.ndarray  # (H, W, 3) uint8, OpenCV's channel order


def parse_source(text: str) -> int | str:
    """``0``/``1``… is a camera index; anything else a file path or a URL."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def describe(source: int | str) -> str:
    return f"camera {source}" if isinstance(source, int) else str(source)


def open_capture(source: int | str) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` that has delivered its first frame, or a clear error."""
    import cv2

    name = describe(source)
    if isinstance(source, str) and "://" not in source and not os.path.exists(source):
        raise SourceUnavailable(name, "no such file")
    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our message says it better
    try:
        cap = cv2.VideoCapture(source)
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    if not cap.isOpened():
        cap.release()
        why = ("no such camera, or another program is using it" if isinstance(source, int)
               else "OpenCV cannot open it (not a video, an unsupported codec, or an unreachable URL)")
        raise SourceUnavailable(name, why)
    ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        raise SourceUnavailable(name, "it opened but gave no frame (empty or corrupt video, or a camera "
                                      "that delivers nothing)")
    if isinstance(source, str) and "://" not in source:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a file starts again at its first frame
    return cap


class FrameReader:
    """Reads ``source`` on a daemon thread; :meth:`next` gives the frame to show next."""

    def __init__(self, source: int | str, realtime: bool = True) -> None:
        import cv2

        self.source = source
        self.is_camera = isinstance(source, int)
        self._cap = open_capture(source)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 1.0 <= fps <= 240.0 else DEFAULT_FPS
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        # a file or stream read with --no-realtime hands over every frame; else the newest only
        self.every = not self.is_camera and not realtime
        self.origin: float | None = None  # time.perf_counter() of source time 0 (real-time modes)
        self.read = 0  # frames read from the source
        self.dropped = 0  # frames replaced before anybody took them
        self._latest: Frame | None = None
        self._ended = False
        self._error: str | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lookalike-capture", daemon=True)

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        start = self.origin = time.perf_counter()
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    break
                if not self.is_camera:
                    t = self.read / self.fps
                    if not self.every:  # play at the file's own pace
                        delay = start + t - time.perf_counter()
                        if delay > 0:
                            self._stop.wait(delay)
                else:
                    t = time.perf_counter() - start
                frame = Frame(self.read, t, bgr)
                self.read += 1
                with self._cond:
                    if self.every:
                        while self._latest is not None and not self._stop.is_set():
                            self._cond.wait(0.1)
                    elif self._latest is not None:
                        self.dropped += 1
                    self._latest = frame
                    self._cond.notify_all()
        except Exception as err:  # reported by next(), not lost on a thread
            log.debug("reading %s failed", describe(self.source), exc_info=True)
            self._error = f"{type(err).__name__}: {err}"
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def next(self, timeout: float = 5.0) -> Frame | None:
        """The newest frame not yet taken; ``None`` at the end of the source."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while self._latest is None and not self._ended:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise SourceUnavailable(describe(self.source), f"no frame for {timeout:g} s")
                self._cond.wait(left)
            frame, self._latest = self._latest, None
            self._cond.notify_all()
        if frame is None and self._error is not None:
            raise SourceUnavailable(describe(self.source), f"reading failed: {self._error}")
        return frame

    def close(self) -> None:
        """Stop reading and release the camera (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._cap.release()
