"""The library object: one database + one index folder, and every verb on them.

The CLI, the webcam loop and the Streamlit pages are thin shells over this class;
nothing else does the work. Open one with :func:`lookalike.open`.
"""

from __future__ import annotations

import copy
import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import config
from .config import Settings
from .errors import (ConfigError, EmptyLibrary, IndexCorrupt, IndexOwnedElsewhere, LibraryBusy, ModelMismatch,
                     NotFound, NothingIngested)
from .faces import FacePipeline, FacesMode, Space
from .index.faiss_index import FaissIndex, Manifest
from .index.reduction import ReducedIndex
from .store import db, repo
from .weights import RECOGNITION_DIMS


@dataclass
class DoctorReport:
    """How a space's index compares with the database."""

    space: str
    db_faces: int
    index_faces: int
    missing: int  # in the database, not in the index
    orphans: int  # in the index, not in the database
    error: str | None = None
    fixed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.missing == 0 and self.orphans == 0

    def to_dict(self) -> dict:
        return {"space": self.space, "db_faces": self.db_faces, "index_faces": self.index_faces,
                "missing": self.missing, "orphans": self.orphans, "error": self.error,
                "fixed": self.fixed, "ok": self.ok}


@dataclass
class Library:
    """A face library. Models and the index load lazily, on first use."""

    settings: Settings
    _engine: object = field(init=False, repr=False)
    _sessions: object = field(init=False, repr=False)
    _space: Space | None = field(init=False, default=None)
    _space_id: int | None = field(init=False, default=None)
    _index: FaissIndex | None = field(init=False, default=None, repr=False)
    _pipeline: FacePipeline | None = field(init=False, default=None, repr=False)
    _centroids: dict | None = field(init=False, default=None, repr=False)
    _calibration: object = field(init=False, default=None, repr=False)
    _reduction: object = field(init=False, default=False, repr=False)  # False: not read yet
    _analyzers: dict = field(init=False, default_factory=dict, repr=False)
    revision: str = field(init=False, default="")

    def __post_init__(self) -> None:
        config.activate_weights_home()
        self._engine = db.make_engine(self.settings.db_url)
        self.revision = db.migrate(self._engine)
        self._sessions = db.session_factory(self._engine)

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

    def _existing_space_id(self) -> int:
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

    def _manifest(self) -> Manifest:
        sp = self.space
        with self.session() as session:
            row = repo.get_space(session, sp.key)
            uid = row.uid if row is not None else ""
        red = self.reduction
        return Manifest(space=sp.key, model=sp.model, detector=sp.detector, aligner=sp.aligner,
                        dim=red.dim_out if red else RECOGNITION_DIMS[sp.model], metric="ip", index_key="Flat",
                        ntotal=0, max_id=0, schema_revision=self.revision, space_uid=uid,
                        reduction=red.uid if red else "")

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

    def _index_vectors(self, ids) -> np.ndarray:  # noqa: ANN001
        """What the index holds for ``ids``: their vectors, reduced when the space is."""
        full = self._vectors(ids)
        return self.reduction.apply(full) if self.reduction is not None else full

    @property
    def vectors_in_db(self) -> bool:
        """PostgreSQL keeps and searches the vectors itself (pgvector); elsewhere a FAISS file does."""
        return self._engine.dialect.name == "postgresql"  # type: ignore[attr-defined]

    @property
    def index(self) -> FaissIndex:
        """The space's FAISS index, topped up from the database if a crash left it behind;
        on PostgreSQL the pgvector column (:class:`lookalike.index.pgvector_index.PgVectorIndex`)."""
        if self._index is None and self.vectors_in_db:
            from .index.pgvector_index import PgVectorIndex

            red = self.reduction
            self._index = PgVectorIndex(self._engine, self.space.key, self._space_id or self._existing_space_id(),
                                        red.dim_out if red else RECOGNITION_DIMS[self.space.model],
                                        reduced=red is not None)
            self._index.vector_source = self._index_vectors
        if self._index is None:
            space_id = self._space_id or self._existing_space_id()
            index = FaissIndex.load(self.settings.index_dir, self._manifest())
            with self.session() as session:
                count, top = repo.face_count_and_max(session, space_id)
            have = index.ids()
            if count != len(have) or (count and top != int(have.max())):
                with self.session() as session:
                    ids = repo.face_ids(session, space_id)
                index.reconcile(ids, self._index_vectors)
            index.vector_source = self._index_vectors
            self._index = index
        if self.reduction is not None and not isinstance(self._index, ReducedIndex):
            self._index = ReducedIndex(self._index, self.reduction, self._vectors)
        return self._index

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
            self._pipeline = FacePipeline(self.space, self.settings.detect_max_side)
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
        keep them apart (:mod:`lookalike.queue`)."""
        from contextlib import nullcontext

        return nullcontext() if self.vectors_in_db else self.write_lock()

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
        from . import corpus

        scan = corpus.scan(paths, person=person)
        if not scan.items:
            raise NothingIngested(f"no image files found in {', '.join(map(str, paths))}")
        return self.ingest_items(scan.items, faces=faces, workers=workers, progress=progress,
                                 skipped_files=scan.skipped_files, analyzer=analyzer)

    def ingest_items(self, items, *, faces: FacesMode = FacesMode.largest, workers: int = 0,  # noqa: ANN001
                     progress=None, skipped_files: int = 0, analyzer=None):  # noqa: ANN001
        """Ingest already scanned :class:`lookalike.corpus.Item` s."""
        from . import ingest, weights

        # fail on missing weights here, with the install command, not in every worker
        for name in (self.space.model, self.space.detector, self.space.aligner, "dlib"):
            weights.require(name)
        if analyzer is not None:
            from . import analysis

            analyzer = analysis.resolve(analysis.AnalyzerName(analyzer))
            for name in analysis.required_weights(analyzer):
                weights.require(name)
        with self._writers():
            self.space_id  # noqa: B018 - create the space row before the index loads
            index = self.index
            if index.ntotal and not self._saved_matches(index):
                index.save()
            options = ingest.IngestOptions(faces=faces, workers=workers, analyzer=analyzer)
            run = ingest.run_queued if self.vectors_in_db else ingest.run
            report = run(self, list(items), options, progress, skipped_files)
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

    def remove(self, *, person: str | None = None, photo: str | None = None) -> dict:
        """Delete a person (every photo, face, vector and centroid contribution, and the
        person row) or one photo, in every embedding space. The database commits first;
        the indexes follow and are saved."""
        from sqlalchemy import select

        from .errors import NotFound
        from .store.schema import Person, Photo

        if (person is None) == (photo is None):
            raise ConfigError("name exactly one of --person NAME or --photo PATH")
        removed: dict[int, list[int]] = {}
        rebuilt = None
        with self._writers():
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
                    view = self._view(spaces[space_id])
                    view.index.remove(np.asarray(ids, dtype=np.int64))
                    view.index.save()
                    rebuilt = view._upkeep() or rebuilt
        self._index = None
        self._centroids = None
        return {"person": person, "photo": photo, "photos": len(photos),
                "faces": sum(len(v) for v in removed.values()), "index_rebuilt": rebuilt}

    def _spaces(self) -> list:
        with self.session() as session:
            return repo.list_spaces(session)

    def _view(self, row) -> "Library":  # noqa: ANN001
        """This library looking at another embedding space (same engine)."""
        view = copy.copy(self)
        view._space, view._space_id = Space(row.model, row.detector, row.aligner), row.id
        view._index, view._centroids, view._pipeline, view._reduction = None, None, None, False
        return view

    def _vectors(self, ids) -> np.ndarray:  # noqa: ANN001
        with self.session() as session:
            return repo.vectors(session, ids, RECOGNITION_DIMS[self.space.model])

    def index_info(self) -> dict:
        """The index in use, what the choice rules would pick now, and its upkeep state."""
        from .index.choice import choose

        index = self.index
        if self.vectors_in_db:
            return self._pg_index_info(index)
        path, _ = FaissIndex.paths(self.settings.index_dir, self.space.key)
        rule = choose(index.ntotal, index.manifest.dim, self.settings.index_budget)
        todo = self._upkeep_plan(index)
        return {"space": self.space.key, "index_key": index.manifest.index_key,
                "params": index.manifest.params, "pinned": index.manifest.pinned,
                "ntotal": index.ntotal, "dim": index.manifest.dim,
                "tombstones": len(index.manifest.tombstones),
                "tombstone_share": round(index.tombstone_share, 4), "file": str(path),
                "bytes": path.stat().st_size if path.exists() else 0,
                "rules_choose": rule.key, "rules_reason": rule.reason,
                "rebuild_advised": todo.rebuild, "upkeep": todo.reason, "reduction": self._reduction_info()}

    def _reduction_info(self) -> dict:
        from .index import reduction

        red = self.reduction
        out = red.describe() if red is not None else {"kind": None}
        with self.session() as session:
            n = repo.face_count_and_max(session, self._existing_space_id())[0]
        out["plan"] = reduction.plan(RECOGNITION_DIMS[self.space.model], n, red).reason
        return out

    def _pg_index_info(self, index) -> dict:  # noqa: ANN001
        from sqlalchemy import text

        with self._engine.connect() as conn:  # type: ignore[attr-defined]
            size = conn.execute(text("SELECT coalesce(pg_relation_size(to_regclass(:n)), 0)"),
                                {"n": index.index_name}).scalar_one()
        n = index.ntotal
        return {"space": self.space.key, "index_key": index.manifest.index_key, "params": index.manifest.params,
                "pinned": False, "ntotal": n, "dim": index.dim, "tombstones": 0, "tombstone_share": 0.0,
                "file": f"PostgreSQL index {index.index_name} on faces.vec", "bytes": int(size),
                "rules_choose": index.manifest.index_key,
                "rules_reason": "on PostgreSQL the vectors live in faces.vec and are searched in SQL",
                "rebuild_advised": False, "upkeep": "none: PostgreSQL maintains its own index",
                "reduction": self._reduction_info()}

    def rebuild_index(self, key: str | None = None, reduce: int | None = None) -> dict:
        """Rebuild the space's index from the database vectors, with ``key`` (pinned: upkeep
        keeps it from then on) or the rules' choice for the current size; drops tombstones.
        ``reduce`` first trains a PCA to that many dimensions on the stored faces, now."""
        if self.vectors_in_db:
            if key is not None:
                raise ConfigError("--key names a FAISS index type; on PostgreSQL the index is pgvector's HNSW "
                                  "(rebuild without --key to REINDEX it)")
            if reduce is not None:
                self._train_reduction(reduce)
            self.index.rebuild()
            return self.index_info()
        with self.write_lock():
            if reduce is not None:
                self._train_reduction(reduce)
            self._rebuild(key, pinned=key is not None)
        return self.index_info()

    def _train_reduction(self, dim_out: int) -> None:
        """Fit a PCA to a sample of the space's faces, store it, and make the index follow:
        on PostgreSQL every ``faces.vec`` is rewritten and the HNSW index re-made in the
        same transaction; the FAISS file is rebuilt by the caller."""
        from .index import reduction
        from .index.pgvector_index import PgVectorIndex

        space_id = self._existing_space_id()
        with self.session() as session:
            ids = repo.face_ids(session, space_id)
        sample = ids if len(ids) <= reduction.TRAIN_SAMPLE else np.sort(
            np.random.default_rng(0).choice(ids, reduction.TRAIN_SAMPLE, replace=False))
        red = reduction.train(self._vectors(sample), dim_out)
        with self.session() as session:
            reduction.store(session, space_id, red)
            if self.vectors_in_db:  # the table lock is held: no writer adds a face until commit
                PgVectorIndex.drop_indexes(session, space_id)
                ids = repo.face_ids(session, space_id)
                for start in range(0, len(ids), 5000):
                    chunk = ids[start:start + 5000]
                    PgVectorIndex.write_vectors(session, chunk, red.apply(repo.vectors(
                        session, chunk, RECOGNITION_DIMS[self.space.model])))
            session.commit()
        self._reduction, self._index = red, None

    def _rebuild(self, key: str | None, pinned: bool) -> None:
        from .index.choice import choose, default_params

        with self.session() as session:
            ids = repo.face_ids(session, self._existing_space_id())
        manifest = self._manifest()
        dim = manifest.dim
        choice = choose(len(ids), dim, self.settings.index_budget)
        key = key or choice.key
        manifest.index_key, manifest.pinned = key, pinned
        manifest.params = choice.params if key == choice.key else default_params(key, len(ids))
        vectors = self._index_vectors(ids) if len(ids) else np.zeros((0, dim), dtype=np.float32)
        try:
            index = FaissIndex.build(self.settings.index_dir, manifest, ids, vectors)
        except RuntimeError as err:
            raise ConfigError(f"cannot build index {key!r}: {str(err).splitlines()[0]}") from err
        index.save()
        index.vector_source = self._index_vectors
        self._index = index

    def _upkeep_plan(self, index: FaissIndex):  # noqa: ANN202
        from .index import upkeep

        m = index.manifest
        return upkeep.plan(m.index_key, m.pinned, index.ntotal, m.dim, index.tombstone_share,
                           self.settings.index_budget)

    def _upkeep(self) -> str | None:
        """After ingest or removal (write lock held): rebuild if the upkeep rules say so.
        Returns the reason when it rebuilt. Wide spaces first get (or renew) their PCA."""
        from .index import reduction

        with self.session() as session:
            n = repo.face_count_and_max(session, self._existing_space_id())[0]
        todo_pca = reduction.plan(RECOGNITION_DIMS[self.space.model], n, self.reduction)
        if todo_pca.train:
            self._train_reduction(todo_pca.dim_out)
            if not self.vectors_in_db:
                self._rebuild(None, pinned=False)
            return todo_pca.reason
        if self.vectors_in_db:
            return None  # PostgreSQL maintains its HNSW index as rows come and go
        index = self.index
        todo = self._upkeep_plan(index)
        if not todo.rebuild:
            return None
        self._rebuild(todo.key, pinned=index.manifest.pinned)
        return todo.reason

    def _saved_matches(self, index: FaissIndex) -> bool:
        if self.vectors_in_db:
            return True
        path, _ = FaissIndex.paths(self.settings.index_dir, self.space.key)
        return path.exists() and index.manifest.ntotal == index.ntotal

    def search(self, photo, k: int = 5, **options):  # noqa: ANN001, ANN003
        """Who looks like the faces in ``photo`` (path, bytes or RGB array).

        ``options`` are :class:`lookalike.search.SearchOptions` fields: ``per_person``,
        ``rank_by``, ``filters``, ``consented_only``."""
        from .search import SearchOptions, search

        return search(self, photo, SearchOptions(k=k, **options))

    def person(self, name: str):  # noqa: ANN201
        """A person's profile and faces sorted by similarity to their centroid, outliers flagged."""
        from .person import person_report

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
            return repo.problem_photos(session, self._existing_space_id(), limit)

    def face_crop(self, face_id: int, size: int = 160):  # noqa: ANN201
        """A stored face as a square Pillow image, cut from its photo file now (never cached)."""
        from .montage import crop

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
        from .search import Calibration

        with self.session() as session:
            row = repo.calibration(session, self._existing_space_id())
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
                self._centroids = repo.centroids(session, self._existing_space_id())
        return self._centroids

    def allowed_face_ids(self, filters=(), consented_only: bool = False):  # noqa: ANN001, ANN201
        """Face ids whose person passes the metadata filters; ``None`` when unfiltered."""
        if not filters and not consented_only:
            return None
        from .corpus import normalise_tag
        from .search import FilterKey
        from .store.schema import Person

        conditions = []
        for f in filters:
            if f.key is FilterKey.tag:
                conditions.append(Person.tags.like(f'%"{normalise_tag(f.value)}"%'))
            elif f.key is FilterKey.organisation:
                conditions.append(Person.organisation.ilike(f.value))
            elif f.key is FilterKey.role:
                conditions.append(Person.role.ilike(f.value))
            else:
                conditions.append(Person.name == f.value)
        if consented_only:
            conditions.append(Person.consent_display.is_(True))
        with self.session() as session:
            return repo.filtered_face_ids(session, self._existing_space_id(), conditions)

    def stats(self) -> dict:
        """Counts of people, photos, faces and statuses, and the index in use."""
        with self.session() as session:
            spaces = repo.list_spaces(session)
            if not spaces:
                empty = {s: 0 for s in repo.status_counts(session, -1)}
                return {"people": 0, "photos": 0, "faces": 0, "statuses": empty, "index": {},
                        "estimates": {"faces": 0, "emotion": {}, "age_band": {}}, "db": self.settings.db_url}
            space_id = self._existing_space_id()
            out = repo.counts(session, space_id)
            out["statuses"] = repo.status_counts(session, space_id)
            out["estimates"] = repo.estimate_summary(session, space_id)
        index = self.index
        if self.vectors_in_db:
            info = self._pg_index_info(index)
            out["index"] = {"space": self.space.key, "model": self.space.model, "detector": self.space.detector,
                            "aligner": self.space.aligner, "dim": index.dim, "metric": "cosine (pgvector <=>)",
                            "index_key": info["index_key"], "ntotal": info["ntotal"], "file": info["file"],
                            "bytes": info["bytes"]}
            out["db"] = self.settings.db_url
            return out
        path, _ = FaissIndex.paths(self.settings.index_dir, self.space.key)
        out["index"] = {
            "space": self.space.key, "model": self.space.model, "detector": self.space.detector,
            "aligner": self.space.aligner, "dim": index.manifest.dim, "metric": "cosine (inner product)",
            "index_key": index.manifest.index_key, "ntotal": index.ntotal, "file": str(path),
            "bytes": path.stat().st_size if path.exists() else 0,
        }
        out["db"] = self.settings.db_url
        return out

    def doctor(self, fix: bool = False) -> list[DoctorReport]:
        """Compare every space's index file with the database; ``fix`` repairs it."""
        reports = []
        with self.session() as session:
            spaces = repo.list_spaces(session)
        for row in spaces:
            reports.append(self._view(row)._doctor_space(fix))
        return reports

    def _doctor_space(self, fix: bool) -> DoctorReport:
        with self.session() as session:
            ids = repo.face_ids(session, self.space_id)
        if self.vectors_in_db:  # no file to drift; only rows stored before pgvector lack a vector
            index = self.index
            missing = index.missing()
            report = DoctorReport(self.space.key, len(ids), len(ids) - len(missing), len(missing), 0)
            if fix and len(missing):
                index.fill(missing, self._index_vectors)
                report.fixed, report.missing, report.index_faces = True, 0, len(ids)
            return report
        error = None
        try:
            index = FaissIndex.load(self.settings.index_dir, self._manifest())
        except IndexOwnedElsewhere as err:  # never "fix" another library's file
            return DoctorReport(self.space.key, len(ids), 0, len(ids), 0, error=str(err))
        except (IndexCorrupt, ModelMismatch) as err:
            error, index = str(err), None
        have = index.ids() if index is not None else np.zeros(0, dtype=np.int64)
        report = DoctorReport(self.space.key, len(ids), len(have),
                              missing=len(np.setdiff1d(ids, have)),
                              orphans=len(np.setdiff1d(have, ids)), error=error)
        if index is not None and not FaissIndex.paths(self.settings.index_dir, self.space.key)[0].exists() \
                and len(ids):
            report.error = "index file missing"
        if fix and not report.ok:
            with self.write_lock():
                index = FaissIndex(self.settings.index_dir, self._manifest()) if index is None else index
                index.reconcile(ids, self._index_vectors)
                index.save()
            report.fixed = True
            report.error, report.missing, report.orphans = None, 0, 0
            report.index_faces = index.ntotal
        return report


def open_library(db: str | os.PathLike[str] | None = None, index_dir: str | Path | None = None,
                 **settings: object) -> Library:
    """Open (creating or upgrading) the library at ``db`` (a path or SQLAlchemy URL)."""
    return Library(Settings.resolve(db=db, index_dir=index_dir, **settings))
