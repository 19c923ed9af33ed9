"""Start ``lookalike serve`` on a loopback port and wait until it is ready: what the API
tests (tests/_site.py's served library, tests/test_serve_limits.py) and the load bench
(bench/serve.py) share."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: list[str] = field(default_factory=list)  # every line the server printed
    ready_dir: Path | None = None  # where its processes said they were ready

    def placement(self, ports: Collection[int] | None = None) -> list[int]:
        """How many open client connections each of the server's processes holds now, most
        first ([3, 1]: one holds three of four), counting only clients on ``ports`` when
        given: the kernel hands each new connection to whichever process accepts first, and
        a keep-alive client stays where it landed (``lookalike/serve/balance.py``)."""
        return sorted((held for held, _ in self.counts(ports).values()), reverse=True)

    def counts(self, ports: Collection[int] | None = None) -> dict[int, tuple[int, int]]:
        """Each server process (pid): the open client connections the kernel says it holds
        (on ``ports`` only, when given) and how many it says it holds on the board the
        processes share (``lookalike/serve/board.py``; every client's), which their spreading
        weighs."""
        import psutil

        from lookalike.serve.board import said_clients

        assert self.ready_dir is not None
        port = int(self.url.rsplit(":", 1)[1])
        pids = [int(p.name) for p in self.ready_dir.iterdir() if p.name.isdigit()]
        environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
        board = next((v.split(b"=", 1)[1] for v in environ if v.startswith(b"LOOKALIKE_SERVE_BOARD=")), None)
        said = said_clients(board.decode()) if board else {}
        return {pid: (sum(1 for c in psutil.Process(pid).net_connections(kind="tcp")
                          if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                          and (ports is None or (c.raddr and c.raddr.port in ports))), said.get(pid, 0))
                for pid in pids}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # as Ctrl-C: uvicorn shuts its workers down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.ready_dir is not None:
            import shutil

            shutil.rmtree(self.ready_dir, ignore_errors=True)


def with_default_sigint(command: list[str]) -> list[str]:
    """``command`` with SIGINT at its default disposition, as started from a terminal (a
    job of a non-interactive shell inherits it ignored, and Python then never raises
    KeyboardInterrupt): a one-line Python resets it and execs the command, so the pid is
    the command's. Not ``preexec_fn``: that makes subprocess fork() the caller, and in a
    caller with gRPC threads (pymilvus, after a Milvus test in the same xdist worker)
    gRPC's fork handlers then run in the child and abort it now and then (SIGABRT, "epoll_wait
    error: Bad file descriptor"; CI, 2026-12-05). Without it CPython starts the child by
    vfork, where nothing of the caller runs."""
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", reset, *command]


def start(db: Path | str, *args: str, env: dict | None = None, cwd: Path | None = None,
          timeout: float = 900) -> Server:
    """``lookalike serve --db DB --port 0 ARGS…`` in its own process group, once every
    server process says it is ready; port 0 lets the system pick a free port, read from
    the log.

    Each process loads the models itself and answers 503 until then, and which one takes a
    health request is the kernel's choice, so health answers cannot tell that all are
    ready. Each writes a file named by its pid into ``LOOKALIKE_SERVE_READY_DIR`` once its
    models are loaded: ready is ``--workers`` such files (``timeout`` only bounds a server
    that never gets there)."""
    import tempfile

    command = [sys.executable, "-m", "lookalike.cli", "serve", "--db", str(db), "--port", "0", *args]
    ready_dir = Path(tempfile.mkdtemp(prefix="lookalike-ready-"))
    proc = subprocess.Popen(with_default_sigint(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=os.environ | (env or {}) | {"LOOKALIKE_SERVE_READY_DIR": str(ready_dir)},
                            cwd=cwd, start_new_session=True)
    server = Server(proc, "", ready_dir=ready_dir)
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.log.append(line.rstrip("\n"))
            match = re.search(r"Uvicorn running on (http://\S+)", line)
            if match:
                server.url = match.group(1)
                found.set()

    threading.Thread(target=read, daemon=True).start()
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    deadline = time.monotonic() + timeout
    while not (found.is_set() and _ready(ready_dir) >= workers):
        if proc.poll() is not None or time.monotonic() > deadline:
            ready = _ready(ready_dir)
            server.stop()
            raise RuntimeError(f"lookalike serve did not become ready ({ready} of {workers} processes):\n"
                               + "\n".join(server.log[-30:]))
        time.sleep(0.05)
    return server


def _ready(folder: Path) -> int:
    """Server processes that said they are ready (files named by a pid)."""
    return sum(1 for p in folder.iterdir() if p.name.isdigit())
