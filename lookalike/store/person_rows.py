"""People: their names, self-declared profiles and consent, and the person groups
(``tag=…``, ``organisation=…``) searches and face math select by.

A profile comes in as :class:`lookalike.store.profiles.Profile`, the store's own type:
whatever the layer above reads profiles from (a manifest, a form, the HTTP API) makes one
and has it checked there, and the store never imports that layer. A change to the fields a vector store filters on
is recorded for it by :mod:`lookalike.store.outbox`, whatever wrote it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from .schema import (
    Base,
    Face,
    Person,
    Photo,
)
from .values import Audience, GroupKey, PhotoStatus, chunks, normalise_tag

log = logging.getLogger(__name__)
_SAID: set[tuple[str, str]] = set()  # (person, withdrawal) already warned of in this process

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from .profiles import Profile


def upsert_person(session: Session, name: str, profile: Profile | None = None,
                  cache: dict | None = None, by_staff: bool = False) -> int:
    """Id of the person called ``name``, created if new; a profile overwrites the stored one,
    but for a consent staff withdrew (:func:`set_consent` ``by_staff``): that stays withdrawn
    unless staff (``by_staff``) save a profile that grants it. A stale manifest run again
    granted it back in silence, and the person was on the kiosk again (kiosk user test, F1)."""
    if cache is not None and name in cache and profile is None:
        return cache[name]
    person = session.scalar(select(Person).where(Person.name == name))
    if person is None:
        # INSERT … ON CONFLICT DO NOTHING: ingest workers on other machines may be creating
        # the same person right now; whoever commits first wins, the other reads that row
        session.execute(_insert(session, Person).values(name=name, consent_display=None)
                        .on_conflict_do_nothing(index_elements=["name"]))
        person = session.scalars(select(Person).where(Person.name == name)).one()
    if profile is not None:
        person.display_name = profile.display_name
        person.role = profile.role
        person.organisation = profile.organisation
        person.story = profile.story
        person.tags = json.dumps(list(profile.tags)) if profile.tags else None
        _write_consent(person, profile.consent_display, by_staff)
        person.source_url = profile.source_url
        person.license = profile.license
    session.flush()
    if cache is not None:
        cache[name] = person.id
    return person.id


def person_ids(session: Session, names: list[str], cache: dict[str, int]) -> dict[str, int]:
    """Ids of the people called ``names`` (no profile to write), the missing ones created:
    one SELECT for the names not in ``cache``, one INSERT … ON CONFLICT DO NOTHING of them all
    (in name order, as :func:`upsert_person` creates them one by one) and one SELECT for its
    ids — where a batch of a folder-per-person corpus cost three statements and a flush a
    person (2.0 of the main process's 5.8 s of CPU over 600 lfw-dev photos, 2026-12-05)."""
    wanted = sorted({name for name in names if name not in cache})
    if wanted:
        found = {n: i for n, i in session.execute(select(Person.name, Person.id).where(Person.name.in_(wanted)))}
        missing = [name for name in wanted if name not in found]
        if missing:
            rows = [{"name": name, "consent_display": None} for name in missing]
            # an executemany of one cached statement: a multi-row VALUES was compiled anew for
            # each batch's count of names (2026-12-07)
            session.execute(_insert(session, Person).on_conflict_do_nothing(index_elements=["name"]), rows)
            found |= {n: i for n, i in session.execute(select(Person.name, Person.id).where(Person.name.in_(missing)))}
        cache.update(found)
    return {name: cache[name] for name in names}


def _insert(session: Session, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT (both SQLite's and PostgreSQL's have ``on_conflict_do_nothing``)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@dataclass(frozen=True)
class StoredProfile:
    """What a person card shows, as read back from the store (what goes in is
    :class:`lookalike.store.profiles.Profile`); everything but the name is
    optional and self-declared."""

    name: str
    display_name: str | None
    role: str | None
    organisation: str | None
    story: str | None
    tags: tuple[str, ...]
    consent_display: bool

    @property
    def title(self) -> str:
        return self.display_name or self.name.replace("_", " ")


def profiles(session: Session, names: Iterable[str]) -> dict[str, StoredProfile]:
    """The profiles of the people named, however many (read in chunks under the database's
    limit on bound parameters)."""
    out: dict[str, StoredProfile] = {}
    for part in chunks(sorted({n for n in names if n})):
        out.update((p.name, _profile(p)) for p in session.scalars(select(Person).where(Person.name.in_(part))))
    return out


@dataclass(frozen=True)
class PersonSummary:
    """One line of the people list: the profile, consent as stated (``None``: never stated),
    and what the library holds of them in one space."""

    profile: StoredProfile
    consent: bool | None
    photos: int
    faces: int


def people(session: Session, space_id: int | None, audience: Audience,
           name: str | None = None) -> list[PersonSummary]:
    """Everyone ``audience`` may see (:func:`sees`), or the one called ``name``, by name, with
    their photos and faces in space ``space_id`` (None: no space yet, every count 0)."""
    audience = Audience.of(audience)
    # space_id None compares as IS NULL, which no photo or face is: every count 0
    photos = (select(Photo.person_id, func.count().label("n")).where(Photo.space_id == space_id,
                                                                     Photo.status == PhotoStatus.ok.value)
              .group_by(Photo.person_id).subquery())
    faces = (select(Face.person_id, func.count().label("n")).where(Face.space_id == space_id)
             .group_by(Face.person_id).subquery())
    query = (select(Person, func.coalesce(photos.c.n, 0), func.coalesce(faces.c.n, 0))
             .outerjoin(photos, photos.c.person_id == Person.id).outerjoin(faces, faces.c.person_id == Person.id)
             .order_by(Person.name))
    condition = sees(audience)
    if condition is not None:
        query = query.where(condition)
    if name is not None:
        query = query.where(Person.name == name)
    return [PersonSummary(_profile(p), p.consent_display, int(n_photos), int(n_faces))
            for p, n_photos, n_faces in session.execute(query)]


def person_seen(session: Session, name: str, audience: Audience) -> Person | None:
    """The person named, if the audience may see them (else None, as if nobody had the name)."""
    audience = Audience.of(audience)
    query = select(Person).where(Person.name == name)
    test = sees(audience)
    return session.scalar(query if test is None else query.where(test))


def sees(audience: Audience) -> ColumnElement[bool] | None:
    """The audience's test on a ``Person`` row joined with ``OUTER JOIN`` (a face or photo
    without a person has a NULL consent: a visitor sees it, a role-model kiosk does not);
    ``None`` for the operator, who sees everyone."""
    audience = Audience.of(audience)
    if audience is Audience.visitor:
        return Person.consent_display.is_not(False)
    if audience is Audience.consented:
        return Person.consent_display.is_(True)
    return None


def _profile(p: Person) -> StoredProfile:
    return StoredProfile(p.name, p.display_name, p.role, p.organisation, p.story,
                         tuple(json.loads(p.tags)) if p.tags else (), bool(p.consent_display))


def withhold_unless_stated(session: Session, name: str, cache: dict | None = None) -> bool:
    """The person called ``name`` (created if new) withholds consent unless theirs is stated
    already; True when this narrowed it. The caller commits."""
    upsert_person(session, name, None, cache)
    person = person_by_name(session, name)
    if person is None or person.consent_display is not None:
        return False
    person.consent_display = False
    session.flush()
    return True


def set_consent(session: Session, name: str, consent: bool, by_staff: bool = False) -> bool:
    """Record a person's consent to be displayed; False when nobody has that name. The
    caller commits: from then on no visitor's search returns them. ``by_staff``: recorded
    by staff (the HTTP API, the admin page), whose withdrawal only staff undo; else by a
    corpus (a refused manifest row withholds it), which cannot undo a staff withdrawal."""
    person = person_by_name(session, name)
    if person is None:
        return False
    _write_consent(person, consent, by_staff, withdraws=True)
    session.flush()
    return True


def _write_consent(person: Person, consent: bool | None, by_staff: bool, withdraws: bool = False) -> None:
    """The one rule for writing consent: a withdrawal by staff (``withdraws``: their explicit
    consent action, :func:`set_consent`) stands against anything but staff granting it again
    (a corpus's "yes", or a profile that does not grant it, is said in a warning and not
    written); so is a profile staff save that turns a "yes" into "no". One that leaves an
    unstated or withheld consent withheld is none: a new person's form, or a public-corpus
    person's role edited, left a mark that refused a later signed "yes" (review of
    2026-12-07, M8)."""
    if by_staff and consent is True:
        person.consent_withdrawn_at = None
    elif by_staff and consent is False and (withdraws or person.consent_display is True):
        # the consent button, or a profile saved with its "yes" unticked (review, H1)
        person.consent_withdrawn_at = datetime.now(timezone.utc)
    elif person.consent_withdrawn_at is not None and consent is not False:
        said = (person.name, person.consent_withdrawn_at.isoformat())
        if said not in _SAID:  # once a person and withdrawal, not once a manifest row of theirs
            if len(_SAID) > 10_000:
                _SAID.clear()
            _SAID.add(said)
            log.warning("%s: consent stays withdrawn, as staff withdrew it on %s UTC; only staff grant it "
                        "again (the admin page's Record consent, or PUT /v1/people/NAME/consent)",
                        person.name, f"{person.consent_withdrawn_at:%Y-%m-%d %H:%M}")
        consent = False
    person.consent_display = consent


def display_tags(session: Session, space_id: int | None) -> list[str]:
    """Self-declared tags of the people who consented to be displayed and have a face stored
    in space ``space_id`` (a profile saved before its photos offered a tag that found no role
    model), sorted; none while there is no space (None)."""
    if space_id is None:
        return []
    tags: set[str] = set()
    with_faces = select(Face.person_id).where(Face.space_id == space_id, Face.person_id.is_not(None))
    for raw in session.scalars(select(Person.tags).where(Person.consent_display.is_(True), Person.tags.is_not(None),
                                                         Person.id.in_(with_faces))):
        if raw is not None:
            tags.update(json.loads(raw))
    return sorted(tags)


def anyone_withholds_consent(session: Session) -> bool:
    """Whether any person's profile withholds consent to be displayed (one indexed probe)."""
    return session.scalar(select(Person.id).where(Person.consent_display.is_(False)).limit(1)) is not None


def literal_like(value: str) -> str:
    """``value`` as a LIKE pattern that matches only itself, for ``.like(…, escape="\\")``
    (a filter or group is a value, never a pattern: ``organisation=%`` must not match everyone)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def person_matches(key: GroupKey, value: str) -> ColumnElement[bool]:
    """The one test of "this person is in the group ``key=value``" that search filters and
    face-math groups share. Every value is matched literally (never as a pattern): a tag
    as the JSON list stores it, quotes included; an organisation or role whole and case-
    insensitively; a person by name."""
    if key is GroupKey.tag:
        quoted = literal_like(json.dumps(normalise_tag(value)))
        return Person.tags.like(f"%{quoted}%", escape="\\")
    if key is GroupKey.organisation:
        return Person.organisation.ilike(literal_like(value), escape="\\")
    if key is GroupKey.role:
        return Person.role.ilike(literal_like(value), escape="\\")
    if key is GroupKey.person:
        return Person.name == value
    raise ValueError(f"no person group {key!r}")


def person_ids_by_name(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Each name somebody has -> that person's id (a name nobody has is left out)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    return {name: int(pid) for name, pid in session.execute(select(Person.name, Person.id)
                                                            .where(Person.name.in_(wanted)))}


def person_by_name(session: Session, name: str) -> Person | None:
    return person_seen(session, name, Audience.operator)
