"""People as staff keep them (the HTTP API, the admin page): profiles, consent, uploaded
photos and the HTTP API's keys.

Plain functions over a session factory and the values they need, so the
:class:`lookalike.library.Library` verbs of the same names stay short and this group of
verbs reads in one place. Every SQL statement is in :mod:`lookalike.store`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from . import config
from .errors import BadPersonName, ConfigError, NotFound
from .store import key_rows, person_rows, photo_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .ingest.corpus import Profile as NewProfile
    from .store.schema import KeyScope

Sessions = Callable[[], AbstractContextManager["Session"]]
"""A library's session factory (:meth:`lookalike.library.Library.session`)."""


def profiles(sessions: Sessions, names: Iterable[str]) -> dict:
    with sessions() as session:
        return person_rows.profiles(session, names)


def display_tags(sessions: Sessions) -> list[str]:
    with sessions() as session:
        return person_rows.display_tags(session)


def people(sessions: Sessions, space_id: int, *, hide_declined: bool = True,
           name: str | None = None) -> list[person_rows.PersonSummary]:
    with sessions() as session:
        return person_rows.people(session, space_id, hide_declined=hide_declined, name=name)


def save_profile(sessions: Sessions, name: str, profile: NewProfile) -> person_rows.Profile:
    """The text is checked (:func:`lookalike.ingest.corpus.check_profile`) and stored as
    data: every page and answer shows it as text, never as markup."""
    from .ingest.corpus import check_person_name, check_profile

    name = check_person_name(name)  # BadPersonName: the HTTP API's 422
    try:
        profile = check_profile(profile)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    with sessions() as session:
        person_rows.upsert_person(session, name, profile)
        session.commit()
        return person_rows.profiles(session, [name])[name]


def set_consent(sessions: Sessions, name: str, consent: bool) -> None:
    with sessions() as session:
        if not person_rows.set_consent(session, name, consent):
            raise NotFound(f"no person named {name!r} in this library")
        session.commit()


def person_photos(sessions: Sessions, space_id: int, name: str) -> list[tuple[int, str, str, str | None]]:
    with sessions() as session:
        row = person_rows.person_by_name(session, name)
        if row is None:
            raise NotFound(f"no person named {name!r} in this library")
        return photo_rows.person_photos(session, space_id, row.id)


def store_uploads(sessions: Sessions, upload_dir: Path, name: str,
                  uploads: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """Write uploaded photos (file name, bytes) under ``upload_dir/NAME/`` (a hashed folder
    name when NAME is not a plain path segment: :func:`config.upload_folder`); returns stored
    path -> file name. A file is named by its bytes' hash, so sending the same photo twice
    stores it once; nothing is written for a person who does not exist."""
    import hashlib

    from .faces.images import IMAGE_EXTENSIONS
    from .ingest.corpus import person_name_problem

    problem = person_name_problem(name)
    if problem is not None:  # a name stored before names were checked: readable, not a folder
        raise BadPersonName(f"{problem}; photos cannot be added under this name")
    with sessions() as session:
        if person_rows.person_by_name(session, name) is None:
            raise NotFound(f"no person named {name!r} in this library; create their profile first")
    if not uploads:
        raise ConfigError("no photo given")
    folder = config.upload_folder(upload_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for filename, data in uploads:
        suffix = Path(filename).suffix.lower()
        suffix = suffix if suffix in IMAGE_EXTENSIONS else ".jpg"  # the bytes decide what it is
        target = folder / f"{hashlib.sha256(data).hexdigest()[:24]}{suffix}"
        if not target.exists():
            part = target.with_name(target.name + ".part")
            part.write_bytes(data)
            part.replace(target)  # a crash leaves a .part, never half a photo the scan would read
        paths[str(target)] = filename
    return paths


def delete_owned(upload_dir: Path | None, paths: set[str]) -> None:
    """Delete the files the library keeps itself (photos uploaded through the HTTP API or
    the admin page, under ``upload_dir``); a corpus elsewhere is the user's."""
    if upload_dir is None:
        return
    for path in map(Path, paths):
        if path.is_relative_to(upload_dir) and path.is_file():
            path.unlink()
            if path.parent != upload_dir and not any(path.parent.iterdir()):
                path.parent.rmdir()


# -- HTTP API keys -------------------------------------------------------------------------
def create_key(sessions: Sessions, scope: KeyScope, name: str | None = None) -> tuple[int, str]:
    """The key is returned once and never stored, only its SHA-256."""
    import secrets

    key = "lk_" + secrets.token_urlsafe(32)
    with sessions() as session:
        key_id = key_rows.add_key(session, scope=scope.value, key_hash=_key_hash(key), prefix=key[:10], name=name)
        session.commit()
    return key_id, key


def keys(sessions: Sessions) -> list[dict]:
    with sessions() as session:
        return [{"id": k.id, "name": k.name, "scope": k.scope, "prefix": k.prefix,
                 "created_at": k.created_at.isoformat(),
                 "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}
                for k in key_rows.api_keys(session)]


def revoke_key(sessions: Sessions, key_id: int) -> None:
    with sessions() as session:
        if not key_rows.revoke_key(session, key_id):
            raise NotFound(f"no API key {key_id} in this library")
        session.commit()


def key_scope(sessions: Sessions, key: str) -> KeyScope | None:
    from .store.schema import KeyScope

    with sessions() as session:
        scope = key_rows.key_scope(session, _key_hash(key))
    return KeyScope(scope) if scope is not None else None


def _key_hash(key: str) -> str:
    """What is stored of an API key: its SHA-256 (keys are 32 random bytes, so a fast hash is
    enough; the key itself is never stored)."""
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()
