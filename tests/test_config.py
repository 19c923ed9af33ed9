"""Settings from environment variables: valid values as before, bad ones a ConfigError naming them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike import config
from lookalike.config import DEFAULT_INDEX_BUDGET, DEFAULT_MAX_PIXELS, Settings
from lookalike.errors import ConfigError, LookalikeError

# a ~user that names nobody: Path.expanduser() cannot expand it
NO_HOME = "~no-such-user-lookalike-test/x"

ALL_VARS = ("LOOKALIKE_DB", "LOOKALIKE_INDEX_DIR", "LOOKALIKE_HOME", "LOOKALIKE_MODEL", "LOOKALIKE_DETECTOR",
            "LOOKALIKE_ALIGNER", "LOOKALIKE_MAX_PIXELS", "LOOKALIKE_INDEX_BUDGET", "LOOKALIKE_RUNTIME")


@pytest.fixture
def clean_env(monkeypatch):
    """No LOOKALIKE_* setting (nor DEEPFACE_HOME) from the developer's shell or the session."""
    for name in (*ALL_VARS, "DEEPFACE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _resolve(tmp_path: Path) -> Settings:
    return Settings.resolve(db=tmp_path / "lib.db")


def _weights_home(tmp_path: Path) -> Path:
    return config.weights_home()


# variable, bad value, what reads it (the part of config.py that must refuse it)
BAD = [
    ("LOOKALIKE_MAX_PIXELS", "abc", _resolve),
    ("LOOKALIKE_MAX_PIXELS", "1.5", _resolve),
    ("LOOKALIKE_MAX_PIXELS", "1e8", _resolve),
    ("LOOKALIKE_MAX_PIXELS", "0", _resolve),
    ("LOOKALIKE_MAX_PIXELS", "-5", _resolve),
    ("LOOKALIKE_MAX_PIXELS", " ", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "abc", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "4X", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "G", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "0", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "-1G", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "nanG", _resolve),
    ("LOOKALIKE_INDEX_BUDGET", "infG", _resolve),
    ("LOOKALIKE_INDEX_DIR", NO_HOME, _resolve),
    ("LOOKALIKE_RUNTIME", "bogus", _resolve),  # refused by every command, not only where models load
    ("LOOKALIKE_DB", NO_HOME, lambda tmp_path: Settings.resolve()),
    ("LOOKALIKE_DB", NO_HOME, lambda tmp_path: config.db_url(None)),
    ("LOOKALIKE_HOME", NO_HOME, _weights_home),
    ("LOOKALIKE_HOME", NO_HOME, lambda tmp_path: config.activate_weights_home()),
]


@pytest.mark.parametrize(("name", "value", "read"), BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_a_bad_variable_is_a_config_error_naming_it(clean_env, tmp_path, name, value, read):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        read(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r}: expected "), message
    assert caught.value.exit_code == 2


def test_the_messages_say_what_is_expected(clean_env, tmp_path):
    clean_env.setenv("LOOKALIKE_MAX_PIXELS", "abc")
    with pytest.raises(ConfigError, match=r"^LOOKALIKE_MAX_PIXELS='abc': expected a whole number of pixels"):
        _resolve(tmp_path)
    clean_env.setenv("LOOKALIKE_MAX_PIXELS", "100")
    clean_env.setenv("LOOKALIKE_INDEX_BUDGET", "lots")
    with pytest.raises(ConfigError, match=r"^LOOKALIKE_INDEX_BUDGET='lots': expected a size such as 4G or 512M"):
        _resolve(tmp_path)


def test_a_bad_flag_path_names_the_flag(clean_env, tmp_path):
    with pytest.raises(ConfigError, match=r"^--db="):
        Settings.resolve(db=NO_HOME)
    with pytest.raises(ConfigError, match=r"^--index-dir="):
        Settings.resolve(db=tmp_path / "lib.db", index_dir=NO_HOME)


def test_unset_and_empty_variables_give_the_defaults(clean_env, tmp_path):
    unset = _resolve(tmp_path)
    assert unset.max_pixels == DEFAULT_MAX_PIXELS and unset.index_budget == DEFAULT_INDEX_BUDGET == 4 * 1024**3
    assert unset.index_dir == tmp_path / "lib.indexes" and unset.upload_dir == tmp_path / "lib.uploads"
    assert (unset.model, unset.detector, unset.aligner) == (None, None, None)
    for name in ALL_VARS:
        clean_env.setenv(name, "")
    assert _resolve(tmp_path) == unset
    clean_env.chdir(tmp_path)
    assert config.db_url(None) == "sqlite:///" + str((tmp_path / "lookalike.db").resolve())


def test_valid_values_parse_as_before(clean_env, tmp_path):
    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("LOOKALIKE_MAX_PIXELS", "5000")
    clean_env.setenv("LOOKALIKE_INDEX_BUDGET", "512M")
    clean_env.setenv("LOOKALIKE_INDEX_DIR", "~/idx")
    clean_env.setenv("LOOKALIKE_MODEL", "Dlib")
    clean_env.setenv("LOOKALIKE_DETECTOR", "dlib")
    clean_env.setenv("LOOKALIKE_ALIGNER", "chip")
    s = _resolve(tmp_path)
    assert (s.max_pixels, s.index_budget, s.index_dir) == (5000, 512 * 1024**2, (tmp_path / "idx").resolve())
    assert (s.model, s.detector, s.aligner) == ("Dlib", "dlib", "chip")
    for text, size in [("4G", 4 * 1024**3), ("4g", 4 * 1024**3), ("4GB", 4 * 1024**3), ("4GiB", 4 * 1024**3),
                       ("1.5K", 1536), ("1000000", 1_000_000), (" 2T ", 2 * 1024**4)]:
        clean_env.setenv("LOOKALIKE_INDEX_BUDGET", text)
        assert _resolve(tmp_path).index_budget == size, text
    clean_env.setenv("LOOKALIKE_MAX_PIXELS", "100_000_000")
    assert _resolve(tmp_path).max_pixels == 100_000_000
    # flags still win over the environment
    assert Settings.resolve(db=tmp_path / "lib.db", index_dir=tmp_path / "other", max_pixels=7).max_pixels == 7
    assert Settings.resolve(db=tmp_path / "lib.db", index_dir=tmp_path / "other").index_dir == tmp_path / "other"
    clean_env.setenv("LOOKALIKE_DB", "~/env.db")
    assert config.db_url(None) == "sqlite:///" + str((tmp_path / "env.db").resolve())
    assert config.db_url("postgresql+psycopg://u@/db") == "postgresql+psycopg://u@/db"


def test_weights_home_prefers_lookalike_home_then_deepface_home(clean_env, tmp_path):
    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("DEEPFACE_HOME", "~/deepface")
    assert config.weights_home() == tmp_path / "deepface"
    clean_env.setenv("LOOKALIKE_HOME", "~/lookalike")
    assert config.weights_home() == tmp_path / "lookalike"
    clean_env.setenv("LOOKALIKE_HOME", "")
    assert config.weights_home() == tmp_path / "deepface"


def test_env_number_readers(clean_env):
    clean_env.setenv("LOOKALIKE_TEST_NUMBER", "90")
    assert config.env_int("LOOKALIKE_TEST_NUMBER", 1) == 90
    assert config.env_float("LOOKALIKE_TEST_NUMBER", 1.0) == 90.0
    clean_env.setenv("LOOKALIKE_TEST_NUMBER", "1.5")
    assert config.env_float("LOOKALIKE_TEST_NUMBER", 1.0, minimum=0) == 1.5
    for bad in ("soon", "nan", "inf", "-1"):
        clean_env.setenv("LOOKALIKE_TEST_NUMBER", bad)
        with pytest.raises(ConfigError, match=rf"^LOOKALIKE_TEST_NUMBER={bad!r}: expected seconds"):
            config.env_float("LOOKALIKE_TEST_NUMBER", 90.0, "seconds", minimum=0)
    clean_env.delenv("LOOKALIKE_TEST_NUMBER")
    assert config.env_int("LOOKALIKE_TEST_NUMBER", 3) == 3 and config.env_float("LOOKALIKE_TEST_NUMBER", 2.5) == 2.5


def test_a_flag_is_0_or_1_and_nothing_read_as_off(clean_env):
    """A kiosk started with LOOKALIKE_UI_VISITOR_ONLY=2 (or =yes) used to serve the operator's
    pages: anything but 0 or 1 is now refused, naming the variable."""
    from lookalike.serve.settings import ServeSettings
    from lookalike.ui.settings import visitor_only

    clean_env.setenv("LOOKALIKE_UI_VISITOR_ONLY", " 1 ")
    assert visitor_only() is True
    clean_env.setenv("LOOKALIKE_UI_VISITOR_ONLY", "0")
    assert visitor_only() is False
    for bad in ("2", "yes", "true", "-1"):
        clean_env.setenv("LOOKALIKE_UI_VISITOR_ONLY", bad)
        with pytest.raises(ConfigError, match=rf"^LOOKALIKE_UI_VISITOR_ONLY={bad!r}: expected 0 or 1"):
            visitor_only()
    clean_env.delenv("LOOKALIKE_UI_VISITOR_ONLY")
    assert visitor_only() is False and ServeSettings.from_env().warm is True
    clean_env.setenv("LOOKALIKE_SERVE_DOCS", "on")
    with pytest.raises(ConfigError, match=r"^LOOKALIKE_SERVE_DOCS='on': expected 0 or 1"):
        ServeSettings.from_env()


@pytest.mark.parametrize(("name", "value"), [("LOOKALIKE_MAX_PIXELS", "abc"), ("LOOKALIKE_INDEX_BUDGET", "lots")])
def test_the_cli_prints_one_clean_line_for_a_bad_variable(tmp_path, name, value):
    env = {**os.environ, name: value}
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "stats", "--db", str(tmp_path / "x.db")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert name in out.stderr and repr(value) in out.stderr
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    assert out.stderr.strip().startswith("error:") and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_the_places_an_answer_says_in_words(clean_env, tmp_path):
    """Where a library lives, each with the words a client or a visitor is told instead; a
    409/5xx message names none of them, a 4xx (the caller's own text) is said back as sent."""
    from lookalike.errors import IndexCorrupt, NotFound, public_text

    clean_env.setenv("LOOKALIKE_HOME", str(tmp_path / "home"))
    settings = config.Settings.resolve(db=tmp_path / "lib.db", vectors=config.parse_vectors(
        f"milvus-lite:{tmp_path / 'mv' / 'v.db'}"))
    places = settings.places()
    assert places[str(tmp_path / "lib.db")] == "the library's file"
    assert places[str(settings.index_dir)] == "the index folder"
    assert places[str(config.weights_home())] == "the models' folder"
    assert places[str(tmp_path / "mv" / "v.db")] == "the vector store"
    broken = IndexCorrupt(f"{settings.index_dir}/SFace__yunet__arcface.faiss: not a readable FAISS index")
    assert public_text(broken, places) == "the index folder/SFace__yunet__arcface.faiss: not a readable FAISS index"
    echoed = NotFound(f"no person named {str(tmp_path / 'lib.db')!r}")
    assert public_text(echoed, places) == str(echoed)
    assert public_text(KeyError("x"), places) == "something went wrong (KeyError); the server's log says why"


def test_the_web_apps_flags_reach_its_pages_as_given(clean_env):
    """``lookalike ui``'s flags travel to Streamlit's process as variables: what the CLI
    writes (UiSettings.to_env) is what the pages read back, and nothing set reads as the
    flags' defaults (one spelling of each name, lookalike/ui/settings.py)."""
    from lookalike.ui import settings

    for name in (settings.KIOSK_IDLE, settings.MAX_UPLOAD_MB, settings.VISITOR_ONLY):
        clean_env.delenv(name, raising=False)
    assert (settings.idle_seconds(), settings.max_upload_mb(), settings.visitor_only()) == \
        (settings.DEFAULT_IDLE_SECONDS, settings.DEFAULT_MAX_UPLOAD_MB, False)
    for name, value in settings.UiSettings(kiosk_idle=30.5, max_upload_mb=3, visitor_only=True).to_env().items():
        clean_env.setenv(name, value)
    assert (settings.idle_seconds(), settings.max_upload_mb(), settings.visitor_only()) == (30.5, 3, True)


def test_each_library_in_a_folder_has_its_own_index_and_upload_folders(clean_env, tmp_path, caplog):
    """NAME.db keeps NAME.indexes/ and NAME.uploads/ (two libraries in one folder shared
    indexes/, and the second was refused; and uploads/, where removing a person deleted a
    namesake's photos in the other); lookalike.db keeps the plain names, and so does a library
    made before, whose plain folders are there. Which folders are a library's own never
    changes: a new library makes them before its file, whatever --index-dir says."""
    import lookalike

    def folders(name: str, **given: object) -> tuple[Path, Path | None]:
        s = Settings.resolve(db=tmp_path / name, **given)
        return s.index_dir, s.upload_dir

    assert folders("kiosk.db") == (tmp_path / "kiosk.indexes", tmp_path / "kiosk.uploads")
    assert folders("lookalike.db") == (tmp_path / "indexes", tmp_path / "uploads")
    assert folders("my.lib.db?mode=ro") == (tmp_path / "my.lib.indexes", tmp_path / "my.lib.uploads")
    # a server database keeps uploads where LOOKALIKE_UPLOAD_DIR says, never in the current
    # folder of whichever process took them (a remove run elsewhere left them: scale user test, F3)
    server = "postgresql+psycopg://u@/faces"
    assert Settings.resolve(db=server).upload_dir is None
    from lookalike.verbs.people import People

    with pytest.raises(LookalikeError, match="LOOKALIKE_UPLOAD_DIR"):
        People(lambda: None, lambda: 1, None).store_uploads("kit", [("a.jpg", b"x")])
    # and a removal there that cannot delete the uploads it removed says so, naming them
    upload, corpus = tmp_path / "up" / "kit" / "0123456789abcdef01234567.jpg", tmp_path / "corpus" / "kit.jpg"
    for file in (upload, corpus):
        file.parent.mkdir(parents=True)
        file.write_bytes(b"x")
    People(lambda: None, lambda: 1, None).delete_owned({str(upload), str(corpus)})
    assert str(upload) in caplog.text and str(corpus) not in caplog.text and upload.is_file()
    clean_env.setenv("LOOKALIKE_UPLOAD_DIR", str(tmp_path / "shared"))
    assert Settings.resolve(db=server).upload_dir == tmp_path / "shared"
    clean_env.delenv("LOOKALIKE_UPLOAD_DIR")
    (tmp_path / "indexes").mkdir()
    (tmp_path / "uploads").mkdir()
    (tmp_path / "old.db").write_bytes(b"SQLite format 3\x00" + bytes(84))  # made before: plain folders there
    assert folders("old.db") == (tmp_path / "indexes", tmp_path / "uploads")
    (tmp_path / "empty.db").write_bytes(b"")  # an empty file is no library yet
    assert folders("empty.db") == (tmp_path / "empty.indexes", tmp_path / "empty.uploads")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for given in ({}, {"index_dir": elsewhere}):
        name = f"new{len(given)}.db"
        lookalike.open(tmp_path / name, **given).close()
        assert (tmp_path / name.replace(".db", ".uploads")).is_dir()  # made with it: still its own now
        assert folders(name, **given)[1] == tmp_path / name.replace(".db", ".uploads")
    assert folders("new0.db")[0] == tmp_path / "new0.indexes"
    assert not (tmp_path / "new1.indexes").exists()  # --index-dir named another: none made here
    # one of its own folders keeps both its own: an empty NAME.uploads/ a backup skipped sent the
    # library to lookalike.db's uploads/ (review 49b, M3); the file itself is never read for it
    shutil.rmtree(tmp_path / "new0.uploads")
    assert folders("new0.db") == (tmp_path / "new0.indexes", tmp_path / "new0.uploads")
    # and an older library's first upload (its NAME.uploads/ made) leaves its index where it is
    (tmp_path / "old.uploads").mkdir()
    assert folders("old.db") == (tmp_path / "indexes", tmp_path / "old.uploads")
    with pytest.raises(LookalikeError):  # a folder that is not there: nothing made, not even the index folder
        lookalike.open(tmp_path / "nowhere" / "x.db")
    assert not (tmp_path / "nowhere").exists()


def _posix_locks_of_this_process(path) -> list[tuple[str, ...]]:
    """This process's POSIX locks on ``path``, as the kernel lists them (/proc/locks), without
    each line's ordinal (the lock's place in the whole list moves as other processes lock)."""
    inode, pid = os.stat(path).st_ino, str(os.getpid())
    with open("/proc/locks") as listing:
        return sorted(tuple(line.split()[1:]) for line in listing
                      if line.split()[4:5] == [pid] and line.split()[5].endswith(f":{inode}"))


def test_nothing_beside_an_open_library_drops_its_sqlite_locks(tmp_path):
    """An open SQLite library holds a POSIX read lock on its file; closing any other descriptor
    of that file in the same process drops it (the kernel's rule), and another process's exit
    then deletes the write-ahead log under the library. It happened: the folders' choice read
    the file's header with open() on every open, and a server's library was damaged by three
    `lookalike keys create` beside it (the kiosk user test, F6). Resolving settings and a
    second library object opened and closed on the same file keep the lock."""
    import lookalike

    path = tmp_path / "held.db"
    with lookalike.open(path) as lib:
        lib.keys.create("search")
        held = _posix_locks_of_this_process(path)
        assert held, "an open library holds a lock on its file"
        Settings.resolve(db=path)
        with lookalike.open(path) as second:
            second.keys.issued()
        assert _posix_locks_of_this_process(path) == held
        lib.keys.create("admin")
    import sqlite3

    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchall() == [("ok",)]
