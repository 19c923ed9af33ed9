"""API keys: stored as hashes, with a scope; revoked, never deleted."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .schema import (
    ApiKey,
)


def add_key(session: Session, *, scope: str, key_hash: str, prefix: str, name: str | None) -> int:
    row = ApiKey(scope=scope, key_hash=key_hash, prefix=prefix, name=name)
    session.add(row)
    session.flush()
    return row.id


def api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def key_scope(session: Session, key_hash: str) -> str | None:
    """The scope of a key that exists and is not revoked."""
    return session.scalar(select(ApiKey.scope).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))


def revoke_key(session: Session, key_id: int) -> bool:
    from datetime import datetime, timezone

    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = datetime.now(timezone.utc)
    session.flush()
    return True
