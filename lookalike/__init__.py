"""lookalike: who looks like me? Face look-alike search over a photo corpus.

    import lookalike
    lib = lookalike.open(db="lookalike.db")
    lib.ingest(["photos/"])
    result = lib.search("me.jpg", k=5)

Heavy libraries (DeepFace, dlib, FAISS, OpenCV) load on first use, never on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .library import Library


def open(db=None, index_dir=None, **settings) -> "Library":  # noqa: A001, ANN001
    """Open (creating or upgrading) the library at ``db``; see :class:`lookalike.library.Library`."""
    from .library import open_library

    return open_library(db=db, index_dir=index_dir, **settings)


__all__ = ["open", "__version__"]
