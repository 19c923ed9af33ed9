"""Where a library's vectors are indexed: one backend per kind, chosen by the database
and ``--vectors``.

* :class:`~lookalike.index.faiss_backend.FaissBackend` — the embedded default: a FAISS file
  per embedding space beside the database (SQLite).
* :class:`~lookalike.index.pgvector_backend.PgVectorBackend` — PostgreSQL: the vectors live
  in ``faces.vec`` (pgvector), written with their rows and searched in SQL.
* :class:`~lookalike.index.milvus_backend.MilvusBackend` — Milvus (Lite or a server): a
  collection per space that follows the database through the outbox
  (:mod:`lookalike.index.milvus_outbox`).

The library asks its backend and never branches on the kind itself. Every index a backend
opens is a :class:`lookalike.index.protocol.VectorIndex`; what only its own kind has (a
FAISS file's ``reconcile``, pgvector's ``fill``), it reaches through
:func:`~lookalike.index.backend.unwrapped` (a reduced space's index wraps the backend's).
"""

from __future__ import annotations

from ..config import Vectors, VectorsKind
from ..errors import ConfigError
from .backend import DoctorReport, VectorBackend, unwrapped
from .faiss_backend import FaissBackend
from .milvus_backend import MilvusBackend
from .pgvector_backend import PgVectorBackend

__all__ = ["BACKENDS", "DoctorReport", "FaissBackend", "MilvusBackend", "PgVectorBackend",
           "VectorBackend", "for_dialect", "for_settings", "unwrapped"]

BACKENDS: dict[str, type[VectorBackend]] = {"postgresql": PgVectorBackend}


def for_dialect(dialect: str) -> VectorBackend:
    """The backend for a SQLAlchemy dialect name: pgvector on PostgreSQL, else FAISS files."""
    return BACKENDS.get(dialect, FaissBackend)()


def for_settings(dialect: str, vectors: Vectors | None) -> VectorBackend:
    """The backend ``--vectors`` names (else the dialect's own); a pairing that cannot work
    is a ConfigError: FAISS files beside a server database would not be shared by its
    writers on other machines, and pgvector lives only in PostgreSQL."""
    if vectors is None:
        return for_dialect(dialect)
    if vectors.is_milvus:
        return MilvusBackend(vectors, dialect)
    if vectors.kind is VectorsKind.pgvector and dialect != "postgresql":
        raise ConfigError("--vectors pgvector needs a PostgreSQL --db (pgvector is a PostgreSQL extension)")
    if vectors.kind is VectorsKind.faiss and dialect == "postgresql":
        raise ConfigError("--vectors faiss needs a SQLite --db: with PostgreSQL use pgvector (the default) "
                          "or Milvus, which every writer can reach")
    return for_dialect(dialect)
