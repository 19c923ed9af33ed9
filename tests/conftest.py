"""Shared helpers and fixtures: the real face data, the ``lookalike`` command in-process, waiting
for a signal, the marks and xdist groups a test gets from its fixtures; the other fixtures
come from the plugins named in ``pytest_plugins``.

The photos come from ``$LOOKALIKE_FACES`` (default ``../shared/faces`` beside the
project). Without them the e2e tests skip on a developer machine but FAIL in CI
(``CI=true``): a silent skip there would hide a broken path.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# the fixtures, by what they make: the run's weights home (_weights.py), libraries ingested
# once from the real photos (_libraries.py), the stores on real servers (_stores.py), the
# HTTP API's served library (_site.py)
pytest_plugins = ["_weights", "_libraries", "_stores", "_site"]

ROOT = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("LOOKALIKE_FACES", ROOT.parent / "shared" / "faces")).resolve()
# a command's environment with no way out: every HTTP(S) request goes to a closed local port,
# so a test of "the download failed" fails it on purpose, on a machine with a network too
OFFLINE = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                                      "http_proxy", "https_proxy", "all_proxy")} | {
    "NO_PROXY": "", "no_proxy": ""}


def in_ci() -> bool:
    """CI=true (or 1, yes): what is missing there fails the test instead of skipping it."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _require_faces() -> Path:
    if not (FACES / "lfw-dev" / "pairs.tsv").is_file():
        message = f"real face data not found at {FACES} (set LOOKALIKE_FACES)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return FACES



def index_dir_of(db: Path) -> Path:
    """The index folder the SQLite library ``db`` takes by default (``NAME.indexes/`` beside
    it, places.default_index_dir)."""
    from lookalike.places import default_index_dir

    return default_index_dir(f"sqlite:///{db}")


def upload_dir_of(db: Path) -> Path:
    """The upload folder the SQLite library ``db`` takes by default (``NAME.uploads/``)."""
    from lookalike.places import default_upload_dir

    return default_upload_dir(f"sqlite:///{db}")


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


def scratch_tempdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty folder that this process's temporary files now go to (and its children's:
    TMPDIR), checked to catch one: ``tempfile`` keeps the folder it chose first, so setting
    TMPDIR alone would leave an in-process page writing to /tmp, and a test that looks for
    files in the folder could then never fail."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with tempfile.NamedTemporaryFile() as probe:
        assert Path(probe.name).parent == scratch, probe.name
    return scratch


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
    (and two such servers starting at once race for their ports), every test of the HTTP
    API's served library (tests/_site.py) shares its library and server, and the tests of a module
    with a module-scoped fixture (an ingested library, a started server) share that fixture
    instead of building it once per worker. Any other test goes wherever a worker is free."""
    if needs & NEEDS["milvus_server"]:
        return "milvus_server"
    info = getattr(item, "_fixtureinfo", None)
    fixtures = info.name2fixturedefs if info is not None else {}
    if "site" in fixtures and fixtures["site"][-1].scope == "session":  # tests/_site.py's, one a run
        return "site"
    if "small_backend" in needs:  # the goldens of small_store, shared with the module's any_lib
        return item.path.name
    for defs in fixtures.values():
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

        item._id = coerce_node_id(nodeid)  # noqa: SLF001 - pytest 9.2's node id, read by xdist's loadgroup
    else:
        item._nodeid = nodeid  # noqa: SLF001 - pytest < 9.2's node id, read by xdist's loadgroup


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



def problem(response, status: int, code: str) -> dict:
    """The answer is an ``application/problem+json`` with this status and code, and says why."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body
