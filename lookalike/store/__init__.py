"""Relational store: every SQL statement of lookalike lives in this package.

Each module takes a SQLAlchemy ``Session`` (or engine) and plain values, one module per
table family: :mod:`.space_rows`, :mod:`.person_rows`, :mod:`.photo_rows` (and
:mod:`.photo_batches`, an ingest batch's rows), :mod:`.centroid_rows`, :mod:`.key_rows`,
:mod:`.landmark_rows` (faces' dense landmarks), :mod:`.outbox` (what Milvus has yet to
receive); beside them :mod:`.changes` (what a write changes, seen once by session events)
and :mod:`.generations` (when a reader's kept answer inputs go stale), :mod:`.consent` (the
one audience rule), :mod:`.queue` (the work queue), :mod:`.pgvector` (``faces.vec`` and its
HNSW indexes), :mod:`.copy_rows` (a library copied to another database), :mod:`.locks`
(the writers' locks across processes), :mod:`.db` (engine, migrations, a database gone
away, WAL checkpoint, VACUUM), :mod:`.schema` and :mod:`.values` (the plain values the
stages share without importing SQLAlchemy) and :mod:`.profiles` (what a person's name and
profile may be: the rules every way in checks).
"""
