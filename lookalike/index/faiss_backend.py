"""FAISS files: the embedded default. A file per embedding space beside the database, a
derived cache of the ``faces.embedding`` blobs. One writer at a time (the library's lock
file); ingest writes through one process; upkeep re-chooses the index type as the library
grows (:mod:`lookalike.index.choice`, :mod:`lookalike.index.upkeep`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, IndexCorrupt, IndexOwnedElsewhere
from ..store import db, photo_rows, space_rows
from .backend import DoctorReport, Repair, VectorBackend, own_index, unwrapped
from .faiss_index import FaissIndex, Manifest
from .protocol import VectorIndex

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from . import upkeep
    from .space_store import IndexSlot, SpaceStore


class FaissBackend(VectorBackend):
    name = "faiss"
    metric = "cosine (inner product)"

    def check_rebuild(self, key: str | None, dim: int) -> None:
        import faiss

        from .choice import default_params

        if key is None:
            return
        default_params(key, 0)  # an IVF list count that is not a number
        try:  # the factory alone, no training: milliseconds, and FAISS's own word on the key
            faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as err:
            raise ConfigError(f"--key {key}: cannot build index {key!r} for {dim}-d vectors ({_why(err)})") from None

    def manifest(self, store: SpaceStore) -> Manifest:
        sp = store.space
        with store.session() as session:
            row = space_rows.get_space(session, sp.key)
            uid = row.uid if row is not None else ""
        red = store.reduction
        return Manifest(space=sp.key, model=sp.model, detector=sp.detector, aligner=sp.aligner,
                        dim=store.dim, metric="ip", index_key="Flat",
                        ntotal=0, max_id=0, schema_revision=store.revision, space_uid=uid,
                        reduction=red.uid if red else "")

    def open_index(self, store: SpaceStore) -> FaissIndex:
        """The saved file, topped up from the database if a crash left it behind."""
        space_id = store.existing_space_id()
        index = FaissIndex.load(store.settings.index_dir, self.manifest(store))
        with store.session() as session:
            count, top = photo_rows.face_count_and_max(session, space_id)
        have = index.ids()
        if count != len(have) or (count and top != int(have.max())):
            with store.session() as session:
                ids = photo_rows.face_ids(session, space_id)
            index.reconcile(ids, store.index_vectors)
        index.vector_source = store.index_vectors
        return index

    def writers(self, store: SpaceStore) -> AbstractContextManager[None]:
        return store.write_lock()

    def info(self, store: SpaceStore, index: VectorIndex) -> dict:
        from .choice import choose

        path, _ = FaissIndex.paths(store.settings.index_dir, store.space.key)
        m = index.manifest
        rule = choose(index.ntotal, m.dim, store.settings.index_budget)
        todo = self._plan(store, index)
        return {"space": store.space.key, "index_key": m.index_key, "params": m.params, "pinned": m.pinned,
                "ntotal": index.ntotal, "dim": m.dim, "tombstones": len(m.tombstones),
                "tombstone_share": round(index.tombstone_share, 4), "file": str(path),
                "bytes": path.stat().st_size if path.exists() else 0,
                "huge_page_bytes": own_index(index, FaissIndex).huge_page_bytes,
                "rules_choose": rule.key, "rules_reason": rule.reason,
                "rebuild_advised": todo.rebuild, "upkeep": todo.reason}

    def rebuild(self, store: SpaceStore, current: IndexSlot, key: str | None, reduced: bool) -> None:
        self.build(store, key, pinned=key is not None)

    def build(self, store: SpaceStore, key: str | None, pinned: bool) -> None:
        """A fresh file of ``key`` (or the rules' choice) from the database vectors."""
        from .choice import choose, default_params

        with store.session() as session:
            ids = photo_rows.face_ids(session, store.existing_space_id())
        manifest = self.manifest(store)
        dim = manifest.dim
        choice = choose(len(ids), dim, store.settings.index_budget)
        key = key or choice.key
        manifest.index_key, manifest.pinned = key, pinned
        manifest.params = choice.params if key == choice.key else default_params(key, len(ids))
        vectors = store.index_vectors(ids) if len(ids) else np.zeros((0, dim), dtype=np.float32)
        try:
            index = FaissIndex.build(store.settings.index_dir, manifest, ids, vectors)
        except RuntimeError as err:
            raise ConfigError(f"cannot build index {key!r}: {_why(err)}") from err
        index.save()

    def _plan(self, store: SpaceStore, index: VectorIndex) -> upkeep.Plan:
        from . import upkeep

        m = index.manifest
        return upkeep.plan(m.index_key, m.pinned, index.ntotal, m.dim, index.tombstone_share,
                           store.settings.index_budget)

    def upkeep(self, store: SpaceStore, current: IndexSlot) -> str | None:
        index = current.get()
        todo = self._plan(store, index)
        if not todo.rebuild:
            return None
        self.build(store, todo.key, pinned=index.manifest.pinned)
        return todo.reason

    def saved_matches(self, store: SpaceStore, index: VectorIndex) -> bool:
        path, _ = FaissIndex.paths(store.settings.index_dir, store.space.key)
        return path.exists() and index.manifest.ntotal == index.ntotal

    def reduction_committed(self, store: SpaceStore) -> None:
        self.build(store, None, pinned=False)  # the file follows the new PCA

    def changed(self, index: VectorIndex) -> bool:
        base = unwrapped(index)
        return isinstance(base, FaissIndex) and base.changed_on_disk()

    def drop_space(self, store: SpaceStore, session: Session, key: str, space_id: int) -> None:
        for path in FaissIndex.paths(store.settings.index_dir, key):
            path.unlink(missing_ok=True)

    def erase(self, store: SpaceStore, current: IndexSlot) -> None:
        """SQLite zeroes deleted rows (``secure_delete``) in pages that still sit in the
        write-ahead log: checkpoint it into the file and truncate it."""
        db.scrub(store.engine)

    def check(self, store: SpaceStore, current: IndexSlot, want: np.ndarray) -> tuple[DoctorReport, Repair | None]:
        error = None
        folder, key = store.settings.index_dir, store.space.key
        try:
            loaded: FaissIndex | None = FaissIndex.load(folder, self.manifest(store))
        except IndexOwnedElsewhere as err:  # never "fix" another library's file
            return DoctorReport(key, len(want), 0, len(want), 0, error=str(err)), None
        except IndexCorrupt as err:
            error, loaded = str(err), None
        have = loaded.ids() if loaded is not None else np.zeros(0, dtype=np.int64)
        report = DoctorReport.compare(key, want, have, error)
        if loaded is not None and not FaissIndex.paths(folder, key)[0].exists() and len(want):
            report.error = "index file missing"

        def repair() -> int:
            with store.write_lock():
                index = FaissIndex(folder, self.manifest(store)) if loaded is None else loaded
                index.reconcile(want, store.index_vectors)
                index.save()
            return index.ntotal

        return report, repair


def _why(err: RuntimeError) -> str:
    """FAISS's reason without its C++ location: its message reads "Error in <function> at
    faiss/<file>.cpp:<line>: Error: '<check>' failed: <why>" (or "...: could not parse ...")."""
    return str(err).strip().splitlines()[-1].split(".cpp:", 1)[-1].split(": ", 1)[-1][:200]
