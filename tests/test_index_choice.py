"""Index choice as explicit rules, checked over sizes, dimensions and budgets."""

from __future__ import annotations

import faiss
import pytest

from lookalike.index.choice import choose

GiB = 1024**3


@pytest.mark.parametrize("n,dim,budget,key", [
    (0, 128, 4 * GiB, "Flat"),
    (10_000, 128, 4 * GiB, "Flat"),
    (50_000, 128, 4 * GiB, "Flat"),
    (50_001, 128, 4 * GiB, "HNSW32"),
    (1_000_000, 128, 4 * GiB, "HNSW32"),
    (10_000_000, 128, 4 * GiB, "IVF16384,PQ64"),   # 10M x (512 + 256) B > 4 GiB
    (20_000, 128, 1024**2, "IVF512,PQ64"),          # tiny budget: even 20k flat does not fit
    (5_000, 128, 1024**2, "Flat"),                  # too few to train codes: exact anyway
    (100_000, 4096, 4 * GiB, "IVF1024,PQ256"),       # 4096-d: never a graph; 16-d sub-vectors
    (1_000_000, 512, 4 * GiB, "HNSW32"),
    (1_000_000, 512, 1 * GiB, "IVF4096,PQ64"),
])
def test_rules(n, dim, budget, key):
    choice = choose(n, dim, budget)
    assert choice.key == key
    assert choice.bytes_estimate <= budget or key.startswith("IVF") or n < 10_000
    assert choice.reason


def test_every_choice_is_a_valid_faiss_factory_string():
    for n, dim in ((10, 128), (60_000, 128), (10_000_000, 128), (100_000, 4096), (1000, 160)):
        choice = choose(n, dim)
        index = faiss.index_factory(dim, choice.key, faiss.METRIC_INNER_PRODUCT)
        assert index.d == dim


def test_bad_arguments():
    with pytest.raises(ValueError):
        choose(-1, 128)
    with pytest.raises(ValueError):
        choose(10, 0)


def test_budget_monotone():
    # more memory never selects a more lossy index
    order = {"Flat": 0, "HNSW32": 1}
    prev = None
    for budget in (GiB // 8, GiB // 2, GiB, 4 * GiB, 64 * GiB):
        rank = order.get(choose(300_000, 128, budget).key, 2)
        assert prev is None or rank <= prev
        prev = rank
