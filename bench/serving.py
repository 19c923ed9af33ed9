"""Start ``lookalike serve`` on a loopback port and wait until it is ready: what the API
tests (tests/test_serve.py) and the load bench (bench/serve.py) share."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: list[str] = field(default_factory=list)  # every line the server printed

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # as Ctrl-C: uvicorn shuts its workers down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start(db: Path | str, *args: str, env: dict | None = None, cwd: Path | None = None,
          timeout: float = 120) -> Server:
    """``lookalike serve --db DB --port 0 ARGS…`` in its own process group, once
    ``/v1/health`` says ready (with ``--workers N``, 25 times in a row); port 0 lets the
    system pick a free port, read from the log."""
    import httpx

    command = [sys.executable, "-m", "lookalike.cli", "serve", "--db", str(db), "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | (env or {}), cwd=cwd, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    server = Server(proc, "")
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
    deadline = time.monotonic() + timeout
    while not found.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("lookalike serve did not start:\n" + "\n".join(server.log[-30:]))
    # every worker process loads the models itself and answers 503 until then; which one
    # takes a connection is the kernel's choice, so with several, many 200s in a row
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    needed, streak = (1 if workers == 1 else 25), 0
    while time.monotonic() < deadline:
        try:
            ok = httpx.get(server.url + "/v1/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        streak = streak + 1 if ok else 0
        if streak >= needed:
            return server
        time.sleep(0.05 if ok else 0.2)
    server.stop()
    raise RuntimeError("lookalike serve never became ready:\n" + "\n".join(server.log[-30:]))
