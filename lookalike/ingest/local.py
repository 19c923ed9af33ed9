"""Ingest: reader -> mapper -> writer (the clip-retrieval shape).

* **reader** (main process): walks the corpus, reads each file once, hashes it, and
  decides from the database whether it is new, unchanged (skipped: re-runs are free),
  changed (re-done) or a byte-for-byte duplicate of a photo already in the library.
* **mapper** (worker processes, one model load each): decode -> detect -> align ->
  embed. It never touches the database, so any number can run. A run of a few photos
  maps them in this process instead (:func:`plan_workers`): spawning workers that each
  load the models costs seconds, more than the photos themselves.
* **writer** (main process, the only one that writes): one transaction per batch of
  photos (photo rows, people, faces with their vectors), *then* the vectors go into the
  FAISS index, which is saved atomically every few seconds and at the end.

Because the database commits first and the index is rebuilt from its blobs, a crash or
SIGKILL at any moment loses nothing committed: the next run skips what is in the
database, re-does what is not, and tops the index up.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from ..faces.pipeline import FacesMode
from ..store.schema import PhotoStatus
from .corpus import Item
from .mapper import Mapper, process, worker_pool
from .report import IngestReport, Processed, Progress, Silent, Task
from .writer import Writer

if TYPE_CHECKING:
    from ..analysis import AnalyzerName
    from ..space import SpaceView

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
MapFn = Callable[[Task], Processed]

READ_CHUNK = 256  # photos the reader looks up in the database with one query
# Below this many photos an ingest that was not given a worker count maps them in its own
# process. Measured 2026-12-02 (2-core VM, SFace + YuNet): a pool costs ~3.5 s before its
# first face (spawn, imports, one model load per worker) and then maps ~37 photos/s, this
# process ~27 photos/s after a ~0.5 s load: the pool wins only past ~300 photos, so 100
# leaves a wide margin on slower disks and keeps crash isolation for anything larger.
IN_PROCESS_BELOW = 100


@dataclass(frozen=True)
class IngestOptions:
    faces: FacesMode = FacesMode.largest
    workers: int = 0  # 0 = decide (:func:`plan_workers`); N = N worker processes
    batch: int = 32  # photos per database transaction
    save_every: float = 20.0  # seconds between index saves
    analyzer: AnalyzerName | None = None  # estimate age / gender / emotion of each face (opt-in)


def run(library: SpaceView, items: list[Item], options: IngestOptions, progress: Progress | None = None,
        skipped_files: int = 0) -> IngestReport:
    """Ingest ``items`` into ``library`` (the library's :class:`lookalike.space.SpaceView`)."""
    progress = progress or Silent()
    report = IngestReport(skipped_files=skipped_files)
    started = time.perf_counter()
    writer = Writer(library, report, progress, options)
    workers = plan_workers(options.workers, len(items), os.cpu_count() or 1)
    progress.start(len(items))
    pool: tuple[Executor, MapFn] | None = None
    pending: dict[Future[Processed], Item] = {}
    in_flight_sha: dict[str, Item] = {}  # bytes seen earlier in this run
    try:
        for start in range(0, len(items), READ_CHUNK):
            for task in writer.read(items[start:start + READ_CHUNK], in_flight_sha):
                if pool is None:
                    pool = _pool(library, options, workers)
                while len(pending) >= max(workers, 1) * 4:
                    pool = _collect(pool, pending, writer, library, options, workers, block=True)
                executor, map_fn = pool
                pending[executor.submit(map_fn, task)] = task.item
                pool = _collect(pool, pending, writer, library, options, workers, block=False)
        while pending:
            assert pool is not None
            pool = _collect(pool, pending, writer, library, options, workers, block=True)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        writer.flush(force_save=True)
        progress.stop()
        if pool is not None:
            pool[0].shutdown(wait=not report.interrupted, cancel_futures=True)
    report.seconds = time.perf_counter() - started
    return report


def plan_workers(requested: int, photos: int, cores: int) -> int:
    """Worker processes for a run over ``photos`` files; 0 = map them in this process.

    A count asked for is kept (a user who asks for processes gets them, crash isolation
    included). Otherwise: in this process below :data:`IN_PROCESS_BELOW` photos, else one
    worker per core. ``photos`` counts files before the reader skips the unchanged ones,
    so a re-run of a large corpus still gets its pool, started only if a photo needs it."""
    if requested > 0:
        return requested
    return 0 if photos < IN_PROCESS_BELOW else max(cores, 1)


class InProcess(Executor):
    """An executor that runs each call at once, here: the runner's code stays the same for
    one process and for many. Ctrl-C raises in here and ends the run as it does with a pool."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        future.set_result(fn(*args, **kwargs))  # the mapper never raises: a bad photo is a status
        return future


def _pool(library: SpaceView, options: IngestOptions, workers: int) -> tuple[Executor, MapFn]:
    """The executor and what to submit to it: a pool of workers (each with its own mapper)
    or, for ``workers == 0``, this process with a mapper over the library's own models."""
    analyzer = options.analyzer.value if options.analyzer is not None else None
    log.debug("mapping photos %s", f"in {workers} worker processes" if workers else "in this process")
    if workers == 0:
        s = library.settings
        mapper = Mapper(library.space, s.detect_max_side, s.max_pixels, options.faces, analyzer,
                        pipeline=library.pipeline)
        return InProcess(), mapper.process_task
    return worker_pool(library, options.faces, workers, analyzer), process


def _collect(pool: tuple[Executor, MapFn], pending: dict[Future[Processed], Item], writer: Writer,
             library: SpaceView, options: IngestOptions, workers: int, block: bool) -> tuple[Executor, MapFn]:
    """Hand finished results to the writer; a dead worker costs one photo, not the run."""
    done, _ = wait(list(pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
    broken = False
    for future in done:
        item = pending.pop(future)
        try:
            writer.take(future.result())
        except BrokenProcessPool:
            broken = True
            writer.take(Processed.settled(item, PhotoStatus.error,
                                          "the worker process died while processing this photo"))
    if broken:
        for future, item in list(pending.items()):
            pending.pop(future)
            writer.take(Processed.settled(item, PhotoStatus.error,
                                          "the worker process died while this photo was queued; "
                                          "run the ingest again to retry it"))
        pool[0].shutdown(wait=False, cancel_futures=True)
        pool = _pool(library, options, workers)
    return pool
