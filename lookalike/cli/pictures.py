"""Pictures made from faces: ``average``, ``morph``, ``transform`` (``lib.pictures``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..config import MAX_DRAWN_STRENGTH
from ..store.values import Audience
from ._common import (
    PICTURE_SUFFIXES,
    JsonOpt,
    PictureAudienceOpt,
    app,
    counted,
    one_line_errors,
    opened,
    print_json,
    terminal,
    writing,
)
from ._options import LibraryOptions, WhoseFace, grouped

if TYPE_CHECKING:
    import numpy as np

OutOpt = Annotated[Path, typer.Option("--out", help="Write the picture to this file.")]


def write_picture(image: np.ndarray, path: Path) -> Path:
    """``image`` written to ``path`` in the format its suffix names; a clear error when the
    suffix is not a picture's or the folder cannot be written."""
    from PIL import Image

    from ..errors import ConfigError

    kind = PICTURE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: write a picture as .png, .jpg or .webp, not {path.suffix or 'no suffix'!r}")
    with writing(path):
        Image.fromarray(image).save(path, format=kind)
    return path


@app.command()
@grouped
def average(
    whose: WhoseFace = WhoseFace(),
    out: OutOpt = Path("average.png"),
    size: Annotated[int, typer.Option("--size", min=32, max=1024, help="Side of the picture, px.")] = 256,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help="At most N faces (an even sample) [default: every face].")] = None,
    outliers: Annotated[bool, typer.Option(
        "--outliers", help="Keep the faces `lookalike person` flags as outliers (left out by default).")] = False,
    audience: PictureAudienceOpt = Audience.operator,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Every face of a person, a group or the corpus warped to their mean shape and averaged."""
    with one_line_errors():
        chosen = whose.chosen()
        with opened(lib) as library:
            made = library.pictures.average(chosen, audience, size=size, limit=limit, outliers=outliers)
        write_picture(made.framed()[0], out)
        if as_json:
            print_json(made.to_dict() | {"out": str(out)})
            return
        left = ", ".join(counted(n, "outlier") if why == "outliers" else f"{n} {why.replace('_', ' ')}"
                         for why, n in made.left_out.items() if n)
        terminal().print(f"average of {made.group}: {counted(made.faces, 'face')} of "
                         f"{counted(made.people, 'person', 'people')}" + (f" ({left} left out)" if left else "")
                         + f", written to {out}", markup=False)


@app.command()
@grouped
def morph(
    a: Annotated[str, typer.Argument(help="A photo, or person:NAME (their average face).")],
    b: Annotated[str, typer.Argument(help="A photo, or person:NAME.")],
    out: Annotated[Path, typer.Option("--out", help="Write the morph here: .gif, .mp4 or .png (a strip).")] = Path(
        "morph.gif"),
    frames: Annotated[int, typer.Option("--frames", min=2, max=240, help="Frames from A to B.")] = 24,
    audience: PictureAudienceOpt = Audience.operator,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """A morph from face A to face B: shape and texture interpolated together."""
    with one_line_errors():
        from ..imaging.morph import MorphFormat

        MorphFormat.of(out)  # before any work: a wrong suffix is said at once
        from ..verbs.pictures import morph_side

        sides = morph_side(a), morph_side(b)  # before any work: a group that cannot be morphed is said at once
        with opened(lib) as library:
            made = library.pictures.morph(*sides, frames, audience)
        with writing(out):
            made.write(out)
        if as_json:
            print_json(made.to_dict() | {"out": str(out)})
            return
        terminal().print(f"morph {made.a} -> {made.b}: {len(made.frames)} frames written to {out}", markup=False)


@app.command()
@grouped
def transform(
    photo: Annotated[Path, typer.Argument(help="A photo of one face (never stored).")],
    toward: Annotated[str, typer.Option("--toward", help="Move the face toward GROUP (tag:…, person:…, age:60-).")],
    away: Annotated[Optional[str], typer.Option(
        "--away", help="…and away from GROUP [default: the photo's own age band or emotion, else the corpus average].")
    ] = None,
    strength: Annotated[float, typer.Option("--strength", min=-MAX_DRAWN_STRENGTH, max=MAX_DRAWN_STRENGTH,
                                            help="How far to move.")] = 1.0,
    out: OutOpt = Path("transform.png"),
    audience: PictureAudienceOpt = Audience.operator,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Face math drawn as a face: the photo moved by the difference of two groups' average faces."""
    with one_line_errors():
        from ..query.facemath import FaceMath

        math = FaceMath.of(toward, away, strength)
        with opened(lib) as library:
            made = library.pictures.transform(str(photo), math.toward, math.away, strength, audience)
        write_picture(made.image, out)
        if as_json:
            print_json(made.to_dict() | {"out": str(out)})
            return
        terminal().print(f"{photo} moved toward {made.toward}, away from {made.away}: written to {out}",
                         markup=False)
