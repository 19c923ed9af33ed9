"""Wide vectors (VGG-Face's 4096-d) searched through a stored PCA, re-ranked exactly.

Why: a flat 4096-d float32 index costs 16 GB per million faces, and pgvector's HNSW takes
at most 2,000 dimensions. So a wide space is indexed in ``dim_out`` dimensions: a PCA
trained on the corpus, stored in the database (``reductions``) and applied to every
vector that enters the index and to every query. The index only proposes candidates;
their full vectors (``faces.embedding``) give the exact cosine that ranks the answer, so
the similarities shown are the model's own.

The rules (explicit and tested, like :mod:`lookalike.index.choice`):

1. only spaces wider than ``REDUCE_ABOVE`` dimensions are reduced (VGG-Face and
   DeepFace at 4096; 128-d Dlib or 512-d ArcFace never);
2. nothing is trained before ``MIN_TRAIN`` faces: until then the full vectors are
   searched exactly (10k x 4096 floats are 160 MB; a scan of 1,000 takes a millisecond);
3. ``dim_out`` is ``TARGET_DIM`` (256: 1 KB a face) or fewer when the sample is small
   (a PCA has at most n - 1 meaningful axes);
4. the PCA is retrained when the corpus has grown ``RETRAIN_GROWTH`` times past the
   sample it was trained on (up to ``TRAIN_SAMPLE`` faces, drawn at random);
5. the index returns ``candidates(k)`` = max(400, 40 k) faces for the exact re-rank.

``lookalike index rebuild --reduce N`` trains one by hand, now, on whatever is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..store.values import ReductionKind
from .protocol import FetchVectors, IndexManifest, SearchFilters, VectorIndex

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

REDUCE_ABOVE = 1024
TARGET_DIM = 256
MIN_TRAIN = 1000
RETRAIN_GROWTH = 4
TRAIN_SAMPLE = 50_000


def candidates(k: int) -> int:
    """How many faces the reduced index proposes for an exact top-``k``. Look-alike queries
    need many (bench/scale.py, 10k x 4096 "strangers" through PCA 256: recall@10 0.911
    with 100 candidates, 0.968 with 200, 0.992 with 400; the PCA width mattered less)."""
    return max(400, 40 * int(k))


@dataclass(frozen=True)
class Plan:
    train: bool
    dim_out: int
    reason: str


def plan(dim: int, n: int, current: "Reduction | None") -> Plan:
    """Whether a space of ``dim``-d vectors holding ``n`` faces should (re)train its PCA."""
    if dim <= REDUCE_ABOVE:
        return Plan(False, dim, f"{dim} dimensions: indexed as they are (reduced above {REDUCE_ABOVE})")
    if current is None and n < MIN_TRAIN:
        return Plan(False, dim, f"{n:,} faces: searched exactly in {dim} dimensions until {MIN_TRAIN:,}")
    dim_out = min(TARGET_DIM, min(n, TRAIN_SAMPLE) - 1)
    if current is None:
        return Plan(True, dim_out, f"{n:,} faces of {dim} dimensions: PCA to {dim_out} trained on the corpus")
    if current.trained_on < TRAIN_SAMPLE and n >= RETRAIN_GROWTH * current.trained_on:
        return Plan(True, dim_out, f"the corpus grew to {n:,} faces, {n / current.trained_on:.0f}x the "
                                   f"{current.trained_on:,} the PCA was trained on: retrained")
    return Plan(False, current.dim_out, f"PCA {current.dim_in} -> {current.dim_out} trained on "
                                        f"{current.trained_on:,} faces")


@dataclass(frozen=True)
class Reduction:
    """A PCA: ``(x - mean) @ components.T``, then unit length (cosine in the reduced space)."""

    dim_in: int
    dim_out: int
    mean: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)
    trained_on: int
    explained: float
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        x = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim_in)
        y = (x - self.mean) @ self.components.T
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        return np.ascontiguousarray(y / np.where(norms > 0, norms, 1), dtype=np.float32)

    def apply_one(self, vector: np.ndarray) -> np.ndarray:
        return self.apply(vector[None])[0]

    def describe(self) -> dict:
        return {"kind": ReductionKind.pca.value, "dim_in": self.dim_in, "dim_out": self.dim_out,
                "trained_on": self.trained_on, "explained_variance": round(self.explained, 4), "uid": self.uid}


def train(vectors: np.ndarray, dim_out: int) -> Reduction:
    """Fit a PCA of ``dim_out`` axes to ``vectors`` (scikit-learn's randomized solver when
    the matrix is large)."""
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, dtype=np.float32)
    if len(x) <= dim_out:
        from ..errors import ConfigError

        raise ConfigError(f"--reduce {dim_out}: a {dim_out}-d reduction needs more than {dim_out} faces; "
                          f"the space holds {len(x)}")
    pca = PCA(n_components=dim_out, random_state=0).fit(x)
    return Reduction(x.shape[1], dim_out, pca.mean_.astype(np.float32), pca.components_.astype(np.float32),
                     len(x), float(pca.explained_variance_ratio_.sum()))


# -- stored in the database (``reductions``) -----------------------------------------------
def load(session: Session, space_id: int, lock: bool = False) -> Reduction | None:
    """The space's stored reduction. ``lock`` (PostgreSQL) takes a share lock for the rest of
    the transaction: a writer reducing new vectors keeps a retraining (which locks the table
    exclusively) from committing in between."""
    from ..store import space_rows

    row = space_rows.reduction_row(session, space_id, lock=lock)
    if row is None:
        return None
    return Reduction(row.dim_in, row.dim_out, np.frombuffer(row.mean, dtype="<f4").copy(),
                     np.frombuffer(row.components, dtype="<f4").reshape(row.dim_out, row.dim_in).copy(),
                     row.trained_on, row.explained, row.uid)


def store(session: Session, space_id: int, reduction: Reduction) -> None:
    """Record ``reduction`` as the space's (replacing any other); the caller commits."""
    from ..store import space_rows

    space_rows.save_reduction(session, space_id, reduction)


class ReducedIndex:
    """An index over reduced vectors that answers in full ones: queries are reduced, the
    inner index (FAISS or pgvector) proposes :func:`candidates`, their full vectors rank
    them exactly. Everything else of :class:`lookalike.index.protocol.VectorIndex` is the
    inner index's; what only one kind of index has, its backend reaches through ``inner``."""

    def __init__(self, inner: VectorIndex, reduction: Reduction, full_vectors: FetchVectors) -> None:
        self.inner, self.reduction, self.full_vectors = inner, reduction, full_vectors

    # -- the inner index's --------------------------------------------------------------
    @property
    def vector_source(self) -> FetchVectors | None:
        """The inner index's: ids -> their reduced vectors."""
        return self.inner.vector_source

    @vector_source.setter
    def vector_source(self, source: FetchVectors | None) -> None:
        self.inner.vector_source = source

    @property
    def filter_on_fields(self) -> bool:
        return self.inner.filter_on_fields

    @property
    def manifest(self) -> IndexManifest:
        return self.inner.manifest

    @property
    def ntotal(self) -> int:
        return self.inner.ntotal

    @property
    def tombstone_share(self) -> float:
        return self.inner.tombstone_share

    def ids(self) -> np.ndarray:
        return self.inner.ids()

    def remove(self, ids: np.ndarray) -> int:
        return self.inner.remove(ids)

    def save(self) -> None:
        self.inner.save()

    # -- full vectors in, full vectors out ---------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.inner.add(ids, self.reduction.apply(vectors))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               filters: SearchFilters | None = None,
               excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from .faiss_index import rerank

        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.reduction.dim_in)
        _, found = self.inner.search(self.reduction.apply(queries), candidates(k), allowed, filters, excluded)
        return rerank(queries, found, k, self.full_vectors)


if TYPE_CHECKING:  # mypy proves the class satisfies the protocol
    _satisfies: type[VectorIndex] = ReducedIndex
