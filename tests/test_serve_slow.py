"""What one request's head and body may cost the server before any key is looked at
(security re-probe, 2026-12-07), on a real server on a loopback port: a head over 64 kB is
a 431 (one growing 100 MB header cost 11.5 s of the event loop); a connection whose head
does not come within ``--read-timeout`` is answered 408 and closed (a silent one was kept
for ever); a body that falls behind the least rate gets a 408 and leaves its place (two
clients dribbling a byte every 3 s held both places); a JSON body is at most 1 MB (1 M
keys in 10 MB took 8.4 s and 1.3 GB to refuse); the parser's own refusals are problems."""

from __future__ import annotations

import json
import select
import socket
import sys
from pathlib import Path

import httpx
import pytest
from conftest import problem, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import serving

import lookalike
from lookalike.serve.guard import JSON_LIMIT
from lookalike.serve.protocol import HEAD_LIMIT
from lookalike.store.values import KeyScope

pytestmark = pytest.mark.e2e


def _served(folder: Path, scopes: tuple[KeyScope, ...], *options: str):
    """A library without faces served on a loopback port with ``options``, a key of each of
    ``scopes`` made first; yields the URL and the keys."""
    db = folder / "kiosk.db"
    with lookalike.open(db) as lib:
        keys = [lib.keys.create(scope)[1] for scope in scopes]
    server = serving.start(db, "--rate", "0", "--body-wait", "0", *options)
    try:
        yield (server.url, *keys)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """A served library without faces: one place for a body, refused at once beyond, and a
    read deadline of 1 s, for the tests of that deadline (they wait for the server's answer,
    never for a duration)."""
    yield from _served(tmp_path_factory.mktemp("slow"), (KeyScope.admin, KeyScope.search),
                       "--max-bodies", "1", "--read-timeout", "1")


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory):
    """The same with a deadline no test meets, for the tests of sizes and parsing: a server
    held up for a second between taking a connection and reading its head (a busy machine)
    would answer a whole request 408 on the slow one."""
    yield from _served(tmp_path_factory.mktemp("patient"), (KeyScope.admin, KeyScope.search),
                       "--max-bodies", "1", "--read-timeout", "3600")


def _free(server: tuple[str, str, str]) -> tuple[str, str, str]:
    """``server`` once its one place is free. A client has its answer and the server's close
    before the server's request ends and gives the place back when the protocol itself
    refused the request (a 431 for trailers, a 400): the test before may still hold it (a 503
    ``busy`` in CI, 2026-12-07). What the server reports is waited for."""
    def free() -> bool:
        health = httpx.get(server[0] + "/v1/health", timeout=60)
        return health.status_code == 200 and health.json()["bodies_in_flight"] == 0

    assert wait_for(free, guard=120)
    return server


@pytest.fixture
def slow_site(slow_server):
    return _free(slow_server)


@pytest.fixture
def patient_site(patient_server):
    return _free(patient_server)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=120)  # a guard against hanging only


def _whole_answer(sock: socket.socket) -> tuple[bytes, dict]:
    """The status line and the problem the server sent before closing the connection (a
    reset that follows the answer, as the server closes with unread bytes, ends the read)."""
    got = b""
    try:
        while part := sock.recv(65536):
            got += part
    except ConnectionResetError:
        assert got, "reset before any answer"
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), got[:300]
    return head.split(b"\r\n")[0], json.loads(body)


def test_a_head_over_the_limit_is_431_without_a_key(patient_site):
    url, _, _ = patient_site
    sock = _connect(url)
    # one header value growing just past the limit, and then nothing more: the server has read
    # every byte when it refuses, so its close is a clean one
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * HEAD_LIMIT)
    status, said = _whole_answer(sock)
    assert status.startswith(b"HTTP/1.1 431") and said["code"] == "head_too_large", said
    assert httpx.get(url + "/v1/health", timeout=60).status_code == 200  # the server goes on


def test_a_silent_or_stalled_connection_is_answered_408_and_closed(slow_site):
    url, _, _ = slow_site
    silent, stalled = _connect(url), _connect(url)
    stalled.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Half: ")  # and then nothing
    for sock in (silent, stalled):
        status, said = _whole_answer(sock)  # the server's answer is the signal
        assert status.startswith(b"HTTP/1.1 408") and said["code"] == "request_too_slow", said
        assert "did not arrive within 1 s" in said["detail"]


def test_a_dribbled_body_is_408_and_gives_its_place_back(slow_site):
    url, _, search = slow_site
    sock = _connect(url)
    sock.sendall(f"POST /v1/search HTTP/1.1\r\nHost: x\r\nX-API-Key: {search}\r\nContent-Type: multipart/form-data; "
                 "boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n".encode())
    status, said = _whole_answer(sock)
    assert status.startswith(b"HTTP/1.1 408") and said["code"] == "request_too_slow", said
    assert "slower than 8 kB/s" in said["detail"]
    assert wait_for(lambda: httpx.get(url + "/v1/health", timeout=60).json()["bodies_in_flight"] == 0, guard=120)
    # a request sent at once is not hurried: the place is free and its answer is the library's
    fine = httpx.post(url + "/v1/search", headers={"X-API-Key": search}, timeout=120,
                      files={"photo": ("a.jpg", b"\xff\xd8 not a photo", "image/jpeg")})
    assert fine.status_code not in (408, 503), fine.text


def test_a_json_body_is_at_most_a_megabyte(patient_site):
    url, admin, _ = patient_site
    many = b"{" + b",".join(b'"k%d":1' % i for i in range(JSON_LIMIT // 6)) + b"}"
    assert len(many) > JSON_LIMIT
    said = httpx.post(url + "/v1/people", content=many, timeout=60,
                      headers={"X-API-Key": admin, "Content-Type": "application/json"})
    assert "a JSON body is at most" in problem(said, 413, "request_too_large")["detail"]

    def chunks():  # no length declared: counted as it comes
        for start in range(0, len(many), 65536):
            yield many[start:start + 65536]

    said = httpx.post(url + "/v1/people", content=chunks(), timeout=60,
                      headers={"X-API-Key": admin, "Content-Type": "application/json"})
    problem(said, 413, "request_too_large")
    small = httpx.post(url + "/v1/people", json={"name": "amy", "role": "engineer"}, timeout=60,
                       headers={"X-API-Key": admin})
    assert small.status_code in (200, 201), small.text


def test_what_the_parser_refuses_is_a_problem_too(patient_site):
    url, _, _ = patient_site
    sock = _connect(url)
    sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    status, said = _whole_answer(sock)
    assert status.startswith(b"HTTP/1.1 400") and said["code"] == "unreadable_request", said


def test_a_json_object_that_names_a_key_twice_is_refused(patient_site):
    """``{"name": "amy", "name": "penny", …}`` rewrote penny's profile, the last name winning,
    where a proxy or an audit log reading the first recorded amy (re-probe, L9): a 422 now,
    nothing written."""
    url, admin, _ = patient_site
    headers = {"X-API-Key": admin, "Content-Type": "application/json"}
    said = httpx.post(url + "/v1/people", content=b'{"name": "amy", "name": "penny", "consent_display": true}',
                      headers=headers, timeout=60)
    assert "named twice" in problem(said, 422, "invalid_request")["detail"]
    assert httpx.get(url + "/v1/people/penny", headers={"X-API-Key": admin}, timeout=60).status_code == 404
    said = httpx.put(url + "/v1/people/amy/consent", content=b'{"consent_display": false, "consent_display": true}',
                     headers=headers, timeout=60)
    problem(said, 422, "invalid_request")


def test_a_head_over_the_limit_in_one_read_and_a_flood_of_trailers_are_431(patient_site):
    """Counted as parsed, not only read by read: a 70 kB head sent whole got a 200; a chunked
    body's trailers were never counted (a 100 MB one cost 12 s: security re-probe 52)."""
    url, _, search = patient_site
    whole = _connect(url)
    whole.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (HEAD_LIMIT + 6000) + b"\r\n\r\n")
    status, said = _whole_answer(whole)
    assert status.startswith(b"HTTP/1.1 431") and said["code"] == "head_too_large", said
    trailers = _connect(url)
    trailers.sendall(f"POST /v1/search HTTP/1.1\r\nHost: x\r\nX-API-Key: {search}\r\n"
                     "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1\r\na\r\n0\r\n".encode()
                     + b"X-Trailer: " + b"t" * (HEAD_LIMIT + 6000) + b"\r\n\r\n")
    status, said = _whole_answer(trailers)
    assert status.startswith(b"HTTP/1.1 431") and "trailers" in said["detail"], said


def test_a_connection_answered_is_closed_when_its_client_goes_on_sending(slow_site):
    """A request whose body the route never reads is answered; its client then sending one
    byte more kept the connection open for ever (security re-probe 52): it is closed after
    --read-timeout. The server's close is the signal waited for."""
    url, _, _ = slow_site
    sock = _connect(url)
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += sock.recv(65536)
    assert got.startswith(b"HTTP/1.1 200")
    sock.sendall(b"x")
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass  # closed with the byte unread: a reset is a close too


def test_a_body_that_names_no_type_is_held_to_the_json_limit_and_deep_nesting_is_no_500(patient_site):
    """A body without a Content-Type skipped the 1 MB cap (the routes read it as JSON all the
    same: 3.75 s and 670 MB for a 30 MB one), and nesting past Python's depth gave a 500 from
    the repeated-key check (security re-probe 52, N7, N8)."""
    url, admin, _ = patient_site
    big = b'{"name": "amy", "story": "' + b"s" * (JSON_LIMIT + 10) + b'"}'
    said = httpx.post(url + "/v1/people", content=big, headers={"X-API-Key": admin}, timeout=60)
    problem(said, 413, "request_too_large")
    for kind in (None, "application/json"):
        headers = {"X-API-Key": admin} | ({"Content-Type": kind} if kind else {})
        deep = httpx.post(url + "/v1/people", content=b"[" * 100_000, headers=headers, timeout=60)
        assert deep.status_code in (400, 422), (kind, deep.status_code, deep.text[:200])


@pytest.fixture(scope="module")
def four_places(tmp_path_factory):
    """Four places for bodies, so one caller may hold one; no read deadline to speak of."""
    yield from _served(tmp_path_factory.mktemp("places"), (KeyScope.search, KeyScope.search),
                       "--max-bodies", "4", "--read-timeout", "3600")


def test_one_caller_holds_at_most_a_quarter_of_the_places(four_places):
    """Two callers sending just above the least rate held every place (re-probe 52, N5): a
    caller's second body while its first is in flight is a 429, and another caller's body
    still finds a place."""
    url, one, other = four_places
    head = ("POST /v1/search HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\nContent-Type: multipart/form-data; "
            "boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n")
    held = _connect(url)
    held.sendall(head.format(one).encode())
    assert wait_for(lambda: httpx.get(url + "/v1/health", timeout=60).json()["bodies_in_flight"] == 1, guard=120)
    second = _connect(url)
    second.sendall(head.format(one).encode())
    status, said = _whole_answer(second)
    assert status.startswith(b"HTTP/1.1 429") and "already sending 1 requests with a body" in said["detail"], said
    theirs = httpx.post(url + "/v1/search", headers={"X-API-Key": other}, timeout=120,
                        files={"photo": ("a.jpg", b"\xff\xd8 not a photo", "image/jpeg")})
    assert theirs.status_code not in (429, 503), theirs.text
    held.close()


@pytest.fixture(scope="module")
def waiting_places(tmp_path_factory):
    """Four places for bodies (one a caller) and a long wait for one: five callers' keys."""
    yield from _served(tmp_path_factory.mktemp("waiting"), (KeyScope.search,) * 5,
                       "--max-bodies", "4", "--read-timeout", "3600", "--body-wait", "3600")


def test_a_callers_request_waiting_for_a_place_counts_against_its_share(waiting_places):
    """The share was checked before the wait for a place and counted after it, so two requests
    of one caller that both waited both got in (security re-probe 52): now a request is counted
    as it starts to wait, the caller's next is a 429 at once, and the one waiting is served
    when a place comes free."""
    url, *holders, late = waiting_places
    head = ("POST /v1/search HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\nContent-Type: multipart/form-data; "
            "boundary=b\r\nContent-Length: {}\r\n\r\n")
    part = (b'--b\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8 not a photo\r\n--b--\r\n")
    held = []
    for key in holders:  # every place held by a body that is never finished
        held.append(_connect(url))
        held[-1].sendall(head.format(key, 1000).encode() + b"--b\r\n")
    assert wait_for(lambda: httpx.get(url + "/v1/health", timeout=60).json()["bodies_in_flight"] == 4, guard=120)
    first, second = _connect(url), _connect(url)
    for sock in (first, second):
        sock.sendall(head.format(late, len(part)).encode() + part)
    # one of the two waits for a place, the other is refused without waiting
    ready, _, _ = select.select([first, second], [], [], 120)
    assert ready, "neither request was answered: both are waiting for a place"
    refused = ready[0]
    status, said = _whole_answer(refused)
    assert status.startswith(b"HTTP/1.1 429") and said["code"] == "rate_limited", said
    waiting = second if refused is first else first
    held.pop().close()  # a place comes free: the waiting request is served
    answer = waiting.recv(65536)
    assert answer.startswith(b"HTTP/1.1 4") and not answer.startswith((b"HTTP/1.1 429", b"HTTP/1.1 503")), answer[:200]
    for sock in held:
        sock.close()


def test_a_kept_alive_connection_idles_as_long_as_a_head_may_take():
    """uvicorn closes a kept-alive connection idle for 5 s by its own default, sooner than a
    slow client's head is refused (10 s): a client held up between two requests of one
    exchange lost its connection (the flakiness audit's keep-alive stall in
    tests/test_serve_processes.py). The server's keep-alive is ``--read-timeout``."""
    from lookalike.serve.launch import server_config
    from lookalike.serve.settings import ServeSettings

    for seconds in (1, 10, 3600):
        config = server_config(ServeSettings(read_seconds=seconds), "127.0.0.1", 8000, [])
        assert config.timeout_keep_alive == seconds
