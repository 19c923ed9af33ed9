"""The CLI's shared option groups: one declaration of --db/--index-dir/--vectors and of
--model/--detector/--aligner for every command, and every command closes the library it opens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from conftest import cli

from lookalike.cli import app

LIBRARY_TRIO = ("--db", "--index-dir", "--vectors")
SPACE_TRIO = ("--model", "--detector", "--aligner")
# `lookalike worker` joins a PostgreSQL library whose vectors are in pgvector or a Milvus
# server: it has no index folder to name
WITHOUT_INDEX_DIR = {"worker"}


def _commands() -> dict[str, object]:
    """Every leaf command by its full name ("stats", "index info", ...)."""
    found: dict[str, object] = {}

    def walk(command: object, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if subs is None:
            found[" ".join(path)] = command
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _options(command: object) -> dict[str, object]:
    return {opt: p for p in command.params for opt in p.opts if opt.startswith("--")}


def _described(param: object) -> tuple:
    return (param.name, tuple(param.opts), param.envvar, param.default, param.help, param.required)


def test_every_command_with_db_takes_the_same_library_trio():
    commands = _commands()
    with_db = {name: _options(c) for name, c in commands.items() if "--db" in _options(c)}
    assert len(with_db) >= 20, sorted(with_db)  # the group is really in use, not a renamed copy
    reference = with_db["stats"]
    for name, options in with_db.items():
        expected = [o for o in LIBRARY_TRIO if not (o == "--index-dir" and name in WITHOUT_INDEX_DIR)]
        assert [o for o in LIBRARY_TRIO if o in options] == expected, name
        for opt in expected:
            assert _described(options[opt]) == _described(reference[opt]), (name, opt)
    # the environment is read by lookalike.open, and the help says so, the same everywhere
    assert "env LOOKALIKE_DB" in reference["--db"].help and reference["--db"].envvar is None
    assert "env LOOKALIKE_VECTORS" in reference["--vectors"].help


def test_every_command_with_model_takes_the_same_space_trio():
    commands = _commands()
    with_model = {name: _options(c) for name, c in commands.items() if "--model" in _options(c)}
    assert set(with_model) == {"ingest", "search", "reembed", "eval verify", "eval retrieval", "landmarks backfill"}
    reference = with_model["search"]
    for name, options in with_model.items():
        for opt in SPACE_TRIO:
            assert _described(options[opt]) == _described(reference[opt]), (name, opt)
    # analyze and eval attributes detect faces without a library: their --detector says so
    assert "library" not in _options(commands["analyze"])["--detector"].help


def test_the_options_keep_their_place_in_the_help():
    """The group stands where the command names it: `search PHOTO --db … -k …`, `path … --db …`."""
    params = [p.name for p in _commands()["search"].params]
    assert params[:4] == ["photo", "db", "index_dir", "vectors"] and params[-4:] == [
        "model", "detector", "aligner", "as_json"]
    params = [p.name for p in _commands()["path"].params]
    assert params.index("montage") < params.index("db") < params.index("as_json")


def test_the_environment_names_the_library(tmp_path):
    db = tmp_path / "from-env.db"
    result = cli("keys", "create", "--scope", "search", "--json", env={"LOOKALIKE_DB": str(db)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = cli("stats", "--json", env={"LOOKALIKE_DB": str(db)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["photos"] == 0 and db.exists()
    assert not (tmp_path / "lookalike.db").exists()


# -- every command closes what it opens ----------------------------------------------
@pytest.fixture
def open_libraries(monkeypatch):
    """The libraries opened in this process and not closed yet, and how many were opened."""
    from lookalike.verbs.library import Library

    live: dict[int, Library] = {}
    opened = []
    init, close = Library.__init__, Library.close

    def counting_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        live[id(self)] = self
        opened.append(id(self))

    def counting_close(self):
        live.pop(id(self), None)
        close(self)

    monkeypatch.setattr(Library, "__init__", counting_init)
    monkeypatch.setattr(Library, "close", counting_close)
    return live, opened


@pytest.fixture(scope="module")
def tiny(faces, tmp_path_factory) -> tuple[Path, Path]:
    """Two people, five photos, on SQLite; and the folder with its pairs file."""
    folder = tmp_path_factory.mktemp("tiny")
    corpus = folder / "corpus"
    for person, photos in (("barack_obama", ("obama.jpg", "obama1.jpg", "obama2.jpg")),
                           ("joe_biden", ("biden.jpg", "biden2.jpg"))):
        (corpus / person).mkdir(parents=True)
        for photo in photos:
            shutil.copy(faces / "celeb" / "face_recognition" / person / photo, corpus / person / photo)
    (folder / "pairs.tsv").write_text("path_a\tpath_b\tsame\n"
                                      "corpus/barack_obama/obama.jpg\tcorpus/barack_obama/obama1.jpg\t1\n"
                                      "corpus/barack_obama/obama.jpg\tcorpus/joe_biden/biden.jpg\t0\n")
    db = folder / "tiny.db"
    result = cli("ingest", str(corpus), "--db", str(db), "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    return db, folder


def _every_command(db: Path, folder: Path, tmp: Path) -> list[tuple[list[str], set[int]]]:
    """Each command that opens a library, with arguments, and the exit codes it may end with."""
    corpus, obama = folder / "corpus", folder / "corpus" / "barack_obama"
    lib = ["--db", str(db)]
    return [
        (["ingest", str(corpus), *lib, "--workers", "1", "--json"], {0}),
        (["search", str(obama / "obama.jpg"), *lib, "--json"], {0}),
        (["path", str(obama / "obama.jpg"), str(corpus / "joe_biden" / "biden.jpg"), "--steps", "2", *lib,
          "--json"], {0}),
        (["person", "barack_obama", *lib, "--json"], {0}),
        (["stats", *lib, "--json"], {0}),
        (["doctor", *lib, "--json"], {0}),
        (["index", "info", *lib, "--json"], {0}),
        (["index", "rebuild", *lib, "--json"], {0}),
        (["explore", "pca", "--components", "1", *lib, "--json"], {0, 1}),
        (["explore", "clusters", *lib, "--json"], {0, 1}),
        (["explore", "outliers", *lib, "--json"], {0, 1}),
        (["eval", "verify", str(folder / "pairs.tsv"), *lib, "--json"], {0}),
        (["keys", "create", "--scope", "search", *lib, "--json"], {0}),
        (["keys", "list", *lib, "--json"], {0}),
        (["keys", "revoke", "1", *lib], {0}),
        (["reembed", "--workers", "1", *lib, "--json"], {0}),
        (["landmarks", "backfill", *lib, "--json"], {0}),
        # pictures (tests/test_pictures.py): a 2-person library has no group average (exit 1)
        (["average", "--person", "barack_obama", "--out", str(tmp / "a.png"), *lib, "--json"], {0}),
        (["morph", str(obama / "obama.jpg"), str(corpus / "joe_biden" / "biden.jpg"), "--frames", "2",
          "--out", str(tmp / "m.png"), *lib, "--json"], {0}),
        (["transform", str(obama / "obama.jpg"), "--toward", "person:joe_biden", "--out", str(tmp / "t.png"),
          *lib, "--json"], {0, 1}),
        (["copy", "--to", str(tmp / "copy.db"), *lib, "--json"], {0}),
        (["remove", "--photo", str(obama / "obama2.jpg"), *lib, "--json"], {0}),
        # refused after the library was opened: closed all the same
        (["webcam", "--source", str(tmp / "no-such-video.mp4"), "--no-window", "--jsonl", str(tmp / "m.jsonl"),
          *lib], {1, 2}),
        (["search", str(folder / "pairs.tsv"), *lib], {1, 2}),
    ]


def test_every_command_closes_the_library_it_opens(tiny, tmp_path, open_libraries):
    db, folder = tiny
    live, opened = open_libraries
    commands = _every_command(db, folder, tmp_path)
    for args, codes in commands:
        before = len(opened)
        result = cli(*args)
        assert result.returncode in codes, (args, result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert len(opened) > before, f"{args[0]} opened no library: the test does not see it"
        assert not live, f"lookalike {' '.join(args[:2])} left {len(live)} library open"
    # worker refuses a SQLite library before it opens one (tests/test_queue.py); it opens PostgreSQL's
    every = {name.split()[0] for name, c in _commands().items() if "--db" in _options(c)} - {"serve", "ui", "worker"}
    assert every <= {args[0] for args, _ in commands}, "a command that opens a library is not checked here"


def test_a_library_is_closed_after_ctrl_c_and_after_an_error(tiny, open_libraries, monkeypatch):
    from lookalike.errors import IndexCorrupt
    from lookalike.verbs.library import Library
    from lookalike.verbs.maintenance import IndexMaintenance

    db, _ = tiny
    live, opened = open_libraries

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Library, "stats", interrupted)
    result = cli("stats", "--db", str(db))
    assert result.returncode == 130 and result.stderr.strip() == "interrupted"
    assert opened and not live

    def broken(self, *args, **kwargs):
        raise IndexCorrupt("the index file is not an index")

    monkeypatch.setattr(IndexMaintenance, "info", broken)  # what `index info` asks lib.maintenance
    result = cli("index", "info", "--db", str(db))
    assert result.returncode != 0 and result.stderr.startswith("error: ")
    assert len(opened) == 2 and not live


# -- output files ---------------------------------------------------------------------
def test_an_output_file_that_cannot_be_written_is_refused_before_the_work(tiny, tmp_path):
    """Every flag that writes a file: a folder that is not there, or a suffix the writer
    cannot write, is one line naming the flag and the file, exit 2, before the work (the
    calibration of ``eval verify --calibrate`` is not stored); never a traceback."""
    import lookalike

    db, folder = tiny
    corpus, lib = folder / "corpus", ["--db", str(db)]
    gone = tmp_path / "no-such-folder"
    obama, biden = corpus / "barack_obama" / "obama.jpg", corpus / "joe_biden" / "biden.jpg"
    manifest = tmp_path / "people.csv"
    manifest.write_text(f"path,person\n{obama},barack_obama\n")
    with lookalike.open(db) as before:
        calibration = before.view.facts.calibration()
    cases = [
        (["eval", "verify", str(folder / "pairs.tsv"), "--calibrate", "--plot", str(gone / "roc.png"), *lib],
         f"--plot {gone / 'roc.png'}: the folder {gone} does not exist"),
        (["eval", "verify", str(folder / "pairs.tsv"), "--plot", str(tmp_path / "roc.gif"), *lib],
         "--plot " + str(tmp_path / "roc.gif") + ": write it as .jpeg, .jpg, .pdf, .png, .svg, .tif, .tiff, .webp, "
         "not '.gif'"),
        (["ingest", str(corpus), "--report", str(tmp_path), *lib], f"--report {tmp_path}: that is a folder"),
        (["explore", "outliers", "--montage", str(gone / "o.jpg"), *lib], f"--montage {gone / 'o.jpg'}: the folder"),
        (["person", "barack_obama", "--montage", str(tmp_path / "m.tiff"), *lib],
         "write it as .jpeg, .jpg, .png, .webp"),
        (["path", str(obama), str(biden), "--montage", str(gone / "p.png"), *lib], "--montage"),
        (["ingest", str(corpus), "--report", str(gone / "r.csv"), *lib], f"--report {gone / 'r.csv'}: the folder"),
        (["explore", "pca", "--montage-dir", str(folder / "pairs.tsv" / "x"), *lib], "--montage-dir"),
        # a report over the manifest being read, or over the library itself, is refused
        (["ingest", str(manifest), "--report", str(manifest), *lib], f"--report {manifest}: that is one of this "
         f"command's own files ({manifest})"),
        (["ingest", str(manifest), "--report", str(tmp_path / "lib.csv"), "--db", str(tmp_path / "lib.csv")],
         "that is one of this command's own files"),
        (["ingest", str(manifest), "--report", str(db), *lib], "write it as .csv, not '.db'"),
    ]
    for args, said in cases:
        result = cli(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert said in result.stderr.replace("\n", ""), (args, result.stderr)
    assert not gone.exists() and not (tmp_path / "lib.csv").exists()
    assert manifest.read_text().startswith("path,person\n")
    with lookalike.open(db) as after:
        assert after.view.facts.calibration() == calibration, "the calibration was stored before the plot failed"


def test_a_space_whose_names_cannot_work_together_is_refused_before_any_photo(tiny, tmp_path):
    """--detector dlib with the default arcface aligner used to fail on every photo (a
    warning traceback each, then exit 1); a model name that is a detector, a KeyError."""
    from lookalike.errors import ConfigError, UnknownName
    from lookalike.models.catalog import check_space

    with pytest.raises(ConfigError, match="--aligner arcface maps five landmarks .* the dlib detector does not give"):
        check_space("SFace", "dlib", "arcface")
    with pytest.raises(UnknownName, match="unknown recognition model \\(--model\\) 'yunet'"):
        check_space("yunet", "yunet", "arcface")
    with pytest.raises(ConfigError, match="--detector SFace: that is a recognition model"):
        check_space("SFace", "SFace", "chip")
    check_space("SFace", "yunet", "arcface")
    check_space("Dlib", "dlib", "chip")
    _, folder = tiny
    for args, said in ((["--detector", "dlib"], "--aligner arcface maps five landmarks"),
                       (["--model", "yunet"], "unknown recognition model (--model) 'yunet'")):
        db = tmp_path / f"{args[1]}.db"
        result = cli("ingest", str(folder / "corpus"), "--db", str(db), *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert said in result.stderr, result.stderr


def test_counts_are_bounded_where_the_flag_is_read():
    """--workers -1 used to mean "in this process" for ingest and start no worker for the
    queue; serve --workers 65 started processes the board has no slot for."""
    from lookalike.serve.board import SLOTS

    commands = _commands()
    assert _options(commands["serve"])["--workers"].max == SLOTS
    for name in ("ingest", "worker", "reembed"):
        assert _options(commands[name])["--workers"].min == 0, name
    assert _options(commands["ingest"])["--max-pixels"].min == 1
    result = cli("ingest", ".", "--workers", "-1")
    assert result.returncode == 2 and "Invalid value for '--workers'" in result.stderr, result.stderr


def test_a_read_only_library_refuses_a_write_in_one_line_and_still_answers_reads(tiny, tmp_path):
    """Writes to a read-only SQLite file were SQLAlchemy's traceback with the statement and
    its parameters. The suite may run as root, whom permissions do not stop: the command
    then runs under setpriv without CAP_DAC_OVERRIDE, as an ordinary user would."""
    import os
    import stat
    import subprocess
    import sys

    from _libraries import copy_library

    db = copy_library(tiny[0], tmp_path / "ro" / "lib.db")
    before = db.read_bytes()
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    as_user = ["setpriv", "--bounding-set=-dac_override,-fowner"] if os.geteuid() == 0 else []

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, sys.executable, "-m", "lookalike.cli", *args, "--db", str(db)],
                              capture_output=True, text=True, timeout=600)

    removed = run("remove", "--person", "joe_biden")
    assert removed.returncode == 1 and "Traceback" not in removed.stderr, removed.stderr
    assert removed.stderr.strip() == (f"error: {db}: the library cannot be written (the file, its folder or its "
                                      "-wal/-shm files are read-only); reading commands still work")
    assert json.loads(run("stats", "--json").stdout)["people"] == 2
    assert db.read_bytes() == before
