"""Consent kept in face math, counts and photo references (issue 23, privacy).

The kiosk library (the README's role-model manifest) has two people who withhold consent:
sheldon (tag ``physics``, shared with leonard and raj) and stuart, given here a tag only he
has (``comic-books``). A copy of it without those two is what every visitor must see:
their answers on the library with them are the operator's answers on the copy without them.
HTTP is exercised in process (FastAPI's test client), keyless (``--open-search``), with a
search key and with an admin key.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import app_page, cli
from PIL import Image

import lookalike
from lookalike.store.profiles import Profile

BBT = "celeb/faceapi_bbt"
WITHHELD = ("sheldon", "stuart")
# groups made only of people who withhold consent, and what an unknown group looks like
HIDDEN_GROUPS = ("person:sheldon", "person:stuart", "tag:comic-books")
UNKNOWN = {"person": "person:nobody_at_all", "tag": "tag:no-such-tag"}


@pytest.fixture(scope="module")
def libs(kiosk_db, tmp_path_factory) -> dict[str, Path]:
    """``with``: the kiosk library, stuart tagged ``comic-books`` (only he is); ``without``:
    the same library after sheldon and stuart were removed. Both copies, folders and all."""
    from lookalike.store.profiles import Profile

    root = tmp_path_factory.mktemp("consent")
    out = {}
    for name in ("with", "without"):
        folder = root / name
        shutil.copytree(kiosk_db.parent, folder)
        out[name] = folder / kiosk_db.name
    with lookalike.open(out["with"]) as lib:
        lib.people.save_profile("stuart", Profile(display_name="Stuart Bloom", role="Shop owner", tags=("comic books",),
                                           consent_display=False))
    with lookalike.open(out["without"]) as lib:
        for person in WITHHELD:
            lib.remove_person(person)
    return out


def _client(db: Path):
    from _site import in_process

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    # returned once the models, loading in a thread, are ready; a failed start fails at once
    return in_process(create_app(ServeSettings(db=str(db), open_search=True, rate_per_minute=0)))


@pytest.fixture(scope="module")
def api(libs) -> dict:
    """A keyless (open search) server on each library, and a search and an admin key on ``with``."""
    keys = {}
    with lookalike.open(libs["with"]) as lib:
        from lookalike.store.values import KeyScope

        for scope in KeyScope:
            keys[scope.value] = lib.keys.create(scope)[1]
    clients = {name: _client(db) for name, db in libs.items()}
    yield {"clients": clients, "keys": keys}
    for client in clients.values():
        client.__exit__(None, None, None)


def _headers(api: dict, who: str) -> dict:
    return {} if who == "keyless" else {"X-API-Key": api["keys"][who]}


def _search(api: dict, faces: Path, who: str = "keyless", lib: str = "with", photo: str = "penny/penny5.png",
            **data: str):
    path = faces / BBT / photo
    return api["clients"][lib].post("/v1/search", headers=_headers(api, who), data=data,
                                    files={"photo": (path.name, path.read_bytes(), "image/png")})


def _problem(response) -> tuple[int, str, str, str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    return response.status_code, body["code"], body["title"], body["detail"]


def _close(a, b, path: str = "") -> list[str]:
    """Where two JSON answers differ (numbers within 1e-5: sums kept in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if abs(a - b) <= 1e-5 else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


# -- 1. face math --------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["keyless", "search"])
def test_a_withheld_group_answers_exactly_like_a_group_that_does_not_exist(api, faces, who):
    for hidden in HIDDEN_GROUPS:
        unknown = UNKNOWN[hidden.split(":")[0]]
        for field, extra in (("toward", {}), ("away", {"toward": "tag:women-in-science"})):
            got = _problem(_search(api, faces, who, **extra, **{field: hidden}))
            expected = _problem(_search(api, faces, who, **extra, **{field: unknown}))
            assert got[:3] == expected[:3] == (404, "not_found", expected[2]), (hidden, field, got)
            assert got[3] == expected[3].replace(unknown, hidden), (hidden, field, got)
    # a group with people a visitor may see still moves the query
    moved = _search(api, faces, who, toward="tag:physics")
    assert moved.status_code == 200, moved.text
    assert "toward tag:physics" in moved.json()["faces"][0]["moved"]


@pytest.mark.parametrize("math", [
    {"toward": "person:amy"},  # away from the corpus average: sheldon and stuart are in it
    {"toward": "tag:physics"},  # sheldon is tagged physics
    {"toward": "tag:women-in-science", "away": "tag:physics"},
    {"toward": "tag:engineering", "away": "person:leonard", "per_person": "true", "k": "4"},
    {"toward": "tag:physics", "by": "centroid", "strength": "2"},
])
def test_withheld_faces_never_move_a_visitors_query(api, faces, math):
    """A visitor's answer on the library with the withheld people is the answer on the
    library without them: their faces are in no average the query is moved by, and the
    corpus typicality is of the faces the visitor may see."""
    for who in ("keyless", "search"):
        got = _search(api, faces, who, **math)
        assert got.status_code == 200, got.text
        expected = _search(api, faces, "keyless", lib="without", **math)
        assert _close(got.json(), expected.json()) == [], who
    plain = _search(api, faces)
    assert _close(plain.json(), _search(api, faces, lib="without").json()) == []


def test_the_cli_as_a_visitor_keeps_consent_in_face_math(libs, faces):
    """``lookalike search --audience visitor`` (a visitor's semantics on the command line)
    and ``--consented-only``: a withheld group fails as an unknown one, and the answer is
    the operator's answer on the library without the withheld people."""
    photo = str(faces / BBT / "penny" / "penny5.png")

    def search(db: Path, *args: str):
        return cli("search", photo, "--db", str(db), "--json", *args)

    for flags in (["--consented-only"], ["--audience", "visitor"], ["--audience", "consented"]):
        for hidden in HIDDEN_GROUPS:
            unknown = UNKNOWN[hidden.split(":")[0]]
            got, expected = search(libs["with"], *flags, "--toward", hidden), \
                search(libs["with"], *flags, "--toward", unknown)
            assert got.returncode == expected.returncode != 0, (flags, hidden, got.stdout)
            assert got.stderr == expected.stderr.replace(unknown, hidden), (flags, hidden)
            away = search(libs["with"], *flags, "--toward", "tag:physics", "--away", hidden)
            assert away.returncode == expected.returncode and "no faces in group" in away.stderr
    for args in (["--toward", "person:amy"], ["--toward", "tag:physics", "--away", "person:raj", "-k", "6"]):
        visitor = search(libs["with"], "--audience", "visitor", *args)
        assert visitor.returncode == 0, visitor.stderr
        operator = search(libs["without"], *args)
        assert _close(json.loads(visitor.stdout), json.loads(operator.stdout)) == []
    # the operator still sees everyone: their group is theirs to use
    mine = search(libs["with"], "--toward", "person:sheldon")
    assert mine.returncode == 0 and "toward person:sheldon" in json.loads(mine.stdout)["faces"][0]["moved"]


def test_the_find_page_compares_a_visitor_with_the_faces_they_may_see(libs, faces, monkeypatch):
    """The Find page's "compared with the average face of this whole collection": of the
    people a visitor may see, so the same on the library with and without the withheld."""
    from streamlit.testing.v1 import AppTest

    photo = faces / BBT / "penny" / "penny5.png"
    captions = {}
    for name, db in libs.items():
        at: AppTest = app_page("find.py", db, monkeypatch)
        at.file_uploader[0].set_value((photo.name, photo.read_bytes(), "image/png"))
        at.run()
        assert not at.exception, at.exception
        captions[name] = [c.value for c in at.caption if "average face of this whole collection" in c.value]
        cards = [m.value for m in at.markdown if m.value.startswith("### ")]
        assert len(cards) == 3 and not any("Sheldon" in c or "Stuart" in c for c in cards)
    assert captions["with"] and captions["with"] == captions["without"]


# -- 2. counts and photo references ---------------------------------------------------------
def test_stats_count_what_the_caller_may_see(api):
    with_, without = api["clients"]["with"], api["clients"]["without"]
    everyone_without = without.get("/v1/stats").json()  # nobody withholds consent there
    for who in ("keyless", "search"):
        stats = with_.get("/v1/stats", headers=_headers(api, who)).json()
        people = with_.get("/v1/people", headers=_headers(api, who)).json()["people"]
        assert stats["people"] == len(people) == 6
        assert stats["faces"] == sum(p["faces"] for p in people)
        for key in ("people", "photos", "faces", "statuses", "estimates"):
            assert stats[key] == everyone_without[key], key
        assert "ntotal" not in stats["index"] and "bytes" not in stats["index"]  # of everyone
    admin = with_.get("/v1/stats", headers=_headers(api, "admin")).json()
    assert admin["people"] == 8 and admin["faces"] == everyone_without["faces"] + 8
    assert admin["index"]["ntotal"] == admin["faces"]


def test_visitors_get_photo_references_never_server_paths(api, faces, libs, kiosk_db):
    folders = [str(libs["with"].parent), str(kiosk_db.parent)]  # the photos' paths are the kiosk's

    def answers(who: str) -> list:
        headers = _headers(api, who)
        client = api["clients"]["with"]
        return [_search(api, faces, who, k="5").json(),
                _search(api, faces, who, k="4", per_person="true", by="centroid").json(),
                _search(api, faces, who, k="3", toward="tag:physics").json(),
                client.get("/v1/people", headers=headers).json(),
                client.get("/v1/people/amy", headers=headers).json()]

    for who in ("keyless", "search"):
        got = answers(who)
        text = json.dumps(got)
        assert not any(folder in text for folder in folders), who
        assert all(a.pop("query") == "penny5.png" for a in got[:3])  # the caller's own file name
        assert ".png" not in json.dumps(got)  # no photo named by its file, anywhere
        entries = [m for f in got[0]["faces"] for m in f["matches"]] + got[4]["faces"]
        assert entries and all(e["photo"] == f"/v1/photos/{e['photo_id']}" for e in entries)
    admin = answers("admin")
    matches = admin[0]["faces"][0]["matches"]
    assert matches and all(Path(m["photo"]).is_file() and isinstance(m["photo_id"], int) for m in matches)
    # the operator's CLI keeps paths, as ever
    printed = json.loads(cli("search", str(faces / BBT / "penny" / "penny5.png"), "--db", str(libs["with"]),
                             "--json").stdout)
    assert Path(printed["faces"][0]["matches"][0]["photo"]).is_file()


def test_photos_are_served_under_the_consent_rules(api):
    client = api["clients"]["with"]
    admin = _headers(api, "admin")
    amy = client.get("/v1/people/amy", headers=admin).json()["faces"][0]
    sheldon = client.get("/v1/people/sheldon", headers=admin).json()["faces"][0]
    missing = 10**9
    for who in ("keyless", "search"):
        got = client.get(f"/v1/photos/{amy['photo_id']}", headers=_headers(api, who))
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"  # cut to her face
        with Image.open(io.BytesIO(got.content)) as cut, Image.open(amy["photo"]) as whole:
            x, y, w, h = amy["bbox"]
            assert w <= cut.width <= whole.width and h <= cut.height <= whole.height
        assert got.headers["x-content-type-options"] == "nosniff"
        hidden = _problem(client.get(f"/v1/photos/{sheldon['photo_id']}", headers=_headers(api, who)))
        absent = _problem(client.get(f"/v1/photos/{missing}", headers=_headers(api, who)))
        assert hidden[:3] == absent[:3] and hidden[0] == 404
        assert hidden[3] == absent[3].replace(str(missing), str(sheldon["photo_id"]))
    seen = client.get(f"/v1/photos/{sheldon['photo_id']}", headers=admin)  # an admin: the bytes as stored
    assert seen.status_code == 200 and seen.content == Path(sheldon["photo"]).read_bytes()
    assert _problem(client.get(f"/v1/photos/{missing}", headers=admin))[0] == 404
    assert client.get("/v1/photos/1", headers={"X-API-Key": "lk_not_a_key"}).status_code == 401


def test_a_group_photo_filed_under_one_person_shows_a_visitor_only_them(faces, small_db):
    """Obama and Biden in one photo, filed under barack_obama with Biden withholding consent:
    a visitor is shown the photo cut to the face stored from it (Obama's), in which the
    detector finds one face; the whole photo showed Biden beside him (re-probe, M3)."""
    from lookalike.errors import NotFound
    from lookalike.faces import detect
    from lookalike.store.values import Audience

    group = faces / "bad-inputs" / "collected" / "multi_face__obama_and_biden.jpg"
    with lookalike.open(small_db) as lib:
        lib.people.set_consent("joe_biden", False)
        lib.ingest([str(group)], person="barack_obama")
        (photo_id,) = [p for p, path, _, _ in lib.people.photos("barack_obama") if Path(path) == group]
        cut = lib.people.portrait(photo_id, Audience.visitor)
        with pytest.raises(NotFound):  # nor a withheld person's photo, as an id that does not exist
            lib.people.portrait(10**9, Audience.visitor)
    whole = np.asarray(Image.open(group).convert("RGB"))
    yunet = detect.build("yunet", 1280)
    assert len(yunet.detect(whole)) >= 2 and len(yunet.detect(cut)) == 1
    assert cut.shape[0] * cut.shape[1] < whole.shape[0] * whole.shape[1] / 2
    from lookalike.verbs.people import PORTRAIT_SIDE

    assert max(cut.shape[:2]) <= PORTRAIT_SIDE  # no screen shows a 40 MP photo's every pixel


def test_an_upload_of_several_faces_of_like_size_is_refused(faces, small_db):
    """Uploaded under one name, a photo of several people of like size kept the largest face
    as theirs, and in a probe that was a colleague who had withdrawn consent, then shown to
    visitors under the name uploaded for (re-probe 52, N4): such an upload is refused with
    what to do instead; a photo of the person alone is stored."""
    group = faces / "bad-inputs" / "collected" / "multi_face__obama_and_biden.jpg"
    alone = faces / "lfw-dev" / "images" / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg"
    from lookalike.faces import images

    decoded = []
    real_decode, real_file = images.decode, images.decode_file
    with lookalike.open(small_db) as lib, pytest.MonkeyPatch.context() as patch:
        patch.setattr(images, "decode", lambda *a, **k: decoded.append(a[1]) or real_decode(*a, **k))
        patch.setattr(images, "decode_file", lambda *a, **k: decoded.append(a[0]) or real_file(*a, **k))
        lib.people.save_profile("aaron_sorkin", Profile(consent_display=True))
        before = lib.stats()["faces"]
        report, _ = lib.add_photos("aaron_sorkin", [("group.jpg", group.read_bytes()),
                                                    ("alone.jpg", alone.read_bytes())])
        assert len(decoded) == 2, decoded  # each upload decoded once: the crowd check is the ingest's own read
        by_status = {o.status.value: o for o in report.outcomes}
        assert set(by_status) == {"rejected", "ok"}, by_status
        refused = by_status["rejected"]
        assert "faces of like size" in refused.reason and "add a photo of them alone" in refused.reason
        assert lib.stats()["faces"] == before + 1
        # the uploads folder ingested with every face later: the upload stays its one face
        from lookalike.faces.pipeline import FacesMode

        again = lib.ingest([str(Path(by_status["ok"].path).parent)], faces=FacesMode.all)
        assert {o.status.value for o in again.outcomes if o.path == by_status["ok"].path} == {"unchanged"}
        assert lib.stats()["faces"] == before + 1


def test_the_consent_rule_holds_on_postgresql(postgres, libs, faces, tmp_path):
    """The same selections in PostgreSQL's SQL: the kiosk manifest ingested there answers a
    visitor as the SQLite library does."""
    from lookalike.errors import NotFound
    from lookalike.query.facemath import FaceMath
    from lookalike.store.values import Audience

    photo = str(faces / BBT / "penny" / "penny5.png")
    with lookalike.open(postgres(), index_dir=tmp_path / "idx") as pg, lookalike.open(libs["with"]) as lite:
        assert pg.ingest([str(libs["with"].parent / "role-models.csv")]).statuses["ok"] == 32
        with pytest.raises(NotFound, match="no faces in group person:sheldon"):
            pg.search(photo, audience=Audience.visitor, math=FaceMath.parse("person:sheldon", None, 1.0))
        for audience in Audience:
            told = pg.stats(audience)
            assert told["people"] == {"operator": 8, "visitor": 6, "consented": 6}[audience.value]
            # where the library is, and the index's size (everyone's faces), are the operator's
            operator = audience is Audience.operator
            assert ("db" in told, "ntotal" in told["index"], "file" in told["index"]) == (operator,) * 3
            pg_centroid = pg.view.facts.corpus_centroid(audience)
            lite_centroid = lite.view.facts.corpus_centroid(audience)
            assert _close(pg_centroid[0].tolist(), lite_centroid[0].tolist()) == []
        for math in (FaceMath.parse("person:amy", None, 1.0), FaceMath.parse("tag:physics", "person:raj", 1.5)):
            got = pg.search(photo, k=5, audience=Audience.visitor, math=math).faces[0]
            expected = lite.search(photo, k=5, audience=Audience.visitor, math=math).faces[0]
            assert [m.person for m in got.matches] == [m.person for m in expected.matches]
            assert _close([m.similarity for m in got.matches], [m.similarity for m in expected.matches]) == []
            assert got.moved == expected.moved


def test_the_person_verb_does_not_find_a_withheld_person_as_it_does_not_find_nobody(libs):
    """``Library.person`` takes the audience as every verb does (the HTTP route once checked
    consent itself): a visitor's or a kiosk's request for a withheld person is not found, in
    the same words as a name nobody has; the operator still sees them."""
    from lookalike.errors import NotFound
    from lookalike.store.values import Audience

    with lookalike.open(libs["with"]) as lib:
        for person in WITHHELD:
            seen = lib.person(person)
            assert seen.faces and seen.figures()["faces"] == len(seen.faces)
            for audience in (Audience.visitor, Audience.consented):
                with pytest.raises(NotFound) as withheld:
                    lib.person(person, audience)
                with pytest.raises(NotFound) as absent:
                    lib.person("nobody_at_all", audience)
                assert str(withheld.value) == str(absent.value).replace("nobody_at_all", person)
        shown = lib.person("amy", Audience.visitor)
        assert shown.faces and shown.to_dict()["centroid"] == shown.figures()


def test_an_admins_photo_is_the_bytes_stored_never_what_has_taken_their_place(faces, small_db):
    """An admin key got whatever lay at a photo's stored path: a photo swapped for a link to
    /etc/passwd served /etc/passwd (security probe, 2026-12-07). The bytes are served only
    while they are the ones stored; otherwise the id is the 404 of one that does not exist."""
    import sqlite3

    from lookalike.errors import NotFound

    alone = faces / "lfw-dev" / "images" / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg"
    with lookalike.open(small_db) as lib:
        lib.people.save_profile("aaron_sorkin", Profile(consent_display=True))
        lib.add_photos("aaron_sorkin", [("alone.jpg", alone.read_bytes())])
        with sqlite3.connect(small_db) as db:
            photo_id, path = db.execute("select id, path from photos where path like '%aaron_sorkin%' "
                                        "and status = 'ok'").fetchone()
        assert lib.photo_bytes(photo_id) == alone.read_bytes()
        Path(path).unlink()
        Path(path).symlink_to(faces / "celeb" / "face_recognition" / "joe_biden" / "biden.jpg")
        with pytest.raises(NotFound, match=f"no photo {photo_id} in this library"):
            lib.photo_bytes(photo_id)
        Path(path).unlink()
        Path(path).symlink_to("/dev/zero")  # read for ever, under the library's lock, before
        with pytest.raises(NotFound, match=f"no photo {photo_id} in this library"):
            lib.photo_bytes(photo_id)
