"""The tests' own Milvus servers (tests/_stores.py): started on a port nobody holds, however
the port they picked was taken before they bound it."""

from __future__ import annotations

import sys
from pathlib import Path


def test_a_test_server_whose_port_was_taken_starts_on_another(tmp_path, monkeypatch):
    """The tests' servers pick a free port, then bind it: another process may take it in
    between (two runs side by side). Given a port that a listener holds, the Milvus Lite
    server fails to bind, and the fixture starts it again on another port."""
    import socket

    import _stores
    from pymilvus import MilvusClient

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    ports = iter([taken])
    monkeypatch.setattr(_stores, "free_port", lambda: next(ports, None) or _stores_free_port())
    exe = Path(sys.executable).with_name("milvus-lite")
    started = _stores.serve_milvus(lambda port: [str(exe), "server", "--data-dir", str(tmp_path / "data"), "--host",
                                           "127.0.0.1", "--port", str(port)], "milvus-lite server",
                             tmp_path / "server.log")
    try:
        url = next(started)
        assert url.startswith("milvus://127.0.0.1:") and url != f"milvus://127.0.0.1:{taken}"
        client = MilvusClient(uri=url.replace("milvus://", "http://"), dedicated=True)
        try:
            assert client.list_collections() == []
        finally:
            client.close()
    finally:
        started.close()
        held.close()


def _stores_free_port() -> int:
    from _common import free_port

    return free_port()
