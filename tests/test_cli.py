"""The command line: JSON shapes, clean one-line errors, missing weights, mismatches."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OFFLINE, cli, index_dir_of

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The CLI in this process (:func:`conftest.cli`); the tests that need a process of
    their own start ``python -m lookalike.cli`` themselves."""
    return cli(*args, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def small_lib(small_golden, tmp_path_factory):
    """This module's copy of celeb/face_recognition ingested by the CLI, and its summary."""
    from _libraries import copy_library

    golden, summary = small_golden
    return copy_library(golden, tmp_path_factory.mktemp("cli") / "s.db"), summary


@pytest.fixture(scope="module", params=["sqlite", "postgres", "milvus"])
def any_lib(request, faces, tmp_path_factory):
    """The same small library on each backend, for the behaviour tests that must hold on each:
    celeb/face_recognition ingested by the CLI (a copy of the session's golden one,
    :func:`_stores.small_store`), and that ingest's ``--json`` summary."""
    from _stores import small_store

    return small_store(request, tmp_path_factory.mktemp("cli-any"), request.param)


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys, lookalike.cli; heavy = {'deepface', 'dlib', 'faiss', 'cv2', 'sqlalchemy', "
            "'numpy'} & {m.split('.')[0] for m in sys.modules}; print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
    assert run("--help").returncode == 0


def _new_library(path) -> str:
    """An empty library (read-only commands no longer make one for a name that is not there)."""
    import lookalike

    lookalike.open(path).close()
    return str(path)


def test_verbose_logs_debug_lines_on_stderr_and_the_default_stays_quiet(tmp_path):
    db = _new_library(tmp_path / "fresh.db")
    loud = run("-v", "stats", "--db", db, "--json", env={"LOOKALIKE_LOG_LEVEL": ""})
    assert loud.returncode == 0, loud.stderr
    opened = [line for line in loud.stderr.splitlines() if line.startswith("DEBUG lookalike.cli._common: opened ")]
    assert len(opened) == 1 and "fresh.db" in opened[0], loud.stderr
    assert run("--verbose", "stats", "--db", db).stderr.count("DEBUG lookalike.") >= 2
    # without -v: warnings only, even when the environment asked for more
    quiet = run("stats", "--db", db, "--json", env={"LOOKALIKE_LOG_LEVEL": "DEBUG"})
    assert quiet.returncode == 0 and "DEBUG" not in quiet.stderr and quiet.stderr.strip() == ""
    assert json.loads(loud.stdout) == json.loads(quiet.stdout)  # the log never reaches stdout


def test_verbose_shows_where_an_error_came_from(tmp_path, faces):
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg")
    loud = run("-v", "search", photo, "--db", _new_library(tmp_path / "empty.db"))
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "EmptyLibrary" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("error: ")
    quiet = run("search", photo, "--db", str(tmp_path / "empty.db"))
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr and len(quiet.stderr.splitlines()) == 1


@pytest.mark.smoke
def test_ingest_json_summary(any_lib):
    _, summary = any_lib
    assert summary["statuses"]["ok"] == summary["processed"] > 0
    for key in ("photos", "faces", "photos_per_s", "faces_per_s", "seconds", "library"):
        assert key in summary


def test_search_json_shape(any_lib, faces):
    db, _ = any_lib
    query = faces / "bad-inputs/collected/multi_face__obama_and_biden.jpg"
    result = run("search", str(query), *db.args(), "-k", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["query"] == str(query)
    assert len(data["faces"]) >= 2
    people = set()
    for face in data["faces"]:
        x, y, w, h = face["bbox"]
        assert w > 0 and h > 0
        assert [m["rank"] for m in face["matches"]] == [1, 2]
        for m in face["matches"]:
            assert set(m) >= {"rank", "person", "photo", "face_id", "similarity"}
            assert -1.0 <= m["similarity"] <= 1.0
        sims = [m["similarity"] for m in face["matches"]]
        assert sims == sorted(sims, reverse=True)
        people.add(face["matches"][0]["person"])
    assert {"barack_obama", "joe_biden"} <= people


def test_search_table_output(any_lib, faces):
    db, _ = any_lib
    result = run("search", str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg"),
                 *db.args())
    assert result.returncode == 0 and "barack_obama" in result.stdout


def test_search_with_no_face_exits_non_zero_with_a_clear_message(any_lib, faces):
    db, _ = any_lib
    photo = faces / "bad-inputs/collected/non_face_scene__skimage_coffee.png"
    result = run("search", str(photo), *db.args())
    assert result.returncode == 1
    assert "no face found" in result.stderr and str(photo) in result.stderr
    assert "Traceback" not in result.stderr


def test_search_on_corrupt_or_missing_file(any_lib, faces):
    db, _ = any_lib
    corrupt = faces / "bad-inputs/generated/corrupt__truncated.jpg"
    result = run("search", str(corrupt), *db.args())
    assert result.returncode == 1 and "truncated" in result.stderr and str(corrupt) in result.stderr
    result = run("search", "/nonexistent.jpg", *db.args())
    assert result.returncode == 1 and "/nonexistent.jpg: no such file" in result.stderr


def test_search_on_empty_library(tmp_path, faces):
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg")
    result = run("search", photo, "--db", _new_library(tmp_path / "empty.db"))
    assert result.returncode == 1 and "the library has no faces yet" in result.stderr
    assert "lookalike ingest" in result.stderr
    # a name with no library behind it (a typo) is said as such, and no empty library is made
    # for it (`stats --db typo.db` made one and said it held nobody)
    for command in (["search", photo], ["stats"], ["doctor"], ["person", "x"], ["index", "info"]):
        typo = run(*command, "--db", str(tmp_path / "typo.db"))
        assert typo.returncode == 1 and f"{tmp_path / 'typo.db'}: no library there" in typo.stderr, typo.stderr
    assert not (tmp_path / "typo.db").exists()


def test_stats_json(any_lib):
    db, summary = any_lib
    result = run("stats", *db.args(), "--json")
    data = json.loads(result.stdout)
    assert data["photos"] == summary["photos"] and data["faces"] == summary["faces"]
    assert data["people"] == 6
    assert data["statuses"]["ok"] == summary["statuses"]["ok"] and "no_face" in data["statuses"]
    assert data["index"]["ntotal"] == data["faces"] and data["index"]["dim"] == 128


def test_model_mismatch_is_refused(small_lib, faces):
    db, _ = small_lib
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg")
    result = run("search", photo, "--db", str(db), "--model", "Facenet")
    assert result.returncode == 1
    assert "SFace__yunet__arcface" in result.stderr and "not Facenet__yunet__arcface" in result.stderr


def test_index_from_another_model_is_refused(small_lib, tmp_path, faces):
    db, _ = small_lib
    copy = tmp_path / "copy"
    shutil.copytree(db.parent, copy)
    manifest = index_dir_of(copy / db.name) / "SFace__yunet__arcface.json"
    data = json.loads(manifest.read_text())
    data["model"], data["dim"] = "Facenet512", 512
    manifest.write_text(json.dumps(data))
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg")
    result = run("search", photo, "--db", str(copy / db.name))
    assert result.returncode == 1
    assert "index was made with model='Facenet512'" in result.stderr
    assert "doctor --fix" in result.stderr
    doctor = run("doctor", "--db", str(copy / db.name))
    assert doctor.returncode == 1
    fixed = run("doctor", "--db", str(copy / db.name), "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert run("search", photo, "--db", str(copy / db.name)).returncode == 0


def test_corrupt_index_file_is_refused_and_rebuilt(small_lib, tmp_path, faces):
    db, _ = small_lib
    copy = tmp_path / "copy"
    shutil.copytree(db.parent, copy)
    (index_dir_of(copy / db.name) / "SFace__yunet__arcface.faiss").write_bytes(b"\x00garbage" * 10)
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg")
    result = run("search", photo, "--db", str(copy / db.name))
    assert result.returncode == 1 and "not a readable FAISS index" in result.stderr
    assert run("doctor", "--db", str(copy / db.name), "--fix").returncode == 0
    assert run("doctor", "--db", str(copy / db.name)).returncode == 0


def test_doctor_repairs_a_stale_index(small_lib, tmp_path):
    import faiss
    import numpy as np

    db, _ = small_lib
    copy = tmp_path / "copy"
    shutil.copytree(db.parent, copy)
    path = index_dir_of(copy / db.name) / "SFace__yunet__arcface.faiss"
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map)
    index.remove_ids(np.asarray(ids[:3], dtype=np.int64))  # as if a crash lost the last adds
    index.add_with_ids(np.ones((1, 128), dtype=np.float32), np.asarray([999999]))  # an orphan
    faiss.write_index(index, str(path))
    result = run("doctor", "--db", str(copy / db.name), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["spaces"][0]["missing"] == 3
    assert report["spaces"][0]["orphans"] == 1
    assert run("doctor", "--db", str(copy / db.name), "--fix").returncode == 0
    assert run("doctor", "--db", str(copy / db.name)).returncode == 0


def test_missing_weights_give_the_install_command(small_lib, tmp_path, faces):
    db, _ = small_lib
    env = {"LOOKALIKE_HOME": str(tmp_path / "empty-home")}
    photo = str(faces / "bad-inputs/collected/resolution_ladder__obama-240p.jpg")
    result = run("search", photo, "--db", str(db), env=env)
    assert result.returncode == 1
    assert "model 'SFace' is not installed" in result.stderr
    assert "face_recognition_sface_2021dec.onnx" in result.stderr
    assert "run: lookalike models install SFace" in result.stderr
    result = run("ingest", str(faces / "celeb" / "deepface"), "--db", str(tmp_path / "x.db"), env=env)
    assert result.returncode == 1 and "lookalike models install SFace" in result.stderr
    old = run("ingest", str(faces / "celeb" / "deepface"), "--db", str(tmp_path / "y.db"), "--model", "Dlib",
              "--detector", "dlib", "--aligner", "chip", env=env)
    assert old.returncode == 1 and "run: lookalike models install Dlib" in old.stderr
    assert "dlib_face_recognition_resnet_model_v1.dat" in old.stderr
    # every missing model named in one error (one install at a time took a run each), and a
    # refused first ingest leaves no empty library behind
    assert "model 'dlib' is not installed" in old.stderr and "model 'chip' is not installed" in old.stderr
    assert old.stderr.rstrip().endswith("run: lookalike models install Dlib dlib chip"), old.stderr
    analysed = run("ingest", str(faces / "celeb" / "deepface"), "--db", str(tmp_path / "z.db"), "--analyze",
                   "--analyzer", "offline", env=env)
    assert analysed.returncode == 1 and "model 'emotion-offline' is not installed" in analysed.stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("x.", "y.", "z."))]


def test_models_install_and_list_offline(tmp_path):
    env = {"LOOKALIKE_HOME": str(tmp_path / "home")}
    result = run("models", "install", "Dlib", "dlib", env=env)
    assert result.returncode == 0, result.stderr
    weights = tmp_path / "home" / ".deepface" / "weights"
    assert (weights / "dlib_face_recognition_resnet_model_v1.dat").stat().st_size == 22466066
    listing = json.loads(run("models", "list", "--json", env=env).stdout)
    rows = {(m["kind"], m["name"]): m for m in listing["models"]}
    assert rows[("recognition", "Dlib")]["installed"] is True and rows[("recognition", "Dlib")]["dim"] == 128
    assert rows[("recognition", "VGG-Face")]["installed"] is False
    assert rows[("recognition", "VGG-Face")]["dim"] == 4096
    assert rows[("detector", "opencv")]["installed"] is True
    assert len([r for r in rows if r[0] == "recognition"]) >= 10


def test_download_model_offline_says_which_file_and_where(tmp_path, monkeypatch):
    from deepface.modules import modeling

    # as after an earlier test in this process built VGG-Face from another weights home:
    # DeepFace's by-name cache must not make the install believe the files are here
    cached = getattr(modeling, "cached_models", {task: {} for task in modeling.AVAILABLE_MODELS})
    monkeypatch.setattr(modeling, "cached_models", cached, raising=False)
    monkeypatch.setitem(cached["facial_recognition"], "VGG-Face", object())
    env = {"LOOKALIKE_HOME": str(tmp_path / "home")} | OFFLINE
    result = run("models", "install", "VGG-Face", env=env)
    assert result.returncode == 1
    target = tmp_path / "home" / ".deepface" / "weights" / "vgg_face_weights.onnx"
    assert "vgg_face_weights.onnx" in result.stderr and str(target) in result.stderr.replace("\n", "")
    assert "no network was reachable" in result.stderr
    assert not target.exists()


def test_unknown_names_are_listed(tmp_path, faces):
    result = run("models", "install", "NoSuchModel", env={"LOOKALIKE_HOME": str(tmp_path)})
    assert result.returncode == 2 and "Dlib" in result.stderr


def test_the_reference_documents_every_command():
    """The README's tour and the CLI reference (docs/cli.md; tests/test_docs.py checks each
    command's own section)."""
    readme = (ROOT / "README.md").read_text() + (ROOT / "docs" / "cli.md").read_text()
    from lookalike.cli import app, eval_app, explore_app, index_app, models_app

    commands = [c.name or c.callback.__name__ for c in app.registered_commands]
    commands += [f"models {c.name}" for c in models_app.registered_commands]
    commands += [f"eval {c.name}" for c in eval_app.registered_commands]
    commands += [f"index {c.name}" for c in index_app.registered_commands]
    commands += [f"explore {c.name}" for c in explore_app.registered_commands]
    for name in commands:
        assert f"lookalike {name}" in readme, f"the reference does not document `lookalike {name}`"
    assert "make demo" in readme and "make test" in readme


def test_the_reference_documents_every_option_of_every_command():
    """Each long option of each command (and sub-command) appears in the CLI reference."""
    import typer.main

    from lookalike.cli import app

    readme = (ROOT / "docs" / "cli.md").read_text()

    def leaves(cmd, path):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield path, cmd
            return
        for name, sub in subs.items():
            yield from leaves(sub, f"{path} {name}")

    missing = [f"{path} {opt}" for path, cmd in leaves(typer.main.get_command(app), "lookalike")
               for p in cmd.params for opt in [*p.opts, *getattr(p, "secondary_opts", [])]
               if opt.startswith("--") and opt != "--help" and opt not in readme]
    assert not missing, f"docs/cli.md does not mention: {missing}"


def test_search_options_per_person_centroid_and_filters(any_lib, faces):
    db, _ = any_lib
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    per_person = json.loads(run("search", query, *db.args(), "-k", "4", "--per-person", "--json").stdout)
    people = [m["person"] for m in per_person["faces"][0]["matches"]]
    assert len(people) == 4 and len(set(people)) == 4 and people[0] == "barack_obama"
    face = per_person["faces"][0]
    assert face["corpus_centroid_similarity"] is not None
    top = face["matches"][0]
    assert top["verdict"] == "same_person" and top["person_centroid_similarity"] > 0.9
    assert all(m["verdict"] in ("same_person", "lookalike", "weak") for m in face["matches"])
    by_centroid = json.loads(run("search", query, *db.args(), "-k", "3", "--by", "centroid",
                                 "--json").stdout)["faces"][0]["matches"]
    cents = [m["person_centroid_similarity"] for m in by_centroid]
    assert cents == sorted(cents, reverse=True) and by_centroid[0]["person"] == "barack_obama"
    only = json.loads(run("search", query, *db.args(), "-k", "3", "--filter", "person=joe_biden",
                          "--json").stdout)["faces"][0]["matches"]
    assert only and {m["person"] for m in only} == {"joe_biden"}
    nobody = run("search", query, *db.args(), "--consented-only", "--json")
    assert nobody.returncode == 0 and json.loads(nobody.stdout)["faces"][0]["matches"] == []
    bad = run("search", query, *db.args(), "--filter", "colour=blue")
    assert bad.returncode == 2 and "unknown filter key" in bad.stderr


def test_remove_person_leaves_no_trace(faces, small_backend):
    db = small_backend  # celeb/face_recognition ingested
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    before = json.loads(run("stats", *db.args(), "--json").stdout)
    result = run("remove", "--person", "barack_obama", *db.args(), "--json")
    assert result.returncode == 0, result.stderr
    removed = json.loads(result.stdout)
    assert removed["photos"] >= 3 and removed["faces"] == removed["photos"]
    after = json.loads(run("stats", *db.args(), "--json").stdout)
    assert after["faces"] == before["faces"] - removed["faces"]
    assert after["people"] == before["people"] - 1 and after["index"]["ntotal"] == after["faces"]
    found = json.loads(run("search", query, *db.args(), "-k", "50", "--json").stdout)
    assert len(found["faces"][0]["matches"]) == min(50, after["faces"])  # an empty answer is no proof
    assert all(m["person"] != "barack_obama" for m in found["faces"][0]["matches"])
    assert found["faces"][0]["matches"][0]["verdict"] != "same_person"
    centroid = json.loads(run("search", query, *db.args(), "-k", "50", "--by", "centroid",
                              "--json").stdout)["faces"][0]["matches"]
    assert len(centroid) == min(50, after["people"])
    assert all(m["person"] != "barack_obama" for m in centroid)
    assert db.sql("select count(*) from people where name='barack_obama'") == [(0,)]
    assert db.sql("select count(*) from photos where path like '%obama%'") == [(0,)]
    assert db.sql("select count from centroids where person_id is null") == [(after["faces"],)]
    assert run("doctor", *db.args()).returncode == 0
    again = run("remove", "--person", "barack_obama", *db.args())
    assert again.returncode == 1 and "no person named 'barack_obama'" in again.stderr


def test_remove_names_exactly_one_thing(tmp_path):
    db = tmp_path / "lib.db"
    for args in ((), ("--person", "a", "--photo", "b.jpg"), ("--person", "a", "--space", "K")):
        done = run("remove", *args, "--db", str(db))
        assert done.returncode == 2, (args, done.stderr)
        assert "name exactly one of --person NAME, --photo PATH or --space KEY" in done.stderr
    assert not db.exists()  # refused before a library was opened (or made)


def test_remove_photo(faces, small_backend):
    db = small_backend
    folder = faces / "celeb" / "face_recognition"  # ingested
    photo = next((folder / "joe_biden").glob("*.jpg"))
    spelled = folder / "joe_biden" / ".." / "joe_biden" / photo.name  # the same file ("no such photo" before)
    result = json.loads(run("remove", "--photo", str(spelled), *db.args(), "--json").stdout)
    assert result["photos"] == 1 and result["faces"] == 1
    found = json.loads(run("search", str(photo), *db.args(), "-k", "20", "--json").stdout)
    left = json.loads(run("stats", *db.args(), "--json").stdout)["faces"]
    assert found["faces"] and all(len(f["matches"]) == min(20, left) for f in found["faces"])
    assert all(m["photo"] != str(photo) for f in found["faces"] for m in f["matches"])
    assert run("doctor", *db.args()).returncode == 0


def test_person_sorted_by_centroid_with_planted_outlier_and_montage(planted_db, tmp_path):
    db = planted_db
    out = tmp_path / "m.png"
    result = run("person", "deepface_id01", "--db", str(db), "--montage", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sims = [f["similarity"] for f in report["faces"]]
    assert sims == sorted(sims, reverse=True) and len(sims) >= 5
    assert report["faces"][-1]["photo"].endswith("planted.jpg") and report["faces"][-1]["outlier"] is True
    assert not any(f["outlier"] for f in report["faces"][:-1])
    # the figures the HTTP API and the operator page show, from the same faces
    import statistics

    assert report["centroid"] == {"faces": len(sims), "mean_similarity": pytest.approx(statistics.mean(sims), abs=1e-6),
                                  "median_similarity": pytest.approx(statistics.median(sims), abs=1e-6),
                                  "min_similarity": min(sims), "outliers": 1}
    from PIL import Image

    with Image.open(out) as img:
        assert img.width >= 4 * 160 and img.height >= 36 + 2 * 194
    missing = run("person", "nobody", "--db", str(db))
    assert missing.returncode == 1 and "no person named 'nobody'" in missing.stderr


def test_index_rebuild_hnsw_then_remove_uses_tombstones(faces, small_db):
    db = small_db
    query = str(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg")
    flat = json.loads(run("search", query, "--db", str(db), "-k", "5", "--json").stdout)
    info = json.loads(run("index", "info", "--db", str(db), "--json").stdout)
    assert info["index_key"] == "Flat" and info["rules_choose"] == "Flat" and not info["rebuild_advised"]
    rebuilt = run("index", "rebuild", "--db", str(db), "--key", "HNSW32", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["index_key"] == "HNSW32"
    hnsw = json.loads(run("search", query, "--db", str(db), "-k", "5", "--json").stdout)
    assert [m["face_id"] for m in hnsw["faces"][0]["matches"]] == [m["face_id"] for m in flat["faces"][0]["matches"]]
    one = faces / "celeb/face_recognition/barack_obama/obama_small.jpg"
    assert run("remove", "--photo", str(one), "--db", str(db)).returncode == 0
    info = json.loads(run("index", "info", "--db", str(db), "--json").stdout)
    # HNSW cannot delete: 1 of 16 vectors is a tombstone, under the 20 % rebuild line
    assert info["tombstones"] == 1 and info["pinned"] and info["rebuild_advised"] is False
    gone = run("remove", "--person", "barack_obama", "--db", str(db), "--json")
    assert "removed faces" in json.loads(gone.stdout)["index_rebuilt"]  # 5 of 16 > 20 %: rebuilt
    info = json.loads(run("index", "info", "--db", str(db), "--json").stdout)
    assert info["tombstones"] == 0 and info["index_key"] == "HNSW32"  # the pinned key is kept
    after = json.loads(run("search", query, "--db", str(db), "-k", "20", "--json").stdout)
    assert all(m["person"] != "barack_obama" for m in after["faces"][0]["matches"])
    assert run("doctor", "--db", str(db)).returncode == 0
    unpinned = json.loads(run("index", "rebuild", "--db", str(db), "--json").stdout)
    assert unpinned["index_key"] == "Flat" and not unpinned["pinned"]
    bad = run("index", "rebuild", "--db", str(db), "--key", "NotAKey")
    assert bad.returncode == 2 and "cannot build index 'NotAKey' for 128-d vectors (could not parse" in bad.stderr
    for key, why in (("IVFabc,Flat", "IVF is followed by its number of lists in digits"),
                     ("IVF16,PQ7", "should be a multiple")):  # said before a --reduce PCA would be stored
        bad = run("index", "rebuild", "--db", str(db), "--key", key, "--reduce", "64")
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert why in bad.stderr.replace("\n", " "), bad.stderr
    info = json.loads(run("index", "info", "--db", str(db), "--json").stdout)
    assert info["reduction"]["kind"] is None, "a PCA was stored for a key that could not be built"


def test_names_and_profile_text_print_as_text_never_as_markup(faces, tmp_path):
    """A folder name that looks like rich markup prints as those characters in the tables;
    profile text (HTML, Markdown links, javascript: URLs) comes back in JSON exactly as stored."""
    import lookalike
    from lookalike.store.profiles import Profile

    odd = "[bold red]Eve [link=mailto:eve]x"  # one folder name: markup without a closing "/"
    corpus = tmp_path / "c"
    for name, src in ((odd, "barack_obama"), ("eve_staff", "joe_biden")):
        (corpus / name).mkdir(parents=True)
        for photo in sorted((faces / "celeb/face_recognition" / src).iterdir())[:2]:
            (corpus / name / photo.name).symlink_to(photo)
    db = tmp_path / "h.db"
    assert run("ingest", str(corpus), "--db", str(db), "-q").returncode == 0
    story = "<script>alert(1)</script> [click](javascript:alert(1)) ![x](http://example.invalid/p.png)"
    with lookalike.open(db) as lib:
        lib.people.save_profile("eve_staff", Profile(display_name="<b>Eve</b>", story=story, consent_display=True))
    env = {"COLUMNS": "300", "NO_COLOR": "1"}
    table = run("search", str(faces / "celeb/face_recognition/barack_obama/obama.jpg"), "--db", str(db), env=env)
    assert table.returncode == 0, table.stderr
    assert odd in table.stdout  # not "Eve" in bold with the tags gone
    person = run("person", odd, "--db", str(db), env=env)
    assert person.returncode == 0 and odd in person.stdout
    missing = run("person", odd + " 2", "--db", str(db))
    assert missing.returncode == 1 and f"no person named '{odd} 2'" in missing.stderr  # the error line too
    shown = json.loads(run("person", "eve_staff", "--db", str(db), "--json").stdout)["profile"]
    assert shown["story"] == story and shown["display_name"] == "<b>Eve</b>"
