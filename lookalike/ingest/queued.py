"""An ingest worker on the PostgreSQL queue (:mod:`lookalike.ingest.queue`).

``lookalike ingest --workers N`` starts N of these beside itself; ``lookalike worker``
starts them on any other machine that can reach the database and read the photos at the
same paths (a shared mount). Each claims a few photos, runs the same mapper as the
single-machine ingest (:class:`lookalike.ingest.Mapper`), and stores the results with the
same writer code (:func:`lookalike.ingest.store_batch`) in the claiming transaction.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass, field

from . import queue
from .corpus import Item
from ..faces.pipeline import FacesMode, Space
from .local import Mapper, Processed, store_batch
from ..store import repo
from ..store.schema import PhotoStatus, QueueItem


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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class QueueWorker:
    """Claims, processes and stores queued photos for a library on PostgreSQL."""

    def __init__(self, library) -> None:  # noqa: ANN001
        self.lib = library
        self.name = worker_name()
        self.stats = WorkerStats()
        self._mappers: dict[tuple, Mapper] = {}
        self._views: dict[int, object] = {}
        self._people: dict[str, int] = {}

    def serve(self, stop=None, until_empty: bool = False, poll: float = 0.5) -> WorkerStats:  # noqa: ANN001
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
        """One claim: process and store up to :data:`lookalike.ingest.queue.CLAIM` photos in one
        transaction. Returns how many (0: nothing to claim)."""
        with self.lib.session() as session:
            items = queue.claim(session)
            if not items:
                session.rollback()
                return 0
            starts = queue.record_attempts(self.lib._engine, [i.id for i in items], self.name)
            by_space: dict[int, list[QueueItem]] = {}
            for item in items:
                by_space.setdefault(item.space_id, []).append(item)
            for space_id, group in by_space.items():
                self._store(session, space_id, group, starts)
            session.commit()
        return len(items)

    # -- one space's share of a claim --------------------------------------------------
    def _store(self, session, space_id: int, group: list[QueueItem], starts: dict[int, int]) -> None:  # noqa: ANN001
        view = self._view(session, space_id)
        loaded = [(item, *self._read(item)) for item in group]
        queue.lock_bytes(session, space_id, [sha for _, sha, _ in loaded if sha])
        firsts = repo.first_by_sha(session, space_id, [sha for _, sha, _ in loaded if sha])
        known = repo.known_by_path(session, space_id, [item.path for item in group])
        results: list[tuple[QueueItem, Processed]] = []
        seen: dict[str, str] = {}
        for item, sha, data in loaded:
            results.append((item, self._decide(view, item, sha, data, starts.get(item.id, 1),
                                               known.get(item.path), firsts.get(sha) if sha else None, seen)))
        to_store = [r for _, r in results if r.status != "unchanged"]
        store_batch(session, space_id, to_store, self._people, view.db_vector_writer(session))
        for item, r in results:
            queue.finish(session, item, r.status, r.reason, len(r.faces), r.conflict, self.name)
            self.stats.photos += 1
            self.stats.faces += len(r.faces)
            self.stats.statuses[r.status] = self.stats.statuses.get(r.status, 0) + 1

    def _read(self, item: QueueItem) -> tuple[str | None, bytes | None]:
        try:
            with open(item.path, "rb") as fh:
                data = fh.read()
        except OSError:
            return None, None
        return hashlib.sha256(data).hexdigest(), data

    def _decide(self, view, item: QueueItem, sha: str | None, data: bytes | None, starts: int,  # noqa: ANN001
                old, first, seen: dict[str, str]) -> Processed:  # noqa: ANN001
        """What to store for one claimed photo: its faces, or why not."""
        it = Item(item.path, item.person)
        if data is None:
            return Processed.settled(it, PhotoStatus.decode_error,
                                     f"cannot be read on worker {self.name} (is the corpus mounted at "
                                     "the same path on every worker machine?)", replaces=old is not None)
        replaces = old is not None
        if old is not None and old.sha256 == sha and old.status != PhotoStatus.error.value:
            # stored meanwhile by another run (a path queued twice): nothing to redo
            return Processed(item.path, item.person, None, sha, len(data), "unchanged", old.status)
        if starts > queue.MAX_ATTEMPTS:
            return Processed.settled(it, PhotoStatus.error,
                                     f"a worker process died on this photo {starts - 1} times; not retried",
                                     sha256=sha, size=len(data), replaces=replaces)
        original = first.path if first is not None and first.path != item.path else seen.get(sha)
        if original is not None:
            first_person = first.person if first is not None and first.path == original else item.person
            conflict = bool(first_person and item.person and first_person != item.person)
            reason = f"same bytes as {original}" + (
                f", filed under another person ({first_person!r} vs {item.person!r})" if conflict else "")
            return Processed.settled(it, PhotoStatus.duplicate, reason, sha256=sha, size=len(data),
                                     replaces=replaces, conflict=conflict)
        seen[sha] = item.path
        mapper = self._mapper(view, item)
        return mapper.process(it, sha, len(data), data, replaces)

    def _view(self, session, space_id: int):  # noqa: ANN001, ANN202
        if space_id not in self._views:
            from ..store.schema import Space as SpaceRow
            from ..models import catalog as weights
            from ..faces.pipeline import Space as FaceSpace, needs_shape_predictor

            row = session.get(SpaceRow, space_id)
            shape = needs_shape_predictor(FaceSpace(row.model, row.detector, row.aligner))
            for name in (row.model, row.detector, row.aligner, *shape):
                weights.require(name)  # fail here, with the install command, not per photo
            self._views[space_id] = self.lib._view(row)
        return self._views[space_id]

    def _mapper(self, view, item: QueueItem) -> Mapper:  # noqa: ANN001
        key = (view.space.key, item.faces_mode, item.analyzer)
        if key not in self._mappers:
            s = self.lib.settings
            space: Space = view.space
            self._mappers[key] = Mapper(space, s.detect_max_side, s.max_pixels, FacesMode(item.faces_mode),
                                        item.analyzer)
        return self._mappers[key]


def serve_process(settings, stop, until_empty: bool, results=None) -> None:  # noqa: ANN001
    """Entry point of a spawned worker process (``ingest --workers N`` / ``lookalike worker``)."""
    from .local import prepare_process
    from ..library import Library

    prepare_process()
    with Library(settings) as lib:
        stats = QueueWorker(lib).serve(stop, until_empty)
    if results is not None:
        results.put(stats.to_dict())
