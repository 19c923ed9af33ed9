"""Vector indexes, one backend each: a FAISS file beside a SQLite library (rebuilt from the
database when it drifts), pgvector inside PostgreSQL, a Milvus collection (Lite or a
server); which index for how many vectors (:mod:`.choice`), a wide model's PCA
(:mod:`.reduction`), and what the rest of lookalike sees of them (:mod:`.protocol`,
:mod:`.backend`)."""
