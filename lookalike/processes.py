"""Live matching's handle on an open library: the bundle a shell hands down
(:class:`lookalike.live.protocol.LiveLibrary`) and the function its worker process calls to
open a view of its own (a database connection, an index or a model never crosses a process).

Here, above :mod:`lookalike.verbs.library`, so that :mod:`lookalike.live` (a stage) is handed what it
needs and never imports the verbs. The ingest queue's worker entry point stays in
:mod:`lookalike.verbs.library` (``serve_queue``): the library itself hands it to the ingest runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .verbs.library import Library

if TYPE_CHECKING:
    from .config import Settings
    from .live.protocol import LiveLibrary
    from .verbs.space import SpaceView


def worker_view(settings: Settings) -> SpaceView:
    """The view the live matching worker opens of the library ``settings`` name, for the
    process's lifetime (:data:`lookalike.live.protocol.ViewOpener`)."""
    return Library(settings).view


def live_library(lib: Library) -> LiveLibrary:
    """What live matching is handed of ``lib`` (``lookalike webcam``, the web app's live page):
    values, the settings pinned to its space. An empty library is refused here, before the
    matching worker loads its models."""
    from .live.protocol import LiveLibrary

    # counted in the database: opening the index here would keep it in this process, and a
    # Milvus Lite folder serves one process (the matching worker's); no space row is
    # EmptyLibrary too
    if lib.view.row.face_count() == 0:
        from .config import shown_url
        from .errors import EmptyLibrary

        raise EmptyLibrary.at(shown_url(lib.settings.db_url))
    return LiveLibrary(lib.settings.in_space(lib.view.space.names), lib.people.titles, worker_view)
