"""Which FAISS index for how many vectors: explicit, tested rules (the autofaiss way).

The rules, in order:

1. the exact ``Flat`` index while it fits the memory budget and stays fast
   (``n <= FLAT_MAX``: a single query scans memory at ~7 ms per 100k x 128 on the 2-core
   reference machine, so ~3.5 ms at 50k — small next to the ~80 ms of detection and
   embedding a query costs);
2. ``HNSW32`` while full vectors plus graph links fit the budget and the dimension is
   moderate. ``efSearch`` 256, tuned on look-alike queries (bench/index.py "strangers":
   every true neighbour is another person; efConstruction 200, 2026-12-06, Intel Xeon):
   recall@10 0.998 at 0.68 ms for 100k x 128, 0.957 at 1.5 ms for 1M (128 gave 0.981 /
   0.877). Finding a person's other photos is easy for the graph (0.9994 at efSearch 32);
3. otherwise ``IVF{nlist},PQ{m}`` — compressed codes — with exact re-ranking of the
   candidates from the database's full vectors (needed for the largest corpora and for
   4096-d models such as VGG-Face).

Compressed codes need training data (256 PQ centroids per sub-quantizer, ~40 points per
IVF list), so below ``IVF_MIN`` vectors the exact index is kept whatever the budget says
(10k x 4096-d floats are 160 MB). :mod:`lookalike.index.upkeep` applies these rules after
every ingest and removal; ``lookalike index rebuild`` applies them by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .milvus_index import MilvusSpec

FLAT_MAX = 50_000
HNSW_M = 32
HNSW_MAX_DIM = 1024
IVF_MIN = 10_000
DEFAULT_BUDGET = 4 * 1024**3  # bytes of RAM the index may take


@dataclass(frozen=True)
class IndexChoice:
    key: str  # faiss.index_factory string
    params: dict  # search-time parameters (efSearch, nprobe, rerank)
    bytes_estimate: int
    reason: str


def flat_bytes(n: int, dim: int) -> int:
    return n * dim * 4


def hnsw_bytes(n: int, dim: int, m: int = HNSW_M) -> int:
    # vectors + level-0 links (2*M int32) + upper levels (~M/ (M-1) of that, small)
    return n * (dim * 4 + 2 * m * 4 + m * 4 // 2)


def ivfpq_parts(n: int, dim: int) -> tuple[int, int]:
    """(IVF lists, PQ sub-quantizers). Lists ~4 sqrt(n). Sub-vectors of at most 16
    dimensions for wide vectors (4096-d: PQ256 — PQ64's 64-d sub-vectors capped recall@10
    at 0.93 even re-ranking 800 candidates, bench/index.py), else 64 codes."""
    nlist = 2 ** round(math.log2(max(64.0, min(65536.0, 4 * math.sqrt(max(n, 1))))))
    wide = min(256, dim // 16)
    if wide >= 64 and dim % wide == 0:
        return nlist, wide
    m = next(c for c in (64, 48, 32, 16, 8, 4) if dim % c == 0 and dim // c >= 2)
    return nlist, m


def hnsw_params() -> dict:
    # efConstruction 200 (FAISS's default is 40): a denser graph, ~2x the build time, and on
    # look-alike queries at 1M recall@10 0.957 instead of 0.924 at efSearch 256 (0.980 at 384)
    return {"efSearch": 256, "efConstruction": 200}


def ivf_params(nlist: int) -> dict:
    """Probe an eighth of the lists (4096-d, 100k: recall@10 0.983 at nprobe 128 of 1024,
    0.962 at 32) and re-rank 10 x k candidates exactly from the database vectors."""
    return {"nprobe": max(16, nlist // 8), "rerank": 10}


def ivfpq_bytes(n: int, dim: int) -> int:
    nlist, m = ivfpq_parts(n, dim)
    return n * (m + 8) + nlist * dim * 4 + 256 * dim * 4


def choose(n: int, dim: int, budget: int = DEFAULT_BUDGET) -> IndexChoice:
    """The index for ``n`` vectors of ``dim`` dimensions within ``budget`` bytes."""
    if n < 0 or dim <= 0 or budget <= 0:
        raise ValueError("n must be >= 0, dim and budget > 0")
    if n <= FLAT_MAX and flat_bytes(n, dim) <= budget:
        return IndexChoice("Flat", {}, flat_bytes(n, dim), f"exact search is fast up to {FLAT_MAX:,} vectors")
    if n < IVF_MIN:
        return IndexChoice("Flat", {}, flat_bytes(n, dim),
                           f"under {IVF_MIN:,} vectors: too few to train compressed codes")
    if dim <= HNSW_MAX_DIM and hnsw_bytes(n, dim) <= budget:
        return IndexChoice(f"HNSW{HNSW_M}", hnsw_params(), hnsw_bytes(n, dim),
                           "graph search keeps ~1 ms queries beyond exact search's range")
    nlist, m = ivfpq_parts(n, dim)
    why = (f"{dim}-d vectors" if dim > HNSW_MAX_DIM else "full vectors exceed the memory budget")
    return IndexChoice(f"IVF{nlist},PQ{m}", ivf_params(nlist),
                       ivfpq_bytes(n, dim), f"{why}: compressed codes, candidates re-ranked exactly")


def default_params(key: str, n: int) -> dict:
    """Search parameters for a key given by hand (``lookalike index rebuild --key``)."""
    if key.startswith("HNSW"):
        return hnsw_params()
    if key.startswith("IVF"):
        lists = key[3:].split(",")[0].split("_")[0]
        if lists and not lists.isdigit():
            raise ConfigError(f"--key {key!r}: IVF is followed by its number of lists in digits (IVF1024,Flat)")
        return ivf_params(int(lists or 64)) | {"rerank": 10 if "PQ" in key else 0}
    return {}


# -- the same rules in Milvus's own index types ---------------------------------------------
# Milvus Lite builds FLAT, HNSW, IVF_FLAT and IVF_SQ8 (no IVF_PQ, no DISKANN); a Milvus
# server builds all of them. The compressed rule becomes IVF_PQ on a server and IVF_SQ8
# (one byte per dimension) in Milvus Lite; on a server DISKANN is there by hand
# (``index rebuild --key DISKANN``) for corpora whose vectors outgrow the query nodes' RAM.
MILVUS_TYPES_LITE = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8")
MILVUS_TYPES = MILVUS_TYPES_LITE + ("IVF_PQ", "DISKANN", "HNSW_SQ")


def milvus_spec(choice: IndexChoice, lite: bool) -> MilvusSpec:
    """The Milvus index for a FAISS-rules choice (:func:`choose`)."""
    from .milvus_index import MilvusSpec

    key = choice.key
    if key == "Flat":
        return MilvusSpec("FLAT")
    if key.startswith("HNSW"):
        p = hnsw_params()
        return MilvusSpec("HNSW", {"M": HNSW_M, "efConstruction": p["efConstruction"]}, {"ef": p["efSearch"]})
    nlist = int(key[3:].split(",")[0])
    m = int(key.split("PQ")[1])
    probe = {"nprobe": ivf_params(nlist)["nprobe"]}
    if lite:
        return MilvusSpec("IVF_SQ8", {"nlist": nlist}, probe)
    return MilvusSpec("IVF_PQ", {"nlist": nlist, "m": m, "nbits": 8}, probe)


def milvus_spec_by_name(name: str, n: int, dim: int, lite: bool) -> MilvusSpec:
    """A Milvus index type given by hand, with the parameters the rules would give it."""
    from .milvus_index import MilvusSpec

    kind = name.strip().upper()
    allowed = MILVUS_TYPES_LITE if lite else MILVUS_TYPES
    if kind not in allowed:
        where = "Milvus Lite" if lite else "Milvus"
        raise ValueError(f"{name!r} is not an index type {where} builds; use one of {', '.join(allowed)}")
    nlist, m = ivfpq_parts(max(n, IVF_MIN), dim)
    probe = {"nprobe": ivf_params(nlist)["nprobe"]}
    p = hnsw_params()
    return {
        "FLAT": MilvusSpec("FLAT"),
        "HNSW": MilvusSpec("HNSW", {"M": HNSW_M, "efConstruction": p["efConstruction"]}, {"ef": p["efSearch"]}),
        "HNSW_SQ": MilvusSpec("HNSW_SQ", {"M": HNSW_M, "efConstruction": p["efConstruction"], "sq_type": "SQ8"},
                              {"ef": p["efSearch"]}),
        "IVF_FLAT": MilvusSpec("IVF_FLAT", {"nlist": nlist}, probe),
        "IVF_SQ8": MilvusSpec("IVF_SQ8", {"nlist": nlist}, probe),
        "IVF_PQ": MilvusSpec("IVF_PQ", {"nlist": nlist, "m": m, "nbits": 8}, probe),
        "DISKANN": MilvusSpec("DISKANN", {}, {"search_list": 100}),
    }[kind]
