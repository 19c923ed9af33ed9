"""``lookalike ui``: the Streamlit web app, served by Streamlit itself."""

from __future__ import annotations

from typing import Annotated

import typer

from ..ui.settings import DEFAULT_IDLE_SECONDS, DEFAULT_MAX_UPLOAD_MB, UiSettings
from ._common import app, one_line_errors, terminal
from ._options import LibraryOptions, grouped


@app.command()
@grouped
def ui(
    lib: LibraryOptions = LibraryOptions(),
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(
        "--address", help="Interface to listen on; 0.0.0.0 to serve other machines (a kiosk's screen).")] = "127.0.0.1",
    kiosk_idle: Annotated[float, typer.Option(
        "--kiosk-idle", min=1, help="Seconds without a touch before the role-model kiosk starts over.")]
    = DEFAULT_IDLE_SECONDS,
    max_upload_mb: Annotated[int, typer.Option(
        "--max-upload-mb", min=1, help="Largest photo a visitor may upload.")] = DEFAULT_MAX_UPLOAD_MB,
    visitor_only: Annotated[bool, typer.Option(
        "--visitor-only", help="Serve Find, Live and Role models alone (a kiosk or public site): no Explore, "
                               "no Admin.")] = False,
) -> None:
    """Open the web app: find someone like me, live camera, role-model kiosk; Explore and Admin
    for operators (the password in LOOKALIKE_UI_PASSWORD, or an admin API key)."""
    import os
    import sys
    from importlib.util import find_spec
    from pathlib import Path

    with one_line_errors():
        from ..config import db_url, parse_vectors, shown_url
        from ..errors import MissingExtra

        for module in ("streamlit", "streamlit_webrtc"):
            if find_spec(module) is None:
                raise MissingExtra("the web app", "ui", f"{module} is not installed")
        script = Path(__file__).resolve().parents[1] / "ui" / "lookalike_web.py"  # app.py behind a middleware
        chosen = UiSettings(kiosk_idle, max_upload_mb, visitor_only)
        env = os.environ | {"LOOKALIKE_DB": db_url(lib.db)} | chosen.to_env()
        # the operator's password is throttled per client address: the address is the TCP
        # peer's unless the operator names the proxy they trust (FORWARDED_ALLOW_IPS=ADDR);
        # uvicorn's default would trust X-Forwarded-For from any local client
        env.setdefault("FORWARDED_ALLOW_IPS", "")
        if lib.index_dir is not None:
            env["LOOKALIKE_INDEX_DIR"] = str(lib.index_dir.expanduser().resolve())
        if lib.vectors is not None:
            env["LOOKALIKE_VECTORS"] = str(parse_vectors(lib.vectors))
        command = [sys.executable, "-m", "streamlit", "run", str(script),
                   "--server.port", str(port), "--server.address", address, "--server.headless", "true",
                   "--server.maxUploadSize", str(max_upload_mb), "--server.fileWatcherType", "none",
                   "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
                   # a crash shows a visitor its kind, never a traceback (the server's log keeps that)
                   "--client.showErrorDetails", "type"]
        terminal(stderr=True).print(f"lookalike web app for {shown_url(env['LOOKALIKE_DB'])}: http://{address}:{port} "
                                    "(Ctrl-C stops)")
        sys.stdout.flush()
        sys.stderr.flush()
        # become the Streamlit server: Ctrl-C and SIGTERM reach it directly, no orphan is left
        os.execve(sys.executable, command, env)
