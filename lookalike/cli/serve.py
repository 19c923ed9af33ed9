"""``lookalike serve`` (the HTTP API on uvicorn) and ``lookalike keys`` (its API keys)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..serve.settings import (
    DEFAULT_BODY_WAIT,
    DEFAULT_MAX_BODIES,
    DEFAULT_MAX_MEGAPIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_RATE,
)
from ..store.values import KeyScope
from ._common import JsonOpt, app, one_line_errors, opened, print_json, terminal
from ._options import LibraryOptions, grouped

keys_app = typer.Typer(help="The HTTP API's keys: create (printed once), list, revoke.", no_args_is_help=True)


@app.command()
@grouped
def serve(
    lib: LibraryOptions = LibraryOptions(),
    host: Annotated[str, typer.Option("--host", help="Interface to listen on; 0.0.0.0 serves other machines.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(  # max: serve.board.SLOTS (a test holds them equal)
        "--workers", "-w", min=1, max=64, help="Server processes, each with the library and models loaded once.")] = 1,
    open_search: Annotated[bool, typer.Option(
        "--open-search", help="Every search-scope route without a key: search, analyze, verify, people, "
                              "stats, a match's photo, morph, transform, a person's average face (a kiosk "
                              "on a closed network); admin always needs one.")] = False,
    cors: Annotated[Optional[list[str]], typer.Option(
        "--cors-origin", help="A web origin allowed to call the API from a browser (repeatable; default none).")]
    = None,
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", min=1, help="Largest photo, in MB.")]
    = DEFAULT_MAX_UPLOAD_MB,
    max_megapixels: Annotated[int, typer.Option(
        "--max-megapixels", min=1, help="Largest photo once decoded, in megapixels.")] = DEFAULT_MAX_MEGAPIXELS,
    rate: Annotated[int, typer.Option(
        "--rate", min=0, help="Requests per minute per key (or per address with --open-search); 0 = no limit.")]
    = DEFAULT_RATE,
    max_bodies: Annotated[int, typer.Option(
        "--max-bodies", min=1, help="Requests with a body (photos, JSON) read and served at once per process; "
                                    "more wait up to --body-wait seconds, then get 503.")] = DEFAULT_MAX_BODIES,
    body_wait: Annotated[int, typer.Option(
        "--body-wait", min=0, help="Seconds a request over --max-bodies waits for a place (0: 503 at once).")]
    = DEFAULT_BODY_WAIT,
    forwarded_allow_ips: Annotated[Optional[str], typer.Option(
        "--forwarded-allow-ips", help="Comma-separated addresses of your reverse proxies, whose "
                                      "X-Forwarded-For / X-Forwarded-Proto are trusted (default: none; "
                                      "the rate limit then counts the connecting address).")] = None,
    docs: Annotated[bool, typer.Option(
        "--docs", help="Serve Swagger UI at /docs and ReDoc at /redoc (their scripts load from a CDN); "
                       "off by default. /openapi.json is always served.")] = False,
) -> None:
    """Serve the HTTP API (FastAPI on uvicorn): /v1/search, /v1/analyze, /v1/verify, /v1/people,
    /v1/stats and the admin routes; OpenAPI at /openapi.json (docs at /docs with --docs)."""
    import os
    from importlib.util import find_spec
    from pathlib import Path

    with one_line_errors():
        from dataclasses import replace

        from ..config import VectorsKind, db_url, env_vectors, parse_vectors, shown_url
        from ..errors import ConfigError, MissingExtra
        from ..serve import board
        from ..serve.settings import ServeSettings

        for module in ("fastapi", "uvicorn", "multipart"):
            if find_spec(module) is None:
                raise MissingExtra("lookalike serve", "serve", f"{module} is not installed")
        settings = ServeSettings(db=db_url(lib.db), index_dir=str(Path(lib.index_dir).expanduser().resolve())
                                 if lib.index_dir is not None else None, open_search=open_search,
                                 cors_origins=tuple(cors or ()), max_upload_mb=max_upload_mb,
                                 max_megapixels=max_megapixels, rate_per_minute=rate, workers=workers,
                                 max_bodies=max_bodies, body_wait=body_wait, docs=docs)
        proxies = _proxies(forwarded_allow_ips)
        os.environ.update(settings.to_env())  # what each uvicorn worker reads (ServeSettings.from_env)
        if lib.vectors is not None:  # and the library each of them opens (Settings.resolve)
            os.environ["LOOKALIKE_VECTORS"] = str(parse_vectors(lib.vectors))
        chosen_vectors = env_vectors("LOOKALIKE_VECTORS")
        if workers > 1 and chosen_vectors is not None and chosen_vectors.kind is VectorsKind.milvus_lite:
            # each process opens the folder: all but one answered 503 busy while /v1/health said ready
            raise ConfigError(f"--workers {workers} with {chosen_vectors}: Milvus Lite serves one process; "
                              "serve with --workers 1, or run `milvus-lite server --data-dir FOLDER --host "
                              "127.0.0.1 --port 19530` and --vectors milvus://127.0.0.1:19530")
        import uvicorn

        from ..serve.accesslog import log_config
        from ..serve.protocol import IMPORT as COUNTED_HTTP

        terminal(stderr=True).print(f"lookalike API for {shown_url(str(settings.db))}: http://{host}:{port}/"
                                    f"{'docs' if docs else 'openapi.json'} "
                                    f"({workers} process{'es' if workers > 1 else ''}; Ctrl-C stops)")
        # forwarded headers only from the proxies the operator names: uvicorn otherwise trusts
        # them from 127.0.0.1, and anyone on the machine could pose as any address (and so
        # escape the per-address rate limit of --open-search)
        # access_log=False: the app writes its own access lines, after each answer has gone
        # (lookalike.serve.accesslog.AccessLog), so uvicorn's must not write a second one;
        # http: uvicorn's own protocol, telling each process the connections it holds
        # (lookalike.serve.protocol), which its clients' spreading counts; ws: the API has no
        # WebSocket route, and an upgrade request is answered as the plain request it also is
        config = uvicorn.Config("lookalike.serve.app:from_env", factory=True, host=host, port=port,
                                http=COUNTED_HTTP, ws="none",
                                workers=workers, log_level="info", access_log=False, server_header=False,
                                timeout_graceful_shutdown=10, log_config=log_config(),
                                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or "")
        if workers == 1:
            uvicorn.Server(config).run()
            return
        # uvicorn.run(workers=N) binds a socket of protocol 0, and asyncio sets TCP_NODELAY only
        # on connections of an IPPROTO_TCP socket: each answer then waited ~40 ms for the
        # client's delayed ACK (measured: /v1/health 44 ms with 2 workers, 2 ms with 1). The
        # same supervisor, over a socket that says it is TCP.
        import logging
        import socket

        from uvicorn.supervisors import Multiprocess

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            from ..errors import ConfigError

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


def _proxies(text: str | None) -> list[str]:
    """``--forwarded-allow-ips``: addresses or networks (``10.0.0.0/8``), or ``*`` for any."""
    import ipaddress

    from ..errors import ConfigError

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


@keys_app.command("create")
@grouped
def keys_create(
    scope: Annotated[KeyScope, typer.Option("--scope", help="search: search, analyze, verify, people, stats, "
                                                               "photos, pictures; admin: also add, edit and "
                                                               "remove people.")],
    name: Annotated[Optional[str], typer.Option("--name", help="What the key is for (a kiosk, a website).")] = None,
    lib: LibraryOptions = LibraryOptions(),
    as_json: JsonOpt = False,
) -> None:
    """Make a key and print it once: only its hash is stored, so it cannot be shown again."""
    with one_line_errors():
        with opened(lib, create=True) as library:  # a kiosk's library may begin with its key
            key_id, key = library.keys.create(scope, name)
        if as_json:
            print_json({"id": key_id, "scope": scope.value, "name": name, "key": key})
            return
        console = terminal()
        console.print(key, soft_wrap=True, markup=False, highlight=False)
        terminal(stderr=True).print(f"key {key_id} ({scope.value}) made; it is shown only now: keep it safe")


@keys_app.command("list")
@grouped
def keys_list(lib: LibraryOptions = LibraryOptions(), as_json: JsonOpt = False) -> None:
    """Every key: id, name, scope, first characters, when made and revoked (never the key)."""
    with one_line_errors():
        with opened(lib) as library:
            keys = library.keys.issued()
        if as_json:
            print_json({"keys": keys})
            return
        from rich.table import Table

        table = Table()
        for col in ("id", "name", "scope", "starts with", "created", "revoked"):
            table.add_column(col)
        for k in keys:
            table.add_row(str(k["id"]), k["name"] or "", k["scope"], k["prefix"] + "…", k["created_at"][:19],
                          (k["revoked_at"] or "")[:19])
        terminal().print(table)


@keys_app.command("revoke")
@grouped
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id (see keys list).")],
                lib: LibraryOptions = LibraryOptions()) -> None:
    """Revoke a key: every request with it is refused (401) from now on."""
    with one_line_errors():
        with opened(lib) as library:
            library.keys.revoke(key_id)
        terminal(stderr=True).print(f"key {key_id} revoked")
