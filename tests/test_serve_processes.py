"""The server's processes, on the real two-process server of the shared served library
(tests/_site.py): a call's share of the cores while a sibling is busy, keep-alive clients
spread over the processes, the connections each process says it holds, and the board they
share, removed when the server stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from _site import OBAMA, call, upload

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def server_stopped_after(site):
    """The shared server stops when this module ends, whatever its last test did (a test that
    failed before stopping it, or was left out): the served library lives for the run, its
    two-process server no longer than the tests that are about it."""
    yield
    if "server" in site:
        site["server"].stop()
        del site["server"], site["url"]


def test_a_busy_sibling_process_gives_a_call_its_share_of_the_cores(site, faces, monkeypatch):
    """With another of the server's processes busy, a library call's models take their share
    of the cores (one thread of two) and answer as they do alone; without, every core."""
    from lookalike.models import runtime
    from lookalike.serve import board as boards

    service = site["app"].state.service
    shared = boards.create()
    try:
        monkeypatch.setattr(service, "board", boards.Board(shared))
        sibling = boards.Board(shared)
        cores = service.settings.model_threads  # what the models were compiled for: every core
        assert cores >= 2, "a machine of one core has no share to give"
        alone = call(site, "POST", "/v1/search", files=upload(faces, OBAMA), data={"k": "3"}).json()
        assert service.call(lambda lib: runtime.capped(cores)) is None
        with sibling.busy():
            assert service.call(lambda lib: runtime.capped(cores)) == cores // 2
            shared_out = call(site, "POST", "/v1/search", files=upload(faces, OBAMA), data={"k": "3"}).json()
        assert service.call(lambda lib: runtime.capped(cores)) is None

        def matches(answer: dict) -> list[tuple[int, float]]:
            return [(m["face_id"], m["similarity"]) for f in answer["faces"] for m in f["matches"]]

        assert len(matches(alone)) == 3 and [p for p, _ in matches(shared_out)] == [p for p, _ in matches(alone)]
        assert all(abs(a - b) < 1e-3 for (_, a), (_, b) in zip(matches(shared_out), matches(alone)))
    finally:
        shared.unlink(missing_ok=True)


def test_keep_alive_clients_spread_over_the_servers_processes(site):
    """Four keep-alive clients of the two-process server end up two and two, whichever
    process the kernel handed their first connections to, and every answer is a 200: a
    client whose connection a process closed (over its share) reconnects on its own."""
    import http.client
    from urllib.parse import urlsplit

    server = site["server"]
    where = urlsplit(server.url)
    assert len(server.placement()) == 2  # two server processes

    clients = [http.client.HTTPConnection(where.hostname, where.port, timeout=60) for _ in range(4)]

    def placement() -> list[int]:
        """How many of these clients' open connections each server process holds."""
        return server.placement({conn.sock.getsockname()[1] for conn in clients if conn.sock is not None})

    seen, closed, even = [], 0, 0
    try:
        for _ in range(200):  # rounds of one request a client; 3 even rounds in a row end it
            for conn in clients:
                conn.request("GET", "/v1/people", headers={"X-API-Key": site["keys"]["search"]})
                answer = conn.getresponse()
                answer.read()
                assert answer.status == 200
                closed += answer.getheader("connection") == "close"
            seen.append(placement())
            even = even + 1 if seen[-1] == [2, 2] else 0
            if even == 3:
                break
    finally:
        for conn in clients:
            conn.close()
    assert even == 3, seen
    assert seen[0] == [2, 2] or closed > 0, seen  # an uneven start was mended by closing


def test_each_process_says_the_connections_it_holds_and_a_client_that_left_is_off_at_once(site):
    """The board the spreading weighs says, process by process, what the kernel says (the
    open client connections, counted from the moment one is accepted), and a client that
    closed its connection is off it as soon as the process lost it, not seconds later: the
    clients of a load that had just ended were counted into the next one (8 + 8 said for four
    clients) and hid a 3 + 1. The connections ask nothing, so no answer closes them; two of
    them ask for a WebSocket, which this API answers as the plain request it also is (a
    connection handed to a WebSocket protocol would never be told lost)."""
    import socket
    from urllib.parse import urlsplit

    from conftest import wait_for

    server = site["server"]
    where = urlsplit(server.url)
    clients = [socket.create_connection((where.hostname, where.port), timeout=60) for _ in range(4)]
    upgrades = [socket.create_connection((where.hostname, where.port), timeout=60) for _ in range(2)]
    ours = {conn.getsockname()[1] for conn in clients + upgrades}

    def agree(of_ours: int) -> bool:
        counts = server.counts()
        return all(kernel == said for kernel, said in counts.values()) and sum(server.placement(ours)) == of_ours

    try:
        assert wait_for(lambda: agree(6), guard=60), server.counts()
        for conn in upgrades:
            conn.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {where.netloc}\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
            assert conn.recv(4096).startswith(b"HTTP/1.1 200"), "answered as a plain request"
            conn.close()
        assert wait_for(lambda: agree(4), guard=60), server.counts()
    finally:
        for conn in clients + upgrades:
            conn.close()
    assert wait_for(lambda: agree(0), guard=60), server.counts()


def test_the_servers_processes_share_a_board_that_goes_when_it_stops(site):
    """``serve --workers 2`` makes the board its processes share, each of them holds a slot
    of it, and the board is removed when the server stops. (Last in this module: it stops
    the shared server; a test that needs it later starts it again.)"""
    from lookalike.serve.board import SLOTS

    server = site["server"]
    workers = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid and b"spawn_main" in stat.parent.joinpath("cmdline").read_bytes():
            environ = dict(v.split(b"=", 1) for v in stat.parent.joinpath("environ").read_bytes().split(b"\0") if v)
            if b"LOOKALIKE_SERVE_BOARD" in environ:
                workers.add(int(stat.parent.name))
                path = Path(environ[b"LOOKALIKE_SERVE_BOARD"].decode())
    assert len(workers) == 2, workers
    cells = memoryview(path.read_bytes()).cast("q")  # (pid, busy, clients) a slot
    assert len(cells) == 3 * SLOTS and {cells[3 * i] for i in range(SLOTS) if cells[3 * i]} == workers
    server.stop()
    del site["server"], site["url"]
    assert not path.exists()
