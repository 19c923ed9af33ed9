"""Logging: the ``lookalike`` logger, one stderr handler, and its level handed to workers.

Modules log through ``logging.getLogger(__name__)`` (children of ``lookalike``) and never
configure anything at import time. An entry point (the CLI, a script, the web app) calls
:func:`setup` once; it also exports the level in ``LOOKALIKE_LOG_LEVEL``, so the spawned
worker processes (ingest, evaluation, queue workers), which call :func:`inherit` at
start-up, log the same way. Without :func:`setup`, Python's own fallback still prints
warnings and errors (with their tracebacks) to stderr.

This is a bottom layer: it imports only the standard library, :mod:`lookalike.config`
and :mod:`lookalike.errors`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from .config import env_log_level

LOGGER = "lookalike"
ENV = "LOOKALIKE_LOG_LEVEL"
FORMAT = "%(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (pytest, Streamlit and
    the CLI's progress bar may replace it after :func:`setup`), like Python's last-resort
    handler."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr of the moment


def setup(level: int) -> None:
    """Send the ``lookalike`` logger's records at ``level`` and above to stderr, one line
    each (``WARNING lookalike.ingest.mapper: ...``). Idempotent: a second call changes the
    level, never adds a second handler. Exports the level in ``LOOKALIKE_LOG_LEVEL`` for
    spawned worker processes (:func:`inherit`)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    handler.setLevel(level)
    os.environ[ENV] = level_name(level)


def inherit() -> None:
    """What a worker process calls first: :func:`setup` with the parent's level, when it
    exported one (raises :class:`lookalike.errors.ConfigError` naming ``LOOKALIKE_LOG_LEVEL``
    on a value that is not a level)."""
    level = env_log_level(ENV)
    if level is not None:
        setup(level)


def level_name(level: int) -> str:
    """``"DEBUG"`` for 10 and the other standard levels; the number itself for any other."""
    name = logging.getLevelName(level)
    return name if isinstance(name, str) and not name.startswith("Level ") else str(level)
