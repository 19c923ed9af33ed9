"""Mapping in this machine: in this process, or in a pool of worker processes.

Two :class:`.runner.Distributor` s: :class:`InProcess` maps with the library's own
models (a run of a few photos: spawning workers that each load the models costs seconds,
more than the photos themselves), :class:`ProcessPool` in spawned workers, each loading
the models it is asked for, never touching the database. :func:`plan_workers` chooses
between them; :func:`workers_first` starts a pool's workers before the library opens.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, ParamSpec, TypeVar

from ..faces.pipeline import FacesMode, Space
from ..places import sqlite_path
from ..store.values import PhotoStatus
from .mapper import Mapper, MapperSpec, process, worker_pool
from .report import Processed, Task

if TYPE_CHECKING:
    from ..config import Settings
    from .protocol import IngestTarget
    from .runner import IngestOptions
    from .writer import Writer

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
MapFn = Callable[[list[Task]], list[Processed]]

# Below this many photos an ingest that was not given a worker count maps them in its own
# process. Measured 2026-12-02 (2-core VM, SFace + YuNet): a pool costs ~3.5 s before its
# first face (spawn, imports, one model load per worker) and then maps ~37 photos/s, this
# process ~27 photos/s after a ~0.5 s load: the pool wins only past ~300 photos, so 100
# leaves a wide margin on slower disks and keeps crash isolation for anything larger.
IN_PROCESS_BELOW = 100

# Photos a worker maps in one call, their faces embedded together
# (:meth:`.mapper.Mapper.process_tasks`). Measured 2026-12-06 (2 workers, SFace + YuNet + face
# mesh, LFW): 15.2 ms of CPU a photo one at a time, 11.9 / 11.2 / 11.1 ms in calls of 4 / 8 / 16.
# Eight: past it nothing is gained, and a worker that dies costs its call's photos a retry.
PHOTOS_A_CALL = 8


def calls(tasks: list[Task], workers: int) -> list[list[Task]]:
    """``tasks`` cut into the calls the workers get: :data:`PHOTOS_A_CALL` photos each, fewer
    when there are too few photos to give every worker a full call."""
    size = max(1, min(PHOTOS_A_CALL, -(-len(tasks) // max(workers, 1))))
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


def plan_workers(requested: int, photos: int, cores: int) -> int:
    """Worker processes for a run over ``photos`` files; 0 = map them in this process.

    A count asked for is kept (a user who asks for processes gets them, crash isolation
    included). Otherwise: in this process below :data:`IN_PROCESS_BELOW` photos, else one
    worker per core. ``photos`` counts files before the reader skips the unchanged ones,
    so a re-run of a large corpus still gets its pool, started only if a photo needs it."""
    if requested > 0:
        return requested
    return 0 if photos < IN_PROCESS_BELOW else max(cores, 1)


def plan_queue_workers(requested: int, photos: int, cores: int) -> int:
    """Queue workers for a PostgreSQL run over ``photos`` files (they store what they map,
    so there is always at least one): a count asked for is kept; otherwise one below
    :data:`IN_PROCESS_BELOW` photos, where a second worker's start-up (imports, one model
    load) costs more than it saves, else one per core."""
    return plan_workers(requested, photos, cores) or 1


class _Immediate(Executor):
    """An executor that runs each call at once, here: the runner's code stays the same for
    one process and for many. Ctrl-C raises in here and ends the run as it does with a pool."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        future.set_result(fn(*args, **kwargs))  # the mapper never raises: a bad photo is a status
        return future


class _Mapped:
    """What both local distributors share: photos sent in calls of a few (:func:`calls`), up
    to two calls per worker in flight, finished results to the writer. A dead worker costs
    one photo, not the run: the photos in flight when a worker died are mapped again, each
    alone with nothing else in flight, so the photo that kills a worker again is the one
    stored as an error, and its neighbours are stored. The executor starts on the first
    task (a re-run with nothing new never loads a model), unless it was started before
    the library opened (:func:`workers_first`)."""

    # pools in a row that die before handing back one photo: the workers cannot start (a
    # model that does not load, memory): the run ends with IngestFailed instead of starting
    # one pool per photo (a few photos that each kill their worker in a row stay under it)
    FRUITLESS_POOLS = 5

    def __init__(self, target: IngestTarget, options: IngestOptions, workers: int) -> None:
        self.target, self.options, self.workers = target, options, workers
        self.pool: tuple[Executor, MapFn] | None = None
        self.pending: dict[Future[list[Processed]], _Call] = {}
        self.again: list[Task] = []  # in flight when a worker died: each to be mapped again alone
        self.fruitless = 0  # pools in a row that died without handing back a photo

    def _start(self) -> tuple[Executor, MapFn]:
        raise NotImplementedError

    def send(self, tasks: list[Task], writer: Writer) -> None:
        for call in calls(tasks, self.workers):
            while len(self.pending) >= max(self.workers, 1) * 2:
                self._collect(writer, block=True)
            self._submit(_Call(call, alone=False), writer)
            self._collect(writer, block=False)
            self._alone(writer)

    def finish(self, writer: Writer) -> None:
        while self.pending or self.again:
            self._collect(writer, block=True)
            self._alone(writer)

    def close(self, writer: Writer, interrupted: bool) -> None:
        if self.pool is not None:
            self.pool[0].shutdown(wait=not interrupted, cancel_futures=True)

    def _alone(self, writer: Writer) -> None:
        """Map the photos that were in flight when a worker died, one at a time with nothing
        else in flight: a worker that dies now died of that photo."""
        while self.again:
            while self.pending:
                self._collect(writer, block=True)
            self._submit(_Call([self.again.pop(0)], alone=True), writer)
            self._collect(writer, block=True)

    def _submit(self, call: _Call, writer: Writer) -> None:
        if self.pool is None:
            self.pool = self._start()
        while True:
            executor, map_fn = self.pool
            try:
                self.pending[executor.submit(map_fn, call.tasks)] = call
                return
            except BrokenProcessPool:
                # a worker died since the last collect, and the pool says so at submit (which
                # of the two sees a death first depends on the machine's speed; seen in CI,
                # 2026-12-05): once it has failed every future it held, a collect settles
                # them and replaces the pool, and the new pool takes this call
                wait(list(self.pending))
                self._collect(writer, block=False, broken=True)

    def _collect(self, writer: Writer, block: bool, broken: bool = False) -> None:
        """Hand finished results to the writer. When a worker died the pool fails every call
        it held: a photo mapped alone is the one it died of (stored as an error), the others
        go to :attr:`again`. ``broken``: the pool is known to be broken already (a submit said so)."""
        done, _ = wait(list(self.pending), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            broken = not self._settle(future, writer) or broken
        if broken:
            for future in list(self.pending):  # every other call: done meanwhile, or failed with the pool
                self._settle(future, writer)
            assert self.pool is not None
            self.pool[0].shutdown(wait=False, cancel_futures=True)
            self.fruitless += 1
            if self.fruitless >= self.FRUITLESS_POOLS:
                from ..errors import IngestFailed

                raise IngestFailed(f"{self.fruitless} pools of ingest workers in a row died before mapping a "
                                   "photo; see their messages above")
            self.pool = self._start()

    def _settle(self, future: Future[list[Processed]], writer: Writer) -> bool:
        """A finished call's results to the writer (True), or its photos to :meth:`_died`
        when its pool broke (False)."""
        call = self.pending.pop(future)
        try:
            results = future.result()
        except BrokenProcessPool:
            self._died(call, writer)
            return False
        self.fruitless = 0
        for result in results:
            writer.take(result)
        return True

    def _died(self, call: _Call, writer: Writer) -> None:
        if not call.alone:
            self.again.extend(call.tasks)
            return
        for task in call.tasks:
            log.warning("%s: the worker process died mapping it, alone", task.path)
            writer.take(Processed.settled(task.item, PhotoStatus.error,
                                          "the worker process died while mapping this photo (alone, after a "
                                          "first death with others); run the ingest again to retry it"))


class _Call(NamedTuple):
    """Photos sent to a worker in one call; ``alone``: one photo mapped again after a death."""

    tasks: list[Task]
    alone: bool


class InProcess(_Mapped):
    """Maps in this process with the library's own models (:class:`.mapper.Mapper` over the
    target's pipeline). Ctrl-C raises in here and ends the run as it does with a pool."""

    def __init__(self, target: IngestTarget, options: IngestOptions) -> None:
        super().__init__(target, options, 0)

    def _start(self) -> tuple[Executor, MapFn]:
        log.debug("mapping photos in this process")
        s = self.target.settings
        mapper = Mapper(self.target.space, s.detect_max_side, s.max_pixels, self.options.faces,
                        self.options.analyzer_name, pipeline=self.target.models.pipeline)
        return _Immediate(), mapper.process_tasks


class ProcessPool(_Mapped):
    """Maps in ``workers`` spawned processes, each with its own models (:func:`.mapper.worker_pool`):
    the ``started`` ones if they were started before the library opened (:func:`start_workers`)."""

    def __init__(self, target: IngestTarget, options: IngestOptions, workers: int,
                 started: StartedWorkers | None = None) -> None:
        super().__init__(target, options, workers)
        self._started = started
        self.spec = MapperSpec.of(target.space, target.settings, options.faces, options.analyzer_name)

    def _start(self) -> tuple[Executor, MapFn]:
        pool = self._started.take(self.workers) if self._started is not None else None
        self._started = None  # a pool that breaks is replaced by a new one
        if pool is None:
            log.debug("mapping photos in %d worker processes", self.workers)
            pool = worker_pool(self.workers, self.spec)
        return pool, partial(process, self.spec)


class StartedWorkers:
    """Worker processes started before their library opened (:func:`start_workers`), for the
    ingest that follows to take (``Library.ingest_items(started=...)``). Why: a worker takes
    0.5-1.2 s to import its stack and load its models, and the command itself as long to
    import SQLAlchemy, open the library and read the first photos; one after the other,
    that was a fifth of a 1,200-photo run (2026-12-06). Started together, they overlap."""

    def __init__(self, workers: int, pool: ProcessPoolExecutor) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = pool

    def take(self, workers: int) -> ProcessPoolExecutor | None:
        """The pool, once, if it has ``workers`` processes (else the run starts its own)."""
        pool, self._pool = self._pool, None
        if pool is not None and workers != self.workers:
            pool.shutdown(wait=False, cancel_futures=True)
            return None
        return pool

    def close(self) -> None:
        """Shut the workers down if no run took them (the run failed before its first photo).
        They finish starting first (their start-up calls are queued): a command that fails
        that early waits for them, at most their start, 0.5-1.2 s."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


@contextmanager
def start_workers(requested: int, photos: int, guess: MapperSpec) -> Iterator[StartedWorkers | None]:
    """The workers a run over ``photos`` files will map in (:func:`plan_workers`; none when
    it maps in its own process), started now and loading the models of ``guess``: the space
    the library is expected to have. A library in another space gets its own models at the
    first call. Only worth it where every photo will need them: a new library."""
    workers = plan_workers(requested, photos, os.cpu_count() or 1)
    if not workers:
        yield None
        return
    log.debug("starting %d worker processes before the library opens", workers)
    started = StartedWorkers(workers, worker_pool(workers, guess, guess=True))
    try:
        yield started
    finally:
        started.close()


def workers_first(settings: Settings, requested: int, photos: int, mode: FacesMode,
                  analyzer: str | None) -> AbstractContextManager[StartedWorkers | None]:
    """The workers of a run into a new SQLite library file, started now (:func:`start_workers`)
    on the space it will take (``settings.space_names``): every photo will need the models,
    and the workers' start then overlaps the library's opening. Any other library (a file
    that exists, a server database): none, its pool starts at the first photo that needs
    it, since a re-run may need none. Nor where the library cannot be made (no such folder):
    the open says why at once, without waiting for workers to start."""
    path = sqlite_path(settings.db_url)
    if path is None or path.exists() or not path.parent.is_dir():
        return nullcontext(None)
    space = Space(*settings.space_names).check()  # a bad choice is said before workers start
    from ..analysis import AnalyzerName, required_weights
    from ..models import registry

    # and missing weights before the library's file and folders are made: a refused first
    # ingest had left an empty library behind
    wanted = [space.model, space.detector, space.aligner]
    if analyzer is not None:  # resolved by the caller (auto is deepface's or the offline ones)
        wanted += required_weights(AnalyzerName(analyzer))
    registry.require(*wanted)
    return start_workers(requested, photos, MapperSpec.of(space, settings, mode, analyzer))
