"""Face analysis on real photos: offline models, CLI shapes, clear errors, evaluation."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import OFFLINE, cli

from lookalike.analysis import EMOTIONS, AnalyzerName


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in this process (:func:`conftest.cli`); the tests that need a process of
    their own start ``python -m lookalike.cli`` themselves."""
    return cli(*args, env=env)


@pytest.fixture(scope="module")
def offline(analysis_weights):
    from lookalike import analysis

    return analysis.build(AnalyzerName.offline)


def _whole(analyzer, path: Path):
    from lookalike.faces.images import decode_file

    rgb = decode_file(str(path), 10**8).rgb
    return analyzer.analyze(rgb, [(0, 0, rgb.shape[1], rgb.shape[0])], crop=True)[0]


def _manifest(faces: Path, name: str) -> list[list[str]]:
    lines = (faces / name / "MANIFEST.tsv").read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


def test_happy_faces_read_happier_than_neutral_ones(faces, offline):
    rows = _manifest(faces, "fer2013-dev")
    happy = [faces / "fer2013-dev" / r[0] for r in rows if r[1] == "happy"][:15]
    neutral = [faces / "fer2013-dev" / r[0] for r in rows if r[1] == "neutral"][:15]
    h = [_whole(offline, p) for p in happy]
    n = [_whole(offline, p) for p in neutral]
    assert sum(e.dominant_emotion == "happy" for e in h) >= 12  # measured: the model is best at happy
    assert sum(e.dominant_emotion == "happy" for e in n) <= 3
    assert np.mean([e.emotion["happy"] for e in h]) > np.mean([e.emotion["happy"] for e in n]) + 0.5
    for e in h + n:
        assert set(e.emotion) == set(EMOTIONS) and abs(sum(e.emotion.values()) - 1) < 1e-4
        assert abs(sum(e.gender.values()) - 1) < 1e-4 and 0 <= e.age <= 100


def test_a_child_reads_younger_than_an_elderly_person(faces, offline):
    rows = _manifest(faces, "utkface-dev")
    by_age = sorted(rows, key=lambda r: int(r[1]))
    children = [faces / "utkface-dev" / r[0] for r in by_age if int(r[1]) <= 3][:5]
    elderly = [faces / "utkface-dev" / r[0] for r in by_age if 75 <= int(r[1]) <= 90][:5]
    young = np.array([_whole(offline, p).age for p in children])
    old = np.array([_whole(offline, p).age for p in elderly])
    # measured 2026-12-01 (Cydral): children 0.3, 0.3, 0.3, 1.0 and one read as 33;
    # the elderly 54-71 and one read as 30: estimates, with outliers either way
    assert (young < 13).sum() >= 4 and (old > 45).sum() >= 4
    assert np.median(old) - np.median(young) > 40


def test_the_one_table_names_every_analyzer_and_its_weights():
    """``auto`` chooses among the rest; each of them is one row: the weights ``models install``
    provides for it and its class, whose own name is the row's (what its estimates carry)."""
    from lookalike import analysis
    from lookalike.analysis import ANALYZERS, Analyzer, required_weights

    assert set(ANALYZERS) == set(AnalyzerName) - {AnalyzerName.auto}
    for name, entry in ANALYZERS.items():
        cls = entry.load()
        assert issubclass(cls, Analyzer) and cls.name == name.value, name
        assert required_weights(name) == entry.weights and entry.weights, name
    assert required_weights(AnalyzerName.auto) == ()
    assert analysis.resolve(AnalyzerName.auto) in ANALYZERS


def test_gender_is_not_stated_below_the_confidence_or_for_children():
    from lookalike.analysis import NOT_SURE, Estimate

    emotion = dict.fromkeys(EMOTIONS, 1 / 7)

    def est(age: float, woman: float) -> Estimate:
        return Estimate(age, {"woman": woman, "man": 1 - woman}, emotion, "m", gender_confidence=0.8)

    assert est(30, 0.95).dominant_gender == "woman" and est(30, 0.1).dominant_gender == "man"
    assert est(30, 0.7).dominant_gender == NOT_SURE and est(30, 0.7).likeliest_gender == "woman"
    assert est(8, 0.99).dominant_gender == NOT_SURE  # never stated as a fact for a child
    assert est(8, 0.99).to_dict()["dominant_gender"] == NOT_SURE


def test_cydral_ages_and_genders_on_utkface(faces, offline):
    """Real photos, the offline models as users get them: adults' gender mostly right,
    children never given one, ages in the right decade."""
    rows = _manifest(faces, "utkface-dev")
    adults = [r for r in rows if 25 <= int(r[1]) <= 60][:40]
    kids = [r for r in rows if int(r[1]) <= 6][:10]
    est = {r[0]: _whole(offline, faces / "utkface-dev" / r[0]) for r in adults + kids}
    truth = {"male": "man", "female": "woman"}
    right = [est[r[0]].likeliest_gender == truth[r[2]] for r in adults]
    assert sum(right) >= 34, sum(right)  # measured 2026-12-01: 37 of 40
    assert np.mean([abs(est[r[0]].age - int(r[1])) for r in adults]) < 10
    assert all(est[r[0]].dominant_gender == "not sure" for r in kids if est[r[0]].age < 13)
    assert sum(est[r[0]].age < 13 for r in kids) >= 8


def test_analyze_cli_json_shape(faces, analysis_weights):
    photo = faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg"
    out = run("analyze", str(photo), "--analyzer", "offline", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["analyzer"] == "offline" and "Cydral" in data["model"]
    (face,) = data["faces"]
    assert set(face) >= {"bbox", "age", "gender", "dominant_gender", "emotion", "dominant_emotion", "estimate",
                         "model"}
    assert face["estimate"] is True and face["dominant_gender"] == "man" and 35 <= face["age"] <= 70
    assert "race" not in json.dumps(data)  # race is never estimated
    text = run("analyze", str(photo), "--analyzer", "offline")
    assert text.returncode == 0 and "estimated age" in text.stdout and "Cydral" in text.stdout


def test_search_analyze_adds_estimates_only_when_asked(faces, small_db, analysis_weights):
    db = small_db
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    plain = json.loads(run("search", query, "--db", str(db), "--json").stdout)
    assert "analysis" not in plain["faces"][0]
    asked = run("search", query, "--db", str(db), "--json", "--analyze", "--analyzer", "offline")
    assert asked.returncode == 0, asked.stderr
    face = json.loads(asked.stdout)["faces"][0]
    assert face["analysis"]["estimate"] is True and face["analysis"]["dominant_gender"] == "man"
    assert face["matches"][0]["person"] == "barack_obama"
    # the web app's Find page estimates the face its search found, at its box: the verb, not the
    # view's analyzer reached around the library (architecture review 50, H2)
    import lookalike

    with lookalike.open(db) as lib:
        whole = lib.analyze(query, "offline")
        at_box = lib.analyze(query, "offline", boxes=[tuple(face["bbox"])])
    assert [f.bbox for f in at_box.faces] == [tuple(face["bbox"])] and len(whole.faces) >= 1
    assert at_box.faces[0].estimate.dominant_gender == whole.faces[0].estimate.dominant_gender == "man"


def test_missing_weights_name_the_install_command(faces, tmp_path):
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    env = {"LOOKALIKE_HOME": str(tmp_path / "empty-home")}
    offline = run("analyze", photo, "--analyzer", "offline", env=env)
    assert offline.returncode == 1
    assert "run: lookalike models install emotion-offline" in offline.stderr
    deepface = run("analyze", photo, "--analyzer", "deepface", env=env)
    assert deepface.returncode == 1 and "run: lookalike models install age" in deepface.stderr
    # offline, DeepFace's own download fails with the file, the URLs and the target path
    download = run("models", "install", "emotion", env=env | OFFLINE)
    assert download.returncode == 1
    assert "facial_expression_model_weights.onnx" in download.stderr and "github.com" in download.stderr
    # auto falls back to the offline backend when DeepFace's weights are missing
    auto = run("analyze", photo, "--json", env={"LOOKALIKE_HOME": os.environ["LOOKALIKE_HOME"]})
    assert auto.returncode == 0 and json.loads(auto.stdout)["analyzer"] == "offline"


def test_eval_attributes_on_a_utkface_slice(faces, tmp_path, analysis_weights):
    lines = (faces / "utkface-dev" / "MANIFEST.tsv").read_text().splitlines()
    manifest = tmp_path / "m.tsv"
    manifest.write_text("\n".join(lines[:1] + lines[1::12]) + "\n")  # every 12th row: ~32 photos, all ages
    out = run("eval", "attributes", str(manifest), "--root", str(faces / "utkface-dev"), "--analyzer",
              "offline", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["n"] == len(lines[1::12]) and data["no_face"] <= 3
    assert 2 < data["age_mae"] < 20 and 0.6 <= data["gender_accuracy"] <= 1
    assert data["emotion_accuracy"] is None
    assert any(g.startswith("race=") and "gender=" in g for g in data["groups"])


def test_eval_attributes_confusion_matrix(faces, tmp_path, analysis_weights):
    rows = (faces / "fer2013-dev" / "MANIFEST.tsv").read_text().splitlines()
    manifest = tmp_path / "e.tsv"
    manifest.write_text("\n".join(rows[:1] + rows[1::10]) + "\n")
    png = tmp_path / "confusion.png"
    out = run("eval", "attributes", str(manifest), "--root", str(faces / "fer2013-dev"), "--crops",
              "--analyzer", "offline", "--plot", str(png), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    matrix = np.array(data["confusion"]["matrix"])
    assert data["confusion"]["labels"] == list(EMOTIONS) and matrix.sum() == data["n"] - data["no_face"]
    assert data["emotion_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-4)
    assert data["emotion_accuracy"] > 0.4 and png.stat().st_size > 10_000


def test_ingest_analyze_stores_estimates_and_removal_drops_them(faces, tmp_path, analysis_weights):
    import sqlite3

    db = tmp_path / "i.db"
    out = run("ingest", str(faces / "celeb/face_recognition"), "--db", str(db), "--analyze", "--analyzer",
              "offline", "-q")
    assert out.returncode == 0, out.stderr
    stats = json.loads(run("stats", "--db", str(db), "--json").stdout)
    assert stats["estimates"]["faces"] == stats["faces"] == 16
    assert sum(stats["estimates"]["emotion"].values()) == 16
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute("pragma table_info(face_estimates)")]
        assert "race" not in cols
        ages = dict(conn.execute("select p.path, e.age from face_estimates e join faces f on f.id = e.face_id "
                                 "join photos p on p.id = f.photo_id"))
    obama = [a for p, a in ages.items() if "barack_obama" in p]
    assert len(obama) == 5 and all(35 <= a <= 70 for a in obama)
    assert run("remove", "--person", "barack_obama", "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from face_estimates").fetchone()[0] == 11
    # without --analyze nothing is estimated
    (tmp_path / "plain").mkdir()
    plain = tmp_path / "plain" / "p.db"  # its own folder: a library owns its indexes/
    assert run("ingest", str(faces / "celeb/face_recognition/joe_biden"), "--db", str(plain), "-q").returncode == 0
    assert json.loads(run("stats", "--db", str(plain), "--json").stdout)["estimates"]["faces"] == 0


def test_an_unknown_analyzer_name_is_one_clean_error(faces, tmp_path):
    """The Python API takes analyzer names as strings too; a string that names none is the
    typed error the CLI and the API print as one line, before any photo is read."""
    import lookalike
    from lookalike.errors import UnknownName

    with lookalike.open(tmp_path / "lib.db") as lib:
        for call in (lambda: lib.ingest([str(faces / "celeb" / "face_recognition")], analyzer="bogus"),
                     lambda: lib.analyze(str(faces / "celeb" / "face_recognition" / "joe_biden" / "biden.jpg"),
                                         "bogus")):
            with pytest.raises(UnknownName, match="unknown analyzer 'bogus'; choose one of: auto, offline"):
                call()
        assert lib.stats()["photos"] == 0
