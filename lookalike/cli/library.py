"""Looking after a library: ``person``, ``remove``, ``reembed``, ``copy``, ``stats``, ``doctor``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._common import (
    PICTURE_SUFFIXES,
    JsonOpt,
    app,
    counted,
    one_line_errors,
    opened,
    output,
    print_json,
    terminal,
    writing,
)
from ._options import LibraryOptions, SpaceOptions, grouped

if TYPE_CHECKING:
    from ..verbs.library import Library


@app.command()
@grouped
def person(
    name: Annotated[str, typer.Argument(help="The person's name as ingested (folder or manifest).")],
    lib: LibraryOptions = LibraryOptions(),
    montage: Annotated[Optional[Path], typer.Option(
        "--montage", help="Write the face crops, most typical first, to this image, and their average face "
                          "beside it (FILE-average.png next to the montage FILE.png).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A person's photos sorted by similarity to their average face, outliers flagged."""
    with one_line_errors():
        output(montage, "--montage", PICTURE_SUFFIXES)
        with opened(lib) as library:
            report = library.person(name)
            if montage is not None and not report.faces:  # their last photo removed, or none with a face
                from ..errors import NotFound

                raise NotFound(f"{name}: no faces in this library to draw a montage of")
            if montage is not None:
                from ..query.person import montage as draw

                with writing(montage, "--montage"):
                    draw(report, montage)
                average = _average_beside(library, name, montage)
        if as_json:
            print_json(report.to_dict() | ({"montage": str(montage), "average": average} if montage else {}))
            return
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(f"{name}: {counted(len(report.faces), 'face')} by similarity to their average face"))
        for col in ("#", "similarity", "robust z", "outlier", "photo"):
            table.add_column(col)
        for n, f in enumerate(report.faces, start=1):
            table.add_row(str(n), f"{f.similarity:.3f}", "" if f.robust_z is None else f"{f.robust_z:.1f}",
                          "yes" if f.outlier else "", escape(f.photo))
        terminal().print(table)
        if montage is not None:
            terminal().print(f"montage written to {montage}" + (f", average face to {average}" if average else ""),
                             markup=False)


def _average_beside(library: Library, name: str, montage: Path) -> str | None:
    """The person's average face next to their montage; None (and why, logged) when it
    cannot be drawn (no stored landmarks, unreadable photos): the montage stands alone."""
    import logging

    from ..errors import LookalikeError
    from ..query.facemath import Group, GroupKind
    from .pictures import write_picture

    target = montage.with_name(f"{montage.stem}-average.png")
    try:
        made = library.pictures.average(Group(GroupKind.person, name))
    except LookalikeError as err:
        logging.getLogger(__name__).warning("no average face beside the montage: %s", err)
        return None
    return str(write_picture(made.framed()[0], target))


# -- remove ---------------------------------------------------------------------------
@app.command()
@grouped
def remove(
    person: Annotated[Optional[str], typer.Option("--person", help="Remove this person entirely.")] = None,
    photo: Annotated[Optional[Path], typer.Option("--photo", help="Remove this photo.")] = None,
    space: Annotated[Optional[str], typer.Option(
        "--space", help="Remove a whole embedding space (model__detector__aligner), e.g. after reembed.")] = None,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Delete a person or a photo (rows, vectors and centroid contributions, in every index),
    or one embedding space."""
    from ..errors import ConfigError

    with one_line_errors():
        if [person, photo, space].count(None) != 2:
            raise ConfigError("name exactly one of --person NAME, --photo PATH or --space KEY")
        with opened(lib) as library:
            if person is not None:
                result = library.remove_person(person)
            elif photo is not None:
                result = library.remove_photo(photo)
            else:
                assert space is not None
                result = library.remove_space(space)
        if as_json:
            print_json(result.to_dict())
        else:
            what = f"person {person!r}" if person else f"space {space}" if space else str(photo)
            terminal().print(f"removed {what}: {counted(result.photos, 'photo')}, {counted(result.faces, 'face')}")
            if person:  # nothing of them is kept, not even that they were removed
                terminal().print("a manifest or folder that lists them adds them again when ingested: "
                                 "take them out of it too")
            if result.index_rebuilt:
                terminal().print(f"index rebuilt: {result.index_rebuilt}")


@app.command()
@grouped
def reembed(
    space: SpaceOptions = SpaceOptions(),
    workers: Annotated[int, typer.Option(
        "--workers", min=0, show_default=False, help="Worker processes; 0 chooses [default: one per core].")] = 0,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Move a library to another embedding space (default: the current default model stack):
    every stored photo whose file still exists is embedded again; the old space stays until
    `remove --space KEY`."""
    from .. import config
    from ..faces.pipeline import Space

    with one_line_errors():
        target = Space(space.model or config.DEFAULT_MODEL, space.detector or config.DEFAULT_DETECTOR,
                       space.aligner or config.DEFAULT_ALIGNER).check()
        with opened(lib) as library:
            before = [s["space"] for s in library.spaces()]
            result = library.reembed(target, workers=workers)
        result["old_spaces"] = [k for k in before if k != target.key]
        if as_json:
            print_json(result)
        if result["interrupted"]:  # no advice to drop the old space: it still holds the rest
            typer.echo(f"interrupted: {result['reembedded']} of {result['photos']} photos embedded again; "
                       "run the same command again to finish", err=True)
            raise typer.Exit(130)
        if as_json:
            return
        console = terminal()
        statuses = ", ".join(f"{k} {v}" for k, v in result["statuses"].items())
        console.print(f"{target.key}: {result['reembedded']} of {counted(result['photos'], 'photo')} embedded again "
                      f"({counted(result['faces'], 'face')}" + (f"; {statuses})" if statuses else ")"))
        for path in result["gone"]:
            console.print(f"gone (file no longer there, not moved): {path}")
        for path in result["changed"]:
            console.print(f"changed since it was stored (embedded as it is now): {path}")
        for key in result["old_spaces"]:
            console.print(f"the old space is kept; when you no longer need it: lookalike remove --space {key}")


@app.command("copy")
@grouped
def copy_library(
    to: Annotated[str, typer.Option("--to", help="The new library's database: a PostgreSQL URL "
                                    "(postgresql+psycopg://…) or a SQLite path; empty or not there yet.")],
    to_vectors: Annotated[Optional[str], typer.Option(
        "--to-vectors", help="Where the new library's vectors are searched (as --vectors; "
                             "LOOKALIKE_VECTORS is the original's) [default: pgvector on PostgreSQL, "
                             "FAISS on SQLite].")] = None,
    uploads_to: Annotated[Optional[Path], typer.Option(
        "--uploads-to", help="The new library's upload folder (a server database needs one when photos "
                             "were uploaded) [default: NAME.uploads/ beside a SQLite file].")] = None,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Copy this library into another database, e.g. from SQLite to PostgreSQL: every person,
    profile, consent (a staff withdrawal too), photo, face and its id, estimate, landmark,
    calibration, API key and uploaded photo; the copy's index is built from its rows. The
    original is not changed."""
    from dataclasses import replace

    from ..config import Settings, parse_vectors
    from ..errors import ConfigError
    from ..places import default_index_dir, default_upload_dir

    with one_line_errors():
        # the copy's own places, from its options alone: LOOKALIKE_INDEX_DIR, _UPLOAD_DIR and
        # _VECTORS name the original's, exported for it (review of 2026-12-07, M1, M2, L4)
        if not to.strip():  # an empty --to made folders beside the current one before failing
            raise ConfigError("--to is empty: name the new library's database (a PostgreSQL URL or a file)")
        resolved = Settings.resolve(db=to)
        target = replace(resolved, index_dir=default_index_dir(resolved.db_url).resolve(),
                         upload_dir=uploads_to.expanduser().resolve() if uploads_to
                         else default_upload_dir(resolved.db_url),
                         vectors=parse_vectors(to_vectors, "--to-vectors") if to_vectors else None)
        with opened(lib) as library:
            result = library.copy_to(target)
        if as_json:
            print_json(result)
        else:
            terminal().print(f"copied to {result['to']}: {result['people']} people, {result['photos']} photos, "
                             f"{result['faces']} faces, {result['uploads']} uploaded photos, "
                             f"{result['rows']['api_keys']} API keys; index built: "
                             + ", ".join(f"{k} {'ok' if ok else 'FAILED'}" for k, ok in result["index"].items()))
        if not all(result["index"].values()):
            typer.echo(f"error: the copy's rows are in; build its index with: lookalike doctor --fix "
                       f"--db {result['to']}", err=True)
            raise typer.Exit(1)


# -- stats / doctor -------------------------------------------------------------------
@app.command()
@grouped
def stats(lib: LibraryOptions = LibraryOptions(), as_json: JsonOpt = False) -> None:
    """People, photos, faces, statuses and the index of a library."""
    with one_line_errors():
        with opened(lib) as library:
            data = library.stats()
        if as_json:
            print_json(data)
            return
        console = terminal()
        console.print(f"people {data['people']}  photos {data['photos']}  faces {data['faces']}")
        console.print("statuses: " + ", ".join(f"{k} {v}" for k, v in data["statuses"].items() if v))
        est = data["estimates"]
        if est["faces"]:
            console.print(f"estimates (ingest --analyze) for {est['faces']} faces: emotion "
                          + ", ".join(f"{k} {v}" for k, v in est["emotion"].items()) + "; estimated age "
                          + ", ".join(f"{k} {v}" for k, v in est["age_band"].items()))
        if data["index"]:
            ix = data["index"]
            console.print(f"index {ix['space']} ({ix['index_key']}, {ix['dim']}-d, {ix['ntotal']} vectors, "
                          f"{ix['bytes']:,} bytes) at {ix['file']}")


@app.command()
@grouped
def doctor(
    lib: LibraryOptions = LibraryOptions(),
    fix: Annotated[bool, typer.Option(
        "--fix", help="Re-add missing vectors from the database, drop orphans.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check that the index holds exactly the faces in the database (exit 0 only then)."""
    with one_line_errors():
        with opened(lib) as library:
            reports = library.doctor(fix=fix)
        if as_json:
            print_json({"ok": all(r.ok for r in reports), "spaces": [r.to_dict() for r in reports]})
        else:
            console = terminal()
            if not reports:
                console.print("empty library: nothing to check")
            for r in reports:
                state = "[green]ok[/]" if r.ok else "[red]out of sync[/]"
                console.print(f"{r.space}: {state}  database {r.db_faces} faces, index {r.index_faces}, "
                              f"missing {r.missing}, orphans {r.orphans}"
                              + (" (fixed)" if r.fixed else "") + (f"  {r.error}" if r.error else ""))
        if not all(r.ok for r in reports):
            raise typer.Exit(1)
