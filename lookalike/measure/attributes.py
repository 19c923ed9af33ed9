"""How good are the age / gender / emotion estimates? ``lookalike eval attributes``.

The manifest is a TSV with a ``path`` column and any of ``age`` (years), ``gender``
(``male``/``female`` or ``man``/``woman``) and ``emotion`` (fer's seven labels); every
other column that is not provenance (``race`` in UTKFace) is a *group*. Figures are
reported overall and per group (each group column crossed with gender when there is
one), so the largest gap between groups can be stated next to the average: an estimator
that is good on average and bad for one group is bad for that group.

A photo where no face is found is counted in ``no_face`` and left out of the figures
(its estimate does not exist); ``--crops`` says the photos are already face crops.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..analysis import EMOTIONS, Analyzer, Estimate
from ..errors import BadImage, ManifestError
from .manifests import read_lines, tsv_rows

if TYPE_CHECKING:
    from ..faces.detect import Detector

log = logging.getLogger(__name__)

NOT_GROUPS = {"path", "age", "gender", "emotion", "notes", "license", "source_repo", "source_path",
              "source_commit"}
GENDER_WORDS = {"male": "man", "man": "man", "m": "man", "female": "woman", "woman": "woman", "f": "woman"}


@dataclass
class Labelled:
    path: str
    age: float | None
    gender: str | None
    emotion: str | None
    groups: dict[str, str]


@dataclass
class AttributesReport:
    n: int
    no_face: int
    age_mae: float | None = None
    gender_accuracy: float | None = None
    emotion_accuracy: float | None = None
    groups: dict[str, dict] = field(default_factory=dict)
    confusion: dict | None = None  # {"labels": [...], "matrix": rows = truth, columns = estimate}
    model: str = ""
    # every figure for all faces, adults (labelled 18+) and children (labelled under 13):
    # gender cues differ before puberty, so adults' and children's figures are kept apart
    ages: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"n": self.n, "no_face": self.no_face, "age_mae": r(self.age_mae),
                "gender_accuracy": r(self.gender_accuracy), "emotion_accuracy": r(self.emotion_accuracy),
                "by_age": self.ages, "groups": self.groups, "confusion": self.confusion, "model": self.model}


def read_manifest(path: Path, root: Path | None = None) -> list[Labelled]:
    base = Path(root) if root else Path(path).parent
    lines = read_lines(path)
    columns = set(next(csv.reader(lines[:1], delimiter="\t"), ()))
    if "path" not in columns or not columns & {"age", "gender", "emotion"}:
        raise ManifestError(f"{path}: needs a path column and at least one of age, gender, emotion")
    group_cols = sorted(columns - NOT_GROUPS)
    rows = []
    for number, row in tsv_rows(path, lines, ("path",)):
        try:
            age = float(row["age"]) if row.get("age") else None
        except ValueError as err:
            raise ManifestError(f"{path}:{number}: age {row['age']!r} is not a number") from err
        said = (row.get("gender") or "").lower()
        gender = GENDER_WORDS.get(said) if said else None
        if said and gender is None:
            raise ManifestError(f"{path}:{number}: gender {row['gender']!r} is not one of "
                                f"{', '.join(sorted(GENDER_WORDS))}")
        emotion = (row.get("emotion") or "").lower() or None
        if emotion is not None and emotion not in EMOTIONS:
            raise ManifestError(f"{path}:{number}: emotion {emotion!r} is not one of {', '.join(EMOTIONS)}")
        rows.append(Labelled(str(base / row["path"]), age, gender, emotion,
                             {c: row[c] for c in group_cols if row.get(c)}))
    return rows


def evaluate(rows: list[Labelled], analyzer: Analyzer, detector: Detector, crops: bool = False,
             max_pixels: int = 100_000_000, progress: Callable[[], object] | None = None) -> AttributesReport:
    """Estimate every photo's largest face and compare with its labels."""
    from ..faces.detect import clip_box
    from ..faces.images import decode_file

    results: list[tuple[Labelled, Estimate]] = []
    no_face = 0
    for row in rows:
        rgb: np.ndarray | None = None
        try:
            rgb = decode_file(row.path, max_pixels).rgb
        except BadImage as err:  # an unreadable photo has no face to estimate
            log.debug("%s", err)
        except Exception:  # nor has one that fails in another way, but that is a bug: keep its traceback
            log.warning("%s: cannot be decoded", row.path, exc_info=True)
        box = None
        if rgb is not None:
            if crops:
                box = (0, 0, rgb.shape[1], rgb.shape[0])
            else:
                found = detector.detect(rgb)
                box = clip_box(found[0].box, rgb.shape[1], rgb.shape[0]) if found else None
        if box is None or rgb is None:
            no_face += 1
        else:
            results.append((row, analyzer.analyze(rgb, [box], crop=crops)[0]))
        if progress is not None:
            progress()
    report = AttributesReport(n=len(rows), no_face=no_face, model=analyzer.description)
    _fill(report, results)
    return report


def _fill(report: AttributesReport, results: list[tuple[Labelled, Estimate]]) -> None:
    figures = _figures(results)
    for label, keep in (("all", lambda age: True), ("adults", lambda age: age >= 18),
                        ("children", lambda age: age < 13)):
        subset = [(r, e) for r, e in results if r.age is not None and keep(r.age)]
        if subset:
            report.ages[label] = {"n": len(subset)} | _figures(subset)
    report.age_mae, report.gender_accuracy, report.emotion_accuracy = (
        figures.get("age_mae"), figures.get("gender_accuracy"), figures.get("emotion_accuracy"))
    group_cols = sorted({c for row, _ in results for c in row.groups})
    for col in group_cols:
        keys = sorted({(row.groups.get(col), row.gender) for row, _ in results if row.groups.get(col)},
                      key=lambda k: (k[0], k[1] or ""))
        for value, gender in keys:
            label = f"{col}={value}" + (f", gender={gender}" if gender else "")
            subset = [(r, e) for r, e in results if r.groups.get(col) == value and r.gender == gender]
            report.groups[label] = {"n": len(subset)} | _figures(subset)
    emotions = [(r.emotion, e.dominant_emotion) for r, e in results if r.emotion]
    if emotions:
        index = {name: i for i, name in enumerate(EMOTIONS)}
        matrix = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=int)
        for truth, guess in emotions:
            matrix[index[truth], index[guess]] += 1
        report.confusion = {"labels": list(EMOTIONS), "matrix": matrix.tolist()}


def _figures(results: list[tuple[Labelled, Estimate]]) -> dict[str, float]:
    out: dict[str, float] = {}
    ages = [(r.age, e.age) for r, e in results if r.age is not None]
    if ages:
        truth, guess = np.array(ages).T
        out["age_mae"] = round(float(np.mean(np.abs(truth - guess))), 4)
        out["age_bias"] = round(float(np.mean(guess - truth)), 4)  # + = estimated older
    genders = [(r.gender, e.likeliest_gender, e.dominant_gender) for r, e in results if r.gender]
    if genders:
        out["gender_accuracy"] = round(float(np.mean([t == g for t, g, _ in genders])), 4)
        # what a person is shown: "not sure" below the calibrated confidence or under 13
        stated = [(t, s) for t, _, s in genders if s in ("woman", "man")]
        out["gender_stated_share"] = round(len(stated) / len(genders), 4)
        if stated:
            out["gender_stated_accuracy"] = round(float(np.mean([t == s for t, s in stated])), 4)
    emotions = [(r.emotion, e.dominant_emotion) for r, e in results if r.emotion]
    if emotions:
        out["emotion_accuracy"] = round(float(np.mean([t == g for t, g in emotions])), 4)
    return out


def largest_gap(report: AttributesReport, key: str) -> tuple[str, str, float] | None:
    """(best group, worst group, difference) of one figure across groups with >= 10 photos."""
    scored = [(g, f[key]) for g, f in report.groups.items() if f.get(key) is not None and f["n"] >= 10]
    if len(scored) < 2:
        return None
    lower_is_better = key == "age_mae"
    scored.sort(key=lambda x: x[1], reverse=not lower_is_better)
    (best, b), (worst, w) = scored[0], scored[-1]
    return best, worst, round(abs(w - b), 4)


def plot_confusion(report: AttributesReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if report.confusion is None:
        raise ValueError("no emotion labels: no confusion matrix to plot")
    labels, matrix = report.confusion["labels"], np.array(report.confusion["matrix"])
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("estimated")
    ax.set_ylabel("labelled")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(f"emotion: {report.emotion_accuracy:.1%} of {matrix.sum()} faces\n{report.model}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
