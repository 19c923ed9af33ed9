"""The stores a library can live in, as real servers: PostgreSQL + pgvector, Milvus Lite,
a Milvus standalone server and Milvus Lite's own server; ``backend`` runs a test on each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli, wait_for
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # the servers' helpers, shared
from _common import free_port, wait_for_milvus
from _libraries import copy_library


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL 16 with pgvector (the pgserver package's binaries) in a temporary
    folder, reached over a unix socket; yields a factory of fresh, empty database URLs."""

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
            # a terminated backend leaves a moment later, and the copy waits at most 5 s for
            # it ("being accessed by other users"): its leaving is waited for, not a duration
            still = f"SELECT 'n=' || count(*) FROM pg_stat_activity WHERE datname = '{source}';"
            assert wait_for(lambda: "n=0" in server.psql(still), guard=120)
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


# what a server's log says when its port was taken between free_port() and its own bind
# (Milvus Lite: gRPC's "Failed to bind to address 127.0.0.1:PORT"; Milvus standalone: Go's
# "listen tcp :PORT: bind: address already in use"), beside the port's number
PORT_TAKEN = (b"failed to bind to address", b"address already in use")
PORT_TRIES = 5


def serve_milvus(command_of: Callable[[int], list[str]], what: str, log_path: Path, timeout: float = 1800):
    """Start a server process (``command_of(port)``) in its own process group on a free
    loopback port; yield its ``milvus://`` URL once the port answers a pymilvus call; stop the
    whole group (a wrapper's children included) at the end.

    A free port is picked, then bound by the server: another process may take it in between.
    Two test runs side by side never take the same one (each holds a lock on its ports; gRPC
    binds with SO_REUSEPORT, so two Milvus Lite servers would both bind it and share its
    connections). A server whose log says its port was taken (:data:`PORT_TAKEN`, naming the
    port), or that is gone once its port answers (another server answered there), is started
    again on another port, up to :data:`PORT_TRIES` times. Any other exit fails at once;
    ``timeout`` only bounds a server that never answers (it was 240 s, and a Milvus standalone
    on this 2-core VM under load ~15 missed it)."""
    from filelock import Timeout

    for attempt in range(1, PORT_TRIES + 1):
        port = free_port()
        claim = FileLock(str(Path(tempfile.gettempdir()) / f"lookalike-test-port-{port}.lock"))
        try:
            claim.acquire(timeout=0)
        except Timeout:  # another test run's server holds it
            continue
        with claim, open(log_path, "ab") as log:  # a pipe nobody reads would fill and stall the server
            said_before = log.tell()  # this attempt's lines only: an earlier attempt's stay in the file
            proc = subprocess.Popen(command_of(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

            def said(said_before: int = said_before) -> bytes:
                return log_path.read_bytes()[said_before:]

            def alive(proc: subprocess.Popen = proc) -> bool:
                # the milvus-server wrapper outlives its binary: once it has said its start timed
                # out (the binary died: its etcd's port taken) it waits for ever, and so did this
                return proc.poll() is None and b"started timeout" not in said()

            try:
                try:
                    wait_for_milvus(port, alive, timeout, what, log_path)
                except RuntimeError:
                    taken = str(port).encode() in said() and any(m in said().lower() for m in PORT_TAKEN)
                    if attempt < PORT_TRIES and taken:
                        continue
                    raise
                if not alive():  # what answered on the port was another process's server
                    if attempt < PORT_TRIES:
                        continue
                    raise RuntimeError(f"{what} exited once its port {port} answered; its log: "
                                       f"{said().decode(errors='replace')[-2000:]}")
                yield f"milvus://127.0.0.1:{port}"
                return
            finally:
                _stop(proc, log_path)
    raise RuntimeError(f"{what}: {PORT_TRIES} ports in a row were taken before it could bind them")


def _stop(proc: subprocess.Popen, log_path: Path) -> None:
    """The server's process group, then anything still running from its folder."""
    import signal

    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            break
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue
    _kill_running_from(log_path.parent)  # the milvus-server wrapper starts its binary in a session of its own


ETCD_PORTS = (2379, 2380)  # the milvus package's embedded etcd (client, peer)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kill_running_from(folder: Path) -> None:
    """SIGTERM, then SIGKILL, every process whose command line names ``folder``: the KILL
    only for what is still there when the TERM's processes are gone or 20 s have passed."""
    import signal

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
        wait_for(lambda: not pids(), guard=20, poll=0.2)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server on loopback: the ``milvus`` package's binary
    (Milvus 2.3.5 with embedded etcd and local storage, Apache-2.0, from the package
    index), reached by pymilvus as a cluster's proxy is. Yields its ``milvus://`` URL."""
    data = tmp_path_factory.mktemp("milvus-standalone")
    exe = Path(sys.executable).with_name("milvus-server")
    # its embedded etcd listens on fixed ports: a second test run on this machine (another
    # checkout's) waits for the first's server to stop, where its etcd died at once and the
    # wrapper waited half an hour for a server that would never answer
    # one Milvus standalone at a time on this machine (two test runs side by side both found
    # the ports free and then fought over them): the lock first, then the ports, which a
    # server of another kind may hold
    with FileLock(str(Path(tempfile.gettempdir()) / "lookalike-milvus-standalone.lock")):
        assert wait_for(lambda: all(_port_free(p) for p in ETCD_PORTS), guard=3600, poll=1), \
            f"etcd's ports {ETCD_PORTS} stay taken: another Milvus standalone runs on this machine"
        yield from serve_milvus(lambda port: [str(exe), "--data", str(data), "--proxy-port", str(port)],
                                "milvus-server", data / "server.log")


@pytest.fixture(scope="session")
def milvus_lite_server(tmp_path_factory):
    """Milvus Lite's own server (``milvus-lite server``): the embedded engine behind
    Milvus's gRPC API on a loopback port. Yields its ``milvus://`` URL."""
    data = tmp_path_factory.mktemp("milvus-lite-server")
    exe = Path(sys.executable).with_name("milvus-lite")
    yield from serve_milvus(lambda port: [str(exe), "server", "--data-dir", str(data / "data"), "--host",
                                          "127.0.0.1", "--port", str(port)],
                            "milvus-lite server", data / "server.log")


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
    library ingested once per session per store (SQLite: :func:`_libraries.small_golden`; the database
    file, its index folder and Milvus Lite's file copied; PostgreSQL: ``CREATE DATABASE …
    TEMPLATE``)."""
    import json

    faces = request.getfixturevalue("faces")
    source = str(faces / "celeb" / "face_recognition")
    if kind == "sqlite":
        golden_db, summary = request.getfixturevalue("small_golden")
        store = make_backend(request, folder, kind)
        copy_library(golden_db, Path(store.url), store.index_dir)  # and its index folder, as the store's
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
