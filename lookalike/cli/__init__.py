"""The ``lookalike`` command: parses flags, calls the library, prints tables or JSON.

Only typer is imported at module level so ``lookalike --help`` answers at once; the
library (and with it DeepFace, dlib, FAISS) is imported inside each command. Every
:class:`~lookalike.errors.LookalikeError` becomes one ``error: …`` line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import atexit
import os
import sys

_EXIT_CODE: list[int] = []  # the finished command's exit code, for _leave


def _leave() -> None:
    """The last exit hook of a finished command (:func:`main`): the streams flushed, then
    the process ends, skipping the interpreter's teardown; a flush that fails exits 120 as
    the interpreter would."""
    if not _EXIT_CODE:  # no command finished here (an import, or an exception on its way out)
        return
    code = _EXIT_CODE[0]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (| head), a full disk
            code = 120
    os._exit(code)


# registered before anything else of lookalike's is imported, so that it runs after every
# other exit hook (they run last registered first): logging's, multiprocessing's, temporary
# folders'
atexit.register(_leave)

# importing a command module registers its commands, and `lookalike --help` lists them in
# the order they were registered: keep this order
from . import ingest, query, library, pictures, webcam, ui, serve  # noqa: E402, F401  # isort: skip
from ._common import app  # noqa: E402
from .evaluate import eval_app  # noqa: E402
from .explore import explore_app  # noqa: E402
from .index import index_app  # noqa: E402
from .landmarks import landmarks_app  # noqa: E402
from .models import models_app  # noqa: E402
from .serve import keys_app  # noqa: E402

app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.add_typer(explore_app, name="explore")
app.add_typer(keys_app, name="keys")
app.add_typer(landmarks_app, name="landmarks")


def main() -> None:
    """The ``lookalike`` command.

    A command that finished leaves without the interpreter's teardown, which frees the
    objects of the ~800 modules a command imports one by one (SQLAlchemy, alembic, FAISS,
    numpy...): 0.2 s a command (2026-12-06), after the work is done and the output written.
    Everything that must happen at exit still does: the library was closed by the command,
    other threads are joined and every other exit hook runs before :func:`_leave`."""
    try:
        app()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            _EXIT_CODE.append(done.code or 0)
        raise
    _EXIT_CODE.append(0)


__all__ = ["app", "main", "models_app", "index_app", "eval_app", "explore_app", "keys_app",
           "landmarks_app"]
