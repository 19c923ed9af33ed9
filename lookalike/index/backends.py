"""Where a library's vectors are indexed: one class per kind, chosen by the database.

* :class:`FaissBackend` — the embedded default: a FAISS file per embedding space beside
  the database, a derived cache of the ``faces.embedding`` blobs. One writer at a time
  (the library's lock file); ingest writes through one process; upkeep re-chooses the
  index type as the library grows (:mod:`lookalike.index.choice`, ``upkeep``).
* :class:`PgVectorBackend` — PostgreSQL: the vectors live in ``faces.vec`` (pgvector),
  written with their rows and searched in SQL; any number of writers on any number of
  machines (ingest goes through the work queue, :mod:`lookalike.store.queue`).

The :class:`lookalike.library.Library` asks its backend and never branches on the kind
itself; a backend is looked up by the SQLAlchemy dialect name (:func:`for_dialect`).
Every index it opens is a :class:`lookalike.index.protocol.VectorIndex`; what only its
own kind has (a FAISS file's ``reconcile``, pgvector's ``fill``), it reaches through
:func:`unwrapped` (a reduced space's index wraps the backend's).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import Vectors, VectorsKind
from ..errors import ConfigError, IndexCorrupt, IndexOwnedElsewhere, ModelMismatch
from ..models.catalog import RECOGNITION_DIMS
from ..store import db, outbox, pgvector, photo_rows, space_rows
from .faiss_index import FaissIndex, Manifest
from .protocol import VectorIndex
from .reduction import ReducedIndex, Reduction

if TYPE_CHECKING:
    from pymilvus import MilvusClient
    from sqlalchemy.orm import Session

    from ..space import SpaceView
    from . import upkeep
    from .milvus_index import MilvusIndex, MilvusSpec
    from .pgvector_index import PgVectorIndex

log = logging.getLogger(__name__)


def unwrapped(index: VectorIndex) -> VectorIndex:
    """The index a backend opened, under any :class:`ReducedIndex` wrapper."""
    while isinstance(index, ReducedIndex):
        index = index.inner
    return index


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


class VectorBackend:
    """What differs between keeping vectors in an index file and in the database."""

    name = "base"
    vectors_in_db = False  # faces.vec is written and searched
    # ingest through the PostgreSQL work queue (any number of writers, on any machine)
    # rather than one local writer with a process pool
    queued_ingest = False
    # the vectors live outside the database: every change also writes outbox rows
    outbox = False

    def open_index(self, view: SpaceView) -> VectorIndex:
        """The space's index, ready to search (before any reduction wrapper)."""
        raise NotImplementedError

    def writers(self, view: SpaceView) -> AbstractContextManager[None]:
        """The exclusion an ingest or removal needs."""
        raise NotImplementedError

    def info(self, view: SpaceView, index: VectorIndex) -> dict:
        raise NotImplementedError

    def stats(self, view: SpaceView, index: VectorIndex) -> dict:
        info = self.info(view, index)
        sp = view.space
        return {"space": sp.key, "model": sp.model, "detector": sp.detector, "aligner": sp.aligner,
                "dim": info["dim"], "metric": self.metric, "index_key": info["index_key"],
                "ntotal": info["ntotal"], "file": info["file"], "bytes": info["bytes"]}

    metric = "cosine"

    def rebuild(self, view: SpaceView, key: str | None, reduce: int | None) -> None:
        raise NotImplementedError

    def upkeep(self, view: SpaceView) -> str | None:
        """After ingest or removal: rebuild if the rules say so; the reason when it did."""
        raise NotImplementedError

    def saved_matches(self, view: SpaceView, index: VectorIndex) -> bool:
        """Whether what is saved already holds everything the open index holds."""
        return True

    def changed(self, index: VectorIndex) -> bool:
        """Whether the open index is older than what another process has since saved."""
        return False

    def after_commit(self, view: SpaceView) -> None:
        """After a queue worker committed a claim: what must follow the database."""

    def close(self) -> None:
        """When the library closes: connections of the backend's own."""

    def erase(self, view: SpaceView) -> None:
        """After a removal committed: what the store must do so the removed rows are gone
        from its files too, not merely unlinked."""

    def reduction_stored(self, view: SpaceView, session: Session, space_id: int, red: Reduction) -> None:
        """Inside the transaction that stores a new PCA: make the stored vectors follow."""

    def drop_space(self, view: SpaceView, session: Session, key: str, space_id: int) -> None:
        """Inside the transaction that deletes a space's rows: its index goes too."""

    def reduction_committed(self, view: SpaceView) -> None:
        """After that transaction committed."""

    def doctor(self, view: SpaceView, fix: bool) -> DoctorReport:
        raise NotImplementedError


class FaissBackend(VectorBackend):
    name = "faiss"
    metric = "cosine (inner product)"

    def manifest(self, view: SpaceView) -> Manifest:
        sp = view.space
        with view.session() as session:
            row = space_rows.get_space(session, sp.key)
            uid = row.uid if row is not None else ""
        red = view.reduction
        return Manifest(space=sp.key, model=sp.model, detector=sp.detector, aligner=sp.aligner,
                        dim=red.dim_out if red else RECOGNITION_DIMS[sp.model], metric="ip", index_key="Flat",
                        ntotal=0, max_id=0, schema_revision=view.revision, space_uid=uid,
                        reduction=red.uid if red else "")

    def open_index(self, view: SpaceView) -> FaissIndex:
        """The saved file, topped up from the database if a crash left it behind."""
        space_id = view.existing_space_id()
        index = FaissIndex.load(view.settings.index_dir, self.manifest(view))
        with view.session() as session:
            count, top = photo_rows.face_count_and_max(session, space_id)
        have = index.ids()
        if count != len(have) or (count and top != int(have.max())):
            with view.session() as session:
                ids = photo_rows.face_ids(session, space_id)
            index.reconcile(ids, view.index_vectors)
        index.vector_source = view.index_vectors
        return index

    def writers(self, view: SpaceView) -> AbstractContextManager[None]:
        return view.write_lock()

    def info(self, view: SpaceView, index: VectorIndex) -> dict:
        from .choice import choose

        path, _ = FaissIndex.paths(view.settings.index_dir, view.space.key)
        m = index.manifest
        rule = choose(index.ntotal, m.dim, view.settings.index_budget)
        todo = self._plan(view, index)
        return {"space": view.space.key, "index_key": m.index_key, "params": m.params, "pinned": m.pinned,
                "ntotal": index.ntotal, "dim": m.dim, "tombstones": len(m.tombstones),
                "tombstone_share": round(index.tombstone_share, 4), "file": str(path),
                "bytes": path.stat().st_size if path.exists() else 0,
                "rules_choose": rule.key, "rules_reason": rule.reason,
                "rebuild_advised": todo.rebuild, "upkeep": todo.reason}

    def rebuild(self, view: SpaceView, key: str | None, reduce: int | None) -> None:
        with view.write_lock():
            if reduce is not None:
                view.train_reduction(reduce)
            self.build(view, key, pinned=key is not None)

    def build(self, view: SpaceView, key: str | None, pinned: bool) -> None:
        """A fresh file of ``key`` (or the rules' choice) from the database vectors."""
        from .choice import choose, default_params

        with view.session() as session:
            ids = photo_rows.face_ids(session, view.existing_space_id())
        manifest = self.manifest(view)
        dim = manifest.dim
        choice = choose(len(ids), dim, view.settings.index_budget)
        key = key or choice.key
        manifest.index_key, manifest.pinned = key, pinned
        manifest.params = choice.params if key == choice.key else default_params(key, len(ids))
        vectors = view.index_vectors(ids) if len(ids) else np.zeros((0, dim), dtype=np.float32)
        try:
            index = FaissIndex.build(view.settings.index_dir, manifest, ids, vectors)
        except RuntimeError as err:
            raise ConfigError(f"cannot build index {key!r}: {str(err).splitlines()[0]}") from err
        index.save()
        index.vector_source = view.index_vectors
        view.forget_index()

    def _plan(self, view: SpaceView, index: VectorIndex) -> upkeep.Plan:
        from . import upkeep

        m = index.manifest
        return upkeep.plan(m.index_key, m.pinned, index.ntotal, m.dim, index.tombstone_share,
                           view.settings.index_budget)

    def upkeep(self, view: SpaceView) -> str | None:
        index = view.index
        todo = self._plan(view, index)
        if not todo.rebuild:
            return None
        self.build(view, todo.key, pinned=index.manifest.pinned)
        return todo.reason

    def saved_matches(self, view: SpaceView, index: VectorIndex) -> bool:
        path, _ = FaissIndex.paths(view.settings.index_dir, view.space.key)
        return path.exists() and index.manifest.ntotal == index.ntotal

    def reduction_committed(self, view: SpaceView) -> None:
        self.build(view, None, pinned=False)  # the file follows the new PCA

    def changed(self, index: VectorIndex) -> bool:
        base = unwrapped(index)
        return isinstance(base, FaissIndex) and base.changed_on_disk()

    def drop_space(self, view: SpaceView, session: Session, key: str, space_id: int) -> None:
        for path in FaissIndex.paths(view.settings.index_dir, key):
            path.unlink(missing_ok=True)

    def erase(self, view: SpaceView) -> None:
        """SQLite zeroes deleted rows (``secure_delete``) in pages that still sit in the
        write-ahead log: checkpoint it into the file and truncate it."""
        if view.engine.dialect.name == "sqlite":
            db.checkpoint_wal(view.engine)

    def doctor(self, view: SpaceView, fix: bool) -> DoctorReport:
        with view.session() as session:
            ids = photo_rows.face_ids(session, view.space_id)
        error = None
        folder, key = view.settings.index_dir, view.space.key
        try:
            index = FaissIndex.load(folder, self.manifest(view))
        except IndexOwnedElsewhere as err:  # never "fix" another library's file
            return DoctorReport(key, len(ids), 0, len(ids), 0, error=str(err))
        except (IndexCorrupt, ModelMismatch) as err:
            error, index = str(err), None
        have = index.ids() if index is not None else np.zeros(0, dtype=np.int64)
        report = DoctorReport(key, len(ids), len(have), missing=len(np.setdiff1d(ids, have)),
                              orphans=len(np.setdiff1d(have, ids)), error=error)
        if index is not None and not FaissIndex.paths(folder, key)[0].exists() and len(ids):
            report.error = "index file missing"
        if fix and not report.ok:
            with view.write_lock():
                index = FaissIndex(folder, self.manifest(view)) if index is None else index
                index.reconcile(ids, view.index_vectors)
                index.save()
            report.fixed = True
            report.error, report.missing, report.orphans = None, 0, 0
            report.index_faces = index.ntotal
        return report


class PgVectorBackend(VectorBackend):
    name = "pgvector"
    vectors_in_db = True
    queued_ingest = True
    metric = "cosine (pgvector <=>)"

    def open_index(self, view: SpaceView) -> PgVectorIndex:
        from .pgvector_index import PgVectorIndex

        red = view.reduction
        index = PgVectorIndex(view.engine, view.space.key, view.existing_space_id(),
                              red.dim_out if red else RECOGNITION_DIMS[view.space.model], reduced=red is not None)
        index.vector_source = view.index_vectors
        return index

    def writers(self, view: SpaceView) -> AbstractContextManager[None]:
        return nullcontext()  # transactions and row locks keep any number of writers apart

    @staticmethod
    def own(index: VectorIndex) -> PgVectorIndex:
        """The :class:`PgVectorIndex` under ``index`` (reduced or not)."""
        from .pgvector_index import PgVectorIndex

        base = unwrapped(index)
        if not isinstance(base, PgVectorIndex):
            raise TypeError(f"the pgvector backend was handed a {type(base).__name__}")
        return base

    def info(self, view: SpaceView, index: VectorIndex) -> dict:
        index = self.own(index)
        size = pgvector.relation_size(view.engine, index.index_name)
        return {"space": view.space.key, "index_key": index.manifest.index_key, "params": index.manifest.params,
                "pinned": False, "ntotal": index.ntotal, "dim": index.dim, "tombstones": 0, "tombstone_share": 0.0,
                "file": f"PostgreSQL index {index.index_name} on faces.vec", "bytes": int(size),
                "rules_choose": index.manifest.index_key,
                "rules_reason": "on PostgreSQL the vectors live in faces.vec and are searched in SQL",
                "rebuild_advised": False, "upkeep": "none: PostgreSQL maintains its own index"}

    def rebuild(self, view: SpaceView, key: str | None, reduce: int | None) -> None:
        if key is not None:
            raise ConfigError("--key names a FAISS index type; on PostgreSQL the index is pgvector's HNSW "
                              "(rebuild without --key to REINDEX it)")
        if reduce is not None:
            view.train_reduction(reduce)
            self.own(view.index).ensure_index()  # the HNSW index of the new width, built once
            return
        self.own(view.index).rebuild()

    def upkeep(self, view: SpaceView) -> str | None:
        return None  # PostgreSQL maintains its HNSW index as rows come and go

    def drop_space(self, view: SpaceView, session: Session, key: str, space_id: int) -> None:
        pgvector.drop_hnsw_indexes(session, space_id)

    def erase(self, view: SpaceView) -> None:
        """VACUUM: dead rows and their HNSW entries are cleared for reuse (PostgreSQL does
        not overwrite them at once; ``VACUUM FULL faces`` rewrites the table when the bytes
        themselves must go)."""
        db.vacuum(view.engine)

    def reduction_stored(self, view: SpaceView, session: Session, space_id: int, red: Reduction) -> None:
        """Every ``faces.vec`` of the space rewritten through the new PCA, old HNSW indexes
        dropped (the next open builds the new width's); the reductions table is locked
        exclusively, so no writer adds a face until this commits."""
        pgvector.drop_hnsw_indexes(session, space_id)
        ids = photo_rows.face_ids(session, space_id)
        dim = RECOGNITION_DIMS[view.space.model]
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            pgvector.write_vectors(session, chunk, red.apply(photo_rows.vectors(session, chunk, dim)))

    def doctor(self, view: SpaceView, fix: bool) -> DoctorReport:
        """No file to drift; only rows stored before pgvector lack a vector."""
        with view.session() as session:
            n = len(photo_rows.face_ids(session, view.space_id))
        index = self.own(view.index)
        missing = index.missing()
        report = DoctorReport(view.space.key, n, n - len(missing), len(missing), 0)
        if fix and len(missing):
            index.fill(missing, view.index_vectors)
            report.fixed, report.missing, report.index_faces = True, 0, n
        return report


class MilvusBackend(VectorBackend):
    """Milvus (:mod:`lookalike.index.milvus_index`): one collection per space, the database
    still the source of truth. Every change is written to the database first, with outbox
    rows in the same transaction; :meth:`follow` then sends them (and any a crash left
    behind: every open drains first), so after a resume SQL ids == Milvus ids.

    Milvus Lite serves one process: ingest maps photos in worker processes and writes from
    this one. With PostgreSQL and a Milvus server (``milvus://``), ingest goes through the
    work queue like pgvector's, every worker draining its own outbox rows."""

    name = "milvus"
    metric = "cosine (Milvus inner product)"
    DRAIN = 2_000  # outbox rows per round trip
    outbox = True

    def __init__(self, vectors: Vectors, dialect: str) -> None:
        self.vectors = vectors
        self.lite = vectors.kind is VectorsKind.milvus_lite
        self.queued_ingest = dialect == "postgresql" and not self.lite
        self._client: MilvusClient | None = None
        self._lite_engine: bool | None = None

    def client(self) -> MilvusClient:
        if self._client is None:
            from .milvus_index import connect

            self._client = connect(self.vectors)
        return self._client

    def _python_engine(self) -> bool:
        """Milvus Lite, embedded or behind ``milvus-lite server`` (it says so in its version):
        a Python engine, where an id list filters faster than an expression."""
        if self._lite_engine is None:
            from .milvus_index import is_milvus_lite

            self._lite_engine = self.lite or is_milvus_lite(self.client())
        return self._lite_engine

    def close(self) -> None:
        if self._client is not None:
            from .milvus_index import disconnect

            disconnect(self.vectors, self._client)
            self._client = None

    def _dim(self, view: SpaceView) -> int:
        red = view.reduction
        return red.dim_out if red else RECOGNITION_DIMS[view.space.model]

    def _collection(self, view: SpaceView) -> str:
        from .milvus_index import collection_name

        with view.session() as session:
            row = space_rows.get_space(session, view.space.key)
            uid = row.uid if row is not None else ""
        return collection_name(view.space.key, uid)

    def _rules(self, view: SpaceView, n: int) -> MilvusSpec:
        from .choice import choose, milvus_spec

        return milvus_spec(choose(n, self._dim(view), view.settings.index_budget), self.lite)

    def _index(self, view: SpaceView, spec: MilvusSpec | None = None) -> MilvusIndex:
        """The collection's index object (not created, not drained)."""
        from .milvus_index import MilvusIndex, MilvusSpec

        name = self._collection(view)
        index = MilvusIndex(self.client(), name, view.space.key, self._dim(view), spec or MilvusSpec("FLAT"))
        index.filter_on_fields = not self._python_engine()
        if spec is None and index.exists():
            described = index.describe()
            index.spec = _spec_of(described, int(described.get("total_rows") or 0), index.dim, self.lite)
            index.manifest.index_key, index.manifest.params = index.spec.key, dict(index.spec.search)
        index.vector_source = view.index_vectors
        index.follow = lambda: self.follow(view, index)
        return index

    def open_index(self, view: SpaceView) -> MilvusIndex:
        """The space's collection, created (and filled) if new; what a crash left in the
        outbox is sent before the first search, and a count that still differs from the
        database's is reconciled id by id."""
        space_id = view.existing_space_id()
        index = self._index(view)
        if not index.exists():
            self.build(view, None, only_if_missing=True)
            index = self._index(view)
        index.load()
        self.follow(view, index)
        with view.session() as session:
            count, _ = photo_rows.face_count_and_max(session, space_id)
        if count != index.ntotal:
            log.warning("%s: %d faces in the database, %d in Milvus: reconciling", index.name, count, index.ntotal)
            self._reconcile(view, index)
        return index

    def follow(self, view: SpaceView, index: MilvusIndex) -> int:
        """Drain the space's outbox: upsert the faces that exist (vector and filter fields
        read from the database now), delete the ids that do not; the rows go only after
        Milvus took them. Returns how many outbox rows were settled."""
        done = 0
        space_id = view.existing_space_id()
        with view.vectors_lock(exclusive=False):  # not while a build inserts
            while True:
                with view.session() as session:
                    batch = outbox.outbox_batch(session, space_id, self.DRAIN)
                    if not batch:
                        break
                    ids = sorted({face for _, face in batch})
                    fields = outbox.filter_fields(session, ids)
                    present = [i for i in ids if i in fields]
                    gone = [i for i in ids if i not in fields]
                    if present:
                        index.upsert(present, view.index_vectors(np.asarray(present, dtype=np.int64)), fields)
                    index.delete(gone)
                    outbox.clear_outbox(session, [row for row, _ in batch])
                    session.commit()
                done += len(batch)
        return done

    def _reconcile(self, view: SpaceView, index: MilvusIndex) -> tuple[int, int]:
        """Queue every face Milvus lacks and every id it has that the database does not,
        then drain: (missing, orphans) found."""
        with view.session() as session:
            want = photo_rows.face_ids(session, view.existing_space_id())
        have = index.ids()
        missing, orphans = np.setdiff1d(want, have), np.setdiff1d(have, want)
        with view.session() as session:
            outbox.enqueue_faces(session, view.existing_space_id(), np.concatenate([missing, orphans]).tolist())
            session.commit()
        self.follow(view, index)
        return len(missing), len(orphans)

    def after_commit(self, view: SpaceView) -> None:
        self.follow(view, self.own(view.index))

    def writers(self, view: SpaceView) -> AbstractContextManager[None]:
        # SQLite has one writer (the library's lock); on PostgreSQL transactions and the
        # outbox's row locks keep writers on many machines apart
        return nullcontext() if self.queued_ingest else view.write_lock()

    @staticmethod
    def own(index: VectorIndex) -> MilvusIndex:
        from .milvus_index import MilvusIndex

        base = unwrapped(index)
        if not isinstance(base, MilvusIndex):
            raise TypeError(f"the Milvus backend was handed a {type(base).__name__}")
        return base

    def info(self, view: SpaceView, index: VectorIndex) -> dict:
        own = self.own(index)
        rules = self._rules(view, own.ntotal)
        with view.session() as session:
            pending = outbox.outbox_count(session, view.existing_space_id())
        size = _folder_bytes(Path(self.vectors.target)) if self.lite else 0
        return {"space": view.space.key, "index_key": own.spec.key, "params": dict(own.spec.search),
                "pinned": False, "ntotal": own.ntotal, "dim": own.dim, "tombstones": 0, "tombstone_share": 0.0,
                "file": f"Milvus collection {own.name} at {self.vectors}", "bytes": size,
                "rules_choose": rules.key, "rules_reason": "the FAISS rules in Milvus's own index types "
                "(lookalike.index.choice.milvus_spec)", "rebuild_advised": rules.index_type != own.spec.index_type,
                "upkeep": "by hand: Milvus indexes each new segment itself; `index rebuild` re-applies the rules",
                "outbox": pending}

    def rebuild(self, view: SpaceView, key: str | None, reduce: int | None) -> None:
        with self.writers(view):
            if reduce is not None:
                view.train_reduction(reduce)  # the collection is made again at the new width below
            if key is None:
                self.build(view, None)
                return
            from .choice import milvus_spec_by_name

            with view.session() as session:
                n, _ = photo_rows.face_count_and_max(session, view.existing_space_id())
            try:
                spec = milvus_spec_by_name(key, n, self._dim(view), self.lite)
            except ValueError as err:
                raise ConfigError(str(err)) from None
            if reduce is not None:  # a new width: a new collection
                self.build(view, spec)
            else:
                self.own(view.index).reindex(spec)
            view.forget_index()

    def build(self, view: SpaceView, spec: MilvusSpec | None, only_if_missing: bool = False) -> None:
        """A fresh collection (the rules' index, or ``spec``) filled from the database, or,
        with ``only_if_missing``, left as it is if another process made it meanwhile.

        The faces go in by ``insert``, not ``upsert``: the collection is new and no drain
        runs while the build holds :meth:`SpaceView.vectors_lock`, so none can be there
        twice, and a server indexes each segment once (an upsert's delete of a new id
        makes Milvus 2.3.5 compact and index every segment again). A face written while
        the build runs is in the outbox, drained by upsert after it."""
        space_id = view.existing_space_id()
        with view.vectors_lock(exclusive=True):
            if only_if_missing and self._index(view).exists():
                return
            with view.session() as session:
                ids = photo_rows.face_ids(session, space_id)
            index = self._index(view, spec or self._rules(view, len(ids)))
            index.drop()
            index.create()
            for start in range(0, len(ids), self.DRAIN * 5):
                chunk = ids[start:start + self.DRAIN * 5]
                with view.session() as session:
                    fields = outbox.filter_fields(session, chunk)
                kept = [int(i) for i in chunk if int(i) in fields]
                index.insert(kept, view.index_vectors(np.asarray(kept, dtype=np.int64)), fields)
            index.save()
        view.forget_index()

    def upkeep(self, view: SpaceView) -> str | None:
        return None  # Milvus builds each sealed segment's index itself; `index rebuild` re-chooses

    def saved_matches(self, view: SpaceView, index: VectorIndex) -> bool:
        return True  # what Milvus acknowledged is in its write-ahead log

    def erase(self, view: SpaceView) -> None:
        """Deleted rows must leave Milvus's files, not only its answers. A Milvus server
        compacts on request (flush, ``compact``, wait for the job); Milvus Lite records a
        delete as a tombstone beside the data file and its ``compact`` is a no-op (it
        compacts only when enough files pile up), so there the collection is rebuilt from
        the database with the same index type: O(faces), which Milvus Lite's size allows."""
        index = self.own(view.index)
        if self.lite:
            self.build(view, index.spec)
        else:
            index.compact()

    def drop_space(self, view: SpaceView, session: Session, key: str, space_id: int) -> None:
        from .milvus_index import MilvusIndex, MilvusSpec, collection_name

        row = space_rows.get_space(session, key)
        name = collection_name(key, row.uid if row is not None else "")
        MilvusIndex(self.client(), name, key, 1, MilvusSpec("FLAT")).drop()

    def reduction_committed(self, view: SpaceView) -> None:
        self.build(view, None)  # the collection follows the new PCA width

    def doctor(self, view: SpaceView, fix: bool) -> DoctorReport:
        with view.session() as session:
            want = photo_rows.face_ids(session, view.space_id)
        index = self._index(view)
        if not index.exists():
            report = DoctorReport(view.space.key, len(want), 0, len(want), 0,
                                  error=f"Milvus collection {index.name} missing" if len(want) else None)
            if fix and not report.ok:
                self.build(view, None)
                report.fixed, report.error, report.missing, report.index_faces = True, None, 0, len(want)
            return report
        index.load()
        have = index.ids()
        report = DoctorReport(view.space.key, len(want), len(have), missing=len(np.setdiff1d(want, have)),
                              orphans=len(np.setdiff1d(have, want)))
        if fix and not report.ok:
            self._reconcile(view, index)
            report.fixed, report.missing, report.orphans = True, 0, 0
            report.index_faces = len(index.ids())
        return report


def _spec_of(described: dict, n: int, dim: int, lite: bool) -> MilvusSpec:
    """The spec of an existing collection's index, from ``describe_index``: its type, and
    its build parameters where the server reports them (Milvus Lite does not: then those
    the rules give that type, which is what ``index rebuild --key`` built)."""
    from .choice import milvus_spec_by_name
    from .milvus_index import MilvusSpec

    kind = str(described.get("index_type", "FLAT")).upper()
    build = {k: _number(v) for k, v in described.items()
             if k not in ("index_type", "metric_type", "field_name", "index_name", "total_rows", "indexed_rows",
                          "pending_index_rows", "state", "params")}
    try:
        default = milvus_spec_by_name(kind, n, dim, lite)
    except ValueError:  # a type made elsewhere: searched with the server's defaults
        return MilvusSpec(kind, build, {})
    return MilvusSpec(kind, build or default.build, default.search)


def _number(value: object) -> object:
    text = str(value)
    return int(text) if text.isdigit() else value


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


BACKENDS: dict[str, type[VectorBackend]] = {"postgresql": PgVectorBackend}


def for_dialect(dialect: str) -> VectorBackend:
    """The backend for a SQLAlchemy dialect name: pgvector on PostgreSQL, else FAISS files."""
    return BACKENDS.get(dialect, FaissBackend)()


def for_settings(dialect: str, vectors: Vectors | None) -> VectorBackend:
    """The backend ``--vectors`` names (else the dialect's own); a pairing that cannot work
    is a ConfigError: FAISS files beside a server database would not be shared by its
    writers on other machines, and pgvector lives only in PostgreSQL."""
    if vectors is None:
        return for_dialect(dialect)
    if vectors.is_milvus:
        return MilvusBackend(vectors, dialect)
    if vectors.kind is VectorsKind.pgvector and dialect != "postgresql":
        raise ConfigError("--vectors pgvector needs a PostgreSQL --db (pgvector is a PostgreSQL extension)")
    if vectors.kind is VectorsKind.faiss and dialect == "postgresql":
        raise ConfigError("--vectors faiss needs a SQLite --db: with PostgreSQL use pgvector (the default) "
                          "or Milvus, which every writer can reach")
    return for_dialect(dialect)
