"""The vector outbox is written by one mechanism, the session's events: every way a face or a
person's filter fields can change records the faces Milvus must hear of, in the same
transaction, including a write path written tomorrow that never heard of the outbox.
Plain SQLite, no model and no Milvus: what lands in ``vector_outbox`` is the whole contract."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sqlalchemy import delete, insert, select, update

from lookalike.faces.landmarks import MODEL as LANDMARK_MODEL
from lookalike.ingest.report import Processed
from lookalike.store import db, person_rows, photo_rows, space_rows
from lookalike.store.photo_batches import store_batch
from lookalike.store.profiles import Profile
from lookalike.store.schema import Face, Person, Photo, VectorOutbox
from lookalike.store.values import PhotoStatus


@dataclass
class Library:
    outboxed: db.sessionmaker
    plain: db.sessionmaker
    space_id: int


@pytest.fixture
def library(tmp_path) -> Library:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'lib.db'}")
    db.migrate(engine)
    outboxed = db.session_factory(engine, outbox=True)
    with outboxed() as session:
        space_id = space_rows.create_space(session, "M__d__chip", "M", "d", "chip", 4).id
        session.commit()
    return Library(outboxed, db.session_factory(engine), space_id)


def _store_photo(session, space_id: int, path: str, person: str | None, faces: int, *,
                 replaces: bool = False) -> list[int]:
    """A photo with ``faces`` faces, written by the ingest writer; the new face ids."""
    blob = np.full(4, 0.5, dtype="<f4").tobytes()
    done = Processed(path, person, None, f"sha of {path}", 1, PhotoStatus.ok,
                     faces=[((0, 0, 1, 1), 1.0, blob, None, None)] * faces, replaces=replaces)
    _stale, new_ids, _vectors = store_batch(session, space_id, [done], {}, LANDMARK_MODEL)
    return new_ids.tolist()


def _taken(session) -> list[int]:
    """The face ids the outbox lists (sorted, duplicates kept), then emptied."""
    ids = sorted(session.scalars(select(VectorOutbox.face_id)))
    session.execute(delete(VectorOutbox))
    return ids


def test_every_store_write_records_the_faces_milvus_must_follow(library):
    with library.outboxed() as session:
        ada = _store_photo(session, library.space_id, "/a1.jpg", "ada", 2)
        ada += _store_photo(session, library.space_id, "/a2.jpg", "ada", 1)
        bob = _store_photo(session, library.space_id, "/b1.jpg", "bob", 1)
        nobody = _store_photo(session, library.space_id, "/n1.jpg", None, 1)
        assert _taken(session) == sorted(ada + bob + nobody)  # new faces, each once
        again = _store_photo(session, library.space_id, "/a2.jpg", "ada", 1, replaces=True)  # a changed file
        assert _taken(session) == sorted([ada[2]] + again)  # its old face goes, its new one comes
        ada[2:] = again

        # a profile: only the fields Milvus filters on send the person's faces again
        person_rows.upsert_person(session, "ada", Profile(role="Engineer", story="Wrote notes"))
        assert _taken(session) == sorted(ada)
        person_rows.upsert_person(session, "ada", Profile(role="Engineer", story="Wrote more notes"))
        person_rows.upsert_person(session, "ada", Profile(role="Engineer", story="Wrote more notes"))
        assert _taken(session) == []
        person_rows.upsert_person(session, "ada", Profile(role="Engineer", tags=("maths",)))
        assert _taken(session) == sorted(ada)

        assert person_rows.set_consent(session, "bob", True)
        assert _taken(session) == bob
        assert person_rows.set_consent(session, "bob", True)  # unchanged: nothing to send
        assert _taken(session) == []

        photo = photo_rows.photo_by_path(session, library.space_id, "/a1.jpg")
        assert photo_rows.delete_photo(session, photo) == ada[:2]
        session.flush()
        assert _taken(session) == ada[:2]
        session.commit()


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "sqlite-before-3.35"])
def test_a_batchs_faces_estimates_and_landmarks_belong_to_their_own_photos(library, monkeypatch, returning):
    """One batch of three photos with 2, 0 and 1 faces: each face row under its own photo and
    person with its own vector, each estimate and landmark row on its own face, every face in
    the outbox: with ids returned by the INSERT, and from ORM objects where SQLite has no RETURNING."""
    from lookalike.store.schema import FaceEstimate, FaceLandmarks

    def face(value: float, age: float | None, points: bytes | None) -> tuple:
        estimate = None if age is None else {"age": age, "gender": {"woman": 0.5}, "dominant_emotion": "happy",
                                             "emotion": {"happy": 1.0}, "model": "m"}
        return ((int(value), 0, 1, 1), 1.0, np.full(4, value, dtype="<f4").tobytes(), estimate, points)

    batch = [Processed("/g.jpg", "gil", None, "sha g", 1, PhotoStatus.ok,
                       faces=[face(1.0, 31.0, b"p1"), face(2.0, None, b"p2")]),
             Processed("/n.jpg", "nia", None, "sha n", 1, PhotoStatus.no_face, faces=[]),
             Processed("/o.jpg", "oz", None, "sha o", 1, PhotoStatus.ok, faces=[face(3.0, 53.0, None)])]
    with library.outboxed() as session:
        monkeypatch.setattr(session.get_bind().dialect, "insert_returning", returning)
        _stale, new_ids, vectors = store_batch(session, library.space_id, batch, {}, LANDMARK_MODEL)
        rows = session.execute(select(Face.id, Photo.path, Person.name, Face.x, Face.embedding)
                               .join(Photo, Photo.id == Face.photo_id).join(Person, Person.id == Face.person_id)
                               .order_by(Face.id)).all()
        assert [(path, name, x) for _, path, name, x, _ in rows] == [("/g.jpg", "gil", 1), ("/g.jpg", "gil", 2),
                                                                   ("/o.jpg", "oz", 3)]
        assert [i for i, *_ in rows] == new_ids.tolist()
        assert [np.frombuffer(blob, "<f4")[0] for *_, blob in rows] == [1.0, 2.0, 3.0] == vectors[:, 0].tolist()
        ages = dict(session.execute(select(FaceEstimate.face_id, FaceEstimate.age)).all())
        assert ages == {new_ids[0]: 31.0, new_ids[2]: 53.0}
        points = dict(session.execute(select(FaceLandmarks.face_id, FaceLandmarks.points)).all())
        assert points == {new_ids[0]: b"p1", new_ids[1]: b"p2"}
        assert session.scalar(select(Photo.status).where(Photo.path == "/n.jpg")) == "no_face"
        assert _taken(session) == new_ids.tolist()
        session.rollback()


def test_a_write_path_that_never_heard_of_the_outbox_is_recorded_all_the_same(library):
    """ORM changes and bulk statements written outside the store's functions, as a future
    write path might: the session's events see them all."""
    with library.outboxed() as session:
        ada = _store_photo(session, library.space_id, "/a1.jpg", "ada", 2)
        bob = _store_photo(session, library.space_id, "/b1.jpg", "bob", 2)
        eve = _store_photo(session, library.space_id, "/e1.jpg", "eve", 1)
        cat = _store_photo(session, library.space_id, "/c1.jpg", "cat", 1)
        _taken(session)

        session.get(Face, ada[0]).person_id = person_rows.person_by_name(session, "bob").id  # refiled
        session.flush()
        assert _taken(session) == [ada[0]]

        session.delete(photo_rows.photo_by_path(session, library.space_id, "/b1.jpg"))  # faces cascade in SQL
        session.flush()
        assert _taken(session) == bob and session.scalar(select(Face.id).where(Face.id.in_(bob))) is None

        session.delete(person_rows.person_by_name(session, "eve"))  # faces kept, person NULL
        session.flush()
        assert _taken(session) == eve

        session.execute(update(Person).where(Person.name == "cat").values(organisation="CERN"))
        assert _taken(session) == cat
        session.execute(delete(Face).where(Face.id == ada[1]))
        assert _taken(session) == [ada[1]]
        session.execute(update(Photo).where(Photo.path == "/c1.jpg").values(reason="x"))  # not Milvus's
        assert _taken(session) == []

        photo_id = photo_rows.photo_by_path(session, library.space_id, "/c1.jpg").id
        face = dict(space_id=library.space_id, photo_id=photo_id, x=0, y=0, w=1, h=1, confidence=1.0,
                    embedding=b"\0" * 16)
        added = Face(**face)
        session.add(added)  # a new face, one object
        session.flush()
        assert _taken(session) == [added.id]
        # many in one statement, their ids returned (as the ingest's batches write them)
        returned = session.scalars(insert(Face).returning(Face.id, sort_by_parameter_order=True), [face, face]).all()
        assert len(returned) == 2 and _taken(session) == sorted(returned)
        with pytest.raises(RuntimeError, match="bypass the vector outbox"):  # with no ids to record
            session.execute(insert(Face), [face])
        session.rollback()


def test_a_library_without_milvus_writes_no_outbox_rows(library):
    with library.plain() as session:
        ada = _store_photo(session, library.space_id, "/a1.jpg", "ada", 2)
        person_rows.set_consent(session, "ada", False)
        session.execute(delete(Face).where(Face.id == ada[0]))
        session.execute(insert(Face), [dict(space_id=library.space_id, photo_id=1, x=0, y=0, w=1, h=1,
                                            confidence=1.0, embedding=b"\0" * 16)])
        photo_rows.delete_photo(session, photo_rows.photo_by_path(session, library.space_id, "/a1.jpg"))
        session.flush()
        assert _taken(session) == []
