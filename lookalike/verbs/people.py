"""People as staff keep them (the HTTP API, the admin page): profiles, consent, uploaded
photos and the HTTP API's keys.

Two small objects a :class:`lookalike.verbs.library.Library` hands out, ``lib.people`` and
``lib.keys``: they hold the library's session factory (and, for people, the current
space's id and the upload folder), so this group of verbs reads in one place and the
Library carries no one-line forwards to it. Every SQL statement is in :mod:`lookalike.store`.
"""

from __future__ import annotations

import logging
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from .. import places
from ..errors import BadImage, BadPersonName, BadProfile, ConfigError, EmptyLibrary, LookalikeError, NotFound
from ..store import key_rows, person_rows, photo_rows
from ..store.values import Audience, KeyScope, utc_text

log = logging.getLogger(__name__)
# the long side of a photo as a visitor is shown it: a 40 MP photo's every pixel cost 0.76 s
# and 250 MB a request, and no screen shows them (security re-probe 52, N9)
PORTRAIT_SIDE = 1024
UPLOAD_NAME = re.compile(r"[0-9a-f]{24}\.\w+")  # how store_uploads names a file: its bytes' sha256

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from ..store.profiles import Profile

Sessions = Callable[[], AbstractContextManager["Session"]]
"""A library's session factory (:meth:`lookalike.verbs.library.Library.session`)."""


@dataclass(frozen=True)
class People:
    """The people of a library as staff keep them: ``lib.people``."""

    sessions: Sessions
    space_id: Callable[[], int]  # the current space's row id (EmptyLibrary before any face is stored)
    upload_dir: Path | None

    def _counted_in(self) -> int | None:
        """The space whose photos and faces are counted: None before any face is stored, where
        every count is 0 (a kiosk's profiles come before their photos, through the API too:
        the space's EmptyLibrary made a saved profile answer 409)."""
        try:
            return self.space_id()
        except EmptyLibrary:
            return None

    def profiles(self, names: Iterable[str]) -> dict[str, person_rows.StoredProfile]:
        """Person name -> :class:`lookalike.store.person_rows.StoredProfile` (role, organisation,
        story, tags, consent)."""
        with self.sessions() as session:
            return person_rows.profiles(session, names)

    def titles(self, names: Iterable[str]) -> dict[str, str]:
        """Person name -> how a screen names them: their profile's title, else the name."""
        wanted = list(names)
        profiles = self.profiles(wanted)
        return {name: profiles[name].title if name in profiles else name for name in wanted}

    def display_tags(self) -> list[str]:
        """Self-declared tags a visitor may narrow role models by: those of consenting people
        with a face in the current space (a tag whose people have faces only in another space,
        an interrupted reembed's, would find no role model)."""
        with self.sessions() as session:
            return person_rows.display_tags(session, self._counted_in())

    def summaries(self, audience: Audience, name: str | None = None) -> list[person_rows.PersonSummary]:
        """Everyone ``audience`` may see (or the one called ``name``) with their profile and
        counts in the current space."""
        audience = Audience.of(audience)
        with self.sessions() as session:
            return person_rows.people(session, self._counted_in(), audience, name=name)

    def save_profile(self, name: str, profile: Profile) -> person_rows.StoredProfile:
        """Create a person, or replace their profile. The text is checked
        (:func:`lookalike.store.profiles.check_profile`) and stored as data: every page and
        answer shows it as text, never as markup."""
        from ..store.profiles import check_person_name, check_profile

        name = check_person_name(name)  # BadPersonName: the HTTP API's 422
        try:
            profile = check_profile(profile)
        except ValueError as err:
            raise BadProfile(f"{name}: {err}") from None
        with self.sessions() as session:
            person_rows.upsert_person(session, name, profile, by_staff=True)
            session.commit()
            return person_rows.profiles(session, [name])[name]

    def set_consent(self, name: str, consent: bool) -> None:
        """Record consent to be displayed. Withdrawn, the person leaves every visitor's
        search at once: the change moves the space's generation (:mod:`lookalike.store.generations`),
        which the next search reads with its answer, and so reads the faces shown again."""
        if not isinstance(consent, bool):  # "no" was stored as consent (a truthy string)
            raise ConfigError(f"consent for {name!r}: True or False, not {consent!r}")
        with self.sessions() as session:
            if not person_rows.set_consent(session, name, consent, by_staff=True):
                raise NotFound.person(name)
            session.commit()

    def photos(self, name: str) -> list[tuple[int, str, str, str | None]]:
        """(photo id, path, status, reason) of a person's photos, failed ones included."""
        with self.sessions() as session:
            row = person_rows.person_by_name(session, name)
            if row is None:
                raise NotFound.person(name)
            space_id = self._counted_in()
            return [] if space_id is None else photo_rows.person_photos(session, space_id, row.id)

    def portrait(self, photo_id: int, audience: Audience) -> np.ndarray:
        """Photo ``photo_id`` as ``audience`` (not the operator) may see it: cut to the faces
        stored from it, with a margin, so nobody else in the photo is shown. A group photo
        filed under one person showed everyone in it, a colleague who withholds consent
        among them (security re-probe, 2026-12-07, M3), and a bystander never asked at all.
        :class:`NotFound` alike whether the id does not exist, is withheld or its file is gone."""
        from ..faces.images import decode_file, shrink
        from ..imaging.compose import around
        from ..store import consent

        with self.sessions() as session:
            path = consent.photo_path(session, photo_id, audience)
            boxes = photo_rows.photo_face_boxes(session, photo_id) if path is not None else []
        if path is None or not boxes or not Path(path).is_file():
            raise NotFound.photo(photo_id)
        try:  # a stored photo, decoded as at ingest (upright); a large JPEG at a draft's size
            decoded = decode_file(path, 10**9, max_side=PORTRAIT_SIDE * 4)
        except BadImage as err:
            log.warning("photo %s: %s", photo_id, err)
            raise NotFound.photo(photo_id) from None
        scale = decoded.scale  # the boxes are the photo's own pixels
        cut = around(decoded.rgb, [(round(x * scale), round(y * scale), round(w * scale), round(h * scale))
                                   for x, y, w, h in boxes])
        return shrink(cut, PORTRAIT_SIDE)

    def store_uploads(self, name: str, uploads: Sequence[tuple[str, bytes]]) -> dict[str, str]:
        """Write uploaded photos (file name, bytes) under ``upload_dir/NAME/`` (a hashed folder
        name when NAME is not a plain path segment: :func:`places.upload_folder`); returns stored
        path -> file name. A file is named by its bytes' hash, so sending the same photo twice
        stores it once; nothing is written for a person who does not exist."""
        import hashlib

        from ..faces.images import IMAGE_EXTENSIONS
        from ..store.profiles import person_name_problem

        if self.upload_dir is None:  # a server database: no folder of a machine's own
            raise LookalikeError("a server database keeps uploaded photos in LOOKALIKE_UPLOAD_DIR, a folder every "
                                 "machine that serves or removes from the library mounts at the same path; set it")
        problem = person_name_problem(name)
        if problem is not None:  # a name stored before names were checked: readable, not a folder
            raise BadPersonName(f"{problem}; photos cannot be added under this name")
        with self.sessions() as session:
            if person_rows.person_by_name(session, name) is None:
                raise NotFound(f"{NotFound.person(name)}; create their profile first")
        if not uploads:
            raise ConfigError(f"{name}: no photo given to add")
        folder = places.upload_folder(self.upload_dir, name)
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

    def delete_owned(self, paths: set[str]) -> None:
        """Delete the files the library keeps itself (photos uploaded through the HTTP API or
        the admin page, under ``upload_dir``); a corpus elsewhere is the user's."""
        if self.upload_dir is None:  # a server database opened without LOOKALIKE_UPLOAD_DIR
            left = sorted(p for p in paths if UPLOAD_NAME.fullmatch(Path(p).name) and Path(p).is_file())
            if left:  # named as uploads are: said, not left in silence (move user test, F6)
                log.warning("%d uploaded photos of what was removed are still on disk, as this process has no "
                            "LOOKALIKE_UPLOAD_DIR: %s; delete them, and set it for every command of this library",
                            len(left), ", ".join(left))
            return
        for path in map(Path, paths):
            if path.is_relative_to(self.upload_dir) and path.is_file():
                path.unlink()
                if path.parent != self.upload_dir and not any(path.parent.iterdir()):
                    path.parent.rmdir()


@dataclass(frozen=True)
class ApiKeys:
    """The HTTP API's keys: ``lib.keys``."""

    sessions: Sessions

    def create(self, scope: KeyScope, name: str | None = None) -> tuple[int, str]:
        """A new API key: ``(id, key)``. The key is returned once and never stored, only
        its SHA-256."""
        import secrets

        scope = KeyScope.of(scope)
        key = "lk_" + secrets.token_urlsafe(32)
        with self.sessions() as session:
            key_id = key_rows.add_key(session, scope=scope.value, key_hash=_key_hash(key), prefix=key[:10],
                                      name=name)
            session.commit()
        return key_id, key

    def issued(self) -> list[dict]:
        """Every key (revoked ones too), without anything that could be used as one."""
        with self.sessions() as session:
            return [{"id": k.id, "name": k.name, "scope": k.scope, "prefix": k.prefix,
                     "created_at": utc_text(k.created_at),
                     "revoked_at": utc_text(k.revoked_at) if k.revoked_at else None}
                    for k in key_rows.api_keys(session)]

    def revoke(self, key_id: int) -> None:
        with self.sessions() as session:
            if not key_rows.revoke_key(session, key_id):
                raise NotFound(f"no API key {key_id} in this library")
            session.commit()

    def scope(self, key: str) -> KeyScope | None:
        """The scope of a valid, unrevoked key; ``None`` for anything else."""
        with self.sessions() as session:
            scope = key_rows.key_scope(session, _key_hash(key))
        return KeyScope(scope) if scope is not None else None


def _key_hash(key: str) -> str:
    """What is stored of an API key: its SHA-256 (keys are 32 random bytes, so a fast hash is
    enough; the key itself is never stored)."""
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()
