"""``lookalike landmarks``: the faces' dense landmarks (stored at ingest)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import JsonOpt, one_line_errors, opened, print_json, terminal
from ._options import LibraryOptions, SpaceOptions, grouped

landmarks_app = typer.Typer(help="Dense face landmarks (MediaPipe face mesh), stored per face at ingest.",
                            no_args_is_help=True)


@landmarks_app.command("backfill")
@grouped
def landmarks_backfill(
    space: SpaceOptions = SpaceOptions(),
    lib: LibraryOptions = LibraryOptions(),
    batch: Annotated[int, typer.Option("--batch", min=1, help="Faces per commit.")] = 200,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help="Stop after this many faces [default: all]; run again to go on.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit and store the landmarks of faces stored without them (a library made before
    landmarks were stored): each face's photo is read again. Resumable: stopped at any
    moment, it goes on where it stopped when run again."""
    with one_line_errors():
        with opened(lib, space) as library:
            report = library.backfill_landmarks(batch=batch, limit=limit)
        if as_json:
            print_json(report.to_dict())
            return
        console = terminal()
        console.print(f"landmarks: {report.filled} faces filled ({report.missing} of {report.faces} lacked them; "
                      f"{report.remaining} still lack them) in {report.seconds:.1f} s")
        for label, paths in (("gone (file no longer there)", report.gone),
                             ("changed since it was stored (reembed or ingest it again)", report.changed),
                             ("unreadable", report.unreadable)):
            for path in paths:
                console.print(f"{label}: {path}")
