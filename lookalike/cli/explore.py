"""``lookalike explore``: principal axes, clusters and outliers of the face space."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from ._common import (
    PICTURE_SUFFIXES,
    PLOT_SUFFIXES,
    JsonOpt,
    one_line_errors,
    opened,
    output,
    output_folder,
    print_json,
    terminal,
    writing,
)
from ._options import LibraryOptions, grouped

if TYPE_CHECKING:
    from ..faces.montage import Tile
    from ..measure.explore import Corpus, CorpusFace, PcaReport

explore_app = typer.Typer(help="Explore the face space: principal axes, clusters, outliers.", no_args_is_help=True)

MontageDirOpt = Annotated[Optional[Path], typer.Option(
    "--montage-dir", help="Write one montage per component / cluster here.")]


def _tiles(data: Corpus, face_ids: list[int], caption: Callable[[CorpusFace], str]) -> list[Tile]:
    from ..faces.montage import Tile

    by_id = {f.face_id: f for f in data.faces}
    return [Tile(by_id[i].photo, by_id[i].bbox, caption(by_id[i])) for i in face_ids]


@explore_app.command("pca")
@grouped
def explore_pca(
    components: Annotated[int, typer.Option("--components", min=1, help="Main axes to show.")] = 5,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Write the explained-variance spectrum to this PNG.")] = None,
    montage_dir: MontageDirOpt = None,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """How many directions the corpus uses, and the faces at both ends of each main axis."""
    from ..faces.montage import render

    with one_line_errors():
        output(plot, "--plot", PLOT_SUFFIXES)
        output_folder(montage_dir, "--montage-dir")
        with opened(lib) as library:
            report, data = library.measure.pca(components)
        if plot is not None:
            with writing(plot, "--plot"):
                _spectrum_plot(report, plot)
        if montage_dir is not None:
            with writing(montage_dir, "--montage-dir"):
                for c in report.components:
                    tiles = _tiles(data, c.low, lambda f: f"- {f.person or '?'}")
                    tiles += _tiles(data, c.high, lambda f: f"+ {f.person or '?'}")
                    render(tiles, montage_dir / f"component-{c.index:02d}.jpg", columns=len(c.low),
                           title=f"axis {c.index} ({c.explained:.1%} of the variance): top row -, bottom row +")
        if as_json:
            print_json(report.to_dict())
            return
        console = terminal()
        console.print(f"{report.faces} faces; {_top(report)} hold {report.share_top20:.1%} of the variance")
        for c in report.components:
            console.print(f"axis {c.index}: {c.explained:.2%}")


def _top(report: PcaReport) -> str:
    """What ``share_top20`` counts: the first 20 components, or all of them when there are
    fewer ("the first 20 of 6 components" on a small library)."""
    n = len(report.spectrum)
    return f"the first 20 of {n} components" if n > 20 else f"all {n} components"


def _spectrum_plot(report: PcaReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(range(1, len(report.spectrum) + 1), report.spectrum, color="#4a78b0")
    ax.plot(range(1, len(report.spectrum) + 1), np.cumsum(report.spectrum), color="#c0504d", label="cumulative")
    ax.set_xlabel("component")
    ax.set_ylabel("share of variance")
    ax.set_title(f"{report.faces} faces: {_top(report)} hold {report.share_top20:.0%}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@explore_app.command("clusters")
@grouped
def explore_clusters(
    min_size: Annotated[int, typer.Option("--min-size", min=1, help="Smallest cluster to report.")] = 2,
    montage_dir: MontageDirOpt = None,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Groups of faces that look like one person (cut at the same-person threshold)."""
    from ..faces.montage import render

    with one_line_errors():
        output_folder(montage_dir, "--montage-dir")
        with opened(lib) as library:
            report, data = library.measure.clusters(min_size)
        if montage_dir is not None:
            with writing(montage_dir, "--montage-dir"):
                for n, members in enumerate(report.clusters, start=1):
                    render(_tiles(data, members, lambda f: f.person or "?"), montage_dir / f"cluster-{n:03d}.jpg",
                           title=f"cluster {n}: {len(members)} faces")
        if as_json:
            print_json(report.to_dict())
            return
        purity = "n/a" if report.purity is None else f"{report.purity:.1%}"
        terminal().print(f"{len(report.clusters)} clusters of at least {min_size} among {report.faces} faces "
                         f"(similarity >= {report.threshold:.4f}); purity {purity}, "
                         f"{report.people_split} people split, {report.clusters_merged} clusters merged")


@explore_app.command("outliers")
@grouped
def explore_outliers(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
    montage: Annotated[Optional[Path], typer.Option("--montage", help="Write the outlier faces to this image.")] = None,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Faces far from their own person's average face: likely mislabelled or badly cut."""
    from dataclasses import asdict

    from ..faces.montage import Tile, render

    with one_line_errors():
        output(montage, "--montage", PICTURE_SUFFIXES)
        with opened(lib) as library:
            found = library.measure.outliers(limit)
        if montage is not None and found:
            with writing(montage, "--montage"):
                render([Tile(o.photo, o.bbox, f"{o.person} z={o.robust_z:.1f}", True) for o in found], montage,
                       title="faces far from their person's average face")
        if as_json:
            print_json({"outliers": [asdict(o) for o in found]})
            return
        console = terminal()
        if not found:
            console.print("no outliers (robust z-score under -3.5 among people with 4+ faces)")
        for o in found:
            console.print(f"{o.person}: z {o.robust_z:.1f}, similarity {o.similarity:.3f}  {o.photo}")


@explore_app.command("appearance")
@grouped
def explore_appearance(
    components: Annotated[int, typer.Option("--components", min=1, max=50, help="Main ways faces differ.")] = 8,
    out_dir: Annotated[Path, typer.Option(
        "--out-dir", help="Write mean.png and one strip per component (-2σ … +2σ) here.")] = Path("appearance"),
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """An appearance model of the corpus (shapes and shape-normalised textures): each
    component's faces from -2 to +2 standard deviations, with its share of the variance."""
    with one_line_errors():
        with opened(lib) as library:
            made = library.pictures.appearance(components)
        with writing(out_dir):
            written = made.write(out_dir)
        if as_json:
            print_json(made.to_dict() | {"files": [str(p) for p in written]})
            return
        for row, path in zip(made.to_dict()["components"], written[1:]):
            terminal().print(f"component {row['component']}: {row['share']:.1%} of the variance  {path}",
                             markup=False)
