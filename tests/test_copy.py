"""``lookalike copy``: a library moved from SQLite to PostgreSQL keeps what only the library
knew. Ingesting the corpus again there (the one way the docs implied) lost a consent staff had
withdrawn (the person was shown to visitors again), profiles, API keys, calibration and
uploaded people, and renumbered every face and photo (scale user test, 2026-12-07, F1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli

import lookalike
from lookalike.store.profiles import Profile
from lookalike.store.values import Audience, KeyScope

pytestmark = pytest.mark.e2e

OBAMA = "bad-inputs/collected/resolution_ladder__obama-720p.jpg"
SORKIN = "lfw-dev/images/Aaron_Sorkin/Aaron_Sorkin_0001.jpg"


def _answer(lib, query: str, audience: Audience = Audience.operator) -> list[tuple]:
    return [(m.person, m.face_id, m.photo_id, round(m.similarity, 4))
            for f in lib.search(query, k=8, audience=audience).faces for m in f.matches]


def test_a_library_copied_to_postgresql_keeps_everything_a_reingest_lost(postgres, faces, small_db, tmp_path):
    query = str(faces / OBAMA)
    with lookalike.open(small_db) as lib:
        lib.people.save_profile("zoe", Profile(role="Engineer", consent_display=True))
        lib.add_photos("zoe", [("z.jpg", (faces / SORKIN).read_bytes())])
        lib.people.set_consent("barack_obama", False)  # by staff: no manifest grants it back
        _, key = lib.keys.create("search")
        lib.view.facts.save_calibration(0.41, 0.12, "eval verify mine.tsv", {})
        before, shown = _answer(lib, query), _answer(lib, query, Audience.visitor)
        uploaded = Path(lib.people.photos("zoe")[0][1])
    assert uploaded.is_file() and "barack_obama" in {m[0] for m in before} - {m[0] for m in shown}

    url, shared = postgres(), tmp_path / "shared"
    refused = cli("copy", "--db", str(small_db), "--to", url)  # uploads need a folder of their own there
    assert refused.returncode != 0 and "--uploads-to" in refused.stderr
    done = cli("copy", "--db", str(small_db), "--to", url, "--uploads-to", str(shared), "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["uploads"] == 1 and said["rows"]["api_keys"] == 1 and all(said["index"].values())
    assert cli("copy", "--db", str(small_db), "--to", url, "--uploads-to", str(shared)).returncode != 0  # not empty
    # and on from PostgreSQL: both index folders are this one's (unused there), no refusal
    onward = cli("copy", "--db", url, "--to", postgres(), "--uploads-to", str(tmp_path / "shared2"))
    assert onward.returncode == 0, onward.stderr

    with lookalike.open(url, upload_dir=shared) as copy:
        assert _answer(copy, query) == before  # the same faces, ids and similarities
        assert _answer(copy, query, Audience.visitor) == shown  # the withdrawal came along
        assert copy.keys.scope(key) is KeyScope.search
        assert copy.view.facts.calibration().threshold == pytest.approx(0.41)
        (photo,) = copy.people.photos("zoe")
        copied = Path(photo[1])
        assert copied.is_relative_to(shared) and copied.read_bytes() == uploaded.read_bytes()
        copy.people.save_profile("barack_obama", Profile(role="President", consent_display=None))  # no grant
        assert _answer(copy, query, Audience.visitor) == shown
        with copy.session() as session:
            from sqlalchemy import text

            assert session.execute(text("select consent_withdrawn_at from people where name = 'barack_obama'")
                                   ).scalar() is not None  # the withdrawal itself came along
        copy.remove_person("zoe")
        assert not copied.exists() and uploaded.is_file()  # the copy's file went, the original's stays
        with copy.session() as session:
            from sqlalchemy import text

            assert session.execute(text("select count(*) from faces where vec is null")).scalar() == 0


def test_a_copy_has_its_own_space_uid_so_a_shared_milvus_store_keeps_them_apart(small_db, tmp_path):
    """A copy's collection in a Milvus store is its own: two copies with one uid overwrote each
    other's collection, and a search answered another library's face (scale user test, F7)."""
    twin = tmp_path / "twin.db"
    assert cli("copy", "--db", str(small_db), "--to", str(twin)).returncode == 0
    uids = []
    for db in (small_db, twin):
        with lookalike.open(db) as lib, lib.session() as session:
            from sqlalchemy import text

            uids.append(session.execute(text("select key, uid from indexes")).all())
    assert [k for k, _ in uids[0]] == [k for k, _ in uids[1]] and uids[0] != uids[1]


def test_a_copy_is_refused_before_anything_is_written_where_it_would_share_or_merge(small_db, tmp_path,
                                                                                    monkeypatch):
    """Refused in one line, the target untouched: the original's upload folder named for the
    copy (both would own its files: a removal on the copy deleted the original's photos),
    LOOKALIKE_INDEX_DIR left exported for the original (the copy's rows went in, its index did
    not), a target holding only an API key (a traceback, or the key merged into the copy), an
    existing file (upgraded before it was refused): review of 2026-12-07, M1-M3, L2."""
    from lookalike.places import default_upload_dir

    with lookalike.open(small_db) as lib:
        lib.people.save_profile("zoe", Profile(consent_display=True))
        lib.add_photos("zoe", [("z.jpg", b"not a photo, kept as an upload")])
    own = default_upload_dir(f"sqlite:///{small_db}")
    target = tmp_path / "copy" / "c.db"
    target.parent.mkdir()
    said = cli("copy", "--db", str(small_db), "--to", str(target), "--uploads-to", str(own))
    assert said.returncode != 0 and "give the copy a folder of its own" in said.stderr
    (upload,) = [p for p in own.rglob("*") if p.is_file()]  # another library's file where the copy's goes
    clash = tmp_path / "clash" / upload.relative_to(own)
    clash.parent.mkdir(parents=True)
    clash.write_bytes(b"another library's")
    failed = cli("copy", "--db", str(small_db), "--to", str(target), "--uploads-to", str(tmp_path / "clash"))
    assert failed.returncode != 0 and "already there" in failed.stderr and clash.read_bytes() == b"another library's"
    assert not target.exists()  # the file it made went with it: a retry is not refused
    stray = upload.with_name("left-by-a-removal-that-failed.jpg")  # no row names it: not carried over
    stray.write_bytes(b"a removed person's photo")
    monkeypatch.setenv("LOOKALIKE_UPLOAD_DIR", str(own))  # exported for the original: not the copy's
    monkeypatch.setenv("LOOKALIKE_INDEX_DIR", str(small_db.parent / "lib.indexes"))
    done = cli("copy", "--db", str(small_db), "--to", str(target), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uploads"] == 1 and (tmp_path / "copy" / "c.uploads" / "zoe").is_dir()
    assert not (tmp_path / "copy" / "c.uploads" / "zoe" / stray.name).exists()
    assert "files that no photo of the library names are not copied" in done.stderr
    stray.unlink()
    monkeypatch.delenv("LOOKALIKE_UPLOAD_DIR")
    monkeypatch.delenv("LOOKALIKE_INDEX_DIR")
    keyed = tmp_path / "keyed.db"
    with lookalike.open(keyed) as other:
        other.keys.create("admin")
    for to, says in ((keyed, "already there; copy into a new file"), (target, "already there")):
        before = to.read_bytes()
        refused = cli("copy", "--db", str(small_db), "--to", str(to))
        assert refused.returncode != 0 and says in refused.stderr and "Traceback" not in refused.stderr
        assert len([line for line in refused.stderr.splitlines() if line.strip()]) == 1
        assert to.read_bytes() == before

