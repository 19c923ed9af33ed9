"""The library object: one database + one index folder, and every verb on them.

The CLI, the webcam loop and the Streamlit pages are thin shells over this class;
nothing else does the work. Open one with :func:`lookalike.open`.
"""

from __future__ import annotations

import copy
import json
import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from . import config
from .config import Settings
from .errors import (ConfigError, EmptyLibrary, LibraryBusy, ModelMismatch,
                     NotFound, NothingIngested)
from .faces.pipeline import FacePipeline, FacesMode, Space
from .index.backends import DoctorReport, VectorBackend, for_dialect
from .index.reduction import ReducedIndex
from .store import db, repo
from .models.catalog import RECOGNITION_DIMS


@dataclass
class Library:
    """A face library. Models and the index load lazily, on first use."""

    settings: Settings
    _engine: object = field(init=False, repr=False)
    _sessions: object = field(init=False, repr=False)
    _space: Space | None = field(init=False, default=None)
    _space_id: int | None = field(init=False, default=None)
    _index: object = field(init=False, default=None, repr=False)  # see the index property
    _pipeline: FacePipeline | None = field(init=False, default=None, repr=False)
    _centroids: dict | None = field(init=False, default=None, repr=False)
    _calibration: object = field(init=False, default=None, repr=False)
    _reduction: object = field(init=False, default=False, repr=False)  # False: not read yet
    _analyzers: dict = field(init=False, default_factory=dict, repr=False)
    revision: str = field(init=False, default="")
    backend: VectorBackend = field(init=False, repr=False)  # where the vectors are indexed

    def __post_init__(self) -> None:
        config.activate_weights_home()
        self._engine = db.make_engine(self.settings.db_url)
        self.revision = db.migrate(self._engine)
        self._sessions = db.session_factory(self._engine)
        self.backend = for_dialect(self._engine.dialect.name)  # type: ignore[attr-defined]

    # -- plumbing --------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator:
        with self._sessions() as session:  # type: ignore[operator]
            yield session

    @property
    def space(self) -> Space:
        """The embedding space this library object reads and writes."""
        if self._space is None:
            self._space = self._choose_space()
        return self._space

    def _choose_space(self) -> Space:
        s = self.settings
        with self.session() as session:
            spaces = repo.list_spaces(session)
        if s.model is None and s.detector is None and s.aligner is None and len(spaces) == 1:
            only = spaces[0]
            return Space(only.model, only.detector, only.aligner)
        return Space(s.model or config.DEFAULT_MODEL, s.detector or config.DEFAULT_DETECTOR,
                     s.aligner or config.DEFAULT_ALIGNER)

    @property
    def engine(self):  # noqa: ANN201
        """The SQLAlchemy engine (for the store functions that take one)."""
        return self._engine

    @property
    def space_id(self) -> int:
        """Database id of :attr:`space`, created on first write."""
        if self._space_id is None:
            with self.session() as session:
                row = repo.get_space(session, self.space.key)
                if row is None:
                    row = repo.create_space(session, self.space.key, self.space.model,
                                            self.space.detector, self.space.aligner,
                                            RECOGNITION_DIMS[self.space.model])
                    session.commit()
                self._space_id = row.id
        return self._space_id

    def existing_space_id(self) -> int:
        """Id of :attr:`space` for reading; explains what the library holds instead."""
        with self.session() as session:
            row = repo.get_space(session, self.space.key)
            if row is not None:
                self._space_id = row.id
                return row.id
            others = [sp.key for sp in repo.list_spaces(session)]
        if others:
            raise ModelMismatch(
                f"this library holds faces made with {', '.join(others)}, not {self.space.key} "
                "(model__detector__aligner); drop --model/--detector/--aligner or ingest again "
                "with these settings")
        raise EmptyLibrary(f"{self.settings.db_url}: the library is empty; "
                           "run: lookalike ingest PATH --db ...")

    @property
    def reduction(self):  # noqa: ANN201
        """The space's stored PCA (:mod:`lookalike.index.reduction`), or None: wide vectors
        only, once the corpus is large enough."""
        if self._reduction is False:
            from .index import reduction

            if self._space_id is None:
                with self.session() as session:
                    row = repo.get_space(session, self.space.key)
                if row is None:
                    return None
                self._space_id = row.id
            with self.session() as session:
                self._reduction = reduction.load(session, self._space_id)
        return self._reduction

    def index_vectors(self, ids) -> np.ndarray:  # noqa: ANN001
        """What the index holds for ``ids``: their vectors, reduced when the space is."""
        full = self.vectors(ids)
        return self.reduction.apply(full) if self.reduction is not None else full

    @property
    def vectors_in_db(self) -> bool:
        """PostgreSQL keeps and searches the vectors itself (pgvector); elsewhere a FAISS file does."""
        return self.backend.vectors_in_db

    @property
    def index(self):  # noqa: ANN201
        """The space's index (:mod:`lookalike.index.backends`): a FAISS file topped up from the
        database, or the pgvector column; wrapped to re-rank on full vectors when the space
        is reduced (:class:`lookalike.index.reduction.ReducedIndex`)."""
        if self._index is not None and self.backend.changed(self._index):
            self._index = None  # another process saved a newer one: read it
        if self._index is None:
            self._index = self.backend.open_index(self)
        if self.reduction is not None and not isinstance(self._index, ReducedIndex):
            self._index = ReducedIndex(self._index, self.reduction, self.vectors)
        return self._index

    def forget_index(self) -> None:
        """Drop the open index: the next use opens it afresh (after a rebuild elsewhere)."""
        self._index = None

    def analyzer(self, name):  # noqa: ANN001, ANN201
        """The face analyzer ``name`` (:class:`lookalike.analysis.AnalyzerName`), built once."""
        from . import analysis

        name = analysis.resolve(analysis.AnalyzerName(name))
        if name not in self._analyzers:
            self._analyzers[name] = analysis.build(name)
        return self._analyzers[name]

    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            self._pipeline = FacePipeline(self.space, self.settings.detect_max_side,
                                          threads=self.settings.model_threads)
        return self._pipeline

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer per library: a second ingest refuses at once with a clear message."""
        folder = self.settings.index_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ".write.lock"
        fh = open(path, "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise LibraryBusy(f"{folder}: the library is being written by {holder}; "
                                  "wait for it to finish, then run again") from err
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            yield
        finally:
            fh.close()

    def _writers(self):  # noqa: ANN202
        """The exclusion an ingest or removal needs: SQLite + FAISS files have one writer
        (:meth:`write_lock`); PostgreSQL takes any number, its transactions and row locks
        keep them apart (:mod:`lookalike.store.queue`)."""
        return self.backend.writers(self)

    def db_vector_writer(self, session):  # noqa: ANN001, ANN201
        """What goes into ``faces.vec`` for a new face: on PostgreSQL the vector itself, or
        its reduction when the space has one (read under a share lock, so a retraining in
        another transaction can never leave a face reduced the old way); elsewhere nothing."""
        if not self.vectors_in_db:
            return None
        from .index import reduction

        stored = reduction.load(session, self.space_id, lock=True)
        return stored.apply_one if stored is not None else (lambda v: v)

    def close(self) -> None:
        self._engine.dispose()  # type: ignore[attr-defined]

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- verbs -----------------------------------------------------------------------
    def ingest(self, paths, *, faces: FacesMode = FacesMode.largest, workers: int = 0,  # noqa: ANN001
               person: str | None = None, progress=None, analyzer=None):  # noqa: ANN001
        """Ingest files, folders and manifests; see :mod:`lookalike.ingest`. ``analyzer``
        (an :class:`lookalike.analysis.AnalyzerName`) also stores face estimates."""
        from .ingest import corpus

        scan = corpus.scan(paths, person=person)
        if not scan.items:
            raise NothingIngested(f"no image files found in {', '.join(map(str, paths))}")
        return self.ingest_items(scan.items, faces=faces, workers=workers, progress=progress,
                                 skipped_files=scan.skipped_files, analyzer=analyzer)

    def ingest_items(self, items, *, faces: FacesMode = FacesMode.largest, workers: int = 0,  # noqa: ANN001
                     progress=None, skipped_files: int = 0, analyzer=None):  # noqa: ANN001
        """Ingest already scanned :class:`lookalike.ingest.corpus.Item` s."""
        from .ingest import local as ingest
        from .models import catalog as weights

        # fail on missing weights here, with the install command, not in every worker
        from .faces.pipeline import needs_shape_predictor

        for name in (self.space.model, self.space.detector, self.space.aligner, *needs_shape_predictor(self.space)):
            weights.require(name)
        if analyzer is not None:
            from . import analysis

            analyzer = analysis.resolve(analysis.AnalyzerName(analyzer))
            for name in analysis.required_weights(analyzer):
                weights.require(name)
        with self._writers():
            self.space_id  # noqa: B018 - create the space row before the index loads
            index = self.index
            if index.ntotal and not self.backend.saved_matches(self, index):
                index.save()
            options = ingest.IngestOptions(faces=faces, workers=workers, analyzer=analyzer)
            if self.backend.queued_ingest:
                from .ingest import queued

                report = queued.run(self, list(items), options, progress, skipped_files, serve=serve_queue)
            else:
                report = ingest.run(self, list(items), options, progress, skipped_files)
            self._centroids = None
            if self.vectors_in_db:  # the workers wrote the rows: count them afresh
                self._index = None
            if not report.interrupted:
                report.index_rebuilt = self._upkeep()
        statuses = report.statuses
        if not report.interrupted and statuses["ok"] == 0 and statuses["unchanged"] == 0:
            raise NothingIngested(
                f"not one photo could be ingested ({report.processed} tried: " +
                ", ".join(f"{n} {s}" for s, n in statuses.items() if n) + ")")
        return report

    def reembed(self, target: Space, *, workers: int = 0, progress=None) -> dict:  # noqa: ANN001
        """Move the library into the space ``target`` (a new model, detector or aligner): every
        photo stored in another space whose file is still there is ingested again into
        ``target``, under the same person (profiles stay as they are). Photos whose file is
        gone are listed, and those whose bytes changed since are re-embedded as they are now
        and listed. The other spaces' rows are left as they were until ``remove --space``
        drops them; commands then pick ``target`` when it is the default or named."""
        from collections import Counter

        from .ingest.corpus import Item
        from .models.catalog import sha256_of

        moved = Library(replace(self.settings, model=target.model, detector=target.detector,
                                aligner=target.aligner))
        statuses: Counter = Counter()
        faces, seconds = 0, 0.0
        try:
            with moved.session() as session:
                row = repo.get_space(session, target.key)
                todo = repo.photos_outside(session, row.id if row is not None else -1)
            present = [p for p in todo if Path(p.path).is_file()]
            changed = [p.path for p in present if p.sha256 and sha256_of(Path(p.path)) != p.sha256]
            # photos that gave several faces were ingested with --faces all: keep them all
            for mode, batch in ((FacesMode.largest, [p for p in present if p.faces <= 1]),
                                (FacesMode.all, [p for p in present if p.faces > 1])):
                if batch:
                    report = moved.ingest_items([Item(p.path, p.person) for p in batch], faces=mode,
                                                workers=workers, progress=progress)
                    statuses.update(report.statuses)
                    faces, seconds = faces + report.faces, seconds + report.seconds
        finally:
            moved.close()
        self._space, self._space_id, self._index, self._centroids = None, None, None, None
        return {"space": target.key, "photos": len(todo), "reembedded": len(present),
                "gone": [p.path for p in todo if not Path(p.path).is_file()], "changed": changed,
                "statuses": {k: v for k, v in statuses.items() if v}, "faces": faces,
                "seconds": round(seconds, 3)}

    def remove(self, *, person: str | None = None, photo: str | None = None,
               space: str | None = None) -> dict:
        """Delete a person (every photo, face, vector and centroid contribution, and the
        person row) or one photo, in every embedding space; or one whole embedding space
        (``space``: its key, after :meth:`reembed` moved the library elsewhere). The
        database commits first; the indexes follow and are saved."""
        from sqlalchemy import select

        from .errors import NotFound
        from .store.schema import Person, Photo

        if space is not None and person is None and photo is None:
            return self._remove_space(space)
        if (person is None) == (photo is None) or space is not None:
            raise ConfigError("name exactly one of --person NAME, --photo PATH or --space KEY")
        removed: dict[int, list[int]] = {}
        rebuilt = None
        with self._writers():
            self._settle_indexes()
            with self.session() as session:
                if person is not None:
                    row = session.scalar(select(Person).where(Person.name == person))
                    if row is None:
                        raise NotFound(f"no person named {person!r} in this library")
                    photos = list(session.scalars(select(Photo).where(Photo.person_id == row.id)))
                else:
                    path = str(Path(photo).expanduser().absolute())
                    photos = list(session.scalars(select(Photo).where(Photo.path == path)))
                    if not photos:
                        raise NotFound(f"{path}: no such photo in this library")
                    row = None
                for ph in photos:
                    removed.setdefault(ph.space_id, []).extend(repo.delete_photo(session, ph))
                if row is not None:
                    session.delete(row)
                session.commit()
            spaces = {sp.id: sp for sp in self._spaces()}
            for space_id, ids in removed.items():
                if ids and space_id in spaces:
                    view = self.in_space(spaces[space_id])
                    view.index.remove(np.asarray(ids, dtype=np.int64))
                    view.index.save()
                    rebuilt = view._upkeep() or rebuilt
            self.backend.erase(self)
        self._index = None
        self._centroids = None
        return {"person": person, "photo": photo, "photos": len(photos),
                "faces": sum(len(v) for v in removed.values()), "index_rebuilt": rebuilt}

    def _settle_indexes(self) -> None:
        """A removal killed after its database commit leaves the removed faces in the index
        file. Opening an index drops what the database no longer holds; saving it then
        makes the second run of that removal (which finds the person already gone) finish
        the job instead of failing with the vectors still on disk."""
        for row in self._spaces():
            view = self.in_space(row)
            index = view.index
            if not view.backend.saved_matches(view, index):
                index.save()

    def _remove_space(self, key: str) -> dict:
        with self._writers():
            with self.session() as session:
                row = repo.get_space(session, key)
                if row is None:
                    keys = [sp.key for sp in repo.list_spaces(session)]
                    raise NotFound(f"no embedding space {key!r} in this library (it holds: {', '.join(keys) or 'none'})")
                self.backend.drop_space(self, session, key, row.id)
                photos, faces = repo.delete_space(session, row.id)
                session.commit()
            self.backend.erase(self)
        self._space, self._space_id, self._index, self._centroids = None, None, None, None
        self._calibration, self._reduction = None, False
        return {"space": key, "photos": photos, "faces": faces, "person": None, "photo": None,
                "index_rebuilt": None}

    def spaces(self) -> list[dict]:
        """The embedding spaces this library holds, oldest first."""
        return [{"space": row.key, "model": row.model, "detector": row.detector, "aligner": row.aligner,
                 "dim": row.dim} for row in self._spaces()]

    def _spaces(self) -> list:
        with self.session() as session:
            return repo.list_spaces(session)

    def in_space(self, row) -> "Library":  # noqa: ANN001
        """This library looking at another embedding space (same engine)."""
        view = copy.copy(self)
        view._space, view._space_id = Space(row.model, row.detector, row.aligner), row.id
        view._index, view._centroids, view._pipeline, view._reduction = None, None, None, False
        return view

    def vectors(self, ids) -> np.ndarray:  # noqa: ANN001
        """The stored full-width vectors of face ``ids``, in that order."""
        with self.session() as session:
            return repo.vectors(session, ids, RECOGNITION_DIMS[self.space.model])

    def index_info(self) -> dict:
        """The index in use, what the choice rules would pick now, its upkeep state and the
        space's reduction."""
        return self.backend.info(self, self.index) | {"reduction": self._reduction_info()}

    def _reduction_info(self) -> dict:
        from .index import reduction

        red = self.reduction
        out = red.describe() if red is not None else {"kind": None}
        with self.session() as session:
            n = repo.face_count_and_max(session, self.existing_space_id())[0]
        out["plan"] = reduction.plan(RECOGNITION_DIMS[self.space.model], n, red).reason
        return out

    def rebuild_index(self, key: str | None = None, reduce: int | None = None) -> dict:
        """Rebuild the space's index from the database vectors, with ``key`` (pinned: upkeep
        keeps it from then on) or the rules' choice for the current size; drops tombstones.
        ``reduce`` first trains a PCA to that many dimensions on the stored faces, now."""
        self.backend.rebuild(self, key, reduce)
        return self.index_info()

    def train_reduction(self, dim_out: int) -> None:
        """Fit a PCA to a sample of the space's faces and store it; the backend makes the
        stored vectors follow in the same transaction (PostgreSQL) or rebuilds its file
        afterwards (the caller, holding the write lock)."""
        from .index import reduction

        space_id = self.existing_space_id()
        with self.session() as session:
            ids = repo.face_ids(session, space_id)
        sample = ids if len(ids) <= reduction.TRAIN_SAMPLE else np.sort(
            np.random.default_rng(0).choice(ids, reduction.TRAIN_SAMPLE, replace=False))
        red = reduction.train(self.vectors(sample), dim_out)
        with self.session() as session:
            reduction.store(session, space_id, red)
            self.backend.reduction_stored(self, session, space_id, red)
            session.commit()
        self._reduction, self._index = red, None

    def _upkeep(self) -> str | None:
        """After ingest or removal (writers held): a wide space first gets (or renews) its
        PCA; then the backend's own rules. Returns the reason when it rebuilt."""
        from .index import reduction

        with self.session() as session:
            n = repo.face_count_and_max(session, self.existing_space_id())[0]
        todo = reduction.plan(RECOGNITION_DIMS[self.space.model], n, self.reduction)
        if todo.train:
            self.train_reduction(todo.dim_out)
            self.backend.reduction_committed(self)
            return todo.reason
        return self.backend.upkeep(self)

    def search(self, photo, k: int = 5, **options):  # noqa: ANN001, ANN003
        """Who looks like the faces in ``photo`` (path, bytes or RGB array).

        ``options`` are :class:`lookalike.query.search.SearchOptions` fields: ``per_person``,
        ``rank_by``, ``filters``, ``consented_only``."""
        from .query.search import SearchOptions, search

        return search(self, photo, SearchOptions(k=k, **options))

    def person(self, name: str):  # noqa: ANN201
        """A person's profile and faces sorted by similarity to their centroid, outliers flagged."""
        from .query.person import person_report

        return person_report(self, name)

    def profiles(self, names) -> dict:  # noqa: ANN001
        """Person name -> :class:`lookalike.store.repo.Profile` (role, organisation, story, tags)."""
        with self.session() as session:
            return repo.profiles(session, names)

    def display_tags(self) -> list[str]:
        """Self-declared tags a visitor may narrow role models by (consenting people only)."""
        with self.session() as session:
            return repo.display_tags(session)

    def problems(self, limit: int = 1000) -> list[tuple[str, str, str | None]]:
        """Photos that gave no stored face: (path, status, reason), by status."""
        with self.session() as session:
            return repo.problem_photos(session, self.existing_space_id(), limit)

    def face_crop(self, face_id: int, size: int = 160):  # noqa: ANN201
        """A stored face as a square Pillow image, cut from its photo file now (never cached)."""
        from .faces.montage import crop

        with self.session() as session:
            row = repo.face_rows(session, [face_id]).get(face_id)
        if row is None:
            raise NotFound(f"no face {face_id} in this library")
        return crop(row.photo, row.bbox, size)

    def calibration(self):  # noqa: ANN201
        """Verdict thresholds of this space: stored by ``eval verify --calibrate``, else the
        measured defaults, else DeepFace's own threshold for the model. Read once (every
        search and every live match needs it), like the centroids."""
        if self._calibration is None:
            self._calibration = self._read_calibration()
        return self._calibration

    def _read_calibration(self):  # noqa: ANN202
        from .query.search import Calibration

        with self.session() as session:
            row = repo.calibration(session, self.existing_space_id())
        if row is not None:
            return Calibration(row.threshold, row.floor, row.source)
        if self.space.key in config.DEFAULT_CALIBRATIONS:
            t, f = config.DEFAULT_CALIBRATIONS[self.space.key]
            return Calibration(t, f, "lookalike default, measured on lfw-dev")
        from deepface.modules.verification import find_threshold

        t = 1.0 - float(find_threshold(self.space.model, "cosine"))
        return Calibration(t, t - 0.1, f"DeepFace's default threshold for {self.space.model}; "
                                       "not calibrated (run lookalike eval verify --calibrate)")

    def save_calibration(self, threshold: float, floor: float, source: str, figures: dict) -> None:
        with self.session() as session:
            repo.save_calibration(session, self.space_id, threshold, floor, source, figures)
            session.commit()
        self._calibration = None

    def centroids(self) -> dict:
        """Person id (``None`` = corpus) -> (unit centroid, face count)."""
        if self._centroids is None:
            with self.session() as session:
                self._centroids = repo.centroids(session, self.existing_space_id())
        return self._centroids

    def centroid_means(self, names=()) -> dict:  # noqa: ANN001
        """Mean similarity of each group's faces to its own centroid (``None`` = the corpus,
        else the people ``names``): the reference for calling a face typical, per model."""
        with self.session() as session:
            return repo.centroid_means(session, self.existing_space_id(), names)

    def allowed_face_ids(self, filters=(), consented_only: bool = False,  # noqa: ANN001, ANN201
                         hide_declined: bool = False):
        """Face ids whose person passes the metadata filters; ``None`` when unfiltered."""
        if not filters and not consented_only and not hide_declined:
            return None
        from .ingest.corpus import normalise_tag
        from .query.search import FilterKey
        from .store.schema import Person

        conditions = []
        for f in filters:
            if f.key is FilterKey.tag:
                # tags are stored as a JSON list: match the tag as JSON writes it, quotes included
                quoted = repo.literal_like(json.dumps(normalise_tag(f.value)))
                conditions.append(Person.tags.like(f"%{quoted}%", escape="\\"))
            elif f.key is FilterKey.organisation:
                conditions.append(Person.organisation.ilike(repo.literal_like(f.value), escape="\\"))
            elif f.key is FilterKey.role:
                conditions.append(Person.role.ilike(repo.literal_like(f.value), escape="\\"))
            else:
                conditions.append(Person.name == f.value)
        if consented_only:
            conditions.append(Person.consent_display.is_(True))
        with self.session() as session:
            # consent given, or never stated (no profile): not withheld. Every Find query and
            # live match asks this; while nobody has withheld consent (a public corpus) it
            # filters nothing, so the search stays unfiltered instead of listing every face
            if hide_declined and repo.anyone_withholds_consent(session):
                conditions.append(Person.consent_display.is_not(False))
            if not conditions:
                return None
            return repo.filtered_face_ids(session, self.existing_space_id(), conditions)

    def stats(self) -> dict:
        """Counts of people, photos, faces and statuses, and the index in use."""
        with self.session() as session:
            spaces = repo.list_spaces(session)
            if not spaces:
                empty = {s: 0 for s in repo.status_counts(session, -1)}
                return {"people": 0, "photos": 0, "faces": 0, "statuses": empty, "index": {},
                        "estimates": {"faces": 0, "emotion": {}, "age_band": {}}, "db": self.settings.db_url}
            space_id = self.existing_space_id()
            out = repo.counts(session, space_id)
            out["statuses"] = repo.status_counts(session, space_id)
            out["estimates"] = repo.estimate_summary(session, space_id)
        out["index"] = self.backend.stats(self, self.index)
        out["db"] = self.settings.db_url
        return out

    def doctor(self, fix: bool = False) -> list[DoctorReport]:
        """Compare every space's index file with the database; ``fix`` repairs it."""
        reports = []
        with self.session() as session:
            spaces = repo.list_spaces(session)
        for row in spaces:
            reports.append(self.in_space(row)._doctor_space(fix))
        return reports

    def _doctor_space(self, fix: bool) -> DoctorReport:
        return self.backend.doctor(self, fix)


def open_library(db: str | os.PathLike[str] | None = None, index_dir: str | Path | None = None,
                 **settings: object) -> Library:
    """Open (creating or upgrading) the library at ``db`` (a path or SQLAlchemy URL)."""
    return Library(Settings.resolve(db=db, index_dir=index_dir, **settings))


def serve_queue(settings: Settings, stop, until_empty: bool, results=None) -> None:  # noqa: ANN001
    """Entry point of a spawned queue worker (``ingest --workers N`` / ``lookalike worker``):
    it opens its own library and serves the PostgreSQL work queue until ``stop`` is set."""
    from .ingest.mapper import prepare_process
    from .ingest.queued import QueueWorker

    prepare_process()
    with Library(settings) as lib:
        stats = QueueWorker(lib).serve(stop, until_empty)
    if results is not None:
        results.put(stats.to_dict())
