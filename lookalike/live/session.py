"""The live loop: frames in, annotated frames and match updates out, never waiting on a match.

    reader thread ──newest frame──▶ display loop ──crop──▶ matcher process
                                     detect (downscaled, one pass)      align + embed + search
                                     track (IoU)          ◀──answer──
                                     draw, show / write

Per frame the display loop only detects (on a frame shrunk to ``detect_side``, 15 times
a second) and draws. A face is sent to the matcher when its track appears and again as
soon as the worker is free (one request in flight; ``refresh`` can space a track's matches
out), never-matched tracks first; answers are applied when they arrive. So the rate of
answers is the worker's own: a faster model gives more of them, up to one a frame. When a track's new
embedding is no longer the same person as its previous one (calibrated threshold), the
track gets a new id: someone else stepped into the same spot.

With ``realtime=False`` on a file every frame is processed and each match is waited
for, so the output is the same on a slow machine as on a fast one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..query.search import SearchOptions
from ..store.values import Audience
from .matcher import Matcher, MatchRequest, MatchUpdate
from .overlay import Hud, draw
from .sinks import Sink
from .source import FrameReader
from .tracker import Box, Track, Tracker

# a track's memory of its face: each new embedding is added to the memory, which has lost
# half its weight every MEMORY_HALF_LIFE seconds (of the source's clock) since the last one,
# so the last third of a second weighs most and an old expression fades — however many
# answers the worker gives a second (0.2 s: what 0.8 an answer was at 15 answers a second)
MEMORY_HALF_LIFE = 0.2


def memory_weight(elapsed: float) -> float:
    """What is left of a memory ``elapsed`` seconds old."""
    return 0.5 ** (max(elapsed, 0.0) / MEMORY_HALF_LIFE)

if TYPE_CHECKING:
    from ..analysis import AnalyzerName
    from ..faces.detect import Point
    from .protocol import LiveLibrary


@dataclass(frozen=True)
class LiveOptions:
    k: int = 3
    analyzer: AnalyzerName | None = None  # estimates of age / gender / emotion per face
    realtime: bool = True  # files: play at their own pace (False: every frame, fast as possible)
    detect_side: int = 480  # long side of the frame the detector sees
    detect_interval: float = 1 / 15  # seconds (source clock) between two detections
    refresh: float = 0.0  # seconds between two matches of one track (0: whenever the worker is free)
    show_missing: float = 0.25  # seconds a box stays drawn after its face was last detected
    margin: float = 0.5  # context around a face box in the crop sent to the matcher (box sizes)


@dataclass
class LiveStats:
    """What happened, for the summary line and the benchmark."""

    source_fps: float = 0.0
    started: float = 0.0  # wall clock (perf_counter) when the first frame was shown
    origin: float | None = None  # wall clock of source time 0, for real-time sources
    shown: list[float] = field(default_factory=list)  # wall time of every displayed frame
    shown_t: list[float] = field(default_factory=list)  # source time of every displayed frame
    updates: list[tuple[float, MatchUpdate]] = field(default_factory=list)  # (wall time received, update)
    frames_read: int = 0
    frames_dropped: int = 0
    errors: int = 0  # match requests that failed in the worker
    first_error: str | None = None
    interrupted: bool = False

    def summary(self) -> dict:
        gaps = np.diff(self.shown) if len(self.shown) > 1 else np.zeros(0)
        span = (self.shown[-1] - self.shown[0]) if len(self.shown) > 1 else 0.0
        latencies = [u.latency for _, u in self.updates]
        return {
            "frames_shown": len(self.shown), "frames_read": self.frames_read,
            "frames_dropped": self.frames_dropped, "source_fps": round(self.source_fps, 2),
            "display_fps": round((len(self.shown) - 1) / span, 2) if span > 0 else 0.0,
            "longest_gap_ms": round(1000 * float(gaps.max()), 1) if len(gaps) else 0.0,
            "match_updates": len(self.updates),
            "updates_per_s": round(len(self.updates) / span, 2) if span > 0 else 0.0,
            "match_latency_p50_ms": round(1000 * float(np.median(latencies)), 1) if latencies else None,
            "match_latency_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1) if latencies else None,
            "errors": self.errors, "first_error": self.first_error,
            "interrupted": self.interrupted,
        }


def crop_request(rgb: np.ndarray, track_id: int, t: float, box: Box, confidence: float, margin: float,
                 memory: np.ndarray | None = None, landmarks: Sequence[Point] | None = None) -> MatchRequest:
    """The face in ``box`` with ``margin`` box-sizes of context (the aligner needs the whole
    head), as an independent small array: the matcher never sees the rest of the frame."""
    height, width = rgb.shape[:2]
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    x1, y1 = min(width, int(x + w + margin * w)), min(height, int(y + h + margin * h))
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    marks = None if landmarks is None else tuple((px - x0, py - y0) for px, py in landmarks)
    return MatchRequest(track_id, t, (x, y, w, h), confidence, crop, (x - x0, y - y0, w, h),
                        None if memory is None else memory.copy(), marks)


class LivePipeline:
    """Frame in, annotated frame out: detection, tracking and the matching worker.

    The same object serves ``lookalike webcam`` (:class:`LiveSession` feeds it from a
    capture thread) and the web app's live page (the browser's WebRTC frames)."""

    def __init__(self, library: LiveLibrary, options: LiveOptions) -> None:
        from ..faces import detect

        self.options = options
        self.detector = detect.build(library.settings.space_names[1], options.detect_side, fallback=False)
        # the worker searches the space this side detects with, whatever the library holds by
        # then (library.settings is pinned to it); a live screen is a display: people whose
        # profile withholds consent never appear
        self.matcher = Matcher(library.settings, SearchOptions(k=options.k, analyzer=options.analyzer,
                                                     audience=Audience.visitor), library.open_view)
        self.tracker = Tracker(refresh=options.refresh)
        self.stats = LiveStats()
        self._detected_at = float("-inf")
        self._titles = library.titles
        self.titles: dict[str, str] = {}  # person key -> display name, looked up once per person
        self.ready = False

    def start(self) -> dict:
        """Spawn the matching worker and load its models (seconds); what it loaded."""
        loaded = self.matcher.start()
        self.ready = True
        return loaded

    def step(self, bgr: np.ndarray, t: float) -> tuple[np.ndarray, list[MatchUpdate]]:
        """The frame with boxes, labels and HUD drawn, and the match updates that arrived."""
        import cv2

        updates = self._apply(self.matcher.done()) if self.ready else []
        rgb = None
        if t - self._detected_at >= self.options.detect_interval - 1e-6:
            self._detected_at = t
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            found = self.detector.detect(rgb)
            self.tracker.update([d.box for d in found], t, [d.confidence for d in found],
                                [d.landmarks for d in found])
        # the worker gets its next face as soon as it is free, from this frame, with the
        # track's latest box (at most one detection interval old)
        for track in self.tracker.due(t, seen_within=self.options.detect_interval) if self.ready else []:
            if self.matcher.busy:
                break
            rgb = rgb if rgb is not None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            self.matcher.submit(crop_request(rgb, track.id, t, track.box, track.score, self.options.margin,
                                             track.vector, track.landmarks))
            track.pending, track.last_matched = True, t
        if not self.options.realtime and self.ready:
            updates += self._apply(self.matcher.done(wait=True))
        shown = self.on_screen(t)
        canvas = draw(bgr.copy(), shown, self._hud(len(shown)), self.titles)
        now = time.perf_counter()
        if not self.stats.shown:
            self.stats.started = now
        self.stats.shown.append(now)
        self.stats.shown_t.append(t)
        return canvas, updates

    def on_screen(self, t: float) -> list[Track]:
        """Tracks to draw: a track outlives a few missed detections (so the face keeps its
        id), but its box is drawn only while the face is really there."""
        return [tr for tr in self.tracker.tracks if t - tr.last_seen <= self.options.show_missing]

    def _apply(self, updates: list[MatchUpdate]) -> list[MatchUpdate]:
        now = time.perf_counter()
        for update in updates:
            if update.error is not None:
                self.stats.errors += 1
                self.stats.first_error = self.stats.first_error or update.error
            track = self.tracker.get(update.track)
            if track is not None:
                track.pending = False
                if update.error is None:
                    if update.renewed:
                        update.track = self.tracker.renew(track)  # someone else in the same spot
                    memory = track.vector
                    track.vector = update.vector if memory is None else \
                        memory_weight(update.t - track.vector_t) * memory + update.vector
                    track.vector_t = update.t
                    track.match = update
                    person = update.best.person if update.best is not None else None
                    if person is not None and person not in self.titles:  # the overlay's name for them
                        self.titles[person] = self._titles([person])[person]
            self.stats.updates.append((now, update))
        return updates

    def _hud(self, faces: int) -> Hud:
        shown, updates = self.stats.shown, self.stats.updates
        now = time.perf_counter()
        recent = [s for s in shown[-60:] if now - s <= 1.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        recent_updates = sum(1 for w, _ in updates[-30:] if now - w <= 2.0) / 2.0
        latency = 1000 * updates[-1][1].latency if updates else None
        return Hud(fps, latency, recent_updates, faces)

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        self.matcher.close()
        self.ready = False


class LiveSession:
    """One run of live matching over one source. Build, then :meth:`run`."""

    def __init__(self, library: LiveLibrary, source: int | str, options: LiveOptions, sinks: list[Sink]) -> None:
        self.options = options
        self.sinks = sinks
        # open the source first: a wrong camera index fails before any model loads
        self.reader = FrameReader(source, options.realtime)
        try:
            self.pipeline = LivePipeline(library, options)
        except BaseException:
            self.reader.close()
            raise
        self.stats = self.pipeline.stats
        self.stats.source_fps = self.reader.fps
        self._started = False

    def start(self) -> dict:
        """Load the matcher's models (seconds), then start reading frames; what it loaded."""
        try:
            loaded = self.pipeline.start()
        except BaseException:
            self.close()
            raise
        self.reader.start()
        self._started = True
        return loaded

    def run(self, stop: threading.Event | None = None) -> LiveStats:
        """Until the source ends, a sink says stop, ``stop`` is set or Ctrl-C; always cleans up."""
        stop = stop or threading.Event()
        try:
            if not self._started:
                self.start()
            while not stop.is_set():
                frame = self.reader.next()
                if frame is None:
                    break
                canvas, updates = self.pipeline.step(frame.bgr, frame.t)
                for update in updates:
                    for sink in self.sinks:
                        sink.update(update)
                if not all([sink.show(canvas, frame.t) for sink in self.sinks]):
                    break
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        """Release the camera, stop the worker, close every output (idempotent)."""
        self.stats.frames_read, self.stats.frames_dropped = self.reader.read, self.reader.dropped
        self.stats.origin = self.reader.origin
        self.reader.close()
        self.pipeline.close()
        for sink in self.sinks:
            sink.close()
