"""Ingest: reader -> mapper -> writer (the clip-retrieval shape).

* **reader** (main process): walks the corpus, reads each file once, hashes it, and
  decides from the database whether it is new, unchanged (skipped: re-runs are free),
  changed (re-done) or a byte-for-byte duplicate of a photo already in the library.
* **mapper** (worker processes, one model load each): decode -> detect -> align ->
  embed. It never touches the database, so any number can run.
* **writer** (main process, the only one that writes): one transaction per batch of
  photos (photo rows, people, faces with their vectors), *then* the vectors go into the
  FAISS index, which is saved atomically every few seconds and at the end.

Because the database commits first and the index is rebuilt from its blobs, a crash or
SIGKILL at any moment loses nothing committed: the next run skips what is in the
database, re-does what is not, and tops the index up.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..faces.pipeline import FacesMode
from ..store.schema import PhotoStatus
from .corpus import Item
from .mapper import process, worker_pool
from .report import IngestReport, Processed, Progress, Silent
from .writer import Writer

if TYPE_CHECKING:
    from ..analysis import AnalyzerName
    from ..space import SpaceView

READ_CHUNK = 256  # photos the reader looks up in the database with one query


@dataclass(frozen=True)
class IngestOptions:
    faces: FacesMode = FacesMode.largest
    workers: int = 0  # 0 = one per core
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
    workers = options.workers or os.cpu_count() or 1
    progress.start(len(items))
    pool: ProcessPoolExecutor | None = None
    pending: dict[Future[Processed], Item] = {}
    in_flight_sha: dict[str, Item] = {}  # bytes seen earlier in this run
    try:
        for start in range(0, len(items), READ_CHUNK):
            for task in writer.read(items[start:start + READ_CHUNK], in_flight_sha):
                if pool is None:
                    pool = _pool(library, options, workers)
                while len(pending) >= workers * 4:
                    pool = _collect(pool, pending, writer, library, options, workers, block=True)
                pending[pool.submit(process, task)] = task[0]
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
            pool.shutdown(wait=not report.interrupted, cancel_futures=True)
    report.seconds = time.perf_counter() - started
    return report


def _pool(library: SpaceView, options: IngestOptions, workers: int) -> ProcessPoolExecutor:
    analyzer = options.analyzer.value if options.analyzer is not None else None
    return worker_pool(library, options.faces, workers, analyzer)


def _collect(pool: ProcessPoolExecutor, pending: dict[Future[Processed], Item], writer: Writer,
             library: SpaceView, options: IngestOptions, workers: int, block: bool) -> ProcessPoolExecutor:
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
        pool.shutdown(wait=False, cancel_futures=True)
        pool = _pool(library, options, workers)
    return pool
