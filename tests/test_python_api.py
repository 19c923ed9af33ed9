"""The Python API as its users call it, with the plain strings the docs' enums stand for: a
visitor given as ``audience="visitor"`` is a visitor (it was taken for the operator, showed
the people who withhold consent, and a cache kept that answer for the real visitors), and a
value that names nothing is a typed error naming the option, never a silent default or a
bare TypeError/AttributeError (helper 51's user test, 2026-12-07)."""

from __future__ import annotations

import pytest

import lookalike
from lookalike.errors import ConfigError, UnknownName

pytestmark = pytest.mark.e2e

OBAMA = "celeb/face_recognition/barack_obama/obama.jpg"


def _people(result) -> set[str]:
    return {m.person for f in result.faces for m in f.matches}


def test_a_visitor_named_by_a_string_is_a_visitor(faces, small_db):
    with lookalike.open(small_db) as lib:
        lib.people.set_consent("barack_obama", False)
        query = str(faces / OBAMA)
        assert "barack_obama" in _people(lib.search(query, k=20))  # the operator sees everyone
        for audience in ("visitor", lookalike.Audience.visitor, "consented"):  # the string first: no cache poisoned
            assert "barack_obama" not in _people(lib.search(query, k=20, audience=audience)), audience
        with pytest.raises(lookalike.NotFound):
            lib.person("barack_obama", audience="visitor")
        assert lib.stats(audience="visitor")["people"] == lib.stats()["people"] - 1
        with pytest.raises(UnknownName, match="unknown audience 'VISITOR'; choose one of: operator, visitor"):
            lib.search(query, audience="VISITOR")
        with pytest.raises(UnknownName, match="audience"):
            lib.pictures.average("person:barack_obama", audience="everyone")


def test_search_options_given_as_text_are_read_or_refused(faces, small_db):
    import numpy as np

    with lookalike.open(small_db) as lib:
        query = str(faces / OBAMA)
        by_person = lib.search(query, k=3, rank_by="centroid")
        assert by_person.faces[0].matches[0].person == "barack_obama"
        assert len({m.person for m in by_person.faces[0].matches}) == 3  # people, not faces
        only = lib.search(query, k=5, filters=["person=joe_biden"])
        assert _people(only) == {"joe_biden"} == _people(lib.search(query, k=np.int64(5), filters="person=joe_biden"))
        assert "ntotal" in lib.stats(audience="operator")["index"]  # the operator, named by text, told it all
        for bad, match in (({"rank_by": "bogus"}, "rank_by='bogus'"), ({"per_person": "no"}, "per_person='no'"),
                           ({"k": "3"}, "k='3'"), ({"filters": ["colour=red"]}, "unknown filter key")):
            with pytest.raises(ConfigError, match=match):
                lib.search(query, **bad)


def test_other_verbs_take_their_enums_as_text(faces, small_db, tmp_path):
    with lookalike.open(small_db) as lib:
        key_id, key = lib.keys.create("search")
        assert key.startswith("lk_") and key_id > 0
        with pytest.raises(UnknownName, match="key scope"):
            lib.keys.create("root")
        with pytest.raises(ConfigError, match="True or False"):
            lib.people.set_consent("joe_biden", "no")  # was stored as consent: a truthy string
        assert lib.pictures.average("person:barack_obama").faces >= 1
        with pytest.raises(ConfigError, match="faces='every'"):
            lib.ingest([str(faces / OBAMA)], faces="every")
        with pytest.raises(ConfigError, match="workers=-1"):
            lib.ingest([str(faces / OBAMA)], workers=-1)
        again = lib.ingest([str(faces / OBAMA)], faces="all").outcomes[0]  # read for every face now
        assert (again.status, again.reason) == ("ok", "read again: stored with --faces largest")


def test_odd_inputs_are_refused_by_name(faces, small_db):
    import numpy as np
    from PIL import Image

    from lookalike.errors import BadImage, NothingIngested
    from lookalike.store.profiles import Profile

    with pytest.raises(ConfigError, match="unknown setting 'colour'; the settings are "):
        lookalike.open(small_db, colour="red")
    with lookalike.open(small_db) as lib:
        with pytest.raises(NothingIngested, match="nothing to ingest"):
            lib.ingest([])
        rgb = np.asarray(Image.open(faces / OBAMA).convert("RGB"))
        with pytest.raises(BadImage, match="uint8"):  # 0-1 floats were a black picture: "no face"
            lib.search(rgb.astype(np.float32) / 255)
        with pytest.raises(BadImage, match="shape"):
            lib.search(np.zeros((0, 0, 3), np.uint8))  # was a cv2.error
        with pytest.raises(ConfigError, match="not NoneType"):
            lib.search(None)
        assert "barack_obama" in _people(lib.search(memoryview((faces / OBAMA).read_bytes())))
        made = lib.pictures.average("person:barack_obama")
        assert len(repr(made)) < 400 and "image" not in repr(made)  # not pages of pixels
        lib.people.save_profile("ghost", Profile(tags=("ghost-tag",), consent_display=True))
        assert "ghost-tag" not in lib.people.display_tags()  # no face: a tag that would find nobody
        lib.people.save_profile("barack_obama", Profile(tags=("elsewhere-tag",), consent_display=True))
        assert "elsewhere-tag" in lib.people.display_tags()
        from sqlalchemy import text

        from lookalike.store import space_rows

        with lib.session() as session:  # his faces only in another space (an interrupted reembed's)
            other = space_rows.create_space(session, "Dlib__dlib__chip", "Dlib", "dlib", "chip", 128)
            session.execute(text("UPDATE faces SET space_id = :s WHERE person_id = "
                                 "(SELECT id FROM people WHERE name = 'barack_obama')"), {"s": other.id})
            session.commit()
        assert "elsewhere-tag" not in lib.people.display_tags()  # a tag that finds no one in this space


def test_a_closed_library_answers_nothing(faces, small_db):
    """After ``close()`` a library, and a people or keys object taken from it before, raise
    ``LibraryClosed`` (it answered searches from a new connection: helper 51, L3); opening the
    file again works."""
    from lookalike.errors import LibraryClosed

    lib = lookalike.open(small_db)
    query = str(faces / OBAMA)
    assert "barack_obama" in _people(lib.search(query))
    people, keys = lib.people, lib.keys
    lib.close()
    aside = small_db.rename(small_db.with_suffix(".aside"))  # a call after close makes no file again
    for call in (lambda: lib.search(query), lambda: people.summaries(lookalike.Audience.operator),
                 lambda: keys.issued(), lambda: lib.person("barack_obama"),
                 lambda: lib.pictures.average("person:barack_obama")):
        with pytest.raises(LibraryClosed, match="this library was closed"):
            call()
    assert not small_db.exists()
    aside.rename(small_db)
    with lookalike.open(small_db) as again:
        assert "barack_obama" in _people(again.search(query))


def test_every_verb_that_runs_a_model_holds_the_librarys_lock(faces, small_db, monkeypatch):
    """The threads sharing a library (the web app's visitors, the HTTP API's requests) share
    its models: each verb that runs one takes ``lib.calls`` itself (every caller had to, and
    one that forgot raced: architecture review 50, M2). Seen from inside the detector: another
    thread cannot take the lock while it runs."""
    import threading

    from lookalike.faces.pipeline import FacePipeline
    from lookalike.store.profiles import Profile

    seen: list[bool] = []
    detect = FacePipeline.detect

    def watched(self, *args, **kwargs):
        free = []
        probe = threading.Thread(target=lambda: free.append(lib.calls.acquire(blocking=False) and
                                                            (lib.calls.release() or True)))
        probe.start()
        probe.join()
        seen.append(not free[0])
        return detect(self, *args, **kwargs)

    monkeypatch.setattr(FacePipeline, "detect", watched)
    obama, biden = str(faces / OBAMA), str(faces / "celeb/face_recognition/joe_biden/biden.jpg")
    with lookalike.open(small_db) as lib:
        lib.search(obama)
        lib.verify(obama, biden)
        lib.pictures.morph(obama, biden, frames=2)
        lib.people.save_profile("zoe", Profile(consent_display=True))
        lib.add_photos("zoe", [("z.jpg", (faces / "lfw-dev/images/Aaron_Sorkin/Aaron_Sorkin_0001.jpg").read_bytes())])
    assert len(seen) >= 4 and all(seen), seen


def test_key_times_read_the_same_on_every_store(backend):
    """A key's times are ISO 8601 in UTC with the zone said, whichever database keeps them
    (PostgreSQL's timestamptz came back with ``+00:00``, SQLite's without: move user test)."""
    from datetime import datetime, timedelta, timezone

    with backend.open() as lib:
        key_id, _ = lib.keys.create("search", "kiosk")
        lib.keys.revoke(key_id)
        (row,) = lib.keys.issued()
    for field in ("created_at", "revoked_at"):
        assert row[field].endswith("+00:00"), (backend.name, row[field])
        moment = datetime.fromisoformat(row[field])
        # the moment itself is UTC, not local time labelled so (10 min: any machine's pace)
        assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=10), (backend.name, row[field])
