"""bench/scale.py's shared parts: the synthetic people and their filters, process memory,
one-query-at-a-time timing, the saved figures and a PostgreSQL library in a folder."""

from __future__ import annotations

import ctypes
import gc
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import RESULTS
from index import K, exact_topk, make, recall

STACK = "sface"  # lookalike's default stack, for lookalike and the peer alike
ORGS, GROUPS, INTERESTS = 100, 10, 40  # synthetic filter fields: ~1 %, ~10 %, ~2.5 % per value


# -- process memory ------------------------------------------------------------------------
def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def settle_memory() -> int:
    """Free what Python and glibc hold on to, then the RSS: a baseline that does not hide
    a later section's growth in pages an earlier one left behind."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    return rss()


class PeakRss(threading.Thread):
    """The highest ``measure()`` (default: this process's RSS) while it runs (sampled every 0.2 s)."""

    def __init__(self, measure: Callable[[], int] = rss) -> None:
        super().__init__(daemon=True)
        self.measure = measure
        self.peak, self._done = measure(), threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, self.measure())

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, self.measure())


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else 0


# -- synthetic people and filters --------------------------------------------------------------
def synthetic_people(n: int, seed: int = 11) -> dict[str, np.ndarray]:
    """Per vector (face ``i + 1``): its organisation, two tags and a consent."""
    rng = np.random.default_rng(seed)
    return {"org": rng.integers(0, ORGS, n), "group": rng.integers(0, GROUPS, n),
            "interest": rng.integers(0, INTERESTS, n),
            "consent": rng.choice(np.array([1, 0, -1]), n, p=[0.8, 0.05, 0.15])}


def filter_fields(people: dict[str, np.ndarray], rows: range) -> dict:
    """lookalike's FilterFields of face ids ``rows + 1``, as ``outbox.filter_fields`` makes them."""
    from lookalike.store.outbox import FilterFields
    from lookalike.store.person_rows import normalise_tag

    org, group, interest, consent = people["org"], people["group"], people["interest"], people["consent"]
    return {i + 1: FilterFields(i + 1, int(consent[i]),
                                (normalise_tag(f"group {group[i]}"), normalise_tag(f"interest {interest[i]}")),
                                f"org-{org[i]:03d}", "") for i in rows}


def make_filters(people: dict[str, np.ndarray]) -> list[dict]:
    """The two filtered searches: the Milvus expression lookalike's ``expression`` builds
    for the search filter, and the rows (0-based) it selects."""
    from lookalike.index.milvus_index import expression
    from lookalike.store.values import Audience, GroupKey

    out = []
    for name, group, mask in (("organisation 1 %", (GroupKey.organisation, "Org-007"), people["org"] == 7),
                              ("tag 10 %", (GroupKey.tag, "Group 3"), people["group"] == 3)):
        out.append({"name": name, "filter": f"{group[0]}={group[1]}", "share": round(float(mask.mean()), 4),
                    "rows": np.flatnonzero(mask),
                    "where": expression([group], {}, Audience.operator)})
    return out


def filtered_truth(base: np.ndarray, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact top-k rows among ``rows`` for each query."""
    sims = queries @ base[rows].T
    top = np.argpartition(-sims, K, axis=1)[:, :K]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    return rows[np.take_along_axis(top, order, axis=1)]


def timed(search, queries: np.ndarray, limit: int, budget: float) -> tuple[np.ndarray, list[float]]:
    """``search(q) -> rows (K,)`` one query at a time: up to ``limit`` queries, stopping
    after ``budget`` seconds (at least 5 queries)."""
    found, times = [], []
    started = time.perf_counter()
    for i, q in enumerate(queries[:limit]):
        if i >= 5 and time.perf_counter() - started > budget:
            break
        t = time.perf_counter()
        found.append(search(q))
        times.append((time.perf_counter() - t) * 1000)
    return np.asarray(found, dtype=np.int64), times


def figures(times: list[float], found: np.ndarray | None = None, truth: np.ndarray | None = None) -> dict:
    out = {"queries": len(times), "p50_ms": round(float(np.median(times)), 3),
           "p95_ms": round(float(np.percentile(times, 95)), 3)}
    if found is not None and truth is not None:
        out["recall@10"] = round(recall(found, truth[:len(found)]), 4)
    return out


def run_filtered(forms: dict, filters: list[dict], queries: np.ndarray, truths: list[np.ndarray],
                 limit: int, budget: float) -> dict:
    """``forms``: name -> ``fn(query, filter) -> rows``; per filter, per form: figures."""
    out = {}
    for f, truth in zip(filters, truths):
        row = {}
        for form, fn in forms.items():
            fn(queries[-1], f)  # warm-up (an expression's first compile, a cache)
            found, times = timed(lambda q, f=f, fn=fn: fn(q, f), queries, limit, budget)
            row[form] = figures(times, found, truth)
            print(f"    {f['name']:18} {form:12} {row[form]}", flush=True)
        out[f["name"]] = row
    return out


def pg_library(folder: Path, name: str, **settings):
    import pgserver

    import lookalike

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql(f"CREATE DATABASE {name};")
    return server, lookalike.open(f"postgresql+psycopg://postgres@/{name}?host={folder / 'pg'}",
                                  index_dir=folder / f"idx-{name}", **settings)


def saved() -> dict:
    path = RESULTS / "scale.json"
    return json.loads(path.read_text()) if path.exists() else {}


def search_data(n: int, filtered_queries: int) -> tuple:
    """The ``n`` base vectors, the queries, their exact top k, the filters and their exact answers."""
    base, queries = make("strangers", n, 128)
    truth = exact_topk(base, queries)
    filters = make_filters(synthetic_people(n))
    fq = queries[:filtered_queries]
    return base, queries, truth, filters, [filtered_truth(base, fq, f["rows"]) for f in filters]
