"""``lookalike ingest --format``: each public corpus's layout, written here in its real shape
(identity_meta.csv quoted as VGGFace2 ships it, identity_CelebA.txt, an imdb.mat struct
saved so loadmat reads it back like the real file, UTKFace file names), read into people,
profile tags and rejected items with their reasons.

The reader tests are pure and fast (they never decode a photo, so their JPEGs are made
here and they run in ``make check``); the ``e2e`` ones run the real CLI on real photos from
``$LOOKALIKE_FACES`` and look at what lands in the library."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from _libraries import lfw_people
from conftest import cli

from lookalike.errors import ManifestError
from lookalike.ingest import formats
from lookalike.ingest.formats import FORMATS, IMDB_MIN_FACE_SCORE
from lookalike.ingest.formats_common import LICENCES, SOURCES, CorpusFormat
from lookalike.store.values import Audience

# real file names of the corpora (UTKFace's "39_1_2017..." really is in UTKFace: no race)
UTK_GOOD = ["20_1_0_20170103163040136.jpg.chip.jpg", "1_0_2_20161219222456375.jpg.chip.jpg"]
UTK_BAD = ["39_1_20170116174525125.jpg.chip.jpg", "README.jpg"]


def _jpeg(path: Path, source: Path | None = None) -> Path:
    """A real JPEG at ``path``: a copy of ``source``, else a small one made here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copy(source, path)
    else:
        from PIL import Image

        Image.new("RGB", (8, 8), (120, 90, 60)).save(path, "JPEG")
    return path


def _by_name(items) -> dict[str, object]:
    return {Path(i.path).name: i for i in items}


# -- the corpora, in their real layouts ------------------------------------------------------
def make_vggface2(root: Path, photos: list[Path] | None = None) -> Path:
    """train/ and test/ class folders and identity_meta.csv as VGGFace2 ships it (a space,
    then a quoted name; one name with a comma inside its quotes)."""
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "identity_meta.csv").write_text(
        "Class_ID, Name, Sample_Num, Flag, Gender\n"
        'n000002, "Aaron_Eckhart", 2, 1, m\n'
        'n000003, "Abbie_Cornish", 1, 0, f\n'
        'n000004, "Earl_Jones,_James", 1, 1, m\n')
    src = iter(photos or [])
    _jpeg(root / "train" / "n000002" / "0001_01.jpg", next(src, None))
    _jpeg(root / "train" / "n000002" / "0002_01.jpg", next(src, None))
    _jpeg(root / "test" / "n000003" / "0001_01.jpg", next(src, None))
    _jpeg(root / "train" / "n000004" / "0001_02.jpg", next(src, None))
    _jpeg(root / "train" / "n009999" / "0001_01.jpg", next(src, None))  # a class the csv does not name
    return root


def make_celeba(root: Path) -> Path:
    images = root / "img_align_celeba"
    for name in ("000001.jpg", "000002.jpg", "000003.jpg", "202600.jpg"):
        _jpeg(images / name)
    (root / "list_attr_celeba.txt").write_text("202599\n5_o_Clock_Shadow Arched_Eyebrows\n")  # ignored
    (root / "identity_CelebA.txt").write_text(
        "000001.jpg 2880\n000002.jpg 2880\n000003.jpg 17\n000004.jpg 17\n")  # 000004: not downloaded
    return root


def _cells(values: list) -> np.ndarray:
    """A MATLAB cell row (1 x N object array), as savemat writes and loadmat reads it."""
    out = np.empty((1, len(values)), dtype=object)
    for i, v in enumerate(values):
        out[0, i] = v
    return out


def make_imdb(root: Path, photos: list[Path] | None = None, key: str = "imdb") -> Path:
    """imdb.mat with the real struct (dob as MATLAB serial dates, cells of paths, names and
    face boxes; -inf / NaN where the real file has them) beside its photo folders."""
    import scipy.io

    nan, inf = float("nan"), float("inf")
    # full_path, name, dob (serial), photo_taken, gender, face_score, second_face_score
    rows = [
        ("01/nm0000001_rm124825600_1899-5-10_1968.jpg", "Fred Astaire", 693726.0, 1968, 1.0, 4.3, nan),
        ("01/nm0000001_rm3343756032_1899-5-10_1970.jpg", "Fred Astaire", 693726.0, 1970, 1.0, 2.2, nan),
        ("02/nm0000002_rm221957120_1924-9-16_1974.jpg", "", 702986.0, 1974, 0.0, 3.9, nan),  # name from celeb_id
        ("03/nm0000003_rm1_1950-1-1_2001.jpg", "Pat Doe", 712224.0, 2001, 1.0, 3.0, nan),
        ("03/nm0000003_rm2_1950-1-1_2003.jpg", "Pat Doe", 712224.0, 2003, 0.0, 3.5, nan),  # genders disagree
        ("04/nm0000004_rm1_1960-1-1_2000.jpg", "No Face", 715876.0, 2000, 1.0, -inf, nan),
        ("04/nm0000004_rm2_1960-1-1_2000.jpg", "Weak Face", 715876.0, 2000, 1.0, 0.7, nan),
        ("05/nm0000005_rm1_1970-1-1_2005.jpg", "Two Faces", 719529.0, 2005, 0.0, 3.1, 2.5),
        ("06/nm0000006_rm1_1980-1-1_2010.jpg", "Not Downloaded", 723181.0, 2010, 1.0, 3.3, nan),
        ("../outside.jpg", "Escaper", 723181.0, 2010, 1.0, 3.3, nan),
    ]
    src = iter(photos or [])
    for rel, name, *_ in rows:
        if name != "Not Downloaded" and not rel.startswith(".."):
            _jpeg(root / rel, next(src, None))
    struct = {
        "dob": np.array([[r[2] for r in rows]]),
        "photo_taken": np.array([[r[3] for r in rows]], dtype=float),
        "full_path": _cells([r[0] for r in rows]),
        "gender": np.array([[r[4] for r in rows]]),
        "name": _cells([r[1] for r in rows]),
        "face_location": _cells([np.array([[10.0, 12.0, 90.0, 95.0]]) for _ in rows]),
        "face_score": np.array([[r[5] for r in rows]]),
        "second_face_score": np.array([[r[6] for r in rows]]),
        "celeb_names": _cells(["Fred Astaire", "Lauren Bacall", "Pat Doe"]),
        "celeb_id": np.array([[1, 1, 2, 3, 3, 3, 3, 3, 3, 3]]),
    }
    scipy.io.savemat(root / f"{key}.mat", {key: struct})
    return root


def make_utkface(root: Path, photos: dict[str, Path] | None = None) -> Path:
    for name in UTK_GOOD + UTK_BAD:
        _jpeg(root / "UTKFace" / name, (photos or {}).get(name))
    return root


# -- the readers (pure, fast) -----------------------------------------------------------------
def test_every_format_has_a_reader_and_a_cli_name():
    assert set(FORMATS) == set(CorpusFormat)
    assert [f.value for f in CorpusFormat] == ["lfw", "vggface2", "celeba", "imdb-wiki", "utkface"]
    assert set(LICENCES) == set(SOURCES) == set(CorpusFormat)


def test_lfw_names_people_by_folder_inside_the_unpacked_folder(tmp_path):
    for person in ("Aaron_Sorkin", "Abdel_Nasser_Assidi"):
        _jpeg(tmp_path / "lfw-deepfunneled" / person / f"{person}_0001.jpg")
    _jpeg(tmp_path / "lfw-deepfunneled" / "Aaron_Sorkin" / "Aaron_Sorkin_0002.jpg")
    _jpeg(tmp_path / "lfw-deepfunneled" / "stray.jpg")
    (tmp_path / "lfw-deepfunneled" / "lfw-names.txt").write_text("Aaron_Sorkin\t2\n")
    items = formats.lfw(tmp_path)  # the folder the archive unpacked into
    ok = [(i.person, Path(i.path).name) for i in items if not i.rejected]
    assert ok == [("Aaron Sorkin", "Aaron_Sorkin_0001.jpg"), ("Aaron Sorkin", "Aaron_Sorkin_0002.jpg"),
                  ("Abdel Nasser Assidi", "Abdel_Nasser_Assidi_0001.jpg")]
    assert all(i.profile is None and Path(i.path).is_absolute() for i in items)
    (stray,) = [i for i in items if i.rejected]
    assert Path(stray.path).name == "stray.jpg" and stray.person is None
    assert str(stray.rejected).startswith("not in a person folder:")
    assert formats.lfw(tmp_path / "lfw-deepfunneled") == items  # or the folder itself
    # a tree of links to the person folders reads the same (it found no photo: "no lfw photos found")
    linked = tmp_path / "linked" / "lfw-deepfunneled"
    linked.mkdir(parents=True)
    for person in ("Aaron_Sorkin", "Abdel_Nasser_Assidi"):
        (linked / person).symlink_to(tmp_path / "lfw-deepfunneled" / person)
    assert [(i.person, Path(i.path).name) for i in formats.lfw(linked.parent)] == ok


def test_lfw_refuses_to_guess_between_two_alignments(tmp_path):
    _jpeg(tmp_path / "lfw" / "A_B" / "A_B_0001.jpg")
    _jpeg(tmp_path / "lfw-deepfunneled" / "A_B" / "A_B_0001.jpg")
    with pytest.raises(ManifestError, match="lfw-deepfunneled and lfw"):
        formats.lfw(tmp_path)
    with pytest.raises(ManifestError, match="no such folder"):
        formats.lfw(tmp_path / "nope")


def test_vggface2_names_classes_and_tags_gender(tmp_path):
    items = formats.vggface2(make_vggface2(tmp_path))
    ok = [(i.person, Path(i.path).parts[-3], i.profile.tags) for i in items if not i.rejected]
    assert ok == [("Aaron Eckhart", "train", ("gender:male",)), ("Aaron Eckhart", "train", ("gender:male",)),
                  ("Earl Jones, James", "train", ("gender:male",)), ("Abbie Cornish", "test", ("gender:female",))]
    profile = items[0].profile
    assert profile.license.startswith("VGGFace2: research use only") and "vgg_face2" in profile.source_url
    assert profile.consent_display is None  # never stated, as after a folder ingest
    (unknown,) = [i for i in items if i.rejected]
    assert unknown.person is None and "n009999" in unknown.path
    assert str(unknown.rejected) == f"unknown class: n009999 is not in {tmp_path / 'meta' / 'identity_meta.csv'}"


def test_vggface2_without_its_identity_file_says_which_file(tmp_path):
    _jpeg(tmp_path / "train" / "n000002" / "0001_01.jpg")
    with pytest.raises(ManifestError, match=r"no identity_meta.csv or meta/identity_meta.csv.*names each class"):
        formats.vggface2(tmp_path)
    (tmp_path / "identity_meta.csv").write_text("id,who\nn000002,x\n")
    with pytest.raises(ManifestError, match="Class_ID and Name"):
        formats.vggface2(tmp_path)


def test_celeba_people_are_identity_numbers_and_gaps_are_reported(tmp_path):
    items = formats.celeba(make_celeba(tmp_path))
    by_name = _by_name(items)
    assert {n: i.person for n, i in by_name.items() if not i.rejected} == {
        "000001.jpg": "celeba-2880", "000002.jpg": "celeba-2880", "000003.jpg": "celeba-17"}
    assert all(i.profile is None for i in items)
    assert str(by_name["202600.jpg"].rejected).startswith("unknown photo: 202600.jpg is not in ")
    assert str(by_name["000004.jpg"].rejected).startswith("missing photo: listed in identity_CelebA.txt but not in ")
    assert formats.skipped(items) == {"unknown photo": 1, "missing photo": 1}


def test_celeba_bad_or_missing_identity_file_names_file_and_line(tmp_path):
    _jpeg(tmp_path / "Img" / "img_celeba" / "000001.jpg")
    with pytest.raises(ManifestError, match="identity_CelebA.txt"):
        formats.celeba(tmp_path)
    (tmp_path / "Anno").mkdir()
    (tmp_path / "Anno" / "identity_CelebA.txt").write_text("000001.jpg 1\n000002.jpg Jane\n")
    with pytest.raises(ManifestError, match=r"identity_CelebA.txt:2: expected 'FILE IDENTITY'"):
        formats.celeba(tmp_path)
    (tmp_path / "Anno" / "identity_CelebA.txt").write_text("000001.jpg 1\n")
    assert [i.person for i in formats.celeba(tmp_path)] == ["celeba-1"]  # the Img/ and Anno/ layout


def test_imdb_wiki_skips_unsafe_photos_with_reasons_and_keeps_agreeing_labels(tmp_path):
    items = formats.imdb_wiki(make_imdb(tmp_path / "imdb_crop"))
    ok = [(i.person, i.profile.tags) for i in items if not i.rejected]
    assert ok == [("Fred Astaire", ("gender:male", "born:1899-05-10")),
                  ("Fred Astaire", ("gender:male", "born:1899-05-10")),
                  ("Lauren Bacall", ("gender:female", "born:1924-09-16")),
                  ("Pat Doe", ("born:1950-01-01",)), ("Pat Doe", ("born:1950-01-01",))]  # gender: photos disagree
    assert all(i.profile.license == "IMDB-WIKI: academic research purposes only" for i in items if not i.rejected)
    reasons = {Path(i.path).name: str(i.rejected) for i in items if i.rejected}
    assert reasons["nm0000004_rm1_1960-1-1_2000.jpg"].startswith("no face: ")
    assert reasons["nm0000004_rm2_1960-1-1_2000.jpg"] == (
        f"weak face: face_score 0.70 is below {IMDB_MIN_FACE_SCORE}: often not a face, or not the named person's")
    assert reasons["nm0000005_rm1_1970-1-1_2005.jpg"] == (
        "second face: second_face_score 2.50: which face is Two Faces would be a guess")
    assert reasons["nm0000006_rm1_1980-1-1_2010.jpg"] == "missing photo: listed in imdb.mat but not found"
    assert reasons["outside.jpg"].startswith("bad path: imdb.mat: path '../outside.jpg' leaves")
    assert all(i.person is None for i in items if i.rejected)  # nobody is made of a skipped photo
    assert formats.skipped(items) == {"no face": 1, "weak face": 1, "second face": 1, "missing photo": 1,
                                      "bad path": 1}


def test_imdb_wiki_reads_wiki_mat_and_refuses_unreadable_files(tmp_path):
    wiki = make_imdb(tmp_path / "wiki_crop", key="wiki")
    assert {i.person for i in formats.imdb_wiki(wiki) if not i.rejected} == {"Fred Astaire", "Lauren Bacall",
                                                                             "Pat Doe"}
    with pytest.raises(ManifestError, match="no imdb.mat or wiki.mat"):
        formats.imdb_wiki(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "imdb.mat").write_bytes(b"this is not a MATLAB file")
    with pytest.raises(ManifestError, match=r"imdb.mat: cannot be read as a MATLAB v5 file"):
        formats.imdb_wiki(broken)
    import scipy.io

    scipy.io.savemat(broken / "imdb.mat", {"celebrities": {"name": _cells(["x"])}})
    with pytest.raises(ManifestError, match=r"holds no struct 'imdb' \(found \['celebrities'\]\)"):
        formats.imdb_wiki(broken)
    scipy.io.savemat(broken / "imdb.mat", {"imdb": {"name": _cells(["x"])}})
    with pytest.raises(ManifestError, match="has no full_path, face_score, second_face_score field"):
        formats.imdb_wiki(broken)
    # the right fields holding text where numbers belong: named, never a ValueError's traceback
    fields = {"full_path": _cells(["01/a.jpg"]), "name": _cells(["x"]), "dob": np.array([[700000.0]]),
              "photo_taken": np.array([[2000.0]]), "gender": np.array([[1.0]]),
              "face_location": _cells([np.array([[1.0, 1.0, 9.0, 9.0]])]),
              "face_score": np.array([[3.0]]), "second_face_score": np.array([[float("nan")]])}
    for field, value, said in (("gender", _cells(["male"]), "imdb entry 1: a field that should be a number"),
                               ("face_score", _cells(["high"]), "face_score / second_face_score are not numbers")):
        scipy.io.savemat(broken / "imdb.mat", {"imdb": fields | {field: value}})
        with pytest.raises(ManifestError, match=said):
            formats.imdb_wiki(broken)


def test_utkface_each_photo_is_a_person_labelled_by_its_name(tmp_path):
    items = formats.utkface(make_utkface(tmp_path))
    by_name = _by_name(items)
    kid, adult = by_name["1_0_2_20161219222456375.jpg.chip.jpg"], by_name["20_1_0_20170103163040136.jpg.chip.jpg"]
    assert (kid.person, kid.profile.tags) == ("1_0_2_20161219222456375", ("age:1", "gender:male"))
    assert (adult.person, adult.profile.tags) == ("20_1_0_20170103163040136", ("age:20", "gender:female"))
    assert not any(t.startswith("race") for i in items if i.profile for t in i.profile.tags)
    assert str(by_name["39_1_20170116174525125.jpg.chip.jpg"].rejected) == (
        "unparsed name: 39_1_20170116174525125.jpg.chip.jpg is not AGE_GENDER_RACE_DATETIME.jpg")
    assert str(by_name["README.jpg"].rejected).startswith("unparsed name: ")
    _jpeg(tmp_path / "UTKFace" / "200_0_0_20170116171048641.jpg")
    outside = _by_name(formats.utkface(tmp_path))["200_0_0_20170116171048641.jpg"]
    assert "outside UTKFace's labels" in str(outside.rejected)


def test_cli_refuses_person_with_format_and_a_missing_identity_file_before_opening_a_library(tmp_path):
    (tmp_path / "train" / "n000002").mkdir(parents=True)
    db = tmp_path / "lib.db"
    both = cli("ingest", "--format", "lfw", str(tmp_path), "--person", "x", "--db", str(db))
    assert both.returncode == 2 and "--person cannot be combined with --format lfw" in both.stderr
    missing = cli("ingest", "--format", "vggface2", str(tmp_path), "--db", str(db))
    assert missing.returncode == 2 and "identity_meta.csv" in missing.stderr and "Traceback" not in missing.stderr
    wrong = cli("ingest", "--format", "flickr", str(tmp_path), "--db", str(db))
    assert wrong.returncode == 2 and "imdb-wiki" in wrong.stderr  # the choices are listed
    assert not db.exists()


# -- end to end: the real CLI, real photos, the library --------------------------------------
def _ingest(*args: str) -> dict:
    out = cli("ingest", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.e2e
def test_e2e_real_lfw_slice(faces, tmp_path):
    import lookalike

    people = lfw_people(faces, 3, min_photos=2)  # LFW's own folders and file names
    for person, photos in people.items():
        for photo in photos[:2]:
            _jpeg(tmp_path / "lfw" / person / photo.name, photo)
    db = tmp_path / "lfw.db"
    summary = _ingest("--format", "lfw", str(tmp_path), "--db", str(db))
    assert summary["format"] == {"name": "lfw", "skipped": {}}
    assert summary["statuses"]["ok"] == summary["photos"] == 6
    with lookalike.open(db) as lib:
        # no profile: shown, as after a folder ingest
        found = {p.profile.name: p for p in lib.people.summaries(Audience.visitor)}
    assert set(found) == {name.replace("_", " ") for name in people}
    assert all(p.consent is None and p.photos == 2 and p.faces >= 2 for p in found.values())


@pytest.mark.e2e
def test_e2e_real_utkface_photos_with_a_misnamed_file(faces, tmp_path):
    import lookalike

    real = {name: faces / "utkface-dev" / "images" / name for name in UTK_GOOD}
    real |= {name: real[UTK_GOOD[0]] for name in UTK_BAD}  # real photos, names that do not parse
    db, report = tmp_path / "utk.db", tmp_path / "report.csv"
    summary = _ingest("--format", "utkface", str(make_utkface(tmp_path / "utk", real)), "--db", str(db),
                      "--report", str(report))
    assert summary["statuses"]["rejected"] == 2 and summary["format"]["skipped"] == {"unparsed name": 2}
    with lookalike.open(db) as lib:
        # consent never stated: listed as a folder ingest's people are (nobody withheld it)
        found = {p.profile.name: p for p in lib.people.summaries(Audience.visitor)}
    assert {n: p.profile.tags for n, p in found.items()} == {
        "1_0_2_20161219222456375": ("age:1", "gender:male"),
        "20_1_0_20170103163040136": ("age:20", "gender:female")}
    assert all(p.consent is None and p.faces == 1 for p in found.values())
    with open(report, newline="") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    assert rows["README.jpg"]["status"] == "rejected" and rows["README.jpg"]["reason"].startswith("unparsed name")


@pytest.mark.e2e
def test_e2e_vggface2_and_imdb_fixtures_of_real_photos(faces, tmp_path):
    """Both labelled corpora through the CLI into one library: people, tags, nobody made of a skip."""
    import lookalike

    # one photo each of 13 LFW people: no two files of the two corpora share their bytes
    photos = [next(iter(sorted(folder.glob("*.jpg")))) for folder in
              sorted((faces / "lfw-dev" / "images").iterdir())[:13]]
    db = tmp_path / "lib.db"
    vgg = _ingest("--format", "vggface2", str(make_vggface2(tmp_path / "vgg", photos[:5])), "--db", str(db))
    assert vgg["statuses"]["rejected"] == 1 and vgg["format"]["skipped"] == {"unknown class": 1}
    assert vgg["statuses"]["ok"] == 4
    imdb = _ingest("--format", "imdb-wiki", str(make_imdb(tmp_path / "imdb", photos[5:])), "--db", str(db))
    assert imdb["statuses"]["rejected"] == 5 and imdb["statuses"]["ok"] == 5
    with lookalike.open(db) as lib:
        found = {p.profile.name: p.profile.tags for p in lib.people.summaries(Audience.operator)}
    assert found["Aaron Eckhart"] == ("gender:male",) and found["Abbie Cornish"] == ("gender:female",)
    assert found["Fred Astaire"] == ("gender:male", "born:1899-05-10") and found["Pat Doe"] == ("born:1950-01-01",)
    assert not {"No Face", "Weak Face", "Two Faces", "Escaper", "Not Downloaded"} & set(found)


@pytest.mark.e2e
def test_e2e_a_second_run_over_a_corpus_with_skips_changes_nothing(faces, tmp_path):
    real = {name: faces / "utkface-dev" / "images" / name for name in UTK_GOOD}
    corpus, db = make_utkface(tmp_path / "utk", real), tmp_path / "utk.db"
    assert _ingest("--format", "utkface", str(corpus), "--db", str(db))["statuses"]["ok"] == 2
    again = _ingest("--format", "utkface", str(corpus), "--db", str(db))
    # the rejected files were settled by the first run: they are unchanged too, their rows kept
    assert again["statuses"]["unchanged"] == 4 and again["statuses"]["rejected"] == 0
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select status, count(*), min(reason) from photos group by status").fetchall()
    assert {status: n for status, n, _ in rows} == {"ok": 2, "rejected": 2}
    assert all(reason for status, _, reason in rows if status == "rejected")
