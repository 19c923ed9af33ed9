"""Index benchmark: the indexes the choice rules pick, on synthetic unit vectors.

For each case (100k x 128, 1M x 128, 100k x 4096) it builds the index
``lookalike.index.choice.choose`` picks (through ``FaissIndex``, the class the library
uses), plus ``Flat`` as the exact reference, and measures build time, index size,
single-query latency p50 / p95 (one query at a time, as a user search does) and
recall@10 against exact search, sweeping efSearch / nprobe so the tuned defaults in
``choice.py`` are read off this table.

Two kinds of data, because ANN recall depends on it:
* ``uniform``: unit vectors drawn uniformly on the sphere, the hardest case for a graph
  or a quantizer (no structure at all);
* ``faces``: 10 faces per identity, drawn from Gaussians fitted to real Dlib vectors of
  lfw-dev (between-person and within-person covariance, ``bench/data``): the same
  anisotropy (95 % of the variance in 59 of 128 directions) and neighbour structure;
* ``strangers``: the same distribution with one face per identity and queries from new
  identities, so every true neighbour is a look-alike — the product's own question, and
  much harder for an index than finding a person's other photos.

    python bench/index.py               # everything (~20 min on 2 cores)
    python bench/index.py --quick       # 100k cases only (writes index-quick.json)
    python bench/index.py --case strangers:1000000:128   # one case (repeatable)

Writes bench/results/index.json. The 10M estimate is arithmetic on the measured
per-vector costs (see ``estimate_10m``), not a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, table, write

QUERIES = 500
K = 10


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make(kind: str, n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(base vectors, queries) of ``kind``; queries are fresh draws, not base vectors."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return (unit(rng.standard_normal((n, dim), dtype=np.float32)),
                unit(rng.standard_normal((QUERIES, dim), dtype=np.float32)))
    # identities drawn from the between-person distribution of real Dlib vectors, faces
    # from the within-person one (bench/data/dlib_lfw_stats.npz: mean and covariances of
    # lfw-dev vectors, no face data); 4096-d cases lift them with a fixed random rotation
    stats = np.load(Path(__file__).resolve().parent / "data" / "dlib_lfw_stats.npz")
    between = np.linalg.cholesky(stats["between"].astype(np.float64) + 1e-9 * np.eye(128))
    within = np.linalg.cholesky(stats["within"].astype(np.float64) + 1e-9 * np.eye(128))
    lift = None
    if dim != 128:
        lift, _ = np.linalg.qr(rng.standard_normal((dim, 128)))  # (dim, 128), orthonormal columns
    per_person = 10 if kind == "faces" else 1  # "strangers": everyone is somebody else
    people = max(1, n // per_person)
    centres = stats["mean"] + rng.standard_normal((people + QUERIES, 128)) @ between.T

    def faces(owner: np.ndarray) -> np.ndarray:
        x = centres[owner] + rng.standard_normal((len(owner), 128)) @ within.T
        x = x if lift is None else x @ lift.T + 0.01 * rng.standard_normal((len(owner), dim))
        return unit(x.astype(np.float32))

    base = np.concatenate([faces(np.arange(s, min(n, s + 100_000)) % people)
                           for s in range(0, n, 100_000)])
    if kind == "strangers":  # queries are new people: their neighbours are look-alikes
        return base, faces(np.arange(people, people + QUERIES))
    return base, faces(rng.integers(0, people, QUERIES))


def exact_topk(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    return flat.search(queries, K)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / K for f, t in zip(found, truth)]))


def build(key: str, params: dict, base: np.ndarray, folder: Path):
    from lookalike.index.faiss_index import FaissIndex, Manifest

    manifest = Manifest(space="bench", model="synthetic", detector="-", aligner="-", dim=base.shape[1],
                        metric="ip", index_key=key, ntotal=0, max_id=0, schema_revision="-",
                        params=dict(params))
    started = time.perf_counter()
    index = FaissIndex.build(folder, manifest, np.arange(len(base), dtype=np.int64), base)
    seconds = time.perf_counter() - started
    if params.get("rerank"):
        index.vector_source = lambda ids: base[ids]  # the library reads these from the DB
    index.save()
    return index, seconds, index.file.stat().st_size


def query_times(index, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found = np.empty((len(queries), K), dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        started = time.perf_counter()
        _, ids = index.search(q[None], K)
        times.append((time.perf_counter() - started) * 1000)
        found[i] = ids[0]
    return found, times


def sweep_values(key: str) -> tuple[str, list[int]]:
    if key.startswith("HNSW"):
        return "efSearch", [32, 64, 128, 256]
    if key.startswith("IVF"):
        return "nprobe", [8, 16, 32, 64, 128]
    return "", [0]


def run_case(kind: str, n: int, dim: int, folder: Path) -> list[dict]:
    from lookalike.index.choice import choose

    base, queries = make(kind, n, dim)
    truth = exact_topk(base, queries)
    choice = choose(n, dim)
    rows = []
    for key, params in (("Flat", {}), (choice.key, choice.params)):
        index, build_s, size = build(key, params, base, folder / f"{kind}-{n}-{dim}-{key.replace(',', '_')}")
        knob, values = sweep_values(key)
        for value in values:
            if knob:
                index.manifest.params[knob] = value
            index.search(queries[:20], K)  # warm-up
            found, times = query_times(index, queries)
            rows.append({"data": kind, "n": n, "dim": dim, "key": key, "rules_pick": key == choice.key,
                         "knob": knob, "value": value, "rerank": params.get("rerank", 0),
                         "build_params": {k: v for k, v in params.items() if k != knob},  # efConstruction...
                         "build_s": round(build_s, 2), "bytes": size, "bytes_per_vector": round(size / n, 1),
                         "p50_ms": round(float(np.percentile(times, 50)), 4),
                         "p95_ms": round(float(np.percentile(times, 95)), 4),
                         "recall_at_10": round(recall(found, truth), 4)})
            r = rows[-1]
            print(f"  {kind:7} {n:>9,} x {dim:<4} {key:14} {knob or '-':8} {value:>4}  "
                  f"build {build_s:7.1f}s  p50 {r['p50_ms']:.3f} ms  recall {r['recall_at_10']:.4f}", flush=True)
        del index
    return rows


def estimate_10m(rows: list[dict]) -> dict:
    """10M x 128 from measured per-vector costs: memory, build time, and which index."""
    from lookalike.index.choice import choose

    def per_vector(key_prefix: str, n: int) -> dict:
        r = next(x for x in rows if x["key"].startswith(key_prefix) and x["n"] == n and x["dim"] == 128)
        return {"bytes": r["bytes_per_vector"], "build_us": r["build_s"] / n * 1e6}

    hnsw = per_vector("HNSW", 1_000_000)
    n = 10_000_000
    pick = choose(n, 128)
    return {
        "rules_pick_at_10m": pick.key, "rules_reason": pick.reason,
        "hnsw32_gib": round(hnsw["bytes"] * n / 1024**3, 2),
        "hnsw32_build_hours_2_cores": round(hnsw["build_us"] * n / 1e6 / 3600 * 1.15, 2),  # log n growth
        "ivfpq_gib": round(pick.bytes_estimate / 1024**3, 2),
        "raw_vectors_in_db_gib": round(n * 128 * 4 / 1024**3, 2),
        "note": "HNSW build cost per vector grows ~log n: 1M->10M adds ~15 %; the DB keeps the "
                "full vectors for re-ranking either way",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the 100k cases")
    parser.add_argument("--case", action="append", default=[], metavar="DATA:N:DIM",
                        help="re-run only this case (e.g. faces:100000:4096) and merge it into index.json")
    args = parser.parse_args()
    cases = [("uniform", 100_000, 128), ("faces", 100_000, 128)]
    if not args.quick:
        cases += [("uniform", 1_000_000, 128), ("faces", 1_000_000, 128), ("strangers", 100_000, 128),
                  ("strangers", 1_000_000, 128), ("faces", 100_000, 4096)]
    previous: list[dict] = []
    if args.case:
        cases = [(d, int(n), int(dim)) for d, n, dim in (c.split(":") for c in args.case)]
        saved = RESULTS / "index.json"
        previous = json.loads(saved.read_text())["rows"] if saved.exists() else []
        previous = [r for r in previous if (r["data"], r["n"], r["dim"]) not in cases]
    rows: list[dict] = list(previous)
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-index-") as tmp:
        for kind, n, dim in cases:
            rows += run_case(kind, n, dim, Path(tmp))
    rows.sort(key=lambda r: (r["dim"], r["n"], r["data"]))
    table("FAISS indexes on synthetic unit vectors (single-query latency, recall@10 vs exact)",
          ["data", "n", "dim", "index", "knob", "build s", "MB", "p50 ms", "p95 ms", "recall@10"],
          [[r["data"], f"{r['n']:,}", r["dim"], r["key"] + (" *" if r["rules_pick"] else ""),
            f"{r['knob']}={r['value']}" if r["knob"] else "-", r["build_s"], round(r["bytes"] / 1e6, 1),
            r["p50_ms"], r["p95_ms"], r["recall_at_10"]] for r in rows])
    out = {"machine": machine(), "queries": QUERIES, "k": K, "rows": rows}
    if any(r["n"] == 1_000_000 for r in rows):
        out["estimate_10m"] = estimate_10m(rows)
        print(out["estimate_10m"])
    print("wrote", write("index" if not args.quick else "index-quick", out))


if __name__ == "__main__":
    main()
