"""Alembic migration scripts; shipped inside the package as ``lookalike.store.migrations``."""
