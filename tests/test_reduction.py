"""The PCA reduction of wide vectors: its rules, and re-ranking that gives exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import ConfigError, IndexCorrupt
from lookalike.index import reduction
from lookalike.index.faiss_index import FaissIndex, Manifest
from lookalike.index.reduction import ReducedIndex


def _trained(dim_in: int = 64, trained_on: int = 1000) -> reduction.Reduction:
    return reduction.Reduction(dim_in, 8, np.zeros(dim_in, np.float32), np.eye(8, dim_in, dtype=np.float32),
                               trained_on, 0.9)


@pytest.mark.parametrize(("dim", "n", "current", "train", "dim_out"), [
    (128, 10_000_000, None, False, 128),  # narrow spaces are never reduced
    (512, 10_000_000, None, False, 512),
    (4096, 999, None, False, 4096),  # too few faces to train: exact on the full vectors
    (4096, 1000, None, True, 256),
    (4096, 3999, "trained_on_1000", False, 8),  # grown less than 4x: kept
    (4096, 4000, "trained_on_1000", True, 256),  # grown 4x: retrained
    (4096, 10_000_000, "trained_on_50000", False, 8),  # a full sample is never retrained
])
def test_rules(dim, n, current, train, dim_out):
    cur = None if current is None else _trained(dim, int(current.rsplit("_", 1)[1]))
    got = reduction.plan(dim, n, cur)
    assert (got.train, got.dim_out) == (train, dim_out), got.reason


def test_dim_out_is_capped_by_a_small_sample():
    small = reduction.Reduction(4096, 8, np.zeros(4096, np.float32), np.zeros((8, 4096), np.float32), 100, 1.0)
    assert reduction.plan(4096, 400, small).dim_out == 256 and reduction.plan(4096, 400, small).train
    with pytest.raises(ConfigError, match="needs more than 16 faces"):
        reduction.train(np.ones((10, 64), np.float32), 16)


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Face-like unit vectors: 100 identities, each photo its identity plus as much noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, dim)).astype(np.float32)
    x = centres[rng.integers(0, 100, n)] + rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_reduced_search_reranks_to_exact_similarities(tmp_path):
    everything = _clustered(3050, 1024)
    full, queries = everything[:3000], everything[3000:]  # queries: new photos of known people
    red = reduction.train(full[:2000], 128)
    assert red.apply(full[:5]).shape == (5, 128)
    assert np.allclose(np.linalg.norm(red.apply(full[:5]), axis=1), 1, atol=1e-5)
    ids = np.arange(1, 3001, dtype=np.int64)
    manifest = Manifest("s", "VGG-Face", "dlib", "chip", 128, "ip", "Flat", 0, 0, "0005", "uid", reduction=red.uid)
    inner = FaissIndex.build(tmp_path, manifest, ids, red.apply(full))
    index = ReducedIndex(inner, red, lambda found: full[found - 1])
    sims, got = index.search(queries, 10)
    exact = np.argsort(-(queries @ full.T), axis=1)[:, :10] + 1
    recall = np.mean([len(set(g) & set(e)) / 10 for g, e in zip(got, exact)])
    assert recall >= 0.95, recall
    assert np.allclose(sims, np.einsum("qd,qkd->qk", queries, full[got - 1]), atol=1e-5)  # exact scores
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # in order
    # filters pass through to the inner index
    allowed = np.arange(1, 301, dtype=np.int64)
    _, only = index.search(queries[:3], 5, allowed)
    assert set(only.ravel()) <= set(allowed)


def test_index_file_made_with_another_reduction_is_refused(tmp_path):
    manifest = Manifest("s", "VGG-Face", "dlib", "chip", 8, "ip", "Flat", 0, 0, "0005", "uid", reduction="old")
    FaissIndex.build(tmp_path, manifest, np.arange(1, 4), np.eye(3, 8, dtype=np.float32)).save()
    expected = Manifest("s", "VGG-Face", "dlib", "chip", 8, "ip", "Flat", 0, 0, "0005", "uid", reduction="new")
    with pytest.raises(IndexCorrupt, match="reduction='old'"):
        FaissIndex.load(tmp_path, expected)
