"""Evaluation: face verification on labelled pairs, and the thresholds it calibrates.

``verify`` embeds every photo of a pairs file with the library's own pipeline (largest
face, worker processes), scores each pair by cosine similarity and reports ROC AUC,
accuracy at the current threshold, 10-fold cross-validated accuracy (threshold fitted on
nine folds, scored on the tenth, LFW's protocol), the equal error rate, the best
threshold, and how many photos had no face (a pair missing a face counts as wrong, never
silently dropped). ``floor`` is the median similarity of the *different*-person pairs:
below it a match is no closer than a random stranger.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ManifestError
from .manifests import read_lines, truth, tsv_rows, whole_number

if TYPE_CHECKING:
    from ..ingest.corpus import Item
    from ..query.context import SpaceReader


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


@dataclass
class VerifyReport:
    pairs: int
    photos: int
    no_face: int
    auc: float
    accuracy: float  # at the threshold in use before this run
    threshold_used: float
    cv_accuracy: float
    eer: float
    threshold: float  # best threshold on all pairs
    floor: float

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def read_pairs(path: Path, root: Path | None = None) -> list[Pair]:
    """A TSV ``path_a, path_b, same`` (paths relative to the file or ``root``) or an LFW
    ``pairs.txt`` (``name i j`` / ``name1 i name2 j`` lines under ``root/Name/Name_000i.jpg``)."""
    base = Path(root) if root else Path(path).parent
    lines = read_lines(path)
    if lines and "\t" in lines[0] and "path_a" in lines[0]:
        numbered = [(n, Pair(str(base / r["path_a"]), str(base / r["path_b"]), truth(path, n, "same", r["same"])))
                    for n, r in tsv_rows(path, lines, ("path_a", "path_b", "same"))]
    else:
        numbered = _lfw_pairs(path, lines, base)
    return _checked(path, base, root is not None, numbered)


def _checked(path: Path, base: Path, rooted: bool, numbered: list[tuple[int, Pair]]) -> list[Pair]:
    """The pairs, once they can be measured: both kinds present (an ROC needs both), and
    every photo there. A photo that is not there was counted as one without a face, so a
    file read under the wrong folder gave an evaluation of nothing, in numbers."""
    kinds = {pair.same for _, pair in numbered}
    if len(kinds) < 2:
        held = f"all {'same' if True in kinds else 'different'}-person" if kinds else "none"
        raise ManifestError(f"{path}: needs both same-person and different-person pairs (it holds {held})")
    missing: dict[str, int] = {}  # each photo that is not there, by the first line naming it
    for n, pair in numbered:
        for p in (pair.a, pair.b):
            if p not in missing and not os.path.isfile(p):
                missing[p] = n
    if missing:
        photo, n = next(iter(missing.items()))
        under = "--root" if rooted else "the file's folder; --root sets another"
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ManifestError(f"{path}:{n}: {photo}: no such file{more}; the paths are read under {base} ({under})")
    return [pair for _, pair in numbered]


def _lfw_pairs(path: Path, lines: list[str], base: Path) -> list[tuple[int, Pair]]:
    pairs = []
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if len(parts) <= 2 and number == 1:
            continue  # LFW header: "N" or "folds N"
        if len(parts) == 3:
            name, i, j = parts
            pairs.append((number, Pair(_lfw(base, name, whole_number(path, number, "photo number", i)),
                                       _lfw(base, name, whole_number(path, number, "photo number", j)), True)))
        elif len(parts) == 4:
            n1, i, n2, j = parts
            pairs.append((number, Pair(_lfw(base, n1, whole_number(path, number, "photo number", i)),
                                       _lfw(base, n2, whole_number(path, number, "photo number", j)), False)))
        elif parts:
            raise ManifestError(f"{path}:{number}: not an LFW pairs line: {line!r}")
    return pairs


def _lfw(root: Path, name: str, number: int) -> str:
    return str(root / name / f"{name}_{number:04d}.jpg")


# -- embedding with worker processes ---------------------------------------------------
def embed_photos(view: SpaceReader, paths: list[str], workers: int = 0) -> dict[str, np.ndarray | None]:
    """``{path: unit vector of the largest face, or None}`` for every path."""
    from ..faces.pipeline import FacesMode
    from ..ingest import mapper as ingest

    spec = ingest.MapperSpec.of(view.space, view.settings, FacesMode.largest)
    with ingest.worker_pool(workers or os.cpu_count() or 1, spec) as pool:
        return dict(pool.map(ingest.embed_file, paths, chunksize=8))


# -- metrics --------------------------------------------------------------------------
def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    candidates = np.unique(scores)
    accs = [np.mean((scores >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accs))])


def cv_accuracy(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> float:
    """Accuracy at a threshold chosen on the other folds, averaged over the folds; at most
    one fold a pair (a fold without pairs has no accuracy: with fewer pairs than folds it
    made the mean NaN, and ``--json`` printed it)."""
    folds = max(2, min(folds, len(scores)))
    fold = np.arange(len(scores)) % folds
    accs = []
    for k in range(folds):
        t = best_threshold(scores[fold != k], same[fold != k])
        accs.append(np.mean((scores[fold == k] >= t) == same[fold == k]))
    return float(np.mean(accs))


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(same, scores))


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(same, scores)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return float((fpr[i] + 1 - tpr[i]) / 2)


def verify(view: SpaceReader, pairs: list[Pair],
           workers: int = 0) -> tuple[VerifyReport, np.ndarray, np.ndarray]:
    """Scores every pair; returns the report and (scores, same) for plots."""
    paths = sorted({p for pair in pairs for p in (pair.a, pair.b)})
    vectors = embed_photos(view, paths, workers)
    scores = np.array([_cosine(vectors[p.a], vectors[p.b]) for p in pairs])
    same = np.array([p.same for p in pairs])
    # a pair with a photo without a face is wrong whatever its label (its -1 read as "two
    # people" counted a different-person pair right); the curve and the thresholds are fitted
    # on the pairs that have both faces (a -1 among them made the best threshold -1)
    both = np.array([vectors[p.a] is not None and vectors[p.b] is not None for p in pairs])
    fit_scores, fit_same = scores[both], same[both]
    if not (fit_same.any() and (~fit_same).any()):
        raise ManifestError(f"only {int(both.sum())} of the {len(pairs)} pairs have a face in both photos, and "
                            "they are not both same-person and different-person pairs: nothing to measure")
    used = view.facts.calibration().threshold
    report = VerifyReport(
        pairs=len(pairs), photos=len(paths), no_face=sum(v is None for v in vectors.values()),
        auc=roc_auc(fit_scores, fit_same), accuracy=float(np.sum(((scores >= used) == same) & both) / len(pairs)),
        threshold_used=used, cv_accuracy=cv_accuracy(fit_scores, fit_same) * float(both.mean()),
        eer=eer(fit_scores, fit_same), threshold=best_threshold(fit_scores, fit_same),
        floor=float(np.median(fit_scores[~fit_same])),
    )
    return report, scores, same


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Of two unit vectors; -1 (never a match) when a photo had no face."""
    return float(a @ b) if a is not None and b is not None else -1.0


# -- retrieval ------------------------------------------------------------------------
@dataclass
class RetrievalReport:
    queries: int
    gallery: int
    distractors: int
    no_face: int  # queries without a face: counted as misses
    top1: float
    top5: float
    map: float
    # people ranked by the query's similarity to each person's centroid (`search --by centroid`)
    top1_centroid: float = 0.0
    top5_centroid: float = 0.0

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class Role(StrEnum):
    """What a retrieval manifest's photo is for."""

    query = "query"  # searched, never ingested
    gallery = "gallery"  # ingested: the people a query should find
    distractor = "distractor"  # ingested: strangers to be found instead


@dataclass(frozen=True)
class RetrievalRow:
    path: str  # absolute
    identity: str
    role: Role


def read_retrieval(path: Path, root: Path | None) -> list[RetrievalRow]:
    """The rows of a ``path, identity, role`` TSV, paths made absolute (under ``root``, else
    the file's folder)."""
    base = Path(root) if root else Path(path).parent
    rows = []
    for number, r in tsv_rows(path, read_lines(path), ("path", "identity", "role")):
        try:
            role = Role(r["role"].lower())
        except ValueError as err:
            raise ManifestError(f"{path}:{number}: unknown role {r['role']!r}; "
                                "use query, gallery or distractor") from err
        rows.append(RetrievalRow(str(base / r["path"]), r["identity"], role))
    for needed in (Role.query, Role.gallery):  # scores of nothing, or of queries nobody could be found for
        if not any(r.role is needed for r in rows):
            raise ManifestError(f"{path}: no {needed.value} rows; a retrieval run needs queries and a gallery")
    return rows


def gallery_items(rows: list[RetrievalRow]) -> list[Item]:
    """What a retrieval run ingests before :func:`retrieval` scores it: the gallery and the
    distractors, each under its identity."""
    from ..ingest.corpus import Item

    return [Item(r.path, r.identity) for r in rows if r.role is not Role.query]


def retrieval(view: SpaceReader, rows: list[RetrievalRow], workers: int = 0) -> RetrievalReport:
    """Search every query of ``rows`` in ``view`` (the space of an empty, temporary library
    into which the caller ingested :func:`gallery_items`), and score identity hits: top-1 /
    top-5 over distinct people, and mean average precision over the whole ranked gallery (a
    query without a face scores 0)."""
    from ..store import photo_rows

    queries = [(r.path, r.identity) for r in rows if r.role is Role.query]
    vectors = embed_photos(view, [p for p, _ in queries], workers)
    index = view.vectors.index
    with view.session() as session:
        rows_by_id = photo_rows.face_rows(session, index.ids())
    identity_of = {fid: r.person for fid, r in rows_by_id.items() if r.person is not None}  # every gallery face
    relevant_count: dict[str, int] = {}
    for person in identity_of.values():
        relevant_count[person] = relevant_count.get(person, 0) + 1
    names, centroids = _centroids(view, identity_of)
    top1 = top5 = ap_sum = top1_c = top5_c = 0.0
    no_face = 0
    for path, ident in queries:
        vec = vectors.get(path)
        if vec is None:
            no_face += 1
            continue
        _, ids = index.search(vec[None], index.ntotal)
        ranked = [identity_of.get(int(i)) for i in ids[0] if int(i) >= 0]
        people: list[str | None] = []
        for who in ranked:
            if who not in people:
                people.append(who)
            if len(people) == 5:
                break
        top1 += bool(people) and people[0] == ident
        top5 += ident in people
        by_centroid = [names[i] for i in np.argsort(-(centroids @ vec))[:5]]
        top1_c += by_centroid[0] == ident
        top5_c += ident in by_centroid
        hits = np.array([p == ident for p in ranked])
        if relevant_count.get(ident):
            precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
            ap_sum += float((precision * hits).sum() / relevant_count[ident])
    n = len(queries)
    return RetrievalReport(queries=n, gallery=sum(r.role is Role.gallery for r in rows),
                           distractors=sum(r.role is Role.distractor for r in rows), no_face=no_face,
                           top1=top1 / n, top5=top5 / n, map=ap_sum / n,
                           top1_centroid=top1_c / n, top5_centroid=top5_c / n)


def _centroids(view: SpaceReader, identity_of: dict[int, str]) -> tuple[list[str], np.ndarray]:
    """Each gallery person's unit mean vector, in the order of the returned names."""
    from ..faces.embed import l2_normalize

    ids = np.fromiter(identity_of, dtype=np.int64)
    vectors = view.vectors.stored(ids)
    names = sorted(set(identity_of.values()))
    row = {name: i for i, name in enumerate(names)}
    sums = np.zeros((len(names), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, [row[identity_of[int(i)]] for i in ids], vectors)
    return names, l2_normalize(sums)
