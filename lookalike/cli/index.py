"""``lookalike index``: inspect and rebuild the vector index."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import JsonOpt, one_line_errors, opened, print_json, terminal
from ._options import LibraryOptions, grouped

index_app = typer.Typer(help="Inspect and rebuild the vector index.", no_args_is_help=True)


@index_app.command("info")
@grouped
def index_info(lib: LibraryOptions = LibraryOptions(), as_json: JsonOpt = False) -> None:
    """The index in use, its size and tombstones, and what the choice rules would pick now."""
    with one_line_errors():
        with opened(lib) as library:
            info = library.maintenance.info()
        if as_json:
            print_json(info)
            return
        console = terminal()
        params = ", ".join(f"{k} {v}" for k, v in (info.get("params") or {}).items())
        console.print(f"{info['space']}: {info['index_key']}{f' ({params})' if params else ''}, {info['ntotal']:,} "
                      f"vectors ({info['dim']}-d), {info['bytes']:,} bytes, {info['tombstones']:,} tombstones"
                      + (", pinned by hand" if info.get("pinned") else ""))
        console.print(f"rules choose {info['rules_choose']} ({info['rules_reason']})"
                      + ("; run: lookalike index rebuild" if info["rebuild_advised"] else ""))
        if info.get("upkeep"):
            console.print(f"upkeep: {info['upkeep']}")
        red = info.get("reduction") or {}
        if red.get("kind"):
            console.print(f"reduction: PCA {red['dim_in']} -> {red['dim_out']} trained on {red['trained_on']:,} faces "
                          f"({red['explained_variance']:.0%} of the variance); answers re-ranked on the full vectors")
        if red.get("plan"):
            console.print(f"reduction rules: {red['plan']}")


@index_app.command("rebuild")
@grouped
def index_rebuild(
    lib: LibraryOptions = LibraryOptions(),
    key: Annotated[Optional[str], typer.Option(
        "--key", help="FAISS factory key (Flat, HNSW32, IVF1024,PQ32…) [default: the rules' choice].")] = None,
    reduce: Annotated[Optional[int], typer.Option(
        "--reduce", min=2, help="First train a PCA to N dimensions on the stored faces (wide models such as "
                                "VGG-Face; done by itself from 1,000 faces).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the index from the database's vectors (drops tombstones)."""
    with one_line_errors():
        with opened(lib) as library:
            info = library.maintenance.rebuild(key, reduce=reduce)
        if as_json:
            print_json(info)
        else:
            terminal().print(f"rebuilt {info['space']} as {info['index_key']} with {info['ntotal']} vectors")
