"""What live matching is handed of an open library, declared here, below the verbs.

The shell that opened the library (``lookalike webcam``, the web app's live page) hands
:class:`LiveLibrary` down (:func:`lookalike.processes.live_library`): values, the settings
pinned to the space the library holds, people's display names, and the function the
matching worker process calls to open a view of its own. Never the library or its view, so
nothing in this stage can call back into the verbs above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

if TYPE_CHECKING:
    from ..config import Settings
    from ..query.context import SpaceContext

Titles = Callable[[Iterable[str]], Mapping[str, str]]
"""People's names -> how a screen names them (a profile's title, else the name)."""

ViewOpener = Callable[["Settings"], "SpaceContext"]
"""Opens a view of the library ``settings`` name in the calling process: the matching worker's.
A module-level function, since a spawned process gets it pickled by name."""


@dataclass(frozen=True)
class LiveLibrary:
    """One open library as live matching sees it (an empty one is refused before it is made)."""

    settings: Settings  # pinned to the library's space: the detector this side runs, the worker's space
    titles: Titles
    open_view: ViewOpener
