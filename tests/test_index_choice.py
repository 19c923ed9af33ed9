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


@pytest.mark.parametrize("queries,cores,threads", [(1, 2, 1), (19, 8, 1), (20, 2, 2), (500, 8, 8), (500, 0, 1)])
def test_one_query_searches_on_one_thread_and_batches_on_every_core(queries, cores, threads):
    from lookalike.index.faiss_index import search_threads

    assert search_threads(queries, cores) == threads


def test_a_search_leaves_faiss_threads_as_it_found_them(tmp_path):
    """The thread count is set for the call and put back: a process-wide setting that
    other callers (a batch evaluation beside a query) keep."""
    import numpy as np

    from lookalike.index import faiss_index

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    manifest = faiss_index.Manifest(space="M__d__chip", model="M", detector="d", aligner="chip", dim=16,
                                    metric="ip", index_key="Flat", ntotal=0, max_id=0, schema_revision="0001")
    index = faiss_index.FaissIndex.build(tmp_path, manifest, np.arange(300), vectors)
    before = faiss.omp_get_max_threads()  # put back however the test ends: later tests in this process keep it
    seen = []
    real = faiss.omp_set_num_threads
    try:
        faiss.omp_set_num_threads(2)
        faiss.omp_set_num_threads = lambda n: (seen.append(n), real(n))[1]
        sims, ids = index.search(vectors[:1], 3)
        assert ids[0][0] == 0 and seen == [1, 2]  # one thread for the query, then back
        seen.clear()
        index.search(vectors[:40], 3)
        assert seen == []  # a batch: the cores it had
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads = real
        faiss.omp_set_num_threads(before)


def test_a_large_index_read_from_disk_is_put_on_huge_pages_and_answers_the_same(tmp_path, monkeypatch):
    """An index whose arrays pass the size bar is backed by 2 MB pages after it is read
    (when the kernel's transparent huge pages are not off), in the background, and searches
    the same before and after. (72 MB of vectors: above glibc's largest mmap threshold, so
    each copy has a mapping of its own, whose huge pages /proc/self/smaps counts apart.)"""
    import copy
    from pathlib import Path

    import numpy as np

    from lookalike.index import faiss_index, pages

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((140_000, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors.nbytes >= pages.HUGE_MIN
    manifest = faiss_index.Manifest(space="M__d__chip", model="M", detector="d", aligner="chip", dim=128,
                                    metric="ip", index_key="Flat", ntotal=0, max_id=0, schema_revision="0001")
    built = faiss_index.FaissIndex.build(tmp_path, copy.deepcopy(manifest), np.arange(len(vectors)), vectors)
    built.save()
    before = built.search(vectors[:5], 5)
    assert built.huge_page_bytes == 0 or "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    loaded = faiss_index.FaissIndex.load(tmp_path, copy.deepcopy(manifest))
    pages.settle()
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    if "[never]" in setting:
        assert loaded.huge_page_bytes == 0
    else:  # the whole 2 MB pages inside the 72 MB of vectors, as many as the kernel could make
        assert loaded.huge_page_bytes >= 2 << 20, setting
    after = loaded.search(vectors[:5], 5)
    assert np.array_equal(before[1], after[1]) and np.allclose(before[0], after[0])
    monkeypatch.setattr(pages, "HUGE_MIN", 128 << 20)
    assert loaded.huge_page_bytes == 0  # under the bar: not one of the index's large arrays
