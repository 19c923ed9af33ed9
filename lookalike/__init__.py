"""lookalike: who looks like me? Face look-alike search over a photo corpus.

    import lookalike
    lib = lookalike.open(db="lookalike.db")
    lib.ingest(["photos/"])
    result = lib.search("me.jpg", k=5)

What an API user needs is here: :func:`open`, the option types and every error
(:class:`LookalikeError` and its typed subclasses). Heavy libraries (DeepFace, dlib,
FAISS, OpenCV) load on first use, never on import; the option types load on first access.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from .errors import (
    BadImage,
    ConfigError,
    DownloadFailed,
    EmptyLibrary,
    IndexCorrupt,
    IndexOwnedElsewhere,
    IngestFailed,
    LibraryBusy,
    LookalikeError,
    ManifestError,
    MissingExtra,
    ModelMismatch,
    ModelMissing,
    NoDisplay,
    NoFace,
    NotFound,
    NothingIngested,
    SchemaTooNew,
    SourceUnavailable,
    UnknownName,
    VectorStoreUnavailable,
    WheelUnavailable,
)

__version__ = "0.1.0"

# onnxruntime (SFace, YuNet's neighbours, the offline analyzers) >= 1.32 starts Microsoft's
# telemetry when imported: an uploader and a ".ses" file in $TMPDIR. Nothing of a visitor may
# leave or stay behind, so it is off before any model loads, for this process, its workers and
# `lookalike ui`'s server (they inherit the environment); a user who wants it sets it to 0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

if TYPE_CHECKING:
    from .analysis import AnalyzerName
    from .faces.pipeline import FacesMode, Space
    from .query.facemath import FaceMath, Group, GroupKind
    from .query.search import Filter, FilterKey, RankBy, SearchOptions, SearchResult
    from .store.values import Audience, KeyScope
    from .verbs.library import Library

# name -> module, imported on first access (PEP 562)
_LAZY = {
    "Library": "lookalike.verbs.library",
    "SearchOptions": "lookalike.query.search", "SearchResult": "lookalike.query.search",
    "Filter": "lookalike.query.search", "FilterKey": "lookalike.query.search", "RankBy": "lookalike.query.search",
    "FaceMath": "lookalike.query.facemath", "Group": "lookalike.query.facemath",
    "GroupKind": "lookalike.query.facemath",
    "FacesMode": "lookalike.faces.pipeline", "Space": "lookalike.faces.pipeline",
    "AnalyzerName": "lookalike.analysis",
    "Audience": "lookalike.store.values", "KeyScope": "lookalike.store.values",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whichever class was asked for
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lookalike' has no attribute {name!r}")


def open(db: str | os.PathLike[str] | None = None, index_dir: str | os.PathLike[str] | None = None,  # noqa: A001 - lookalike.open, like the builtin
         **settings: Any) -> Library:  # noqa: ANN401 - Settings fields, checked by Settings.resolve
    """Open (creating or upgrading) the library at ``db``; see :class:`lookalike.verbs.library.Library`."""
    from .verbs.library import open_library

    return open_library(db=db, index_dir=index_dir, **settings)


__all__ = [
    "open", "__version__", "Library", "SearchOptions", "SearchResult", "Filter", "FilterKey", "RankBy",
    "FaceMath", "Group", "GroupKind", "FacesMode", "Space", "AnalyzerName", "Audience", "KeyScope",
    "LookalikeError", "BadImage", "ConfigError", "DownloadFailed", "EmptyLibrary", "IndexCorrupt",
    "IndexOwnedElsewhere", "IngestFailed", "LibraryBusy", "ManifestError", "MissingExtra", "ModelMismatch",
    "ModelMissing", "NoDisplay", "NoFace", "NotFound", "NothingIngested", "SchemaTooNew", "SourceUnavailable",
    "UnknownName", "VectorStoreUnavailable", "WheelUnavailable",
]
