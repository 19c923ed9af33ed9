"""Relational store: schema (SQLAlchemy 2), engine set-up and Alembic migrations."""
