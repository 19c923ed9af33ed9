"""Milvus: one collection per space (:mod:`lookalike.index.milvus_index`), the database
still the source of truth, the collection following it through the outbox
(:mod:`lookalike.index.milvus_outbox`)."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import Vectors, VectorsKind
from ..errors import ConfigError
from ..store import outbox, photo_rows, space_rows
from .backend import DoctorReport, Repair, VectorBackend, own_index
from .milvus_outbox import DRAIN, Outbox
from .protocol import VectorIndex

if TYPE_CHECKING:
    from pymilvus import MilvusClient
    from sqlalchemy.orm import Session

    from .milvus_index import MilvusIndex, MilvusSpec
    from .space_store import IndexSlot, SpaceStore

log = logging.getLogger(__name__)


class MilvusBackend(VectorBackend):
    """Milvus (:mod:`lookalike.index.milvus_index`): one collection per space, the database
    still the source of truth. Every change is written to the database first, with outbox
    rows in the same transaction; the outbox (:class:`~lookalike.index.milvus_outbox.Outbox`) then
    sends them (and any a crash left behind: every open drains first), so after a resume SQL ids == Milvus ids.

    Milvus Lite serves one process: ingest maps photos in worker processes and writes from
    this one. With PostgreSQL and a Milvus server (``milvus://``), ingest goes through the
    work queue like pgvector's, every worker draining its own outbox rows."""

    name = "milvus"
    metric = "cosine (Milvus inner product)"
    DRAIN = DRAIN  # outbox rows per round trip
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

    def _dim(self, store: SpaceStore) -> int:
        return store.dim

    def _collection(self, store: SpaceStore) -> str:
        from .milvus_index import collection_name

        with store.session() as session:
            row = space_rows.get_space(session, store.space.key)
            uid = row.uid if row is not None else ""
        return collection_name(store.space.key, uid)

    def _rules(self, store: SpaceStore, n: int) -> MilvusSpec:
        from .choice import choose, milvus_spec

        return milvus_spec(choose(n, self._dim(store), store.settings.index_budget), self.lite)

    def _index(self, store: SpaceStore, spec: MilvusSpec | None = None) -> MilvusIndex:
        """The collection's index object (not created, not drained)."""
        from .milvus_index import MilvusIndex, MilvusSpec

        name = self._collection(store)
        index = MilvusIndex(self.client(), name, store.space.key, self._dim(store), spec or MilvusSpec("FLAT"))
        index.filter_on_fields = not self._python_engine()
        if spec is None and index.exists():
            described = index.describe()
            index.spec = _spec_of(described, int(described.get("total_rows") or 0), index.dim, self.lite)
            index.manifest.index_key, index.manifest.params = index.spec.key, dict(index.spec.search)
        index.vector_source = store.index_vectors
        index.outbox = Outbox(store)
        index.reduction = store.reduction.uid if store.reduction is not None else ""
        return index

    def ready_for(self, store: SpaceStore, reduction: str | None) -> bool:
        """Whether the collection was made with the PCA ``reduction`` (recorded with it): it is
        made again after the PCA's commit, and until then its reader keeps the old one."""
        from pymilvus.exceptions import MilvusException

        from .milvus_index import REDUCTION_PROPERTY

        try:
            described = self.client().describe_collection(self._collection(store))
        except MilvusException:
            return False
        return (described.get("properties") or {}).get(REDUCTION_PROPERTY) == (reduction or "")

    def open_index(self, store: SpaceStore) -> MilvusIndex:
        """The space's collection, created (and filled) if new; what a crash left in the
        outbox is sent before the first search, and a count that still differs from the
        database's is reconciled id by id."""
        space_id = store.existing_space_id()
        index = self._index(store)
        if not index.exists():
            self.build(store, None, only_if_missing=True)
            index = self._index(store)
        index.load()
        self.follow(store, index)
        with store.session() as session:
            count, _ = photo_rows.face_count_and_max(session, space_id)
        if count != index.ntotal:
            log.warning("%s: %d faces in the database, %d in Milvus: reconciling", index.name, count, index.ntotal)
            Outbox(store).reconcile(index)
        return index

    def follow(self, store: SpaceStore, index: MilvusIndex) -> int:
        """Drain the space's outbox into ``index`` (:meth:`lookalike.index.milvus_outbox.Outbox.drain`)."""
        return Outbox(store).drain(index)

    def after_commit(self, store: SpaceStore, current: IndexSlot) -> None:
        self.follow(store, self.own(current.get()))

    def writers(self, store: SpaceStore) -> AbstractContextManager[None]:
        # SQLite has one writer (the library's lock); on PostgreSQL transactions and the
        # outbox's row locks keep writers on many machines apart
        return nullcontext() if self.queued_ingest else store.write_lock()

    @staticmethod
    def own(index: VectorIndex) -> MilvusIndex:
        """The :class:`MilvusIndex` under ``index`` (reduced or not)."""
        from .milvus_index import MilvusIndex

        return own_index(index, MilvusIndex)

    def info(self, store: SpaceStore, index: VectorIndex) -> dict:
        own = self.own(index)
        rules = self._rules(store, own.ntotal)
        with store.session() as session:
            pending = outbox.outbox_count(session, store.existing_space_id())
        size = _folder_bytes(Path(self.vectors.target)) if self.lite else 0
        return {"space": store.space.key, "index_key": own.spec.key, "params": dict(own.spec.search),
                "pinned": False, "ntotal": own.ntotal, "dim": own.dim, "tombstones": 0, "tombstone_share": 0.0,
                "file": f"Milvus collection {own.name} at {self.vectors}", "bytes": size,
                "rules_choose": rules.key, "rules_reason": "the FAISS rules in Milvus's own index types "
                "(lookalike.index.choice.milvus_spec)", "rebuild_advised": rules.index_type != own.spec.index_type,
                "upkeep": "by hand: Milvus indexes each new segment itself; `index rebuild` re-applies the rules",
                "outbox": pending}

    def rebuild(self, store: SpaceStore, current: IndexSlot, key: str | None, reduced: bool) -> None:
        if key is None:  # after a new PCA too: the collection is made again at the new width
            self.build(store, None)
            return
        from .choice import milvus_spec_by_name

        with store.session() as session:
            n, _ = photo_rows.face_count_and_max(session, store.existing_space_id())
        try:
            spec = milvus_spec_by_name(key, n, self._dim(store), self.lite)
        except ValueError as err:
            raise ConfigError(f"--key {key}: {err}") from None
        if reduced:  # a new width: a new collection
            self.build(store, spec)
        else:
            self.own(current.get()).reindex(spec)

    def build(self, store: SpaceStore, spec: MilvusSpec | None, only_if_missing: bool = False) -> None:
        """A fresh collection (the rules' index, or ``spec``) filled from the database, or,
        with ``only_if_missing``, left as it is if another process made it meanwhile.

        The faces go in by ``insert``, not ``upsert``: the collection is new and no drain
        runs while the build holds the space's ``vectors_lock``, so none can be there
        twice, and a server indexes each segment once (an upsert's delete of a new id
        makes Milvus 2.3.5 compact and index every segment again). A face written while
        the build runs is in the outbox, drained by upsert after it."""
        space_id = store.existing_space_id()
        with store.vectors_lock(exclusive=True):
            if only_if_missing and self._index(store).exists():
                return
            with store.session() as session:
                ids = photo_rows.face_ids(session, space_id)
            index = self._index(store, spec or self._rules(store, len(ids)))
            index.drop()
            index.create()
            for start in range(0, len(ids), self.DRAIN * 5):
                chunk = ids[start:start + self.DRAIN * 5]
                with store.session() as session:
                    fields = outbox.filter_fields(session, chunk)
                kept = [int(i) for i in chunk if int(i) in fields]
                index.insert(kept, store.index_vectors(np.asarray(kept, dtype=np.int64)), fields)
            index.save()

    def upkeep(self, store: SpaceStore, current: IndexSlot) -> str | None:
        return None  # Milvus builds each sealed segment's index itself; `index rebuild` re-chooses

    def saved_matches(self, store: SpaceStore, index: VectorIndex) -> bool:
        return True  # what Milvus acknowledged is in its write-ahead log

    def erase(self, store: SpaceStore, current: IndexSlot) -> None:
        """Deleted rows must leave Milvus's files, not only its answers. A Milvus server
        compacts on request (flush, ``compact``, wait for the job); Milvus Lite records a
        delete as a tombstone beside the data file and its ``compact`` is a no-op (it
        compacts only when enough files pile up), so there the collection is rebuilt from
        the database with the same index type: O(faces), which Milvus Lite's size allows."""
        index = self.own(current.get())
        if self.lite:
            self.build(store, index.spec)
        else:
            index.compact()
        with store.session() as session:
            row = space_rows.get_space(session, store.space.key)
        if row is not None:
            self._forget_faiss_file(store.settings.index_dir, store.space.key, row.uid)

    @staticmethod
    def _forget_faiss_file(folder: Path, key: str, uid: str) -> None:
        """A FAISS file of the space left in the index folder from before its vectors moved to
        Milvus still holds every face it had, the removed ones too (scale user test, F5). It
        is derived data (built again from the database if the library goes back to FAISS), so
        a removal deletes it: only this library's (its manifest's space uid), never a file
        of another library sharing the folder."""
        import json

        from .faiss_index import FaissIndex

        index_path, manifest_path = FaissIndex.paths(folder, key)
        try:
            owned = json.loads(manifest_path.read_text()).get("space_uid") == uid
        except (OSError, ValueError, AttributeError):
            owned = False
        if owned:
            index_path.unlink(missing_ok=True)
            manifest_path.unlink()
            log.warning("%s: deleted; a FAISS index from before the vectors moved to Milvus held the removed "
                        "faces (it is built again from the database if the library goes back)", index_path)

    def drop_space(self, store: SpaceStore, session: Session, key: str, space_id: int) -> None:
        from .milvus_index import MilvusIndex, MilvusSpec, collection_name

        row = space_rows.get_space(session, key)
        name = collection_name(key, row.uid if row is not None else "")
        MilvusIndex(self.client(), name, key, 1, MilvusSpec("FLAT")).drop()
        if row is not None:  # a FAISS file of the space from before Milvus goes with it
            self._forget_faiss_file(store.settings.index_dir, key, row.uid)

    def reduction_committed(self, store: SpaceStore) -> None:
        self.build(store, None)  # the collection follows the new PCA width

    def check(self, store: SpaceStore, current: IndexSlot, want: np.ndarray) -> tuple[DoctorReport, Repair | None]:
        index = self._index(store)
        if not index.exists():
            report = DoctorReport(store.space.key, len(want), 0, len(want), 0,
                                  error=f"Milvus collection {index.name} missing" if len(want) else None)

            def build() -> int:
                self.build(store, None)
                return len(want)

            return report, build
        index.load()

        def reconcile() -> int:
            Outbox(store).reconcile(index)
            return len(index.ids())

        return DoctorReport.compare(store.space.key, want, index.ids()), reconcile


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
