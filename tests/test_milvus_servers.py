"""The tests' own Milvus servers (tests/_stores.py): started on a port nobody holds, however
the port they picked was taken before they bound it."""

from __future__ import annotations

import sys
from pathlib import Path


def test_a_test_server_whose_port_was_taken_starts_on_another(tmp_path, monkeypatch):
    """The tests' servers pick a free port, then bind it: another process may take it in
    between. Handed first a port a listener holds (the Milvus Lite server fails to bind it),
    then one another test run's server holds (its lock: gRPC would bind it beside that
    server), the fixture starts the server on the third port it picks."""
    import socket
    import tempfile

    import _stores
    from _common import free_port
    from filelock import FileLock
    from pymilvus import MilvusClient

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    claimed = free_port()
    other_run = FileLock(str(Path(tempfile.gettempdir()) / f"lookalike-test-port-{claimed}.lock"))
    other_run.acquire()
    ports = iter([taken, claimed])
    monkeypatch.setattr(_stores, "free_port", lambda: next(ports, None) or free_port())
    exe = Path(sys.executable).with_name("milvus-lite")
    started = _stores.serve_milvus(lambda port: [str(exe), "server", "--data-dir", str(tmp_path / "data"), "--host",
                                                 "127.0.0.1", "--port", str(port)], "milvus-lite server",
                                   tmp_path / "server.log")
    try:
        url = next(started)
        assert url.startswith("milvus://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) not in (taken, claimed)
        assert f"127.0.0.1:{taken}" in (tmp_path / "server.log").read_text()  # it did try the first
        client = MilvusClient(uri=url.replace("milvus://", "http://"), dedicated=True)
        try:
            assert client.list_collections() == []
        finally:
            client.close()
    finally:
        started.close()
        other_run.release()
        held.close()
