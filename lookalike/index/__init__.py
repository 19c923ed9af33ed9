"""Vector indexes: FAISS files on disk, rebuilt from the database when they drift."""
