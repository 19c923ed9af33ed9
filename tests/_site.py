"""The served library the HTTP API's tests share (tests/test_serve.py, tests/test_serve_processes.py;
``in_process`` and the photos also serve tests/test_serve_limits.py and tests/test_pictures.py):
a small library with its keys, the application in this process and, started on first use,
``lookalike serve --workers 2`` on it; and the calls a test makes of either. One a run: its
tests share one pytest-xdist worker (conftest.py's ``_xdist_group``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
from conftest import cli, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import serving

OBAMA = "celeb/face_recognition/barack_obama/obama.jpg"
BIDEN = "celeb/face_recognition/joe_biden/biden.jpg"


def in_process(app):
    """A TestClient on ``app`` (its lifespan entered: the models load in a thread), returned
    once the app says its library and models are ready (``Service.ready``, not a poll)."""
    from fastapi.testclient import TestClient

    client = TestClient(app)
    client.__enter__()
    service = app.state.service
    wait_for(lambda: service.ready.is_set() or bool(service.failed))
    assert service.ready.is_set() and not service.failed, service.failed
    return client


class Site(dict):
    """The served library: ``db``, ``keys``, ``folder``, ``client`` (the application in this
    process) and, started on first use, ``server`` and ``url``: ``lookalike serve
    --workers 2`` on the same library, from its own working and temp folders (scanned by
    the privacy test)."""

    def __missing__(self, key: str):
        if key not in ("server", "url"):
            raise KeyError(key)
        folder = self["folder"]
        # the rate limit and the read deadline have tests of their own (the deadline would
        # close the silent connections some tests here hold while they count them)
        server = serving.start(self["db"], "--workers", "2", "--rate", "0", "--read-timeout", "3600",
                               env={"TMPDIR": str(folder / "tmp")}, cwd=folder / "cwd")
        self["server"], self["url"] = server, server.url
        return self[key]


@pytest.fixture(scope="session")
def site(faces, small_golden, tmp_path_factory, analysis_weights):
    """A small library (celeb/face_recognition) with an admin and a search key."""
    from _libraries import copy_library

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    folder = tmp_path_factory.mktemp("serve")
    db = copy_library(small_golden[0], folder / "lib" / "lib.db")
    keys = {}
    for scope in ("admin", "search"):
        made = cli("keys", "create", "--scope", scope, "--name", f"{scope} key", "--db", str(db), "--json")
        assert made.returncode == 0, made.stderr
        keys[scope] = json.loads(made.stdout)["key"]
    revoked = json.loads(cli("keys", "create", "--scope", "admin", "--db", str(db), "--json").stdout)
    assert cli("keys", "revoke", str(revoked["id"]), "--db", str(db)).returncode == 0
    keys["revoked"] = revoked["key"]
    (folder / "tmp").mkdir()
    (folder / "cwd").mkdir()
    app = create_app(ServeSettings(db=str(db), rate_per_minute=0))
    client = in_process(app)
    shared = Site(db=db, keys=keys, folder=folder, client=client, app=app)
    yield shared
    client.__exit__(None, None, None)
    if "server" in shared:
        shared["server"].stop()


def call(site, method: str, path: str, key: str | None = "search", **kwargs) -> httpx.Response:
    """``method path`` through the application in this process, with the key of scope
    ``key`` (None: no key); never a traceback in the answer."""
    headers = ({"X-API-Key": site["keys"][key]} if key else {}) | kwargs.pop("headers", {})
    response = site["client"].request(method, path, headers=headers, **kwargs)
    assert "Traceback" not in response.text
    return response


def served(site, method: str, path: str, key: str | None = "search", **kwargs) -> httpx.Response:
    """:func:`call` through the real server on its loopback port."""
    headers = ({"X-API-Key": site["keys"][key]} if key else {}) | kwargs.pop("headers", {})
    response = httpx.request(method, site["url"] + path, headers=headers, timeout=120, **kwargs)
    assert "Traceback" not in response.text
    return response


def access_lines(site, request_line: str) -> int:
    """How many access lines of ``request_line`` (``"GET /v1/stats HTTP/1.1" 200``) the
    server's log holds as read so far."""
    return sum(request_line in line for line in site["server"].log)


def logged(site, request_line: str, before: int) -> None:
    """Returns once the log holds one more access line of ``request_line`` than ``before``:
    the line of the request just answered. A server process writes it after the answer is
    sent, and a reader thread adds it to the log, so a look for what must be absent from it
    must wait for it first (the tests of the ``site`` group run one at a time)."""
    assert wait_for(lambda: access_lines(site, request_line) > before, guard=120), request_line


def upload(faces: Path, rel: str, field: str = "photo") -> dict:
    """The photo ``faces/rel`` as the multipart file ``field``."""
    path = faces / rel
    return {field: (path.name, path.read_bytes(), "image/jpeg")}


