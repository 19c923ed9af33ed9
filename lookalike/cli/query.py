"""Questions about a photo that is never stored: ``search``, ``path``, ``analyze``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..analysis import AnalyzerName
from ..store.values import Audience
from ._common import (
    PICTURE_SUFFIXES,
    AnalyzerOpt,
    JsonOpt,
    PictureAudienceOpt,
    app,
    one_line_errors,
    opened,
    output,
    print_json,
    terminal,
    writing,
)
from ._options import (
    AnalysisOptions,
    FaceMathOptions,
    LibraryOptions,
    RankOptions,
    SpaceOptions,
    WhomOptions,
    grouped,
)

if TYPE_CHECKING:
    from ..analysis import Estimate
    from ..query.facemath import FaceMath, Step
    from ..query.search import SearchResult
    from ..verbs.library import Library


@app.command()
@grouped
def search(
    photo: Annotated[Path, typer.Argument(help="Photo to match (never stored).")],
    lib: LibraryOptions = LibraryOptions(),
    rank: RankOptions = RankOptions(),
    whom: WhomOptions = WhomOptions(),
    analysis: AnalysisOptions = AnalysisOptions(),
    math_options: FaceMathOptions = FaceMathOptions(),
    render: Annotated[Optional[Path], typer.Option(
        "--render", help="With --toward: draw the moved face beside the matches into this picture.")] = None,
    space: SpaceOptions = SpaceOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Find the corpus faces (or people) nearest to every face in PHOTO, with verdicts."""
    with one_line_errors():
        from ..errors import NoFace, UnusableFace
        from ..query.facemath import FaceMath
        from ..query.search import Filter, RankBy

        parsed = tuple(Filter.parse(f) for f in whom.filters or [])
        math = FaceMath.parse(math_options.toward, math_options.away, math_options.strength)
        if render is not None and math is None:
            from ..errors import ConfigError

            raise ConfigError("--render draws the moved face: it needs --toward GROUP")
        if render is not None:
            from ..imaging.transform import check_strength

            check_strength(math_options.strength)  # before the search, not after it
        seen = whom.chosen_audience()
        with opened(lib, space) as library:
            result = library.search(str(photo), k=rank.k, per_person=rank.per_person, rank_by=RankBy(rank.by.value),
                                    filters=parsed, audience=seen, analyzer=analysis.chosen(), math=math)
            unrendered = None  # a face that cannot be drawn (two of like size): the answer is still said
            if render is not None and math is not None:
                try:
                    _render_moved(library, str(photo), math, seen, result, render)
                except (NoFace, UnusableFace) as err:
                    unrendered = err
        if as_json:
            print_json(result.to_dict())
            if unrendered is not None:
                raise unrendered
            return
        from rich.markup import escape
        from rich.table import Table

        console = terminal()
        for n, face in enumerate(result.faces, start=1):
            x, y, w, h = face.bbox
            typical = face.corpus_centroid_similarity
            table = Table(title=f"face {n} of {len(result.faces)} at x={x} y={y} {w}x{h}"
                                + (f" (corpus typicality {typical:.2f})" if typical is not None else ""))
            for col in ("rank", "person", "similarity", "verdict", "vs their average", "photo"):
                table.add_column(col, justify="right" if col in ("rank", "similarity", "vs their average") else "left")
            for m in face.matches:
                cent = m.person_centroid_similarity
                table.add_row(str(m.rank), escape(m.person or "?"), f"{m.similarity:.3f}",
                              m.verdict.replace("_", " "), f"{cent:.3f}" if cent is not None else "",
                              escape(m.photo))  # names and paths are data: a "[bold]" in them is not markup
            if not face.matches:
                table.add_row("-", "no match passes the filters", "", "", "", "")
            console.print(table)
            if face.estimate is not None:
                console.print(_estimate_line(face.estimate))
            if face.moved is not None:
                console.print(f"query moved {face.moved}")
        if result.faces_not_searched:
            console.print(f"{result.faces_not_searched} smaller faces of the photo not searched "
                          f"(the {len(result.faces)} largest are)")
        if unrendered is not None:
            raise unrendered


def _render_moved(library: Library, photo: str, math: FaceMath, audience: Audience, result: SearchResult,
                  out: Path) -> None:
    """``search --render``: the photo's face moved as the search moved it, beside the first
    face's matches."""
    import numpy as np

    from ..imaging.compose import side_by_side
    from .pictures import write_picture

    moved = library.pictures.transform(photo, math.toward, math.away, math.strength, audience)
    tiles = [(moved.face(), f"moved toward {moved.toward}")]
    matches = result.faces[0].matches if result.faces else []
    tiles += [(np.asarray(library.face_crop(m.face_id, 256)), f"{m.rank}. {m.person or '?'}") for m in matches]
    write_picture(side_by_side(tiles), out)


def _estimate_line(e: Estimate) -> str:
    gender = ", ".join(f"{k} {v:.0%}" for k, v in e.gender.items())
    from rich.markup import escape

    return escape(f"estimated age {e.age:.0f}; gender (estimate) {e.dominant_gender} ({gender}); "
                  f"emotion {e.dominant_emotion} "
                  f"({e.emotion[e.dominant_emotion]:.0%})  [{e.model}]")


# -- path -----------------------------------------------------------------------------
@app.command()
@grouped
def path(
    photo_a: Annotated[Path, typer.Argument(help="First face (the largest in the photo).")],
    photo_b: Annotated[Path, typer.Argument(help="Second face.")],
    steps: Annotated[int, typer.Option("--steps", min=2, help="Points along the way, both ends included.")] = 8,
    montage: Annotated[Optional[Path], typer.Option(
        "--montage", help="Write the faces of the path to this image.")] = None,
    render: Annotated[Optional[Path], typer.Option(
        "--render", help="Draw the morph from A to B above the faces of the path into this picture.")] = None,
    lib: LibraryOptions = LibraryOptions(),
    audience: PictureAudienceOpt = Audience.operator,
    as_json: JsonOpt = False,
) -> None:
    """Who lies between two faces: the nearest corpus face at each step of the way."""
    from dataclasses import asdict

    with one_line_errors():
        output(montage, "--montage", PICTURE_SUFFIXES)
        with opened(lib) as library:
            route = library.path(str(photo_a), str(photo_b), steps, audience)
            if render is not None:
                _render_path(library, str(photo_a), str(photo_b), route, render)
        if montage is not None:
            from ..faces.montage import Tile
            from ..faces.montage import render as draw_montage

            with writing(montage, "--montage"):
                draw_montage([Tile(s.photo, s.bbox, f"{s.t:.2f} {s.person or '?'}") for s in route], montage,
                             title=f"from {photo_a.name} to {photo_b.name}")
        if as_json:
            print_json({"from": str(photo_a), "to": str(photo_b), "steps": [asdict(s) for s in route]})
            return
        for s in route:
            terminal().print(f"{s.t:.2f}  {s.person or '?':30} {s.similarity:.3f}  {s.photo}")
        if montage is not None:
            terminal().print(f"montage written to {montage}")


def _render_path(library: Library, photo_a: str, photo_b: str, route: list[Step], out: Path) -> None:
    """The morph's frames (one per step) above the faces retrieved at those steps."""
    import numpy as np

    from ..imaging.compose import side_by_side
    from .pictures import write_picture

    made = library.pictures.morph(photo_a, photo_b, max(2, len(route)))
    top = side_by_side([(f, f"t={t:.2f}") for f, t in zip(made.frames, np.linspace(0, 1, len(made.frames)))])
    bottom = side_by_side([(np.asarray(library.face_crop(s.face_id, 256)), f"{s.t:.2f} {s.person or '?'}")
                           for s in route])
    width = max(top.shape[1], bottom.shape[1])
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in (top, bottom)]
    write_picture(np.vstack(rows), out)


# -- analyze --------------------------------------------------------------------------
@app.command()
def analyze(
    photo: Annotated[Path, typer.Argument(help="Photo to analyse (never stored).")],
    analyzer: AnalyzerOpt = AnalyzerName.auto,
    detector: Annotated[Optional[str], typer.Option("--detector", help="Face detector [default: yunet].")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate age, gender and emotion of every face in PHOTO (estimates, never facts)."""
    with one_line_errors():
        from ..verbs.standalone import analyze_file

        made = analyze_file(str(photo), analyzer, detector)
        if as_json:
            print_json(made.to_dict())
            return
        console = terminal()
        for n, f in enumerate(made.faces, start=1):
            x, y, w, h = f.bbox
            console.print(f"face {n} at x={x} y={y} {w}x{h}: {_estimate_line(f.estimate)}")
