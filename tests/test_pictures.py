"""lib.pictures and its shells (issue 25 §2-3) on real photos: averages made from stored
landmarks name their person, the corpus's names no one, morphs go from A to B, transforms
age a face, every bad input is a clear error, visitors' averages hold only people they may
see, removing a person takes them out of every cached average, and a visitor's pictures
never reach the disk. The libraries are made by ``lookalike ingest`` with the face mesh
installed in the tests' weights (``weights_home``, tests/_weights.py), so landmarks are stored."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from _libraries import copy_library, link_people
from conftest import cli, problem, scratch_tempdir

import lookalike
from lookalike.errors import BadImage, NoFace, NotFound, TooFewPeople, UnusableFace
from lookalike.query.facemath import Group
from lookalike.store.values import Audience

pytestmark = pytest.mark.e2e

BAD = "bad-inputs"
NO_FACE = f"{BAD}/collected/non_face_scene__skimage_hubble_deep_field.jpg"
MANY_FACES = f"{BAD}/collected/group_many_faces__insightface_t1.jpg"
TINY_FACE = f"{BAD}/generated/tiny_face__tiny_face_24px_in_1920x1080.jpg"
TRUNCATED = f"{BAD}/generated/corrupt__truncated.jpg"
OBAMA = "celeb/face_recognition/barack_obama/obama.jpg"
BIDEN = "celeb/face_recognition/joe_biden/biden.jpg"
OTHER = "bbt_penny"  # two more of the celeb people with >= 5 photos
WITHHELD = "bbt_sheldon"


def _celeb_people(faces: Path) -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = {}
    with (faces / "celeb" / "MANIFEST.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            people.setdefault(row["identity"], []).append(faces / "celeb" / row["path"])
    return {name: paths for name, paths in sorted(people.items()) if len(paths) >= 5}


@pytest.fixture(scope="module")
def celeb(faces, tmp_path_factory) -> tuple[Path, dict[str, list[Path]]]:
    """The celeb people with >= 5 photos (16 people), ingested by the CLI; never opened by a
    test that changes it (those take a copy)."""
    people = _celeb_people(faces)
    assert len(people) >= 10
    root = tmp_path_factory.mktemp("pictures-celeb")
    link_people(root / "corpus", people.items(), 5)
    db = root / "lib" / "lib.db"
    db.parent.mkdir()
    made = cli("ingest", str(root / "corpus"), "--db", str(db), "--json")
    assert made.returncode == 0, made.stderr
    return db, people


@pytest.fixture(scope="module")
def lib(celeb):
    with lookalike.open(celeb[0]) as opened:
        yield opened


def _top(lib, image: np.ndarray) -> tuple[str | None, str]:
    result = lib.search(image, k=1)
    assert result.faces, "no face found in a picture lib.pictures made"
    match = result.faces[0].matches[0]
    return match.person, match.verdict.value


def _not_blank(image: np.ndarray) -> None:
    assert image.dtype == np.uint8 and image.ndim == 3 and float(image.std()) > 10, "a blank picture"


# ---- averages --------------------------------------------------------------------------------

def test_a_persons_average_searched_names_that_person(lib, celeb):
    """Each celeb person with >= 5 photos: their average face (stored landmarks, their
    outliers left out), searched, names them first in >= 90 % of people."""
    right = []
    for name in celeb[1]:
        made = lib.pictures.average(Group.parse(f"person:{name}"))
        _not_blank(made.image)
        assert made.people == 1 and made.faces >= 4, made.to_dict()
        right.append(_top(lib, made.image)[0] == name)
    assert sum(right) / len(right) >= 0.9, f"{sum(right)} of {len(right)} averages name their person"
    # the second time comes from the cache: the same picture, no photo read again
    again = lib.pictures.average(Group.parse(f"person:{next(iter(celeb[1]))}"))
    assert len(lib.pictures.cache) >= len(celeb[1]) and again.faces >= 4


def test_the_corpus_average_is_no_ones_same_person_match(lib, celeb):
    made = lib.pictures.average(None)
    _not_blank(made.image)
    assert made.people == len(celeb[1]) and made.faces >= 4 * made.people
    result = lib.search(made.image, k=5)
    assert result.faces, "the corpus average must still be a face"
    assert len(result.faces[0].matches) == 5
    assert all(m.verdict.value != "same_person" for m in result.faces[0].matches), \
        [(m.person, m.similarity) for m in result.faces[0].matches]


def test_a_group_of_too_few_people_is_refused(celeb, tmp_path):
    from lookalike.store.profiles import Profile

    with lookalike.open(copy_library(celeb[0], tmp_path / "lib.db")) as lib:
        for name in list(celeb[1])[:2]:
            lib.people.save_profile(name, Profile(tags=("pair",), consent_display=None))
        with pytest.raises(TooFewPeople, match="tag:pair: 2 different people.*at least 5"):
            lib.pictures.average(Group.parse("tag:pair"))
        with pytest.raises(NotFound, match="no faces in group tag:nobody"):
            lib.pictures.average(Group.parse("tag:nobody"))


def test_sliders_over_too_few_readable_faces_are_refused(celeb, tmp_path):
    """Five people, then three of their photos gone: the appearance model has two faces to
    fit, which is the library's data (a 422 too_few_people), not the caller's option."""
    corpus = tmp_path / "corpus"
    link_people(corpus, list(celeb[1].items())[:5], 1)
    db = tmp_path / "lib.db"
    made = cli("ingest", str(corpus), "--db", str(db), "--json")
    assert made.returncode == 0, made.stderr
    for link in sorted(corpus.glob("*/*"))[:3]:
        link.unlink()  # the symlink, not the shared photo
    with lookalike.open(db) as small, \
            pytest.raises(TooFewPeople, match=r"sliders: 2 of the corpus's 5 faces can be read; .* at least 3"):
        small.pictures.appearance(components=2)


def test_a_photo_changed_or_gone_since_ingest_is_left_out_and_its_tile_says_so(faces, tmp_path, caplog):
    """Stored landmarks are drawn on the stored bytes only: a photo overwritten with another
    face is left out of the average (its points landed on the new face: a ghost head), one
    deleted too; `person --montage` draws the others (it failed outright on a gone photo)."""
    import shutil

    folder = tmp_path / "corpus" / "ob"
    folder.mkdir(parents=True)
    for photo in ("obama.jpg", "obama1.jpg", "obama2.jpg"):
        shutil.copyfile(faces / "celeb/face_recognition/barack_obama" / photo, folder / photo)
    db = tmp_path / "lib.db"
    assert cli("ingest", str(tmp_path / "corpus"), "--db", str(db)).returncode == 0
    (folder / "obama1.jpg").unlink()
    shutil.copyfile(faces / BIDEN, folder / "obama2.jpg")
    with lookalike.open(db) as lib:
        made = lib.pictures.average(Group.parse("person:ob"), size=96)
    assert (made.faces, made.left_out["unreadable"]) == (1, 2)
    assert "obama2.jpg: changed since it was ingested" in caplog.text
    run = cli("person", "ob", "--montage", str(tmp_path / "m.png"), "--db", str(db))
    assert run.returncode == 0 and (tmp_path / "m.png").stat().st_size > 1000, run.stderr
    assert "obama1.jpg: no such file" in run.stderr  # the tile says so; the log names the file
    from lookalike.store.profiles import Profile

    with lookalike.open(db) as lib:  # a profile before any photo: nothing to draw (an UnboundLocalError)
        lib.people.save_profile("no_photo_yet", Profile(consent_display=None))
    run = cli("person", "no_photo_yet", "--montage", str(tmp_path / "n.png"), "--db", str(db))
    assert run.returncode == 1 and "no_photo_yet: no faces in this library to draw a montage of" in run.stderr


def _tag_six(lib, celeb) -> list[str]:
    """Six people (Obama among them, Biden not) given the tag ``six``, still shown to visitors."""
    from lookalike.store.profiles import Profile

    names = ["barack_obama"] + [n for n in celeb[1] if n not in ("barack_obama", OTHER)][:5]
    for name in names:
        lib.people.save_profile(name, Profile(tags=("six",), consent_display=None))
    return names


def test_removing_a_person_removes_them_from_every_cached_average(celeb, tmp_path):
    with lookalike.open(copy_library(celeb[0], tmp_path / "lib.db")) as lib:
        gone = "barack_obama"
        _tag_six(lib, celeb)
        before = lib.pictures.average(Group.parse("tag:six"), size=96)
        own = lib.pictures.average(Group.parse(f"person:{gone}"), size=96)
        other = lib.pictures.average(Group.parse(f"person:{OTHER}"), size=96)
        assert len(lib.pictures.cache) == 3
        lib.remove_person(gone)
        assert len(lib.pictures.cache) == 1, "the group's and the person's averages are dropped, Biden's kept"
        after = lib.pictures.average(Group.parse("tag:six"), size=96)
        assert after.people == before.people - 1
        assert after.faces == before.faces - own.faces
        assert not np.array_equal(after.image, before.image)
        assert np.array_equal(lib.pictures.average(Group.parse(f"person:{OTHER}"), size=96).image, other.image)
        with pytest.raises(NotFound, match="no person named 'barack_obama'"):
            lib.pictures.average(Group.parse(f"person:{gone}"))


def test_a_visitors_average_holds_only_people_they_may_see(celeb, tmp_path):
    db = copy_library(celeb[0], tmp_path / "lib.db")
    with lookalike.open(db) as lib:
        _tag_six(lib, celeb)
        six = Group.parse("tag:six")
        everyone = lib.pictures.average(six, Audience.visitor, size=64)
        lib.people.set_consent("barack_obama", False)
        seen = lib.pictures.average(six, Audience.visitor, size=64)
        assert (everyone.people, seen.people) == (6, 5)
        assert lib.pictures.average(six, Audience.operator, size=64).people == 6
        # the CLI draws it for a visitor too: a group's face for a poster (kiosk user test, F5)
        for audience, people in (("visitor", 5), ("operator", 6)):
            drawn = cli("average", "--group", "tag:six", "--audience", audience, "--size", "64", "--db", str(db),
                        "--out", str(tmp_path / f"{audience}.png"), "--json")
            assert drawn.returncode == 0 and json.loads(drawn.stdout)["people"] == people, drawn.stderr
        kept = cli("morph", "person:barack_obama", f"person:{OTHER}", "--audience", "visitor", "--db", str(db),
                   "--out", str(tmp_path / "m.gif"))
        assert kept.returncode == 1 and "no person named 'barack_obama'" in kept.stderr
        lib.people.set_consent(_tag_six(lib, celeb)[1], False)  # (the profile saved again: shown again)
        lib.people.set_consent("barack_obama", False)
        with pytest.raises(TooFewPeople):
            lib.pictures.average(six, Audience.visitor, size=64)
        with pytest.raises(NotFound, match="no person named 'barack_obama'"):
            lib.pictures.average(Group.parse("person:barack_obama"), Audience.visitor)
        assert lib.pictures.average(Group.parse("person:barack_obama"), Audience.operator).faces >= 4
        # and a path between two faces walks only through people a visitor may see
        ends = (str(celeb[1]["barack_obama"][0]), str(celeb[1][OTHER][0]))
        assert "barack_obama" in {s.person for s in lib.path(*ends, steps=6)}
        assert "barack_obama" not in {s.person for s in lib.path(*ends, steps=6, audience=Audience.visitor)}
        walked = cli("path", *ends, "--steps", "6", "--audience", "visitor", "--db", str(db), "--json")
        assert walked.returncode == 0, walked.stderr
        assert "barack_obama" not in {s["person"] for s in json.loads(walked.stdout)["steps"]}


# ---- morphs -----------------------------------------------------------------------------------

def test_a_morph_begins_as_a_and_ends_as_b(lib, faces):
    made = lib.pictures.morph(str(faces / OBAMA), Group.parse(f"person:{OTHER}"), frames=6)
    assert len(made.frames) == 6
    for frame in made.frames:
        _not_blank(frame)
    assert _top(lib, made.frames[0])[0] == "barack_obama"
    assert _top(lib, made.frames[-1])[0] == OTHER
    # the likeness to A falls along the way (a step may rise by a little, never by much)
    start = lib.view.models.pipeline.faces(made.frames[0])[0].embedding
    sims = [float(lib.view.models.pipeline.faces(f)[0].embedding @ start) for f in made.frames]
    assert sims[-1] < sims[0] - 0.3 and all(b <= a + 0.05 for a, b in zip(sims, sims[1:])), sims
    gif = made.encode(made_format("gif"))
    png = made.encode(made_format("png"))
    from PIL import Image

    with Image.open(io.BytesIO(gif)) as picture:
        assert picture.format == "GIF" and picture.n_frames >= 6
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and picture.size == (6 * 256, 256)


def made_format(kind: str):
    from lookalike.imaging.morph import MorphFormat

    return MorphFormat(kind)


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("photo", "error", "says"), [
    (NO_FACE, NoFace, "no face found"),
    (MANY_FACES, UnusableFace, "faces of like size"),
    (TINY_FACE, (NoFace, UnusableFace), "face"),
    (TRUNCATED, BadImage, "the file ends before the image data does"),
    ("celeb/no-such-photo.jpg", BadImage, "no such file"),
])
def test_every_bad_photo_is_a_clear_error(lib, faces, photo, error, says):
    for attempt in (lambda: lib.pictures.morph(str(faces / photo), Group.parse(f"person:{OTHER}"), frames=2),
                    lambda: lib.pictures.transform(str(faces / photo), Group.parse(f"person:{OTHER}"))):
        with pytest.raises(error) as raised:
            attempt()
        assert says in str(raised.value) and Path(photo).name in str(raised.value)


# ---- transforms ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aged(faces, tmp_path_factory, analysis_weights) -> tuple[Path, list[Path]]:
    """UTKFace crops ingested with --format utkface --analyze (every crop its own person): 16
    aged 65+ and 16 aged 20-29, and 3 more aged 20-29 kept out of the library."""
    photos = sorted((faces / "utkface-dev" / "images").glob("*.jpg"))
    old = [p for p in photos if int(p.name.split("_")[0]) >= 65][:16]
    young = [p for p in photos if 20 <= int(p.name.split("_")[0]) < 30]
    root = tmp_path_factory.mktemp("pictures-utk")
    (root / "corpus").mkdir()
    for photo in old + young[:16]:
        (root / "corpus" / photo.name).symlink_to(photo)
    db = root / "lib" / "lib.db"
    db.parent.mkdir()
    made = cli("ingest", str(root / "corpus"), "--format", "utkface", "--analyze", "--analyzer", "offline",
               "--db", str(db), "--json")
    assert made.returncode == 0, made.stderr
    return db, young[16:19]


def test_a_transform_toward_the_old_raises_the_estimated_age(aged):
    from lookalike.analysis import AnalyzerName

    db, queries = aged
    rises, kept = [], []
    with lookalike.open(db) as lib:
        model = lib.view.models.analyzer(AnalyzerName.offline)
        for photo in queries:
            made = lib.pictures.transform(str(photo), Group.parse("age:60-"))
            assert made.away.startswith("age:"), made.away  # its own age band, as search --toward
            _not_blank(made.image)
            _, rgb, _, face = lib.pictures.face_of(str(photo))
            before = model.analyze(rgb, [face.box])[0].age
            found = lib.view.models.pipeline.detect(made.image)
            assert found, f"{photo.name}: no face left after the transform"
            after = model.analyze(made.image, [found[0].box])[0].age
            rises.append(after - before)
            same = lib.verify(str(photo), made.image)  # older, still the person: above the look-alike floor
            kept.append(same.similarity >= same.floor)
    assert float(np.mean(rises)) >= 5, rises
    # the issue's >= 80 % is measured by tests/test_imaging.py on the 60+ UTKFace faces; from
    # prototypes of 16 faces each, 2 of these 3 keep their identity (2026-12-05: the third, at
    # similarity 0.02, does not)
    assert sum(kept) >= 2, kept


def test_a_large_photo_is_drawn_from_a_screens_worth_of_it(lib, faces):
    """A 40 MP selfie's transform took 13 s of the library's lock and answered a 15 MB PNG
    (security probe, 2026-12-07): a photo is drawn from at most DRAWN_SIDE px on its longer
    side, the JPEG decoded from a draft, and the picture is that size."""
    import cv2

    from lookalike.verbs.pictures import DRAWN_SIDE

    small = cv2.imread(str(faces / OBAMA))
    big = cv2.resize(small, (small.shape[1] * 8, small.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
    assert big.shape[0] * big.shape[1] > 20_000_000
    for photo in (cv2.imencode(".jpg", big)[1].tobytes(), cv2.imencode(".png", big[::2, ::2])[1].tobytes()):
        made = lib.pictures.transform(photo, Group.parse(f"person:{OTHER}"))
        assert max(made.image.shape[:2]) == DRAWN_SIDE, made.image.shape
        assert lib.view.models.pipeline.detect(made.image), "no face left after the transform"


# ---- HTTP ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(celeb, tmp_path_factory):
    from _site import in_process

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings
    from lookalike.store.values import KeyScope

    folder = tmp_path_factory.mktemp("pictures-serve")
    db = copy_library(celeb[0], folder / "lib" / "lib.db")
    with lookalike.open(db) as lib:
        keys = {scope.value: lib.keys.create(scope)[1] for scope in KeyScope}
        lib.people.set_consent(WITHHELD, False)
    app = create_app(ServeSettings(db=str(db), rate_per_minute=0))
    client = in_process(app)
    yield {"client": client, "keys": keys, "db": db}
    client.__exit__(None, None, None)


def _call(site, method: str, path: str, key: str | None = "search", **kwargs):
    headers = {"X-API-Key": site["keys"][key]} if key else {}
    answer = site["client"].request(method, path, headers=headers, **kwargs)
    assert "Traceback" not in answer.text
    return answer


def _upload(faces: Path, rel: str, field: str = "photo") -> dict:
    return {field: (Path(rel).name, (faces / rel).read_bytes(), "image/jpeg")}


def _picture(answer, kind: str) -> tuple[int, int]:
    from PIL import Image

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == f"image/{kind.lower()}"
    with Image.open(io.BytesIO(answer.content)) as picture:
        assert picture.format == kind
        return picture.size


def test_http_pictures_and_their_errors(site, faces):
    assert _picture(_call(site, "POST", "/v1/morph", files=_upload(faces, OBAMA),
                          data={"person": OTHER, "format": "png", "frames": "4"}), "PNG") == (4 * 256, 256)
    files = _upload(faces, OBAMA) | _upload(faces, BIDEN, "photo_b")
    _picture(_call(site, "POST", "/v1/morph", files=files, data={"frames": "3"}), "GIF")
    assert _picture(_call(site, "GET", f"/v1/people/{OTHER}/average.png"), "PNG") == (256, 256)
    # a person who withholds consent: the 404 of a person who does not exist, whatever the key
    # (a front end holding an admin key passed visitors' morphs on with them: move user test, F5)
    withheld = problem(_call(site, "GET", f"/v1/people/{WITHHELD}/average.png"), 404, "not_found")
    missing = problem(_call(site, "GET", "/v1/people/nobody/average.png"), 404, "not_found")
    assert withheld["detail"].replace(WITHHELD, "X") == missing["detail"].replace("nobody", "X")
    problem(_call(site, "GET", f"/v1/people/{WITHHELD}/average.png", key="admin"), 404, "not_found")
    for key in ("search", "admin"):
        problem(_call(site, "POST", "/v1/morph", files=_upload(faces, OBAMA), data={"person": WITHHELD}, key=key),
                404, "not_found")
    # a group's average is an admin's
    problem(_call(site, "GET", "/v1/average.png", params={"group": f"person:{OTHER}"}), 403, "forbidden")
    assert _picture(_call(site, "GET", "/v1/average.png", key="admin", params={"size": "64", "limit": "30"}),
                    "PNG") == (64, 64)
    problem(_call(site, "GET", "/v1/average.png", key="admin", params={"group": "tag:none"}), 404, "not_found")
    problem(_call(site, "GET", "/v1/average.png", key="admin", params={"group": "nonsense"}), 400,
            "invalid_option")
    # bad photos
    problem(_call(site, "POST", "/v1/transform", files=_upload(faces, NO_FACE), data={"toward": f"person:{OTHER}"}),
            422, "no_face")
    problem(_call(site, "POST", "/v1/transform", files=_upload(faces, MANY_FACES),
                  data={"toward": f"person:{OTHER}"}), 422, "unusable_face")
    truncated = problem(_call(site, "POST", "/v1/morph", files=_upload(faces, TRUNCATED), data={"person": OTHER}),
                        415, "unreadable_photo")
    assert "the file ends before the image data does" in truncated["detail"]
    problem(_call(site, "POST", "/v1/morph", files=_upload(faces, OBAMA)), 400, "invalid_option")
    schema = _call(site, "GET", "/openapi.json", key=None).json()
    for route in ("/v1/morph", "/v1/transform", "/v1/people/{name}/average.png", "/v1/average.png"):
        assert route in schema["paths"], route


def test_a_visitors_morph_and_transform_never_reach_the_disk(site, faces, tmp_path, monkeypatch):
    """The library's folder and the temporary folder hold no new file and nothing of the
    photo after a morph and a transform over HTTP."""
    from PIL import Image, PngImagePlugin

    scratch = scratch_tempdir(monkeypatch, tmp_path)
    marker = f"visitor-{np.random.default_rng().integers(1 << 60):x}"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    buffer = io.BytesIO()
    Image.open(faces / OBAMA).save(buffer, format="PNG", pnginfo=info)
    photo = buffer.getvalue()

    def files() -> dict[Path, bytes]:
        return {p: p.read_bytes() for folder in (site["db"].parent, scratch) for p in folder.rglob("*")
                if p.is_file()}

    before = files()
    upload = {"photo": (f"{marker}.png", photo, "image/png")}
    morph = _call(site, "POST", "/v1/morph", files=upload, data={"person": OTHER, "frames": "3"})
    moved = _call(site, "POST", "/v1/transform", files=upload,
                  data={"toward": f"person:{OTHER}", "away": "person:barack_obama"})
    assert morph.status_code == 200 and moved.status_code == 200
    after = files()
    assert {p for p in after if not p.name.endswith(("-wal", "-shm", ".db"))} <= set(before), "a new file appeared"
    needles = [marker.encode(), photo[-64:], morph.content[-64:], moved.content[-64:]]
    assert [p.name for p, data in after.items() for n in needles if n in data] == []


# ---- the CLI ---------------------------------------------------------------------------------------

def test_the_cli_draws_averages_morphs_sliders_and_renders(celeb, faces, tmp_path):
    db = str(celeb[0])
    out = tmp_path / "out"
    out.mkdir()
    run = cli("average", "--person", OTHER, "--out", str(out / "penny.png"), "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["people"] == 1 and (out / "penny.png").stat().st_size > 1000
    run = cli("morph", str(faces / OBAMA), f"person:{OTHER}", "--frames", "4", "--out", str(out / "m.gif"),
              "--db", db)
    assert run.returncode == 0 and (out / "m.gif").read_bytes()[:3] == b"GIF", run.stderr
    run = cli("explore", "appearance", "--components", "3", "--out-dir", str(out / "sliders"), "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    shares = [c["share"] for c in json.loads(run.stdout)["components"]]
    assert len(shares) == 3 and shares == sorted(shares, reverse=True) and sum(shares) < 1
    assert len(list((out / "sliders").glob("component-*.png"))) == 3
    run = cli("search", str(faces / OBAMA), "--toward", f"person:{OTHER}", "--away", "person:barack_obama",
              "--render", str(out / "s.png"), "--db", db, "--json")
    assert run.returncode == 0 and (out / "s.png").is_file(), run.stderr
    # two faces of like size cannot be drawn moved, but the search's answer is still printed
    two = cli("search", str(faces / "bad-inputs/collected/multi_face__kit_with_rose.jpg"), "--toward",
              f"person:{OTHER}", "--render", str(out / "two.png"), "--db", db, "--json")
    assert two.returncode == 1 and "2 faces of like size" in two.stderr and not (out / "two.png").exists()
    assert len(json.loads(two.stdout)["faces"]) == 2
    run = cli("person", OTHER, "--montage", str(out / "montage.png"), "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["average"] == str(out / "montage-average.png")
    # errors: one line naming what and why, the exit code of the error's kind, no traceback
    for args, code, says in [
        (("average", "--group", "tag:nobody", "--out", str(out / "x.png")), 1, "no faces in group tag:nobody"),
        (("average", "--corpus", "--person", "x", "--out", str(out / "x.png")), 2, "exactly one"),
        (("morph", str(faces / NO_FACE), f"person:{OTHER}", "--out", str(out / "x.gif")), 1, "no face found"),
        (("morph", str(faces / OBAMA), str(faces / BIDEN), "--out", str(out / "x.txt")), 2, ".gif, .mp4 or .png"),
        (("morph", str(faces / OBAMA), "tag:nurse", "--out", str(out / "x.gif")), 2,
         "a morph goes from and to a photo or a person's average face (person:NAME), not tag:nurse"),
        (("transform", str(faces / TRUNCATED), "--toward", f"person:{OTHER}", "--out", str(out / "x.png")), 1,
         "corrupt__truncated.jpg: truncated: the file ends before the image data does"),
        # a face drawn moved too far is refused before the search that leads to it
        (("search", str(faces / OBAMA), "--toward", f"person:{OTHER}", "--strength", "4", "--render",
          str(out / "x.png")), 2, "strength 4.0 is outside -3.0..3.0, how far a face can be drawn moved"),
        (("search", str(faces / OBAMA), "--toward", f"person:{OTHER}", "--strength", "6"), 2,
         "'--strength': Input should be less than or equal to 5"),
    ]:
        run = cli(*args, "--db", db)
        assert run.returncode == code, (args, run.stderr)
        assert says in run.stderr and "Traceback" not in run.stderr, run.stderr
