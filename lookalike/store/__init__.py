"""Relational store: every SQL statement of lookalike lives in this package.

Each module takes a SQLAlchemy ``Session`` (or engine) and plain values, one module per
table family: :mod:`.space_rows`, :mod:`.person_rows`, :mod:`.photo_rows`,
:mod:`.centroid_rows`, :mod:`.key_rows`, :mod:`.outbox` (what Milvus has yet to receive,
recorded by session events); beside them :mod:`.consent` (the one audience rule),
:mod:`.queue` (the work queue), :mod:`.pgvector` (``faces.vec`` and its HNSW indexes),
:mod:`.db` (engine, migrations, WAL checkpoint, VACUUM) and :mod:`.schema`.
"""
