"""The ``lookalike`` command: parses flags, calls the library, prints tables or JSON.

Only typer is imported at module level so ``lookalike --help`` answers at once; the
library (and with it DeepFace, dlib, FAISS) is imported inside each command. Every
:class:`~lookalike.errors.LookalikeError` becomes one ``error: …`` line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

# importing a command module registers its commands, and `lookalike --help` lists them in
# the order they were registered: keep this order
from . import ingest, query, library, pictures, webcam, ui, serve  # noqa: F401  # isort: skip
from ._common import app
from .evaluate import eval_app
from .explore import explore_app
from .index import index_app
from .landmarks import landmarks_app
from .models import models_app
from .serve import keys_app

app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.add_typer(explore_app, name="explore")
app.add_typer(keys_app, name="keys")
app.add_typer(landmarks_app, name="landmarks")


def main() -> None:
    app()


__all__ = ["app", "main", "models_app", "index_app", "eval_app", "explore_app", "keys_app",
           "landmarks_app"]
