"""Exploring the face space of a library: principal axes, clusters, outliers.

Functions return data (ids, scores, vectors' projections) for the UI; the CLI adds
plots (matplotlib) and montages (Pillow). Everything works on the library's own unit
vectors, so cosine similarity is the measure throughout.

* :func:`pca`: how many directions the corpus really uses, and for each main axis the
  faces at both ends — what moving along that axis changes.
* :func:`clusters`: complete-linkage agglomerative clustering on cosine distance, cut at
  the calibrated same-person threshold, so a cluster means "every pair of these faces
  passes as the same person"; on labelled data, purity and how many people were split or
  merged. (On the 122 celeb photos: complete linkage 26 clusters, purity 0.983; average
  linkage 0.891 — one chained pair of look-alikes merges two people; single linkage 0.31.)
* :func:`outliers`: faces far from their own person's centroid (robust z-score, as in
  ``lookalike person``), worst first: likely mislabelled or badly detected photos.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..config import shown_url
from ..errors import ConfigError, EmptyLibrary, TooFewPeople
from ..query.person import typicality

if TYPE_CHECKING:
    from ..query.context import SpaceReader

MAX_CLUSTER_FACES = 20_000  # agglomerative clustering keeps an n x n distance matrix


@dataclass
class CorpusFace:
    face_id: int
    person: str | None
    photo: str
    bbox: tuple[int, int, int, int]


@dataclass
class Corpus:
    faces: list[CorpusFace]
    vectors: np.ndarray  # (n, dim) unit rows, in the order of faces


def corpus(view: SpaceReader) -> Corpus:
    """Every face of the library's space with its vector."""
    from ..store import photo_rows
    from ..store.values import decode_vector

    space_id = view.row.existing_space_id()
    with view.session() as session:
        rows = photo_rows.corpus_face_rows(session, space_id)
    if not rows:
        raise EmptyLibrary.at(shown_url(view.settings.db_url))
    faces = [CorpusFace(int(r[0]), r[1], r[2], (r[3], r[4], r[5], r[6])) for r in rows]
    return Corpus(faces, np.stack([decode_vector(r[7]) for r in rows]))


# -- principal components ---------------------------------------------------------------
@dataclass
class Component:
    index: int
    explained: float  # share of the corpus variance along this axis
    low: list[int]  # face ids at the negative end, most extreme first
    high: list[int]  # face ids at the positive end


@dataclass
class PcaReport:
    faces: int
    spectrum: list[float]  # explained-variance ratio of every component, non-increasing
    share_top20: float
    components: list[Component] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"faces": self.faces, "share_top20": round(self.share_top20, 4),
                "spectrum": [round(v, 6) for v in self.spectrum],
                "components": [{"index": c.index, "explained": round(c.explained, 6), "low": c.low,
                                "high": c.high} for c in self.components]}


def pca(view: SpaceReader, components: int = 5, extremes: int = 6) -> tuple[PcaReport, Corpus]:
    from sklearn.decomposition import PCA

    data = corpus(view)
    n, dim = data.vectors.shape
    if n < 3:
        raise TooFewPeople(f"the main directions (PCA) need at least 3 faces; the library has {n}")
    model = PCA(n_components=min(n, dim)).fit(data.vectors)
    spectrum = [float(v) for v in model.explained_variance_ratio_]
    projections = model.transform(data.vectors)
    ids = np.array([f.face_id for f in data.faces])
    report = PcaReport(n, spectrum, float(sum(spectrum[:20])))
    for c in range(min(components, len(spectrum))):
        order = np.argsort(projections[:, c])
        report.components.append(Component(c + 1, spectrum[c], ids[order[:extremes]].tolist(),
                                           ids[order[::-1][:extremes]].tolist()))
    return report, data


# -- clusters -----------------------------------------------------------------------------
@dataclass
class ClusterReport:
    faces: int
    threshold: float  # cosine similarity at which faces join a cluster
    clusters: list[list[int]]  # face ids, clusters of at least min_size, largest first
    purity: float | None  # share of clustered faces whose cluster's majority is their person
    people_split: int  # people whose faces fall in more than one cluster
    clusters_merged: int  # clusters holding more than one person

    def to_dict(self) -> dict:
        return {"faces": self.faces, "threshold": round(self.threshold, 4), "clusters": self.clusters,
                "purity": None if self.purity is None else round(self.purity, 4),
                "people_split": self.people_split, "clusters_merged": self.clusters_merged}


def clusters(view: SpaceReader, min_size: int = 2) -> tuple[ClusterReport, Corpus]:
    from sklearn.cluster import AgglomerativeClustering

    data = corpus(view)
    n = len(data.faces)
    if n > MAX_CLUSTER_FACES:
        raise ConfigError(f"clustering keeps an n x n matrix: {n:,} faces is over {MAX_CLUSTER_FACES:,}")
    threshold = view.facts.calibration().threshold
    if n < 2:
        labels = np.zeros(n, dtype=int)
    else:
        labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="complete",
                                         distance_threshold=1.0 - threshold).fit_predict(data.vectors)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(i)
    ordered = sorted(groups.values(), key=len, reverse=True)
    kept = [g for g in ordered if len(g) >= min_size]
    person_of = [f.person for f in data.faces]
    labelled = [g for g in kept if all(person_of[i] is not None for i in g)]
    majority = sum(Counter(person_of[i] for i in g).most_common(1)[0][1] for g in labelled)
    purity = majority / sum(len(g) for g in labelled) if labelled else None
    homes: dict[str, set[int]] = {}
    for label, members in groups.items():
        for i in members:
            person = person_of[i]
            if person is not None:
                homes.setdefault(person, set()).add(label)
    report = ClusterReport(
        faces=n, threshold=threshold, clusters=[[data.faces[i].face_id for i in g] for g in kept],
        purity=purity, people_split=sum(len(h) > 1 for h in homes.values()),
        clusters_merged=sum(len(set(person_of[i] for i in g) - {None}) > 1 for g in kept))
    return report, data


# -- outliers -----------------------------------------------------------------------------
@dataclass
class Outlier:
    face_id: int
    person: str
    photo: str
    bbox: tuple[int, int, int, int]
    similarity: float  # to the person's centroid
    robust_z: float


def outliers(view: SpaceReader, limit: int = 20) -> list[Outlier]:
    """Faces with a robust z-score under the cut-off among their own person's faces
    (people with at least four faces), worst first."""
    data = corpus(view)
    by_person: dict[str, list[int]] = {}
    for i, f in enumerate(data.faces):
        if f.person is not None:
            by_person.setdefault(f.person, []).append(i)
    found: list[Outlier] = []
    for person, members in by_person.items():
        typical = typicality(data.vectors[members])
        for j in np.flatnonzero(typical.outlier):
            f = data.faces[members[j]]
            assert typical.robust_z is not None  # flags come with their scores
            found.append(Outlier(f.face_id, person, f.photo, f.bbox, round(float(typical.similarity[j]), 6),
                                 float(typical.robust_z[j])))
    return sorted(found, key=lambda o: o.robust_z)[:limit]
