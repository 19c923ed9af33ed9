"""``lookalike eval``: verification, retrieval and attribute accuracy, and their plots."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..analysis import AnalyzerName
from ._common import (
    PLOT_SUFFIXES,
    AnalyzerOpt,
    JsonOpt,
    chosen,
    one_line_errors,
    opened,
    output,
    print_json,
    terminal,
    writing,
)
from ._options import LibraryOptions, SpaceOptions, grouped

if TYPE_CHECKING:
    import numpy as np

    from ..config import Settings
    from ..verbs.library import Library


@contextmanager
def scratch(settings: Settings) -> Iterator[Library]:
    """A temporary library with ``settings``' models: its database, index and upload folders
    all inside one temporary folder, gone afterwards (a measurement that stores nothing)."""
    import tempfile
    from dataclasses import replace

    from ..verbs.library import Library

    with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as tmp:
        made = replace(settings, db_url=f"sqlite:///{Path(tmp) / 'scratch.db'}",
                       index_dir=Path(tmp) / "indexes", upload_dir=Path(tmp) / "uploads", vectors=None)
        with Library(made) as lib:
            yield lib


@contextmanager
def _measured_in(lib: LibraryOptions, space: SpaceOptions, calibrate: bool) -> Iterator[Library]:
    """The library named, or, where none is named (no ``--db``, no ``LOOKALIKE_DB``), there
    is none and nothing is to be stored in it, a scratch one: a verification needs the
    models alone. A named library that is not there is still "no library there": a typo
    must not measure another model than the library's."""
    from ..config import Settings, env_text
    from ..places import sqlite_path

    path = sqlite_path(Settings.resolve(**chosen(lib, space)).db_url)
    named = lib.db is not None or env_text("LOOKALIKE_DB") is not None
    if calibrate or named or path is None or path.exists():
        with opened(lib, space, create=calibrate) as library:
            yield library
    else:
        with scratch(Settings.resolve(**chosen(space))) as library:
            yield library

eval_app = typer.Typer(help="Measure accuracy: verification on labelled pairs (and calibrate verdicts).",
                       no_args_is_help=True)


@eval_app.command("verify")
@grouped
def eval_verify(
    pairs: Annotated[Path, typer.Argument(help="TSV path_a/path_b/same, or an LFW pairs.txt.")],
    root: Annotated[Optional[Path], typer.Option(
        "--root", help="Folder the pair paths are under [default: the file's folder].")] = None,
    lib: LibraryOptions = LibraryOptions(),
    space: SpaceOptions = SpaceOptions(),
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Store the best threshold and the floor for this model/detector/aligner.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the ROC curve to this PNG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verification accuracy on pairs: AUC, accuracy, 10-fold accuracy, EER, best threshold, no-face count."""
    from ..measure import evaluate

    with one_line_errors():
        read = evaluate.read_pairs(pairs, root)  # a bad file is said before any library is opened
        output(plot, "--plot", PLOT_SUFFIXES)  # ...and a plot that cannot be written before the calibration is stored
        with _measured_in(lib, space, calibrate) as library:
            report, scores, same = library.measure.verify(read)
            data = report.to_dict()
            if calibrate:
                library.measure.calibrate(report, pairs)
                data["calibrated"] = True
            space_key = library.view.space.key
        if plot is not None:
            with writing(plot, "--plot"):
                _roc_plot(plot, scores, same, data)
        if as_json:
            print_json(data)
            return
        console = terminal()
        console.print(f"## Verification: {report.pairs} pairs, {report.photos} photos, "
                      f"{report.no_face} without a face ({space_key})")
        console.print(f"- 10-fold accuracy: {report.cv_accuracy:.2%}\n- ROC AUC: {report.auc:.4f}\n"
                      f"- EER: {report.eer:.2%}\n- accuracy at the current threshold "
                      f"{report.threshold_used:.4f}: {report.accuracy:.2%}\n- best threshold: "
                      f"{report.threshold:.4f}; floor (median different-person similarity): {report.floor:.4f}"
                      + ("\n- calibrated: stored for this library" if calibrate else ""))


@eval_app.command("retrieval")
@grouped
def eval_retrieval(
    manifest: Annotated[Path, typer.Argument(help="TSV with path, identity, role (query / gallery / distractor).")],
    root: Annotated[Optional[Path], typer.Option(
        "--root", help="Folder the paths are under [default: the file's folder].")] = None,
    space: SpaceOptions = SpaceOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Identity retrieval: gallery + distractors into a temporary library, every query searched."""
    from ..config import Settings
    from ..measure import evaluate

    with one_line_errors():
        settings = Settings.resolve(**space.settings())
        rows = evaluate.read_retrieval(manifest, root)
        with scratch(settings) as lib:
            lib.ingest_items(evaluate.gallery_items(rows))
            report = lib.measure.retrieval(rows)
        data = report.to_dict()
        if as_json:
            print_json(data)
            return
        terminal().print(f"## Retrieval: {report.queries} queries against {report.gallery} gallery + "
                         f"{report.distractors} distractor photos\n- top-1: {report.top1:.2%}\n"
                         f"- top-5: {report.top5:.2%}\n- mAP: {report.map:.4f}\n"
                         f"- people ranked by centroid: top-1 {report.top1_centroid:.2%}, "
                         f"top-5 {report.top5_centroid:.2%}\n"
                         f"- queries without a face: {report.no_face}")


@eval_app.command("attributes")
def eval_attributes(
    manifest: Annotated[Path, typer.Argument(
        help="TSV: path and any of age, gender, emotion; other columns are groups.")],
    root: Annotated[Optional[Path], typer.Option(
        "--root", help="Folder the paths are under [default: the file's folder].")] = None,
    analyzer: AnalyzerOpt = AnalyzerName.auto,
    crops: Annotated[bool, typer.Option("--crops", help="The photos are face crops: no detection.")] = False,
    detector_name: Annotated[Optional[str], typer.Option(
        "--detector", help="Face detector [default: yunet].")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N rows.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Write the emotion confusion matrix to this PNG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Accuracy of the age / gender / emotion estimates against labels, overall and per group."""
    from ..measure import attributes as ev
    from ..verbs.standalone import evaluate_attributes

    with one_line_errors():
        rows = ev.read_manifest(manifest, root)[:limit]
        output(plot, "--plot", PLOT_SUFFIXES)
        report = evaluate_attributes(rows, analyzer, detector_name, crops=crops)
        if plot is not None and report.confusion:
            with writing(plot, "--plot"):
                ev.plot_confusion(report, plot)
        data = report.to_dict()
        gaps = {k: ev.largest_gap(report, k) for k in ("age_mae", "gender_accuracy", "emotion_accuracy")}
        data["largest_gap"] = {k: {"best": g[0], "worst": g[1], "difference": g[2]}
                               for k, g in gaps.items() if g is not None}
        if as_json:
            print_json(data)
            return
        lines = [f"## Attributes: {report.n} photos, {report.no_face} without a face ({report.model})"]
        for key, label, fmt in (("age_mae", "age MAE (years)", "{:.2f}"),
                                ("gender_accuracy", "gender accuracy", "{:.2%}"),
                                ("emotion_accuracy", "emotion accuracy", "{:.2%}")):
            value = getattr(report, key)
            if value is not None:
                gap = data["largest_gap"].get(key)
                lines.append(f"- {label}: {fmt.format(value)}" + (
                    f" (largest gap between groups: {gap['best']} vs {gap['worst']}: {gap['difference']})"
                    if gap else ""))
        for label, figures in report.ages.items():
            lines.append(f"- {label}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        for group, figures in report.groups.items():
            lines.append(f"  - {group}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        from rich.markup import escape

        terminal().print(escape("\n".join(lines)))


def _roc_plot(path: Path, scores: np.ndarray, same: np.ndarray, data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(same, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {data['auc']:.4f}, 10-fold acc {data['cv_accuracy']:.2%}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Verification ROC")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
