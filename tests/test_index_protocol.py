"""Every index is a VectorIndex: a real FAISS index, and one wrapped by a reduction."""

from __future__ import annotations

import numpy as np

from lookalike.index import reduction
from lookalike.index.backends import unwrapped
from lookalike.index.faiss_index import FaissIndex, Manifest
from lookalike.index.protocol import IndexManifest, VectorIndex
from lookalike.index.reduction import ReducedIndex


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _faiss(tmp_path, vectors: np.ndarray, key: str = "Flat", params: dict | None = None) -> FaissIndex:
    manifest = Manifest("s", "Facenet512", "dlib", "chip", vectors.shape[1], "ip", key, 0, 0, "0006", "uid",
                        params=params or {})
    return FaissIndex.build(tmp_path, manifest, np.arange(1, len(vectors) + 1, dtype=np.int64), vectors)


def test_a_faiss_index_is_a_vector_index(tmp_path):
    vectors = _unit(200, 32)
    index = _faiss(tmp_path, vectors)
    assert isinstance(index, VectorIndex)
    assert isinstance(index.manifest, IndexManifest)
    sims, ids = index.search(vectors[:3], 1)
    assert ids[:, 0].tolist() == [1, 2, 3] and np.allclose(sims[:, 0], 1, atol=1e-5)
    assert index.remove(np.array([1], dtype=np.int64)) == 1 and index.ntotal == 199


def test_a_reduced_index_delegates_explicitly(tmp_path):
    full = _unit(300, 64, seed=1)
    red = reduction.train(full, 16)
    inner = _faiss(tmp_path, red.apply(full))
    stored = np.vstack([full, full[:1]])  # face 301, added below, is a copy of face 1
    index = ReducedIndex(inner, red, lambda found: stored[found - 1])
    assert isinstance(index, VectorIndex)
    assert "__getattr__" not in vars(ReducedIndex)  # the protocol's members, nothing guessed
    assert unwrapped(index) is inner and unwrapped(inner) is inner
    assert index.manifest is inner.manifest and index.tombstone_share == 0.0
    source = inner.vector_source = lambda ids: red.apply(stored[ids - 1])
    assert index.vector_source is source
    index.vector_source = None
    assert inner.vector_source is None
    # full-width vectors in, full-width answers out
    index.add(np.array([301], dtype=np.int64), full[:1])
    assert index.ntotal == 301 and 301 in set(index.ids().tolist())
    _, ids = index.search(full[:2], 3)
    assert ids[0, :2].tolist() in ([1, 301], [301, 1]) and ids[1, 0] == 2
    assert index.remove(np.array([301], dtype=np.int64)) == 1 and index.ntotal == 300
    index.save()
    assert inner.file.exists() and not inner.changed_on_disk()


def test_tombstones_of_a_graph_index_stay_out_of_answers(tmp_path):
    vectors = _unit(300, 16, seed=2)
    index = _faiss(tmp_path, vectors, "HNSW32", {"efSearch": 64, "efConstruction": 80})
    assert index.remove(np.array([1, 2], dtype=np.int64)) == 2  # HNSW cannot delete: tombstones
    assert index.manifest.tombstones == [1, 2] and index.ntotal == 298
    _, ids = index.search(vectors[:3], 5)
    assert not {1, 2} & set(ids.ravel().tolist()) and ids[2, 0] == 3
    _, only = index.search(vectors[:1], 3, allowed=np.array([1, 5, 6], dtype=np.int64))
    assert set(only.ravel().tolist()) <= {5, 6, -1}
