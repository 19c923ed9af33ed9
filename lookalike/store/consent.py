"""Whose faces an answer may be made of: the one place the consent rule meets SQL.

An :class:`~lookalike.store.values.Audience` names who the answer is for. Everything a
visitor's answer is computed from is selected here with the audience's condition in the
query itself: the faces of a face-math group (``toward=person:…``, ``tag:…``, ``age:…``),
the corpus average a query is moved away from, the counts of ``/v1/stats``, and the photo
files served by ``/v1/photos/{id}``. A group of people a visitor may not see therefore has
no faces, exactly like a group that does not exist, and never moves their query.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Select, SQLColumnExpression, func, select
from sqlalchemy.orm import Session

from .person_rows import anyone_withholds_consent, person_matches, sees
from .schema import Centroid, Face, FaceEstimate, Person, Photo
from .values import PERSON_KEYS, Audience, GroupKey, PhotoStatus, chunks


def _seen(query: Select, person_id: SQLColumnExpression[int | None], audience: Audience,
          session: Session) -> Select:
    """``query`` narrowed to what ``audience`` may see, ``person_id`` being the column that
    names the row's person. A visitor of a library where nobody withholds consent (a public
    corpus) sees everything: the query stays as it is."""
    condition = sees(audience)
    if condition is None or (audience is Audience.visitor and not anyone_withholds_consent(session)):
        return query
    return query.outerjoin(Person, Person.id == person_id).where(condition)


def group_face_ids(session: Session, space_id: int, key: GroupKey, value: str,
                   age_range: tuple[float, float] | None = None,
                   audience: Audience = Audience.operator) -> np.ndarray:
    """Ids of the faces of a face-math group that ``audience`` may see: people
    (:func:`~lookalike.store.person_rows.person_matches`), or faces whose stored estimate has this
    ``emotion``, or an age in ``age_range`` (``key`` "age")."""
    audience = Audience.of(audience)
    query = select(Face.id).where(Face.space_id == space_id)
    if key in PERSON_KEYS:
        query = query.join(Person, Person.id == Face.person_id).where(person_matches(key, value))
        condition = sees(audience)
        if condition is not None:
            query = query.where(condition)
    else:
        query = query.join(FaceEstimate, FaceEstimate.face_id == Face.id)
        if key is GroupKey.emotion:
            query = query.where(FaceEstimate.emotion == value.lower())
        elif key is GroupKey.age and age_range is not None:
            query = query.where(FaceEstimate.age >= age_range[0], FaceEstimate.age < age_range[1])
        else:
            raise ValueError(f"no face group {key!r}")
        query = _seen(query, Face.person_id, audience, session)
    return np.fromiter(session.scalars(query), dtype=np.int64)


def withheld_faces(session: Session, space_id: int) -> np.ndarray:
    """Ids of the faces of the people whose profile withholds consent: what a visitor's whole
    search leaves out (a few, where the faces a visitor may see are nearly all)."""
    query = (select(Face.id).join(Person, Person.id == Face.person_id)
             .where(Face.space_id == space_id, Person.consent_display.is_(False)).order_by(Face.id))
    return np.fromiter(session.scalars(query), dtype=np.int64)


def corpus_sum(session: Session, space_id: int, audience: Audience) -> tuple[np.ndarray, int] | None:
    """The sum of the vectors of every face ``audience`` may see, and their count (``None``
    when there is none), from the running sums kept per person: the corpus row for the
    operator; for a visitor the corpus less the people who withhold consent; for a
    role-model kiosk the people who consented."""
    audience = Audience.of(audience)
    corpus = select(Centroid.sum, Centroid.count).where(Centroid.space_id == space_id)

    def people(consent: bool) -> list:
        return list(session.execute(corpus.join(Person, Person.id == Centroid.person_id)
                                    .where(Person.consent_display.is_(consent))).all())

    total: np.ndarray | None = None
    n, sign = 0, 1
    if audience is Audience.consented:
        parts = people(True)
    else:
        whole = session.execute(corpus.where(Centroid.person_id.is_(None))).first()
        if whole is None:
            return None
        total, n = np.frombuffer(whole[0], dtype="<f8").copy(), int(whole[1])
        parts, sign = (people(False) if audience is Audience.visitor else []), -1
    for blob, count in parts:
        vec = np.frombuffer(blob, dtype="<f8")
        total = vec.copy() if total is None else total + sign * vec
        n += sign * int(count)
    if total is None or n <= 0:
        return None
    return total, n


def counts(session: Session, space_id: int, audience: Audience) -> dict:
    """What ``/v1/stats`` and ``lookalike stats`` count, of what ``audience`` may see:
    people with faces, photos (every status), faces, photos by status, and the stored
    estimates by emotion and by decade of estimated age."""
    audience = Audience.of(audience)
    people = session.scalar(_seen(select(func.count(func.distinct(Face.person_id)))
                                  .where(Face.space_id == space_id), Face.person_id, audience, session)) or 0
    photos = session.scalar(_seen(select(func.count(Photo.id)).where(Photo.space_id == space_id),
                                  Photo.person_id, audience, session)) or 0
    faces = session.scalar(_seen(select(func.count(Face.id)).where(Face.space_id == space_id),
                                 Face.person_id, audience, session)) or 0
    return {"people": int(people), "photos": int(photos), "faces": int(faces),
            "statuses": status_counts(session, space_id, audience),
            "estimates": estimate_summary(session, space_id, audience)}


def status_counts(session: Session, space_id: int, audience: Audience = Audience.operator) -> dict[str, int]:
    """Photos by status (every status named, zeros included)."""
    audience = Audience.of(audience)
    rows = session.execute(_seen(select(Photo.status, func.count(Photo.id)).where(Photo.space_id == space_id),
                                 Photo.person_id, audience, session).group_by(Photo.status))
    out = {s.value: 0 for s in PhotoStatus}
    out.update({status: int(n) for status, n in rows})
    return out


def estimate_summary(session: Session, space_id: int, audience: Audience = Audience.operator) -> dict:
    """How many faces carry estimates, by emotion and by decade of estimated age."""
    audience = Audience.of(audience)
    rows = session.execute(_seen(select(FaceEstimate.age, FaceEstimate.emotion)
                                 .join(Face, Face.id == FaceEstimate.face_id).where(Face.space_id == space_id),
                                 Face.person_id, audience, session)).all()
    emotions: dict[str, int] = {}
    decades: dict[str, int] = {}
    for age, emotion in rows:
        emotions[emotion] = emotions.get(emotion, 0) + 1
        band = f"{int(age) // 10 * 10}s"
        decades[band] = decades.get(band, 0) + 1
    return {"faces": len(rows), "emotion": dict(sorted(emotions.items())),
            "age_band": dict(sorted(decades.items(), key=lambda kv: int(kv[0][:-1])))}


def photo_path(session: Session, photo_id: int, audience: Audience) -> str | None:
    """The file of photo ``photo_id`` if ``audience`` may see it, else ``None`` (whether it
    does not exist or is withheld: the caller cannot tell). Beside the operator, only a
    photo that gave faces (``ok``) of a person they may see."""
    audience = Audience.of(audience)
    query = select(Photo.path).where(Photo.id == photo_id)
    if audience is not Audience.operator:
        query = _seen(query.where(Photo.status == PhotoStatus.ok.value), Photo.person_id, audience, session)
    return session.scalar(query)


def photo_ids(session: Session, face_ids: list[int]) -> dict[int, int]:
    """Face id -> the id of the photo it was found in (a missing id is left out)."""
    out: dict[int, int] = {}
    for chunk in chunks([int(i) for i in face_ids]):
        out.update({int(f): int(p) for f, p in session.execute(select(Face.id, Face.photo_id)
                                                               .where(Face.id.in_(chunk)))})
    return out
