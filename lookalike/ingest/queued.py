"""Ingest through the PostgreSQL work queue (:mod:`lookalike.store.queue`).

The runner reads, hashes and queues (:class:`PostgresQueue`, its distributor); workers
(:class:`QueueWorker`) claim, embed and store.

``lookalike ingest --workers N`` starts N of these beside itself; ``lookalike worker``
starts them on any other machine that can reach the database and read the photos at the
same paths (a shared mount). Each claims a few photos, runs the same mapper as the
single-machine ingest (:class:`.mapper.Mapper`), and stores the results with the
same rows (:func:`lookalike.store.photo_batches.store_batch`) in the claiming transaction.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, NamedTuple

from ..faces.landmarks import MODEL as LANDMARK_MODEL
from ..faces.pipeline import FacesMode, Space
from ..faults import crash_point
from ..store import person_rows, photo_rows, queue
from ..store.photo_batches import store_batch
from ..store.queue import Claimed
from ..store.values import PhotoStatus
from ..workers import spawn_context
from .corpus import Item
from .mapper import Mapper
from .reader import Reading, Seen, decide, duplicate_reason, filed, read_file, unreadable
from .report import IngestStatus, Outcome, Processed, Task

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.synchronize import Event

    from sqlalchemy.orm import Session

    from ..config import Settings
    from ..store.photo_rows import Known
    from .protocol import IngestTarget, QueueAccess
    from .runner import IngestOptions
    from .writer import Writer

    # a local worker's entry point: worker_main(settings, stop_event, until_empty)
    WorkerMain = Callable[[Settings, Event, bool], None]
    # ... and one that reports its WorkerStats (as a dict) on a queue when it ends
    ReportingMain = Callable[[Settings, Event, bool, "Queue[dict]"], None]
    from multiprocessing import Queue


class Read(NamedTuple):
    """A claimed photo's bytes and their sha256, or why they could not be read (the OS's
    words: a missing file, a permission, a folder not mounted here)."""

    sha: str | None
    data: bytes | None
    why: str = ""


def _read(item: Claimed) -> Read:
    try:
        data, sha = read_file(item.path)
    except OSError as err:
        return Read(None, None, err.strerror or str(err))
    return Read(sha, data)


class PostgresQueue:
    """The :class:`.runner.Distributor` of a library on PostgreSQL: the reader's tasks become
    rows of the work queue (:mod:`lookalike.store.queue`); ``workers`` local processes (and
    any ``lookalike worker`` elsewhere) claim, map and store them; their outcomes are read
    back for the report.

    ``worker_main(settings, stop_event, until_empty)`` is each local worker's entry point:
    it opens the library in the new process (:func:`lookalike.verbs.library.serve_queue`), which
    this layer cannot import, so the library hands it down with the distributor."""

    def __init__(self, target: IngestTarget, options: IngestOptions, workers: int, worker_main: WorkerMain) -> None:
        import uuid

        self.target, self.options = target, options
        self.run_id = uuid.uuid4().hex
        self.people: dict[str, int] = {}
        self.local = _LocalWorkers(target.settings, workers, worker_main)

    def send(self, tasks: list[Task], writer: Writer) -> None:
        writer.flush()  # what the reader settled is stored before the workers meet these bytes
        with self.target.session() as session:
            for item in (task.item for task in tasks):  # profiles now: workers only ever see names
                if item.profile is not None and item.person:
                    person_rows.upsert_person(session, item.person, item.profile, self.people)
            queue.enqueue(session, self.target.row.space_id, self.run_id, tasks, self.options.faces.value,
                          self.options.analyzer_name)
            session.commit()
        if tasks:
            self.local.start()
        self._collect(writer)

    def finish(self, writer: Writer) -> None:
        while not self._collect(writer):
            self.local.check()
            time.sleep(0.2)

    def close(self, writer: Writer, interrupted: bool) -> None:
        # interrupted: queued rows stay pending; any worker, or a re-run, finishes them
        self.local.stop(wait=not interrupted)
        if not interrupted:
            self._collect(writer)

    def _collect(self, writer: Writer) -> bool:
        """Report the run's finished photos; True when none of its photos is left pending."""
        with self.target.session() as session:
            done = queue.collect(session, self.run_id)
            left = queue.pending(session, self.run_id)
            session.commit()
        for c in done:
            writer.record(Outcome(c.path, c.person, IngestStatus.of(c.status), c.reason, c.faces, c.sha256,
                                  c.conflict))
        return left == 0


class _LocalWorkers:
    """The ``--workers N`` processes of a queued ingest, started once there is work, kept
    at N while it lasts (a killed worker is replaced; its photos are claimed again)."""

    RESTARTS = 20

    def __init__(self, settings: Settings, n: int, serve: WorkerMain) -> None:
        self.settings, self.n, self.serve = settings, n, serve
        self.procs: list[SpawnProcess] = []
        self.restarts = 0
        self.ctx = spawn_context()
        self.stop_event = self.ctx.Event()

    def _spawn(self) -> SpawnProcess:
        proc = self.ctx.Process(target=self.serve, args=(self.settings, self.stop_event, False), daemon=True)
        proc.start()
        return proc

    def start(self) -> None:
        while len(self.procs) < self.n:
            self.procs.append(self._spawn())

    def check(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.exitcode is None:
                continue
            self.restarts += 1
            if self.restarts > self.RESTARTS:
                from ..errors import IngestFailed

                raise IngestFailed(f"ingest workers keep dying (last exit code {proc.exitcode}); "
                                   "see their messages above")
            self.procs[i] = self._spawn()

    def stop(self, wait: bool = True) -> None:
        self.stop_event.set()
        for proc in self.procs:
            proc.join(timeout=30 if wait else 5)
            if proc.exitcode is None:
                proc.terminate()
                proc.join(timeout=5)


@dataclass
class WorkerStats:
    photos: int = 0
    faces: int = 0
    statuses: dict = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, other: "WorkerStats") -> None:
        self.photos += other.photos
        self.faces += other.faces
        self.seconds = max(self.seconds, other.seconds)
        for k, v in other.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v

    def to_dict(self) -> dict:
        return {"photos": self.photos, "faces": self.faces, "statuses": dict(sorted(self.statuses.items())),
                "seconds": round(self.seconds, 3),
                "photos_per_s": round(self.photos / self.seconds, 2) if self.seconds > 0 else 0.0}


def run_workers(settings: Settings, n: int, until_empty: bool, serve: ReportingMain) -> tuple[WorkerStats, int]:
    """``lookalike worker``: ``n`` queue workers on this machine (each ``serve(settings,
    stop, until_empty, results)``) until the queue is empty (``until_empty``) or Ctrl-C,
    when each finishes the photos it holds; their stats summed, and how many of them failed."""
    ctx = spawn_context()
    stop, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=serve, args=(settings, stop, until_empty, results)) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        stop.set()  # each finishes the photos it holds, then stops
        for proc in procs:
            proc.join(timeout=60)
    total = WorkerStats()
    while not results.empty():
        total.add(WorkerStats(**{k: v for k, v in results.get().items() if k != "photos_per_s"}))
    return total, len([p for p in procs if p.exitcode not in (0, None)])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class QueueWorker:
    """Claims, processes and stores queued photos for a library on PostgreSQL."""

    def __init__(self, library: QueueAccess) -> None:
        self.lib = library
        self.name = worker_name()
        self.stats = WorkerStats()
        self._mappers: dict[tuple[str, str, str | None], Mapper] = {}
        self._views: dict[int, IngestTarget] = {}
        self._people: dict[str, int] = {}

    def serve(self, stop: Event | None = None, until_empty: bool = False, poll: float = 0.5) -> WorkerStats:
        """Work until ``stop`` (a multiprocessing Event) is set, or, with ``until_empty``,
        until there is nothing left to claim."""
        started = time.perf_counter()
        parent = os.getppid()
        try:
            # a worker whose parent was killed (SIGKILL leaves no time to tell it) stops too
            while (stop is None or not stop.is_set()) and os.getppid() == parent:
                if self.step():
                    continue
                if until_empty:
                    break
                if stop is not None:
                    stop.wait(poll)
                else:
                    time.sleep(poll)
        finally:
            self.stats.seconds = time.perf_counter() - started
        return self.stats

    def step(self) -> int:
        """One claim: process and store up to :data:`lookalike.store.queue.CLAIM` photos in one
        transaction. Returns how many (0: nothing to claim)."""
        with self.lib.session() as session:
            items = queue.claim(session)
            if not items:
                session.rollback()
                return 0
            starts = queue.record_attempts(self.lib.engine, [i.id for i in items], self.name)
            crash_point("queue.claimed")
            by_space: dict[int, list[Claimed]] = {}
            for item in items:
                by_space.setdefault(item.space_id, []).append(item)
            for space_id, group in by_space.items():
                self._store(session, space_id, group, starts)
            session.commit()
        crash_point("ingest.committed")
        for space_id in by_space:  # committed: a vector store outside the database follows
            self._views[space_id].vectors.after_commit()
        return len(items)

    # -- one space's share of a claim --------------------------------------------------
    def _store(self, session: Session, space_id: int, group: list[Claimed], starts: dict[int, int]) -> None:
        view = self.in_space(session, space_id)
        loaded = [(item, _read(item)) for item in group]
        shas = [read.sha for _, read in loaded if read.sha]
        queue.lock_bytes(session, space_id, shas)
        firsts = photo_rows.first_by_sha(session, space_id, shas)
        known = photo_rows.known_by_path(session, space_id, [item.path for item in group])
        results: list[tuple[Claimed, Processed]] = []
        seen: dict[str, Item] = {}
        for item, read in loaded:
            results.append((item, self._decide(view, item, read, starts.get(item.id, 1), known.get(item.path),
                                               firsts.get(read.sha) if read.sha else None, seen)))
        to_store = [r for _, r in results if r.status is not IngestStatus.unchanged]
        store_batch(session, space_id, to_store, self._people, LANDMARK_MODEL, view.vectors.db_vector_writer(session))
        for item, r in results:
            queue.finish(session, item.id, r.status.value, r.reason, len(r.faces), r.conflict, self.name)
            self.stats.photos += 1
            self.stats.faces += len(r.faces)
            self.stats.statuses[r.status.value] = self.stats.statuses.get(r.status.value, 0) + 1

    def _decide(self, view: IngestTarget, item: Claimed, read: Read, starts: int,
                old: Known | None, first: Known | None, seen: dict[str, Item]) -> Processed:
        """What to store for one claimed photo: its faces, or why not."""
        it = Item(item.path, item.person, named=True)  # the queue row holds the reader's decision
        if read.data is None or read.sha is None:  # both or neither (:func:`_read`)
            return unreadable(it, f"{read.why}; is the corpus mounted at the same path on every worker machine?",
                              old, f" on worker {self.name}")
        sha, data = read.sha, read.data
        d = decide(it, sha, old, first, seen.get(sha), Reading(FacesMode(item.faces_mode), item.analyzer is not None))
        if d.seen is Seen.unchanged:
            # stored meanwhile by another run (a path queued twice): nothing to redo
            return Processed(item.path, filed(it, old), None, sha, len(data), IngestStatus.unchanged, d.reason)
        if starts > queue.MAX_ATTEMPTS:
            return Processed.settled(it, PhotoStatus.error,
                                     f"a worker process died on this photo {starts - 1} times; not retried",
                                     sha256=sha, size=len(data), replaces=d.replaces)
        if d.seen is Seen.duplicate:
            return Processed.settled(it, PhotoStatus.duplicate, duplicate_reason(d, it), sha256=sha, size=len(data),
                                     replaces=d.replaces, conflict=d.conflict)
        seen[sha] = it
        mapper = self._mapper(view, item)
        return mapper.process(Task(it, sha, len(data), data, d.replaces, d.reason, d.keeps))

    def in_space(self, session: Session, space_id: int) -> IngestTarget:
        if space_id not in self._views:
            from ..models import registry
            from ..store.space_rows import space_by_id

            row = space_by_id(session, space_id)  # the queue rows' space: it exists
            # fail here, with the install command, not per photo
            registry.require(row.model, row.detector, row.aligner)
            self._views[space_id] = self.lib.open_target(row)
        return self._views[space_id]

    def _mapper(self, view: IngestTarget, item: Claimed) -> Mapper:
        key = (view.space.key, item.faces_mode, item.analyzer)
        if key not in self._mappers:
            s = self.lib.settings
            space: Space = view.space
            self._mappers[key] = Mapper(space, s.detect_max_side, s.max_pixels, FacesMode(item.faces_mode),
                                        item.analyzer)
        return self._mappers[key]
