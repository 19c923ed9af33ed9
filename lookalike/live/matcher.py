"""The matching worker: face crop in, nearest people out, in a process of its own.

Embedding one face with dlib's ResNet takes ~100 ms on this class of CPU and holds
Python's GIL the whole time, so a matcher *thread* would freeze the picture for that long
at every match. A separate (spawned) process does not: the display loop hands it a small
crop around a tracked face, keeps drawing frames, and picks the answer up when it is
there. It uses the library's own search (:func:`lookalike.query.search.search_vectors`) with
the same aligner and model as ingest, so live answers equal ``lookalike search``'s.

A track's answers get steadier as it is watched: each request carries the track's
*memory*, a decayed sum of its earlier embeddings, and the worker searches with the
memory plus the new embedding (one frame can be blurred, half-blinking or turned). When
the new face is plainly someone else (below :func:`renew_below`) the memory is dropped,
the search uses the new face alone, and the answer says ``renewed`` so the display side
gives the track a new id.

Nothing the worker sees is written anywhere: crops live in memory for one request.
"""

from __future__ import annotations

import logging
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import logs
from ..config import shown_url
from ..errors import LookalikeError, carried

if TYPE_CHECKING:
    from ..analysis import Analyzer, Estimate
    from ..config import Settings
    from ..query.context import SpaceContext
    from ..query.search import Match, SearchOptions
    from .protocol import ViewOpener

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchRequest:
    track: int
    t: float  # source time of the frame the crop comes from
    bbox: tuple[int, int, int, int]  # the face in frame coordinates
    confidence: float
    crop: np.ndarray  # RGB, the face with a margin around it
    box: tuple[int, int, int, int]  # the face in crop coordinates
    memory: np.ndarray | None = None  # decayed sum of this track's earlier embeddings
    landmarks: tuple | None = None  # the detector's five landmarks, in crop coordinates


@dataclass
class MatchUpdate:
    """One answer for one track: what the JSONL and the overlay show."""

    track: int
    t: float
    bbox: tuple[int, int, int, int]
    matches: list[Match]  # best first
    vector: np.ndarray  # this frame's embedding (goes into the track's memory)
    estimate: Estimate | None = None  # with --analyze
    worker_seconds: float = 0.0  # align + embed + search (+ analysis) in the worker
    latency: float = 0.0  # request sent -> answer back, seconds, set by the display side
    error: str | None = None
    renewed: bool = False  # the face is someone else than the track's memory

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def to_json(self) -> dict:
        best = self.best
        out = {
            "t": round(self.t, 3), "track": self.track, "bbox": [int(v) for v in self.bbox],
            "person": best.person if best else None,
            "similarity": round(best.similarity, 4) if best else None,
            "verdict": best.verdict if best else None,
            "matches": [{"person": m.person, "similarity": round(m.similarity, 4), "verdict": m.verdict,
                         "photo": m.photo} for m in self.matches],
            "latency_ms": round(1000 * self.latency, 1),
            "new_person": self.renewed,
        }
        if self.estimate is not None:
            out["analysis"] = self.estimate.to_dict()
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class _Worker:
    settings: Settings
    options: SearchOptions
    open_view: ViewOpener
    analyzer: Analyzer | None = None
    _view: SpaceContext | None = None

    @property
    def view(self) -> SpaceContext:
        """The library's view, opened at the first use (:func:`_warm`'s: where an error keeps
        its meaning on its way back, not the pool's start-up, where it is a broken pool)."""
        if self._view is None:
            self._view = self.open_view(self.settings)
        return self._view


_worker: _Worker | None = None  # the library's view and options, in the worker process only


def _the_worker() -> _Worker:
    if _worker is None:
        raise RuntimeError("the matching worker was not initialised (_init runs first in its process)")
    return _worker


def _init(settings: Settings, options: SearchOptions, open_view: ViewOpener) -> None:
    """Worker start-up: Ctrl-C belongs to the display side, which shuts us down cleanly; the
    log level is the display side's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.inherit()
    global _worker
    from dataclasses import replace

    # one thread: the display loop (capture, detection, drawing) needs the other core
    _worker = _Worker(replace(settings, model_threads=1), options, open_view)
    log.debug("matching worker started on %s", shown_url(settings.db_url))


def _warm() -> dict:
    """Load everything a match needs now, so the first face is not the one that waits."""
    worker = _the_worker()
    try:
        view = worker.view
        ntotal = view.vectors.index.ntotal
        view.models.pipeline.embedder.warm()
        view.facts.calibration()
        view.facts.centroids()
        if worker.options.analyzer is not None:
            worker.analyzer = view.models.analyzer(worker.options.analyzer)
            worker.analyzer.analyze(np.zeros((64, 64, 3), np.uint8), [(0, 0, 64, 64)])
        return {"faces": ntotal, "space": view.space.key}
    except LookalikeError as err:  # subclasses do not all survive pickling; what they mean does
        raise carried(err) from None


def renew_below(threshold: float) -> float:
    """Similarity under which a face is someone else than the track it is in.

    Looks at one person a tenth of a second apart are far more alike than two photos of
    them (the calibrated same-person ``threshold``): >= 0.997 on the slideshow video with
    the Dlib model, while two different LFW people measured 0.91 there (with SFace: the
    threshold is 0.35 and strangers sit near 0.09). Halfway between the threshold and 1
    tells a new person in the same spot from the same one turning."""
    return (1.0 + threshold) / 2


def query_vector(vector: np.ndarray, memory: np.ndarray | None, threshold: float) -> tuple[np.ndarray, bool]:
    """What to search with: the memory plus ``vector`` (unit length), or ``vector`` alone
    when it is someone else (then ``True``)."""
    if memory is None:
        return vector, False
    mean = memory / max(float(np.linalg.norm(memory)), 1e-12)
    if float(mean @ vector) < renew_below(threshold):
        return vector, True
    both = memory + vector
    return (both / max(float(np.linalg.norm(both)), 1e-12)).astype(np.float32), False


def _match(req: MatchRequest) -> MatchUpdate:
    from ..faces.detect import Detection
    from ..faults import crash_point
    from ..query.search import search_vectors

    crash_point("live.match")
    start = time.perf_counter()
    worker = _the_worker()
    view, pipeline = worker.view, worker.view.models.pipeline
    chip = pipeline.aligner.align(req.crop, Detection(req.box, req.confidence, landmarks=req.landmarks),
                                  pipeline.embedder.input_size)
    vector = pipeline.embedder.embed([chip])[0]
    query, renewed = query_vector(vector, req.memory, view.facts.calibration().threshold)
    result = search_vectors(view, [(req.bbox, req.confidence, query)], worker.options, "<live>")
    estimate = worker.analyzer.analyze(req.crop, [req.box])[0] if worker.analyzer is not None else None
    return MatchUpdate(req.track, req.t, req.bbox, result.faces[0].matches, vector, estimate,
                       time.perf_counter() - start, renewed=renewed)


@dataclass
class Matcher:
    """The display side's handle on the worker: non-blocking submit, poll for answers."""

    settings: Settings
    options: SearchOptions
    open_view: ViewOpener  # how the worker process opens its view of the library
    # one at a time: a new face waits for at most the one face being matched, never a queue
    max_in_flight: int = 1
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False)
    _pending: list[tuple[Future, MatchRequest, float]] = field(default_factory=list, init=False, repr=False)

    def start(self, timeout: float = 300.0) -> dict:
        """Spawn the worker and wait until its models are loaded; what it loaded."""
        from ..workers import spawn_context

        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=spawn_context(),
                                         initializer=_init, initargs=(self.settings, self.options, self.open_view))
        try:
            return self._pool.submit(_warm).result(timeout=timeout)
        except BaseException as err:  # no idle worker left behind, nor one still loading
            self.close(wait=not isinstance(err, TimeoutError))
            if isinstance(err, BrokenProcessPool):
                raise LookalikeError("the matching worker could not start (see the messages above)") from None
            if isinstance(err, TimeoutError):
                raise LookalikeError(f"the matching worker had not loaded its models after {timeout:.0f} s") from None
            raise

    @property
    def busy(self) -> bool:
        return len(self._pending) >= self.max_in_flight

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, request: MatchRequest) -> bool:
        """Queue ``request`` unless the worker already has enough to do (never blocks)."""
        if self._pool is None:
            raise RuntimeError("Matcher.start() first")
        if self.busy:
            return False
        self._pending.append((self._pool.submit(_match, request), request, time.perf_counter()))
        return True

    def done(self, wait: bool = False) -> list[MatchUpdate]:
        """Answers that are back, oldest first; with ``wait``, all outstanding ones."""
        out, still = [], []
        for future, request, sent in self._pending:
            if not (wait or future.done()):
                still.append((future, request, sent))
                continue
            try:
                update = future.result()
            except BrokenProcessPool:
                raise LookalikeError("the matching worker died (out of memory?); live matching stopped") from None
            except Exception as err:  # one bad crop costs one answer, not the session
                # the session counts failures and shows the first; the traceback (the worker's,
                # chained) is for whoever debugs it: -v
                log.debug("match request for track %d failed", request.track, exc_info=True)
                update = MatchUpdate(request.track, request.t, request.bbox, [], np.zeros(0, np.float32),
                                     error=f"{type(err).__name__}: {err}")
            update.latency = time.perf_counter() - sent
            out.append(update)
        self._pending = still
        return out

    def close(self, wait: bool = True) -> None:
        """Stop the worker; outstanding requests are dropped (``wait``: until it has ended)."""
        if self._pool is not None:
            for future, _, _ in self._pending:
                future.cancel()
            self._pending = []
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None
