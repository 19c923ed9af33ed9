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

import hashlib
import os
import signal
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .corpus import Item, Profile
from ..errors import BadImage
from ..faces.pipeline import FacesMode, FacePipeline, Space
from ..workers import spawn_context
from ..store import repo
from ..store.schema import Face, Photo, PhotoStatus

if TYPE_CHECKING:
    from ..analysis import AnalyzerName


@dataclass
class Processed:
    """What the mapper made of one photo (small and picklable)."""

    path: str
    person: str | None
    profile: Profile | None
    sha256: str | None
    size: int | None
    status: str
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    # (bbox, confidence, vector bytes, estimate dict or None) per face
    faces: list[tuple[tuple[int, int, int, int], float, bytes, dict | None]] = field(default_factory=list)
    replaces: bool = False  # a row for this path exists (changed file, or an error retried)
    conflict: bool = False  # a duplicate filed under another person than the first copy

    @classmethod
    def settled(cls, item: Item, status: PhotoStatus, reason: str, **known) -> "Processed":  # noqa: ANN003
        """A photo decided without the mapper (rejected, unreadable, duplicate, worker died)."""
        return cls(item.path, item.person, item.profile, known.pop("sha256", None),
                   known.pop("size", None), status.value, reason, **known)


@dataclass
class Outcome:
    """One line of the per-file report."""

    path: str
    person: str | None
    status: str  # a PhotoStatus value, or "unchanged" for a photo skipped by a re-run
    reason: str | None
    faces: int
    sha256: str | None
    conflict: bool = False


@dataclass
class IngestReport:
    """Summary of one ingest run."""

    outcomes: list[Outcome] = field(default_factory=list)
    skipped_files: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    index_rebuilt: str | None = None  # why upkeep rebuilt the index after this run, if it did

    @property
    def statuses(self) -> dict[str, int]:
        counts = Counter(o.status for o in self.outcomes)
        return {s.value: counts.get(s.value, 0) for s in PhotoStatus} | {
            "unchanged": counts.get("unchanged", 0)}

    @property
    def faces(self) -> int:
        return sum(o.faces for o in self.outcomes if o.status == PhotoStatus.ok.value)

    @property
    def processed(self) -> int:
        return sum(1 for o in self.outcomes if o.status != "unchanged")

    @property
    def conflicts(self) -> list[Outcome]:
        """Duplicates filed under a different person than the first copy."""
        return [o for o in self.outcomes if o.conflict]

    def to_dict(self) -> dict:
        rate = self.processed / self.seconds if self.seconds > 0 else 0.0
        return {
            "photos": len(self.outcomes),
            "processed": self.processed,
            "faces": self.faces,
            "statuses": self.statuses,
            "skipped_files": self.skipped_files,
            "seconds": round(self.seconds, 3),
            "photos_per_s": round(rate, 2),
            "faces_per_s": round(self.faces / self.seconds, 2) if self.seconds > 0 else 0.0,
            "interrupted": self.interrupted,
            "index_rebuilt": self.index_rebuilt,
            "conflicts": [{"path": o.path, "person": o.person, "reason": o.reason}
                          for o in self.conflicts],
        }


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, outcome: Outcome) -> None: ...
    def stop(self) -> None: ...


class _Silent:
    def start(self, total: int) -> None: pass
    def advance(self, outcome: Outcome) -> None: pass
    def stop(self) -> None: pass


# -- mapper (runs in worker processes) ------------------------------------------------
class Mapper:
    """decode -> detect -> align -> embed (-> estimates) for one embedding space, with its
    models loaded once. Never touches the database."""

    def __init__(self, space: Space, detect_max_side: int, max_pixels: int, mode: FacesMode,
                 analyzer: str | None = None) -> None:
        self.pipeline = FacePipeline(space, detect_max_side, threads=1)  # one process per core
        self.max_pixels, self.mode = max_pixels, mode
        self.analyzer = None
        if analyzer is not None:
            from .. import analysis

            self.analyzer = analysis.build(analysis.AnalyzerName(analyzer))

    def process(self, item: Item, sha: str, size: int, data: bytes, replaces: bool) -> Processed:
        """One photo's bytes to faces. Never raises: a bad photo gets a status and a reason."""
        base = dict(path=item.path, person=item.person, profile=item.profile, sha256=sha, size=size,
                    replaces=replaces)
        try:
            from ..faces.images import decode

            decoded = decode(data, item.path, self.max_pixels)
        except BadImage as err:
            return Processed(**base, status=err.status, reason=err.reason)
        dims = dict(width=decoded.width, height=decoded.height)
        notes = "; ".join(decoded.notes) or None
        try:
            faces = self.pipeline.faces(decoded.rgb, self.mode)
        except Exception as err:  # noqa: BLE001 - one bad photo must not stop the run
            return Processed(**base, **dims, status=PhotoStatus.error.value,
                             reason=f"face pipeline failed: {type(err).__name__}: {err}")
        if not faces:
            reason = "no face found" + (f" ({notes})" if notes else "")
            return Processed(**base, **dims, status=PhotoStatus.no_face.value, reason=reason)
        estimates: list = [None] * len(faces)
        if self.analyzer is not None:
            try:
                estimates = [e.to_dict() for e in self.analyzer.analyze(decoded.rgb, [f.bbox for f in faces])]
            except Exception as err:  # noqa: BLE001 - the faces are still worth storing
                notes = "; ".join(filter(None, [notes, f"analysis failed: {type(err).__name__}: {err}"]))
        packed = [(f.bbox, f.confidence, repo.encode_vector(f.embedding), e) for f, e in zip(faces, estimates)]
        return Processed(**base, **dims, status=PhotoStatus.ok.value, reason=notes, faces=packed)


_MAPPER: Mapper | None = None  # one per pool worker process


def prepare_process() -> None:
    """What every worker process does first: Ctrl-C is the parent's business, the weights
    home is the parent's, and one BLAS thread each (the processes are the parallelism)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from ..config import activate_weights_home

    activate_weights_home()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)  # YuNet runs in OpenCV's DNN module


def init_worker(space: Space, detect_max_side: int, max_pixels: int, mode: str,
                analyzer: str | None = None) -> None:
    """Load the models once per pool worker."""
    global _MAPPER
    prepare_process()
    _MAPPER = Mapper(space, detect_max_side, max_pixels, FacesMode(mode), analyzer)


def embed_file(path: str):  # noqa: ANN201
    """``(path, vector of the largest face or None)``: for evaluation pools that share the
    ingest workers' set-up (:func:`init_worker`)."""
    from ..faces.images import decode_file

    try:
        assert _MAPPER is not None, "worker not initialised"
        faces = _MAPPER.pipeline.faces(decode_file(path, _MAPPER.max_pixels).rgb, FacesMode.largest)
    except Exception:  # noqa: BLE001 - an unreadable photo counts as "no face"
        return path, None
    return path, faces[0].embedding if faces else None


def process(task: tuple[Item, str, int, bytes, bool]) -> Processed:
    """Pool entry point: :meth:`Mapper.process` in this worker."""
    assert _MAPPER is not None, "worker not initialised"
    return _MAPPER.process(*task)


def store_batch(session, space_id: int, batch: list[Processed], people: dict[str, int],  # noqa: ANN001
                db_vector=None):  # noqa: ANN001, ANN201
    """Write a batch of results in the caller's transaction: the rows a changed file
    replaces go, people are created (in name order, so concurrent workers on PostgreSQL
    never wait on each other in a cycle), photos, faces (with ``db_vector(v)`` in
    ``faces.vec`` when given), estimates and centroid sums. Returns the face ids to drop
    from and add to an index file, and the new vectors; the caller commits."""
    import numpy as np

    stale: list[int] = []
    for r in batch:
        if r.replaces:  # changed file, or a retry of an error: the old row goes
            old = repo.photo_by_path(session, space_id, r.path)
            if old is not None:
                stale.extend(repo.delete_photo(session, old))
    session.flush()
    by_name = {}
    for r in sorted((r for r in batch if r.person), key=lambda r: r.person):
        by_name[r.person] = repo.upsert_person(session, r.person, r.profile, people)
    ids = [by_name[r.person] if r.person else None for r in batch]
    photos = [Photo(space_id=space_id, path=r.path, sha256=r.sha256, size_bytes=r.size,
                    width=r.width, height=r.height, person_id=pid, status=r.status,
                    reason=r.reason) for r, pid in zip(batch, ids)]
    session.add_all(photos)
    session.flush()
    faces = [Face(space_id=space_id, photo_id=photo.id, person_id=pid, x=int(x), y=int(y),
                  w=int(w), h=int(h), confidence=float(conf), embedding=blob,
                  vec=db_vector(repo.decode_vector(blob)) if db_vector is not None else None)
             for r, pid, photo in zip(batch, ids, photos)
             for (x, y, w, h), conf, blob, _ in r.faces]
    session.add_all(faces)
    session.flush()
    new_ids = np.asarray([f.id for f in faces], dtype=np.int64)
    session.add_all(repo.estimate_rows(faces, [est for r in batch for *_, est in r.faces]))
    vectors = np.stack([repo.decode_vector(f.embedding) for f in faces]) if faces else None
    if faces:
        repo.update_centroids(session, space_id, [f.person_id for f in faces], vectors)
    return stale, new_ids, vectors


# -- reader + writer (main process) ---------------------------------------------------
READ_CHUNK = 256  # photos the reader looks up in the database with one query
@dataclass(frozen=True)
class IngestOptions:
    faces: FacesMode = FacesMode.largest
    workers: int = 0  # 0 = one per core
    batch: int = 32  # photos per database transaction
    save_every: float = 20.0  # seconds between index saves
    analyzer: AnalyzerName | None = None  # estimate age / gender / emotion of each face (opt-in)


def run(library, items: list[Item], options: IngestOptions, progress: Progress | None = None,  # noqa: ANN001
        skipped_files: int = 0) -> IngestReport:
    """Ingest ``items`` into ``library`` (a :class:`lookalike.library.Library`)."""
    progress = progress or _Silent()
    report = IngestReport(skipped_files=skipped_files)
    started = time.perf_counter()
    writer = _Writer(library, report, progress, options)
    workers = options.workers or os.cpu_count() or 1
    progress.start(len(items))
    pool: ProcessPoolExecutor | None = None
    pending: dict[Future, Item] = {}
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


def run_queued(library, items: list[Item], options: IngestOptions, progress: Progress | None = None,  # noqa: ANN001
               skipped_files: int = 0) -> IngestReport:
    """Ingest through the PostgreSQL work queue (:mod:`lookalike.ingest.queue`): this process reads,
    hashes and queues; ``options.workers`` local worker processes (and any ``lookalike
    worker`` elsewhere) claim, embed and store; this process collects the outcomes."""
    import uuid

    from . import queue

    progress = progress or _Silent()
    report = IngestReport(skipped_files=skipped_files)
    started = time.perf_counter()
    writer = _Writer(library, report, progress, options)
    run_id = uuid.uuid4().hex
    analyzer = options.analyzer.value if options.analyzer is not None else None
    local = _LocalWorkers(library.settings, options.workers or os.cpu_count() or 1)
    progress.start(len(items))
    try:
        in_flight: dict[str, Item] = {}
        for start in range(0, len(items), READ_CHUNK):
            tasks = writer.read(items[start:start + READ_CHUNK], in_flight)
            writer.flush()
            with library.session() as session:
                for item, *_ in tasks:  # profiles now: workers only ever see names
                    if item.profile is not None and item.person:
                        repo.upsert_person(session, item.person, item.profile, writer.people)
                queue.enqueue(session, library.space_id, run_id, tasks, options.faces.value, analyzer)
                session.commit()
            if tasks:
                local.start()
            _collect_queued(library, run_id, writer)
        while not _collect_queued(library, run_id, writer):
            local.check()
            time.sleep(0.2)
    except KeyboardInterrupt:
        report.interrupted = True  # queued rows stay pending: any worker, or a re-run, finishes them
    finally:
        local.stop(wait=not report.interrupted)
        writer.flush(force_save=True)
        if not report.interrupted:
            _collect_queued(library, run_id, writer)
        progress.stop()
    report.seconds = time.perf_counter() - started
    return report


def _collect_queued(library, run_id: str, writer: "_Writer") -> bool:  # noqa: ANN001
    """Report the run's finished photos; True when none of its photos is left pending."""
    from . import queue

    with library.session() as session:
        done = queue.collect(session, run_id)
        left = queue.pending(session, run_id)
        session.commit()
    for c in done:
        writer._record(Outcome(c.path, c.person, c.status, c.reason, c.faces, c.sha256, c.conflict))
    return left == 0


class _LocalWorkers:
    """The ``--workers N`` processes of a queued ingest, started once there is work, kept
    at N while it lasts (a killed worker is replaced; its photos are claimed again)."""

    RESTARTS = 20

    def __init__(self, settings, n: int) -> None:  # noqa: ANN001
        self.settings, self.n = settings, n
        self.procs: list = []
        self.restarts = 0
        self.ctx = spawn_context()
        self.stop_event = self.ctx.Event()

    def _spawn(self):  # noqa: ANN202
        from .queued import serve_process

        proc = self.ctx.Process(target=serve_process, args=(self.settings, self.stop_event, False), daemon=True)
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


def _pool(library, options: IngestOptions, workers: int) -> ProcessPoolExecutor:  # noqa: ANN001
    analyzer = options.analyzer.value if options.analyzer is not None else None
    return worker_pool(library, options.faces, workers, analyzer)


def worker_pool(library, faces: FacesMode, workers: int, analyzer: str | None = None) -> ProcessPoolExecutor:  # noqa: ANN001
    """Spawned processes with the library's pipeline loaded once each (:func:`init_worker`).

    ``concurrent.futures`` rather than ``multiprocessing.Pool``: a worker that cannot start
    breaks the pool with an error instead of being respawned forever. Spawned, never
    forked (dlib / ONNX Runtime threads), and without re-running ``__main__``
    (:mod:`lookalike.workers`)."""
    s = library.settings
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=spawn_context(), initializer=init_worker,
        initargs=(library.space, s.detect_max_side, s.max_pixels, faces.value, analyzer))


def _collect(pool, pending, writer, library, options, workers, block: bool):  # noqa: ANN001
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


class _Writer:
    """The single writer: reader-side checks, batched commits, index upkeep."""

    def __init__(self, library, report: IngestReport, progress: Progress, options: IngestOptions):  # noqa: ANN001
        self.lib = library
        self.report = report
        self.progress = progress
        self.options = options
        self.buffer: list[Processed] = []
        self.people: dict[str, int] = {}
        self.last_save = time.monotonic()
        self.dirty = False

    # reader side ---------------------------------------------------------------------
    def read(self, items: list[Item], in_flight: dict[str, Item]) -> list[tuple[Item, str, int, bytes, bool]]:
        """Bytes + hash of each new or changed photo; the rest is settled here."""
        loaded: list[tuple[Item, str, bytes]] = []
        for item in items:
            if item.rejected:
                self.take(Processed.settled(item, PhotoStatus.rejected, item.rejected))
                continue
            try:
                with open(item.path, "rb") as fh:
                    data = fh.read()
            except OSError as err:
                self.take(Processed.settled(item, PhotoStatus.decode_error,
                                            f"cannot be read ({err.strerror or err})"))
                continue
            loaded.append((item, hashlib.sha256(data).hexdigest(), data))
        with self.lib.session() as session:
            known = repo.known_by_path(session, self.lib.space_id, [i.path for i, _, _ in loaded])
            firsts = repo.first_by_sha(session, self.lib.space_id, [sha for _, sha, _ in loaded])
            profiles_changed = False
            tasks = []
            for item, sha, data in loaded:
                old = known.get(item.path)
                if old is not None and old.sha256 == sha and old.status != PhotoStatus.error.value:
                    if item.profile is not None and item.person:  # a manifest may update profiles
                        repo.upsert_person(session, item.person, item.profile, self.people)
                        profiles_changed = True
                    self._record(Outcome(item.path, item.person, "unchanged", old.status, 0, sha))
                    continue
                first = firsts.get(sha)
                if first is not None and first.path != item.path:
                    first_path, first_person = first.path, first.person
                elif sha in in_flight and in_flight[sha].path != item.path:
                    first_path, first_person = in_flight[sha].path, in_flight[sha].person
                else:
                    in_flight[sha] = item
                    tasks.append((item, sha, len(data), data, old is not None))
                    continue
                reason = f"same bytes as {first_path}"
                conflict = bool(first_person and item.person and first_person != item.person)
                if conflict:
                    reason += f", filed under another person ({first_person!r} vs {item.person!r})"
                self.take(Processed.settled(item, PhotoStatus.duplicate, reason, sha256=sha,
                                            size=len(data), replaces=old is not None, conflict=conflict))
            if profiles_changed:
                session.commit()
        return tasks

    # writer side ---------------------------------------------------------------------
    def take(self, result: Processed) -> None:
        self.buffer.append(result)
        if len(self.buffer) >= self.options.batch:
            self.flush()

    def flush(self, force_save: bool = False) -> None:
        if self.buffer:
            self._commit(self.buffer)
            self.buffer = []
        if self.dirty and (force_save or time.monotonic() - self.last_save >= self.options.save_every):
            self.lib.index.save()
            self.last_save = time.monotonic()
            self.dirty = False

    def _commit(self, batch: list[Processed]) -> None:
        """One transaction for the whole batch (bulk inserts), then the index follows."""
        import numpy as np

        with self.lib.session() as session:
            stale, new_ids, vectors = store_batch(session, self.lib.space_id, batch, self.people,
                                                  self.lib.db_vector_writer(session))
            session.commit()
        # the database is committed: now the index may follow
        if stale:
            self.lib.index.remove(np.asarray(stale, dtype=np.int64))
            self.dirty = True
        if len(new_ids):
            self.lib.index.add(new_ids, vectors)
            self.dirty = True
        for r in batch:
            self._record(Outcome(r.path, r.person, r.status, r.reason, len(r.faces), r.sha256, r.conflict))

    def _record(self, outcome: Outcome) -> None:
        self.report.outcomes.append(outcome)
        self.progress.advance(outcome)
