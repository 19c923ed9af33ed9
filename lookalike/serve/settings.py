"""The server's options: flags of ``lookalike serve``, handed to each uvicorn worker
process through the environment (``LOOKALIKE_SERVE_*``) and read back here, through the
same parsers as every other variable (a bad value is one ConfigError naming it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import DEFAULT_MAX_UPLOAD_MB, env_flag, env_int, env_text

DEFAULT_MAX_MEGAPIXELS = 40
DEFAULT_RATE = 120  # requests per minute and key (or client address, for open search)
DEFAULT_MAX_BODIES = 16  # requests with a body read and served at once, per process
DEFAULT_BODY_WAIT = 10  # seconds one more waits for a place before a 503
# seconds a request's head may take to arrive, and a body's grace before it must keep up
# MIN_BODY_RATE (a phone on a slow line sends a 15 MB photo at 100 kB/s and more)
DEFAULT_READ_SECONDS = 10
MIN_BODY_RATE = 8 * 1024  # bytes a second, on average, after the grace


@dataclass(frozen=True)
class ServeSettings:
    db: str | None = None
    index_dir: str | None = None
    open_search: bool = False  # every search-scope route without a key (search, people, pictures…)
    cors_origins: tuple[str, ...] = ()  # none: no CORS headers at all
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB  # per photo; a request may carry two (verify)
    max_megapixels: int = DEFAULT_MAX_MEGAPIXELS  # decoded size, checked before decoding
    rate_per_minute: int = DEFAULT_RATE  # 0: no limit
    warm: bool = True  # load the models at start (health says ready once they are)
    workers: int = 1  # server processes beside this one (their share of the cores)
    max_bodies: int = DEFAULT_MAX_BODIES  # with max_request_bytes, bounds the memory bodies take
    body_wait: int = DEFAULT_BODY_WAIT  # seconds a request over max_bodies waits (0: refused at once)
    # seconds for a request's head to arrive, and a body's grace before MIN_BODY_RATE holds:
    # a client that sends slower gets a 408 and leaves its place (security re-probe, 2026-12-07)
    read_seconds: int = DEFAULT_READ_SECONDS
    docs: bool = False  # /docs and /redoc (Swagger UI and ReDoc load their scripts from a CDN)
    # LOOKALIKE_SERVE_READY_DIR: each server process writes a file named by its pid here once
    # its models are loaded; whoever started ``serve --workers N`` waits for N files
    ready_dir: str | None = None
    # LOOKALIKE_SERVE_BOARD: the file where a server's processes say which of them is busy
    # (lookalike.serve.board; made by `serve --workers N` for N > 1)
    board: str | None = None

    @property
    def model_threads(self) -> int:
        """Threads per model run in one server process: every core, whatever the number of
        processes. ONNX Runtime's threads wait without spinning (:func:`lookalike.models.
        fastgraph.session`), so a lone search takes both cores of this project's VM and
        answers as fast as in-process, and busy processes share the cores instead of
        burning them. Measured 2026-12-05 (bench/serve.py, 2 processes): p50 at concurrency
        1 went from 1.5x to 1.2x the in-process search and requests/s rose at every
        concurrency (1: 7.2 -> 13.2, 4: 13.8 -> 15.6, 16: 13.4 -> 15.4) against one thread
        per process (the cores divided among the processes). While other processes of the
        server are busy too, a call takes its share instead (:mod:`lookalike.serve.board`)."""
        return max(1, os.cpu_count() or 1)

    @property
    def max_request_bytes(self) -> int:
        """The largest request body: two photos and their form fields."""
        return 2 * self.max_upload_mb * 1024 * 1024 + 64 * 1024

    def to_env(self) -> dict[str, str]:
        """The variables :meth:`from_env` reads, for the uvicorn workers."""
        env = {"LOOKALIKE_SERVE_OPEN_SEARCH": "1" if self.open_search else "0",
               "LOOKALIKE_SERVE_CORS": ",".join(self.cors_origins),
               "LOOKALIKE_SERVE_MAX_UPLOAD_MB": str(self.max_upload_mb),
               "LOOKALIKE_SERVE_MAX_MEGAPIXELS": str(self.max_megapixels),
               "LOOKALIKE_SERVE_RATE": str(self.rate_per_minute),
               "LOOKALIKE_SERVE_WARM": "1" if self.warm else "0",
               "LOOKALIKE_SERVE_WORKERS": str(self.workers),
               "LOOKALIKE_SERVE_MAX_BODIES": str(self.max_bodies),
               "LOOKALIKE_SERVE_BODY_WAIT": str(self.body_wait),
               "LOOKALIKE_SERVE_READ_SECONDS": str(self.read_seconds),
               "LOOKALIKE_SERVE_DOCS": "1" if self.docs else "0"}
        if self.db:
            env["LOOKALIKE_DB"] = self.db
        if self.index_dir:
            env["LOOKALIKE_INDEX_DIR"] = self.index_dir
        if self.ready_dir:
            env["LOOKALIKE_SERVE_READY_DIR"] = self.ready_dir
        if self.board:
            env["LOOKALIKE_SERVE_BOARD"] = self.board
        return env

    @classmethod
    def from_env(cls) -> ServeSettings:
        cors = env_text("LOOKALIKE_SERVE_CORS") or ""
        return cls(
            db=os.environ.get("LOOKALIKE_DB") or None,
            index_dir=os.environ.get("LOOKALIKE_INDEX_DIR") or None,
            open_search=env_flag("LOOKALIKE_SERVE_OPEN_SEARCH", False),
            cors_origins=tuple(o.strip() for o in cors.split(",") if o.strip()),
            max_upload_mb=env_int("LOOKALIKE_SERVE_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB, "megabytes", minimum=1),
            max_megapixels=env_int("LOOKALIKE_SERVE_MAX_MEGAPIXELS", DEFAULT_MAX_MEGAPIXELS, "megapixels",
                                   minimum=1),
            rate_per_minute=env_int("LOOKALIKE_SERVE_RATE", DEFAULT_RATE, "requests per minute", minimum=0),
            warm=env_flag("LOOKALIKE_SERVE_WARM", True),
            workers=env_int("LOOKALIKE_SERVE_WORKERS", 1, "a number of processes", minimum=1),
            max_bodies=env_int("LOOKALIKE_SERVE_MAX_BODIES", DEFAULT_MAX_BODIES, "a number of requests", minimum=1),
            body_wait=env_int("LOOKALIKE_SERVE_BODY_WAIT", DEFAULT_BODY_WAIT, "seconds", minimum=0),
            read_seconds=env_int("LOOKALIKE_SERVE_READ_SECONDS", DEFAULT_READ_SECONDS, "seconds", minimum=1),
            docs=env_flag("LOOKALIKE_SERVE_DOCS", False),
            ready_dir=os.environ.get("LOOKALIKE_SERVE_READY_DIR") or None,
            board=os.environ.get("LOOKALIKE_SERVE_BOARD") or None,
        )
