"""The library object: one database + one index folder, and every verb on them.

The CLI, the webcam loop and the Streamlit pages are thin shells over this class;
nothing else does the work. Open one with :func:`lookalike.open`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Unpack

from .. import config, places
from ..config import Settings
from ..errors import EmptyLibrary, LookalikeError, NotFound, NothingIngested
from ..faces.pipeline import FacesMode, Space
from ..faults import crash_point
from ..index.backends import DoctorReport, VectorBackend, for_settings
from ..store import consent, db, photo_rows, space_rows
from ..store.db import unreachable
from ..store.values import Audience, PhotoStatus
from .maintenance import IndexMaintenance
from .measurements import Measurements
from .people import ApiKeys, People
from .pictures import AverageCache, Pictures
from .removal import Holders, Removal, remove_person, remove_photo, remove_space, settle
from .space import SpaceView, serialised
from .transfer import copy_library

if TYPE_CHECKING:
    from multiprocessing import Queue
    from multiprocessing.synchronize import Event as EventLike

    from PIL.Image import Image as PILImage
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ..analysis import AnalyzerName
    from ..analysis.photo import PhotoAnalysis
    from ..faces.images import QueryPhoto
    from ..ingest.corpus import Item
    from ..ingest.landmarks import BackfillReport
    from ..ingest.local import StartedWorkers
    from ..ingest.report import IngestReport, Progress
    from ..ingest.runner import IngestOptions
    from ..query.facemath import Step
    from ..query.person import PersonReport
    from ..query.search import SearchKeywords, SearchResult
    from ..query.verify import Verification
    from ..store.schema import Space as StoredSpace


log = logging.getLogger(__name__)

@dataclass
class Library:
    """A face library. Models and the index load lazily, on first use."""

    settings: Settings
    _engine: Engine = field(init=False, repr=False)
    _sessions: sessionmaker = field(init=False, repr=False)
    _view: SpaceView | None = field(init=False, default=None, repr=False)  # the current space
    _analyzers: dict = field(init=False, default_factory=dict, repr=False)  # shared by every view
    revision: str = field(init=False, default="")
    backend: VectorBackend = field(init=False, repr=False)  # where the vectors are indexed
    _averages: AverageCache = field(init=False, default_factory=AverageCache, repr=False)  # lib.pictures'
    # one call at a time from threads sharing the library: every verb that runs a model or
    # changes the index takes it (space.serialised): docs/architecture.md, "lib.calls"
    calls: threading.RLock = field(init=False, default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        config.activate_weights_home()
        s = self.settings
        places.claim_folders(s.db_url, (s.index_dir, s.upload_dir))  # before its file: its own for good
        self._engine = db.make_engine(s.db_url)
        self.revision = db.migrate(self._engine)
        self.backend = for_settings(self._engine.dialect.name, s.vectors)
        self._sessions = db.session_factory(self._engine, outbox=self.backend.outbox)  # store.outbox.OUTBOX

    # -- plumbing --------------------------------------------------------------------
    def session(self) -> AbstractContextManager[Session]:
        """A new session (``with lib.session() as session:``), closed as the block ends."""
        return self._sessions()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for the store functions that take one)."""
        return self._engine

    @property
    def view(self) -> SpaceView:
        """The embedding space this library object reads and writes (:mod:`lookalike.verbs.space`):
        the one named by the settings, else the only one stored, else the default."""
        if self._view is None:
            with self.calls:  # two first callers (a server's, the web app's threads): one view, one index
                if self._view is None:
                    self._view = self._make_view(self._choose_space())
        return self._view

    def _make_view(self, space: Space, space_id: int | None = None) -> SpaceView:
        return SpaceView(self.settings, self._engine, self._sessions, self.backend, self.revision, space,
                         space_id, self._analyzers)

    def in_space(self, row: StoredSpace) -> SpaceView:
        """Another embedding space of this library (same engine), e.g. a queue worker's."""
        return self._make_view(Space(row.model, row.detector, row.aligner), row.id)

    @property
    def maintenance(self) -> IndexMaintenance:
        """The current space's index upkeep (:mod:`lookalike.verbs.maintenance`): ``info()``,
        ``rebuild(key, reduce)``."""
        return IndexMaintenance(self.view.vectors)

    @property
    def measure(self) -> Measurements:
        """Exploration and evaluation of the current space (:mod:`lookalike.verbs.measurements`)."""
        return Measurements(self.view, self.calls)

    @property
    def people(self) -> People:
        """The people as staff keep them (:class:`lookalike.verbs.people.People`): profiles,
        consent, their photos, uploads."""
        return People(self._sessions, lambda: self.view.row.existing_space_id(), self.settings.upload_dir)

    @property
    def pictures(self) -> Pictures:
        """Average faces, morphs, transforms and sliders (:class:`lookalike.verbs.pictures.Pictures`)."""
        return Pictures(self.view, self.settings.max_pixels, self.settings.model_threads, self._averages, self.calls)

    @property
    def keys(self) -> ApiKeys:
        """The HTTP API's keys (:class:`lookalike.verbs.people.ApiKeys`)."""
        return ApiKeys(self._sessions)

    def _choose_space(self) -> Space:
        s = self.settings
        with self.session() as session:
            spaces = space_rows.list_spaces(session)
        if s.model is None and s.detector is None and s.aligner is None and len(spaces) == 1:
            return Space(spaces[0].model, spaces[0].detector, spaces[0].aligner)
        return Space(*s.space_names).check()  # the user's choice (a stored space is what it is)

    def close(self) -> None:
        """Release models, index and connections; a later call raises ``LibraryClosed``."""
        self._view, self._averages = None, AverageCache()
        self._analyzers.clear()
        self.backend.close()
        db.close(self._engine)

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- verbs -----------------------------------------------------------------------
    def ingest(self, paths: Sequence[str | os.PathLike[str]], *, faces: FacesMode = FacesMode.largest,
               workers: int = 0, person: str | None = None, progress: Progress | None = None,
               analyzer: AnalyzerName | str | None = None) -> IngestReport:
        """Ingest files, folders and manifests: scan them, then the runner
        (:mod:`lookalike.ingest.runner`). ``analyzer`` (an
        :class:`lookalike.analysis.AnalyzerName`) also stores face estimates."""
        from ..ingest import corpus, runner

        scan = corpus.scan_photos(paths, person)
        return self._ingest(scan.items, runner.options(self.view.space, faces, workers, analyzer), progress,
                            scan.skipped_files)

    def ingest_items(self, items: Iterable[Item], *, faces: FacesMode = FacesMode.largest, workers: int = 0,
                     progress: Progress | None = None, skipped_files: int = 0,
                     analyzer: AnalyzerName | str | None = None, refuse_empty: bool = True,
                     started: StartedWorkers | None = None) -> IngestReport:
        """Ingest already scanned :class:`lookalike.ingest.corpus.Item` s. ``refuse_empty``:
        a run that stored nothing raises :class:`lookalike.errors.NothingIngested` (the CLI's exit code);
        without it the report says what happened to each photo (the admin's uploads).
        ``started``: worker processes started before this library opened
        (:func:`lookalike.ingest.local.start_workers`), mapped in if the run uses as many."""
        from ..ingest import runner

        return self._ingest(list(items), runner.options(self.view.space, faces, workers, analyzer), progress,
                            skipped_files, refuse_empty, started)

    def _ingest(self, items: list[Item], options: IngestOptions, progress: Progress | None,
                skipped_files: int, refuse_empty: bool = True, started: StartedWorkers | None = None) -> IngestReport:
        """The one way into the runner: under the space's writer exclusion, with the
        distributor this library's store asks for, then the space follows what was written."""
        from ..ingest import runner

        view = self.view
        with view.vectors.writers():
            view.row.ensure_space()  # before the index opens: a new library has no row yet
            index = view.vectors.index
            if index.ntotal and not self.backend.saved_matches(view.vectors.store(), index):
                index.save()
            queued = self.backend.queued_ingest  # the workers store the vectors themselves
            mapping = runner.queue_distributor(view, options, len(items), serve_queue) if queued else \
                runner.distributor(view, options, len(items), started)
            report = runner.run(view, items, options, mapping, progress, skipped_files)
            view.refresh(index=self.backend.vectors_in_db or queued)  # new centroids
            if not report.interrupted:
                report.index_rebuilt = IndexMaintenance(view.vectors).upkeep()
        if refuse_empty:
            report.check_not_empty()
        return report

    def reembed(self, target: Space, *, workers: int = 0, progress: Progress | None = None) -> dict:
        """Move the library into the space ``target`` (a new model, detector or aligner): every
        photo stored in another space whose file is still there is ingested again into
        ``target``, under the same person (profiles stay as they are). Photos whose file is
        gone are listed, and those whose bytes changed since are re-embedded as they are now
        and listed. The other spaces' rows are left as they were until ``remove --space``
        drops them; commands then pick ``target`` when it is the default or named."""
        from ..ingest.corpus import Item
        from ..models.catalog import sha256_of

        moved = Library(self.settings.in_space(target.names))
        statuses: Counter = Counter()
        faces, seconds, interrupted = 0, 0.0, False
        try:
            with moved.session() as session:
                row = space_rows.get_space(session, target.key)
                todo = photo_rows.photos_outside(session, row.id if row is not None else -1)
            if row is not None:  # a reembed killed after a commit left the space's index behind
                with moved.view.vectors.writers():
                    settle(moved._space_views().values())
            present = [p for p in todo if Path(p.path).is_file()]
            changed = [p.path for p in present if p.sha256 and sha256_of(Path(p.path)) != p.sha256]
            for mode in FacesMode:  # each photo read as it was (StoredPhoto.mode)
                batch = [p for p in present if p.mode == mode.value]
                if batch and not interrupted:  # Ctrl-C: what was moved stays; a new run goes on
                    # refuse_empty=False: a batch (the uploads, read alone) whose every photo
                    # gives no face in the new space is reported, not the end of the move
                    report = moved.ingest_items([Item(p.path, p.person) for p in batch], faces=mode,
                                                workers=workers, progress=progress, refuse_empty=False)
                    statuses.update(report.statuses)
                    crash_point("reembed.moved")
                    faces, seconds = faces + report.faces, seconds + report.seconds
                    interrupted = report.interrupted
            if present and not statuses.get("ok") and not interrupted:  # judged once, over every batch
                raise NothingIngested(f"{target.key}: not one of {len(present)} photos gave a face "
                                      f"({', '.join(f'{n} {k}' for k, n in statuses.items() if n)})")
            with moved.session() as session:  # what is in the space now, however the run ended
                row = space_rows.get_space(session, target.key)
                left = len(photo_rows.photos_outside(session, row.id if row is not None else -1))
        finally:
            moved.close()
        self._view = None  # the moved library may now pick the target space
        return {"space": target.key, "photos": len(todo), "reembedded": len(todo) - left, "interrupted": interrupted,
                "gone": [p.path for p in todo if not Path(p.path).is_file()], "changed": changed,
                "statuses": {k: v for k, v in statuses.items() if v}, "faces": faces,
                "seconds": round(seconds, 3)}

    def backfill_landmarks(self, *, batch: int = 200, limit: int | None = None,
                           progress: Callable[[int], None] | None = None) -> BackfillReport:
        """Dense landmarks for this space's faces stored without them (a library made before
        they were stored, or while their model was missing): resumable, ``batch`` faces per
        commit (:mod:`lookalike.ingest.landmarks`)."""
        from ..faces import landmarks
        from ..ingest.landmarks import BackfillSource, backfill

        landmarks.require()  # before the space's models load: the error names what is missing
        view = self.view
        source = BackfillSource(view.session, view.row.existing_space_id(), view.models.pipeline.detector,
                                self.settings.max_pixels, self.settings.model_threads)
        return backfill(source, batch=batch, limit=limit, progress=progress)

    @serialised
    def remove_person(self, name: str) -> Removal:
        """Delete a person: every photo, face, vector and centroid contribution, the photos
        uploaded for them and the person row, in every embedding space. The database
        commits first; the indexes follow and are saved (:mod:`lookalike.verbs.removal`)."""
        return remove_person(self._holders(), name)

    @serialised
    def remove_photo(self, path: str | os.PathLike[str]) -> Removal:
        """Delete one photo: its faces, vectors and centroid contributions, in every
        embedding space; the person stays."""
        return remove_photo(self._holders(), path)

    def _holders(self) -> Holders:
        """What keeps this library's faces, handed to a removal."""
        return Holders(self.view, self._space_views(), self.people, self._averages)

    def _space_views(self) -> dict[int, SpaceView]:
        """A view of every space this library holds, by space id (their indexes not opened)."""
        return {row.id: self.in_space(row) for row in self._spaces()}

    @serialised
    def remove_space(self, key: str) -> Removal:
        """Delete one whole embedding space (its key, e.g. after :meth:`reembed` moved the
        library elsewhere): its photo and face rows, vectors and index; the people, and the
        same photos in the other spaces, stay."""
        removed = remove_space(self.view, key)
        self._view = None
        return removed

    def spaces(self) -> list[dict]:
        """The embedding spaces this library holds, oldest first."""
        return [{"space": row.key, "model": row.model, "detector": row.detector, "aligner": row.aligner,
                 "dim": row.dim} for row in self._spaces()]

    def _spaces(self) -> list:
        with self.session() as session:
            return space_rows.list_spaces(session)

    @serialised
    def search(self, photo: QueryPhoto, k: int = 5, **options: Unpack[SearchKeywords]) -> SearchResult:
        """Who looks like the faces in ``photo`` (path, bytes or RGB array).

        ``options`` are :class:`lookalike.query.search.SearchOptions` fields
        (:class:`~lookalike.query.search.SearchKeywords`): ``per_person``, ``rank_by``,
        ``filters``, ``audience``, ``analyzer``, ``math``."""
        from ..query.search import SearchOptions, search

        return search(self.view, photo, SearchOptions.given(k, **options))

    def person(self, name: str, audience: Audience = Audience.operator) -> PersonReport:
        """A person's profile and faces sorted by similarity to their centroid, outliers
        flagged; :class:`NotFound` when ``audience`` may not see them, as when nobody has
        the name (so a visitor cannot tell a withheld person from one who is not there)."""
        from ..query.person import person_report

        return person_report(self.view, name, audience)

    def problems(self, limit: int = 1000) -> list[tuple[str, str, str | None]]:
        """Photos that gave no stored face: (path, status, reason), by status."""
        with self.session() as session:
            return photo_rows.problem_photos(session, self.view.row.existing_space_id(), limit)

    def face_crop(self, face_id: int, size: int = 160) -> PILImage:
        """A stored face as a square Pillow image, cut from its photo file now (never cached)."""
        from ..faces.montage import crop

        with self.session() as session:
            row = photo_rows.face_rows(session, [face_id]).get(face_id)
        if row is None:
            raise NotFound(f"no face {face_id} in this library")
        return crop(row.photo, row.bbox, size)

    def stats(self, audience: Audience = Audience.operator) -> dict:
        """Counts of people, photos, faces and statuses of what ``audience`` may see
        (:func:`lookalike.store.consent.counts`), and the index in use. Only the operator is
        told where the library is (``db``, the index's ``file``) and the index's size
        (``ntotal``, ``bytes``): the index holds everyone's faces, so its size would count
        the people an audience may not see."""
        hidden = () if Audience.of(audience) is Audience.operator else ("ntotal", "bytes", "file", "db")
        with self.session() as session:
            spaces = space_rows.list_spaces(session)
            out: dict[str, Any] = consent.counts(session, self.view.row.existing_space_id(), audience) if spaces else {
                "people": 0, "photos": 0, "faces": 0, "statuses": {s.value: 0 for s in PhotoStatus},
                "estimates": {"faces": 0, "emotion": {}, "age_band": {}}}
        index = self.backend.stats(self.view.vectors.store(), self.view.vectors.index) if spaces else {}
        out |= {"index": {k: v for k, v in index.items() if k not in hidden},
                "db": config.shown_url(self.settings.db_url)}
        return {k: v for k, v in out.items() if k not in hidden}

    def photo_ids(self, face_ids: Iterable[int]) -> dict[int, int]:
        """Face id -> id of the photo it was found in: the reference an HTTP answer gives
        instead of a path on this server."""
        with self.session() as session:
            return consent.photo_ids(session, [int(i) for i in face_ids])

    def photo_bytes(self, photo_id: int) -> bytes:
        """The bytes of photo ``photo_id`` as they were stored (the operator's); NotFound,
        worded as for an id that does not exist, when its file is gone or is no longer the
        photo stored (a file swapped for another, a link to one: the log says which)."""
        from ..errors import BadImage
        from ..faces.images import read_stored

        with self.session() as session:
            path = consent.photo_path(session, photo_id, Audience.operator)
            sha = photo_rows.photo_sha256(session, photo_id)
        if path is None:
            raise NotFound.photo(photo_id)
        try:
            return read_stored(path, sha)
        except BadImage as err:
            log.warning("photo %s: %s", photo_id, err)
            raise NotFound.photo(photo_id) from None

    @serialised
    def verify(self, photo_a: QueryPhoto, photo_b: QueryPhoto) -> Verification:
        """Whether the largest faces of two photos are the same person (calibrated threshold)."""
        from ..query.verify import verify

        return verify(self.view, photo_a, photo_b)

    @serialised
    def analyze(self, photo: QueryPhoto, analyzer: AnalyzerName | str = "auto",
                boxes: Sequence[tuple[int, int, int, int]] | None = None) -> PhotoAnalysis:
        """Estimated age, gender and emotion of every face in ``photo`` (estimates, never
        facts), largest first: its faces found by the library's own detector (loaded once, the
        one its searches use), or those at ``boxes``, estimated by its kept analyzer ``analyzer``."""
        from ..analysis.photo import analyze_photo

        return analyze_photo(photo, self.view.models.analyzer(analyzer), self.view.models.pipeline.detector,
                             self.settings.max_pixels, boxes)

    @serialised
    def add_photos(self, name: str, uploads: Sequence[tuple[str, bytes]]) -> tuple[IngestReport, dict[str, str]]:
        """Store uploaded photos (file name, bytes) under ``settings.upload_dir``
        (:meth:`lookalike.verbs.people.People.store_uploads`) and ingest them as that person's; returns the
        report and stored path -> file name. :meth:`remove_person` deletes them."""
        from ..ingest import corpus

        paths = self.people.store_uploads(name, uploads)
        # alone: a photo of several faces of like size is refused by the mapper, in the one read
        return self.ingest_items(corpus.scan(list(paths), person=name).items, faces=FacesMode.alone,
                                 refuse_empty=False), paths

    def photo_path(self, photo_id: int) -> str:
        with self.session() as session:
            path = photo_rows.photo_path(session, photo_id)
        if path is None:
            raise NotFound.photo(photo_id)
        return path

    @serialised
    def path(self, photo_a: QueryPhoto, photo_b: QueryPhoto, steps: int = 8,
             audience: Audience = Audience.operator) -> list[Step]:
        """Who lies between two faces: the nearest corpus face ``audience`` may see at each of
        ``steps`` points from the largest face of A to that of B, each face used once."""
        from ..query.facemath import path_between

        return path_between(self.view, photo_a, photo_b, steps, audience)

    @serialised
    def warm(self) -> None:
        """Load the detector and the recognition model and open the index now, so the first
        query does not wait for them (a server at start). An index that cannot be opened is
        logged: searches will say why, and the maintenance verbs still work."""
        import numpy as np

        pipeline = self.view.models.pipeline
        pipeline.detect(np.zeros((64, 64, 3), dtype=np.uint8))
        pipeline.embedder.warm()
        try:
            self.view.vectors.index_slot().get()  # opened now, not at the first search
        except EmptyLibrary as err:  # searches will say so
            log.info("no index yet: %s", err)
        except LookalikeError as err:
            log.error("the index could not be opened: %s", err)

    def unreachable(self) -> str | None:
        """Why the library's database cannot be reached now, or None (``/v1/health``: a
        server whose PostgreSQL went away said "ready" while every search failed)."""
        return unreachable(self._engine)

    def copy_to(self, target: Settings) -> dict:
        """Copy this library into the empty database of ``target`` (:mod:`lookalike.verbs.transfer`:
        every row, ids kept, uploads into the target's upload folder), then build the copy's
        index from its rows (``doctor --fix``). This library is not changed."""
        copied = copy_library(self._engine, self.settings, target)
        with Library(target) as copy:
            reports = copy.doctor(fix=True)
            counts = copy.stats()
        return {"to": config.shown_url(target.db_url), "people": counts["people"], "photos": counts["photos"],
                "faces": counts["faces"], "rows": copied.rows, "uploads": copied.uploads,
                "index": {r.space: r.ok or r.fixed for r in reports}}

    def doctor(self, fix: bool = False) -> list[DoctorReport]:
        """Compare every space's index file with the database; ``fix`` repairs it."""
        reports = []
        with self.session() as session:
            spaces = space_rows.list_spaces(session)
        for row in spaces:
            reports.append(IndexMaintenance(self.in_space(row).vectors).doctor(fix))
        return reports



def open_library(db: str | os.PathLike[str] | None = None, index_dir: str | os.PathLike[str] | None = None,
                 **settings: object) -> Library:
    """Open (creating or upgrading) the library at ``db`` (a path or SQLAlchemy URL)."""
    return Library(Settings.resolve(db=db, index_dir=index_dir, **settings))


def serve_queue(settings: Settings, stop: EventLike, until_empty: bool, results: Queue | None = None) -> None:
    """Entry point of a spawned queue worker (``ingest --workers N`` / ``lookalike worker``):
    it opens its own library and serves the PostgreSQL work queue until ``stop`` is set."""
    from ..ingest.mapper import prepare_process
    from ..ingest.protocol import QueueAccess
    from ..ingest.queued import QueueWorker

    prepare_process()
    with Library(settings) as lib:
        stats = QueueWorker(QueueAccess(lib.settings, lib.session, lib.engine, lib.in_space)).serve(stop, until_empty)
    if results is not None:
        results.put(stats.to_dict())
