"""How the HTTP API starts: uvicorn over one process or a supervisor of several, each
reading the server's settings from the environment (:meth:`ServeSettings.from_env`).

``lookalike serve`` parses its flags and hands them here as a :class:`ServeSettings` and
values (architecture review 50, M3: the start-up, the socket and the supervisor were the
CLI command's body, 112 lines).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..config import VectorsKind, env_vectors, parse_vectors, shown_url
from ..errors import ConfigError, MissingExtra

if TYPE_CHECKING:
    from uvicorn import Config

    from .settings import ServeSettings


def forwarded_allow(text: str | None) -> list[str]:
    """``--forwarded-allow-ips``: addresses or networks (``10.0.0.0/8``), or ``*`` for any."""
    import ipaddress

    out = [ip.strip() for ip in (text or "").split(",") if ip.strip()]
    for ip in out:
        if ip == "*":
            continue
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise ConfigError(f"--forwarded-allow-ips: {ip!r} is not an IP address or network "
                              "(e.g. 127.0.0.1,10.0.0.0/8)") from None
    return out


def _require_extra() -> None:
    from importlib.util import find_spec

    for module in ("fastapi", "uvicorn", "multipart"):
        if find_spec(module) is None:
            raise MissingExtra("lookalike serve", "serve", f"{module} is not installed")


def run(settings: ServeSettings, host: str, port: int, proxies: list[str], vectors: str | None,
        announce: Callable[[str], None]) -> None:
    """Serve until stopped: ``settings`` put in the environment for every server process
    (``vectors``: ``--vectors``, which each process's library reads there too), ``proxies``
    the only addresses whose forwarded headers are trusted; ``announce`` is told where the
    API answers once nothing stands in the way."""
    _require_extra()
    os.environ.update(settings.to_env())  # what each uvicorn worker reads (ServeSettings.from_env)
    if vectors is not None:  # and the library each of them opens (Settings.resolve)
        os.environ["LOOKALIKE_VECTORS"] = str(parse_vectors(vectors))
    chosen = env_vectors("LOOKALIKE_VECTORS")
    if settings.workers > 1 and chosen is not None and chosen.kind is VectorsKind.milvus_lite:
        # each process opens the folder: all but one answered 503 busy while /v1/health said ready
        raise ConfigError(f"--workers {settings.workers} with {chosen}: Milvus Lite serves one process; "
                          "serve with --workers 1, or run `milvus-lite server --data-dir FOLDER --host "
                          "127.0.0.1 --port 19530` and --vectors milvus://127.0.0.1:19530")
    import uvicorn

    workers = settings.workers
    announce(f"lookalike API for {shown_url(str(settings.db))}: http://{host}:{port}/"
             f"{'docs' if settings.docs else 'openapi.json'} "
             f"({workers} process{'es' if workers > 1 else ''}; Ctrl-C stops)")
    config = server_config(settings, host, port, proxies)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    _supervise(config, settings, host, port)


def server_config(settings: ServeSettings, host: str, port: int, proxies: list[str]) -> Config:
    """uvicorn's configuration of the server ``settings`` describe."""
    import uvicorn

    from .accesslog import log_config
    from .protocol import IMPORT as COUNTED_HTTP

    # forwarded headers only from the proxies the operator names: uvicorn otherwise trusts
    # them from 127.0.0.1, and anyone on the machine could pose as any address (and so
    # escape the per-address rate limit of --open-search)
    # access_log=False: the app writes its own access lines, after each answer has gone
    # (lookalike.serve.accesslog.AccessLog), so uvicorn's must not write a second one;
    # http: uvicorn's own protocol, telling each process the connections it holds
    # (lookalike.serve.protocol), which its clients' spreading counts; ws: the API has no
    # WebSocket route, and an upgrade request is answered as the plain request it also is
    return uvicorn.Config("lookalike.serve.app:from_env", factory=True, host=host, port=port,
                          http=COUNTED_HTTP, ws="none",
                          workers=settings.workers, log_level="info", access_log=False, server_header=False,
                          timeout_graceful_shutdown=10, log_config=log_config(),
                          # an idle kept-alive connection waits as long as a new one's head may
                          # take (uvicorn's own 5 s closed a client's connection between two
                          # requests of one exchange whenever the client was held up that long)
                          timeout_keep_alive=settings.read_seconds,
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or "")


def _supervise(config: Config, settings: ServeSettings, host: str, port: int) -> None:
    """``settings.workers`` server processes under uvicorn's supervisor, sharing one socket
    and a board where each says whether it is busy (:mod:`lookalike.serve.board`).

    uvicorn.run(workers=N) binds a socket of protocol 0, and asyncio sets TCP_NODELAY only
    on connections of an IPPROTO_TCP socket: each answer then waited ~40 ms for the
    client's delayed ACK (measured: /v1/health 44 ms with 2 workers, 2 ms with 1). The
    same supervisor, over a socket that says it is TCP."""
    import socket

    from uvicorn.supervisors import Multiprocess

    from . import board

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.set_inheritable(True)
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
                                            host, sock.getsockname()[1])
    shared = board.create()  # where the processes say which of them is busy
    os.environ.update(replace(settings, board=str(shared)).to_env())
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shared.unlink(missing_ok=True)
