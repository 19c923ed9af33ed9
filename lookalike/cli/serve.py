"""``lookalike serve`` (the HTTP API on uvicorn) and ``lookalike keys`` (its API keys)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..store.values import KeyScope
from ._common import JsonOpt, app, one_line_errors, opened, print_json, terminal
from ._options import LibraryOptions, ServeLimits, grouped

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
    limits: ServeLimits = ServeLimits(),
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
    from pathlib import Path

    with one_line_errors():
        from ..config import db_url
        from ..serve import launch
        from ..serve.settings import ServeSettings

        settings = ServeSettings(db=db_url(lib.db), index_dir=str(Path(lib.index_dir).expanduser().resolve())
                                 if lib.index_dir is not None else None, open_search=open_search,
                                 cors_origins=tuple(cors or ()), workers=workers, docs=docs, **limits.settings())
        launch.run(settings, host, port, launch.forwarded_allow(forwarded_allow_ips), lib.vectors,
                   terminal(stderr=True).print)


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
        for col in ("id", "name", "scope", "starts with", "created (UTC)", "revoked (UTC)"):
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
