"""The live page's frame processor: browser frames through the webcam pipeline.

Frames come from the visitor's browser over WebRTC and go through the same
:class:`lookalike.live.session.LivePipeline` as ``lookalike webcam``: detection on a
downscaled frame, the IoU tracker, the matching worker process. Frames are never stored.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import av
from streamlit_webrtc import VideoProcessorBase

from lookalike.errors import public_text

if TYPE_CHECKING:
    from lookalike.verbs.library import Library

log = logging.getLogger(__name__)


class LiveProcessor(VideoProcessorBase):
    """One per browser stream: its own matching worker, loaded in the background so the
    video shows at once (faces are boxed, then named when the worker is ready)."""

    def __init__(self, library: Library) -> None:
        from lookalike.live.session import LiveOptions, LivePipeline
        from lookalike.processes import live_library

        self.pipeline = LivePipeline(live_library(library), LiveOptions(k=3))
        self._places = library.settings.places()  # what an error shown beside the video says in words
        self.error: str | None = None
        self._lock = threading.Lock()
        self._faces: list[dict] = []
        self._origin = time.perf_counter()
        self._loader = threading.Thread(target=self._load, name="lookalike-live-load", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        try:
            self.pipeline.start()
        except Exception as err:  # shown beside the video, not lost on a thread
            log.warning("live matching could not start", exc_info=True)
            self.error = public_text(err, self._places)

    def wait_ready(self, timeout: float = 300.0) -> bool:
        self._loader.join(timeout)
        return self.pipeline.ready

    def recv(self, frame: av.VideoFrame) -> av.VideoFrame:
        t = time.perf_counter() - self._origin
        canvas, _ = self.pipeline.step(frame.to_ndarray(format="bgr24"), t)
        faces = []
        for track in self.pipeline.on_screen(t):
            best = track.match.best if track.match is not None else None
            faces.append({"track": track.id, "person": best.person if best else None,
                          "face_id": best.face_id if best else None,
                          "similarity": best.similarity if best else None, "verdict": best.verdict if best else None})
        with self._lock:
            self._faces = faces
        return av.VideoFrame.from_ndarray(canvas, format="bgr24")

    def snapshot(self) -> tuple[bool, str | None, list[dict]]:
        """(worker ready, error, faces on screen with their best match), for the page."""
        with self._lock:
            return self.pipeline.ready, self.error, list(self._faces)

    def on_ended(self) -> None:
        self.pipeline.close()
