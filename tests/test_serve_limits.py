"""The HTTP API's limits that must hold against a hostile caller (issue 23): the key and the
rate limit decided from the headers before any body is read, a bound on the bodies held at
once, filters bounded before they reach SQL, forwarded headers trusted only from a named
proxy, the access log without address or query string, docs off by default, a ``--db``
that is not a database reported as such; and a kiosk server's limits (open search, CORS for
the named origin only, a rate of 6 a minute, the body limit) and a large upload that is never
spooled to disk. FastAPI's in-process client where the HTTP answer
is the point; ``lookalike serve`` on a loopback port where the socket or the server's own
configuration (uvicorn) is."""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import sys
from pathlib import Path

import httpx
import pytest
from _site import BIDEN, OBAMA, in_process
from conftest import cli, index_dir_of, problem, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import serving

import lookalike
from lookalike.errors import ConfigError, DatabaseUnreadable

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def lib(faces, tmp_path_factory):
    """One person's library with a search key and two admin keys (one caller holds at most a
    quarter of the places for bodies: two held uploads are two callers')."""
    folder = tmp_path_factory.mktemp("limits")
    shutil.copytree(faces / "celeb" / "face_recognition" / "joe_biden", folder / "c" / "joe_biden")
    db = folder / "lib.db"
    assert cli("ingest", str(folder / "c"), "--db", str(db), "-q").returncode == 0
    keys = {}
    for name, scope in (("search", "search"), ("admin", "admin"), ("admin2", "admin")):
        made = cli("keys", "create", "--scope", scope, "--db", str(db), "--json")
        assert made.returncode == 0, made.stderr
        keys[name] = json.loads(made.stdout)["key"]
    return {"db": db, "keys": keys, "photo": (faces / BIDEN).read_bytes()}


def _client(db: Path, **options):
    """FastAPI's in-process client on a server for ``db``, once health is no longer loading."""
    from fastapi.testclient import TestClient

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    client = TestClient(create_app(ServeSettings(db=str(db), **{"rate_per_minute": 0, "warm": False, **options})))
    client.__enter__()
    wait_for(lambda: client.get("/v1/health").json()["status"] != "loading")
    return client


@pytest.fixture(scope="module")
def client(lib):
    c = _client(lib["db"], max_upload_mb=1)
    yield c
    c.__exit__(None, None, None)


# -- in process ---------------------------------------------------------------------------
def test_malformed_json_without_a_key_is_401_not_422(client, lib):
    bad, json_ = b'{"name": "x", ', {"content-type": "application/json"}
    problem(client.post("/v1/people", content=bad, headers=json_), 401, "unauthorized")
    problem(client.post("/v1/people", content=bad, headers={**json_, "X-API-Key": lib["keys"]["search"]}),
             403, "forbidden")
    said = problem(client.post("/v1/people", content=bad, headers={
        **json_, "Authorization": "Bearer " + lib["keys"]["admin"]}), 422, "invalid_request")
    assert "not valid JSON" in said["detail"]


def test_made_up_keys_pay_the_rate_of_their_address_and_push_out_only_the_oldest(lib, monkeypatch):
    """A key the server has never seen valid costs a database read: its caller's address
    pays one request of its rate for it (a burst of 5 at --rate 1), so a stream of made-up
    keys is 401 five times and then 429, with no more reads, while a valid key from the same
    address still gets in (its own rate, its reads on the house); and the keys it remembers
    are pushed out oldest first, never all at once."""
    from lookalike.serve.guard import RateLimit
    from lookalike.serve.service import Service

    # the buckets' clock held still: the counts below are exact however long the requests take
    take = RateLimit.take
    monkeypatch.setattr(RateLimit, "take", lambda self, caller, now=None, cost=1.0: take(self, caller, 1_000.0, cost))
    client = _client(lib["db"], rate_per_minute=1)
    try:
        good = {"X-API-Key": lib["keys"]["search"]}
        assert client.get("/v1/stats", headers=good).status_code == 200  # its first read: the address pays
        statuses = [client.get("/v1/stats", headers={"X-API-Key": f"lk_made_up_{n}"}).status_code
                    for n in range(7)]
        assert statuses == [401] * 4 + [429] * 3
        service = client.app.state.service
        assert not service.knows("lk_made_up_6")  # refused before its read
        # the address is spent, and a key once valid still gets in: its own rate, its reads free
        assert client.get("/v1/stats", headers=good).status_code == 200
    finally:
        client.__exit__(None, None, None)
    monkeypatch.setattr(Service, "KEYS_KEPT", 3)
    monkeypatch.setattr(Service, "KEY_TTL", 3600.0)  # remembered until pushed out, however slow the minute
    client = _client(lib["db"])  # no rate limit: every key is read
    try:
        service = client.app.state.service
        good = lib["keys"]["search"]
        assert client.get("/v1/stats", headers={"X-API-Key": good}).status_code == 200
        for n in range(2):
            problem(client.get("/v1/stats", headers={"X-API-Key": f"lk_made_up_{n}"}), 401, "unauthorized")
        assert service.knows(good)  # three remembered: the good key among them
        problem(client.get("/v1/stats", headers={"X-API-Key": "lk_made_up_2"}), 401, "unauthorized")
        assert not service.knows(good) and service.knows("lk_made_up_2")  # the oldest went
    finally:
        client.__exit__(None, None, None)


def test_long_and_many_filters_are_a_422_not_a_500(client, lib):
    key = {"X-API-Key": lib["keys"]["search"]}
    photo = {"photo": ("b.jpg", lib["photo"], "image/jpeg")}
    long = problem(client.post("/v1/search", files=photo, headers=key, data={"filter": "tag=" + "x" * 50_000}),
                    422, "invalid_request")
    assert "filter" in long["detail"] and "200 characters" in long["detail"]
    many = problem(client.post("/v1/search", files=photo, headers=key,
                                data={"filter": [f"tag=t{i}" for i in range(999)]}), 422, "invalid_request")
    assert "more than 20" in many["detail"]
    ok = client.post("/v1/search", files=photo, headers=key,
                     data={"filter": ["person=joe_biden"] + [f"tag=t{i}" for i in range(19)], "k": "1"})
    assert ok.status_code == 200, ok.text  # twenty, at the bound, still search


def test_filters_are_bounded_in_the_library_and_the_cli(lib, faces):
    from lookalike.query.search import Filter, SearchOptions

    with pytest.raises(ConfigError, match="at most 200"):
        Filter.parse("organisation=" + "n" * 300)
    with pytest.raises(ConfigError, match="at most 20"):
        SearchOptions(filters=tuple(Filter.parse(f"tag=t{i}") for i in range(21)))
    with lookalike.open(lib["db"]) as library, pytest.raises(ConfigError, match="at most 20"):
        library.search(faces / BIDEN, filters=tuple(Filter.parse(f"tag=t{i}") for i in range(21)))
    printed = cli("search", str(faces / BIDEN), "--db", str(lib["db"]), "--filter", "tag=" + "x" * 50_000)
    assert printed.returncode == 2 and "at most 200" in printed.stderr and "Traceback" not in printed.stderr


def test_a_crash_is_logged_without_its_sql_and_answered_once(client, lib, monkeypatch, caplog):
    """A database error's message holds the statement and its parameters (a visitor's
    filter values): the log gets the route and the error's class, the client a 500 problem."""
    from sqlalchemy.exc import OperationalError

    from lookalike.verbs.library import Library

    marker = "visitor-filter-value-7f3a"
    statement = "SELECT * FROM faces WHERE tag LIKE ?"

    def broken(self, *args, **kwargs):
        raise OperationalError(statement, (marker,), Exception("LIKE or GLOB pattern too complex"))

    monkeypatch.setattr(Library, "stats", broken)
    with caplog.at_level(logging.DEBUG):
        r = client.get("/v1/stats", headers={"X-API-Key": lib["keys"]["search"]})
    problem(r, 500, "internal")
    logged = "\n".join(rec.getMessage() + (str(rec.exc_info) if rec.exc_info else "") for rec in caplog.records)
    assert "OperationalError" in logged and "/v1/stats" in logged
    assert marker not in logged and "SELECT" not in logged
    assert sum("OperationalError" in rec.getMessage() for rec in caplog.records) == 1


def test_an_oversized_chunked_body_is_413(client, lib):
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        for _ in range(30):  # 3 MB, over the 2 MB + 64 KB of --max-upload-mb 1
            yield b"\xff" * 100_000

    r = client.post("/v1/search", content=chunks(), headers={
        "X-API-Key": lib["keys"]["search"], "content-type": "multipart/form-data; boundary=b"})
    problem(r, 413, "request_too_large")


def test_docs_are_off_unless_asked_for(client, lib):
    problem(client.get("/docs"), 404, "no_such_path")
    problem(client.get("/redoc"), 404, "no_such_path")
    assert client.get("/openapi.json").json()["info"]["title"] == "lookalike"
    docs = _client(lib["db"], docs=True)
    try:
        assert docs.get("/docs").status_code == 200 and docs.get("/redoc").status_code == 200
    finally:
        docs.__exit__(None, None, None)


@pytest.mark.parametrize("content", [b"this is a text file, not a database\n" * 40, "photo"])
def test_a_db_that_is_not_a_database_fails_health_with_the_reason(tmp_path, faces, content, caplog):
    path = tmp_path / "not-a.db"
    path.write_bytes((faces / BIDEN).read_bytes() if content == "photo" else content)
    before = path.read_bytes()
    with pytest.raises(DatabaseUnreadable, match="not an SQLite database"):
        lookalike.open(path)
    with caplog.at_level(logging.ERROR, logger="lookalike"):
        client = _client(path)
        try:
            r = client.get("/v1/health")
            said = client.get("/v1/stats")
        finally:
            client.__exit__(None, None, None)
    assert r.status_code == 503 and r.json()["status"] == "failed", r.text
    assert "Retry-After" not in r.headers  # waiting does not heal it: nothing to poll by
    # health needs no key: it says what kind of failure, the log where and why
    assert r.json()["detail"] == ("the library could not be opened (DatabaseUnreadable); "
                                  "the server's log says why"), r.text
    problem(said, 401, "unauthorized")  # keyless: refused before the library is asked
    logged = [rec.getMessage() for rec in caplog.records if "could not be opened" in rec.getMessage()]
    assert any(str(path) in m and "not an SQLite database" in m for m in logged), logged
    assert path.read_bytes() == before  # nothing written to it


def test_an_answer_never_names_where_the_library_is(lib, tmp_path, caplog):
    """A damaged index file: the search's 500 says which kind of failure without the server's
    paths (the message the CLI prints names them), and the log keeps the whole of it."""
    from _libraries import copy_library

    db = copy_library(lib["db"], tmp_path / "private-place" / "lib.db")
    for file in index_dir_of(db).glob("*.faiss"):
        file.write_bytes(b"not a FAISS index")
    with caplog.at_level(logging.ERROR, logger="lookalike"):
        client = _client(db)
        try:
            said = client.post("/v1/search", headers={"X-API-Key": lib["keys"]["search"]},
                               files={"photo": ("b.jpg", lib["photo"], "image/jpeg")})
        finally:
            client.__exit__(None, None, None)
    detail = problem(said, 500, "internal")["detail"]
    assert "not a readable FAISS index" in detail and "the index folder" in detail, detail
    assert "private-place" not in detail and str(tmp_path) not in detail, detail
    assert any("private-place" in rec.getMessage() for rec in caplog.records), "the log lost the path"


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://me:s3cret@db.example:5432/look", "postgresql+psycopg://me:***@db.example:5432/look"),
    ("postgresql+psycopg://me:s3c@ret@db.example/look", "postgresql+psycopg://me:***@db.example/look"),
    ("postgresql+psycopg://db.example/look?user=me&password=s3cret&sslmode=require",
     "postgresql+psycopg://db.example/look?user=me&password=***&sslmode=require"),  # libpq takes it here too
    ("postgresql+psycopg://db.example/look?sslpassword=k3y&sslmode=verify-full",
     "postgresql+psycopg://db.example/look?sslpassword=***&sslmode=verify-full"),
    ("postgresql+psycopg://me@db.example/look", "postgresql+psycopg://me@db.example/look"),
    ("sqlite:////srv/a:b@c.db", "sqlite:////srv/a:b@c.db"),  # a path, not a password
])
def test_a_database_url_is_shown_without_its_password(url, shown):
    from lookalike.config import shown_url
    from lookalike.store.db import make_engine

    assert shown_url(url) == shown
    if "s3c" in url and "@" in url.split("?")[0]:  # a URL SQLAlchemy refuses: the CLI's line shows it masked
        with pytest.raises(ConfigError) as refused:
            make_engine(url.replace("db.example", "db.example:notaport").replace(":5432:notaport", ":notaport"))
        assert "s3c" not in str(refused.value) and "me:***@" in str(refused.value), refused.value


def test_a_callers_own_text_is_said_back_as_sent(lib, client):
    """Only the server's own messages (409, 5xx) have the library's places in words: a 4xx
    says the caller's input back untouched, or a guessed path sent as a filter key would come
    back as "the index folder" and tell the caller the guess was right."""
    import lookalike

    with lookalike.open(lib["db"]) as opened:
        guess = str(opened.settings.index_dir)
    said = client.post("/v1/search", headers={"X-API-Key": lib["keys"]["search"]},
                       files={"photo": ("b.jpg", lib["photo"], "image/jpeg")}, data={"filter": f"{guess}=x"})
    detail = problem(said, 400, "invalid_option")["detail"]
    assert guess in detail and "the index folder" not in detail, detail


# -- a real server ------------------------------------------------------------------------
def _head(path: str, length: int, key: str | None = None, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", "Content-Type: multipart/form-data; boundary=b",
             f"Content-Length: {length}"] + ([f"X-API-Key: {key}"] if key else []) + ([extra] if extra else [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> bytes:
    """The status line and headers the server sends on ``sock`` (blocking until it does)."""
    got = b""
    while b"\r\n\r\n" not in got:
        part = sock.recv(65536)
        if not part:
            break
        got += part
    return got


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)  # a guard against hanging only
    return sock


@pytest.fixture(scope="module")
def server(lib):
    """Bodies bounded at 2 in flight, refused at once beyond; no rate limit; 1 MB photos; no
    read deadline to speak of (tests here hold bodies half sent; the deadline's own tests:
    tests/test_serve_slow.py)."""
    s = serving.start(lib["db"], "--rate", "0", "--max-bodies", "2", "--body-wait", "0", "--max-upload-mb", "1",
                      "--read-timeout", "3600")
    yield s
    s.stop()


def test_callers_without_a_key_are_refused_before_their_body(server, lib):
    """Keyless connections that send headers and a first part of a 2 MB body get their 401
    at once (the server does not wait for, or buffer, the rest); two keyed uploads held
    open take the two places for bodies, and a third request with a body gets a 503 until
    one of them finishes."""
    form = (b'--b\r\nContent-Disposition: form-data; name="photos"; filename="b.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + lib["photo"] + b"\r\n--b--\r\n")
    held = []
    for key in ("admin", "admin2"):  # admin uploads of one photo each, all but the last 10 bytes sent
        sock = _connect(server.url)
        sock.sendall(_head("/v1/people/joe_biden/photos", len(form), lib["keys"][key]) + form[:-10])
        held.append(sock)
    url = server.url + "/v1/search"
    photo = {"photo": ("b.jpg", lib["photo"], "image/jpeg")}
    key = {"X-API-Key": lib["keys"]["search"]}
    # the signal that both are admitted, read without a body (a probe with one would take a
    # place itself, and one of the two could be refused in its stead)
    assert wait_for(lambda: httpx.get(server.url + "/v1/health").json()["bodies_in_flight"] == 2), server.log[-20:]
    r = httpx.post(url, files=photo, headers=key, timeout=60)
    busy = problem(r, 503, "busy")
    assert r.headers["retry-after"] == "1" and "2 requests" in busy["detail"]

    keyless = [_connect(server.url) for _ in range(20)]  # admitted or not, they never take a place
    for sock in keyless:
        sock.sendall(_head("/v1/people/joe_biden/photos", 2_000_000) + b"--b\r\n" + b"\xff" * 60_000)
    for sock in keyless:
        answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"application/problem+json" in answer and b"connection: close" in answer.lower()
        sock.close()
    wrong = _connect(server.url)
    wrong.sendall(_head("/v1/people/joe_biden/photos", 2_000_000, lib["keys"]["search"]) + b"--b\r\n")
    assert _answer(wrong).startswith(b"HTTP/1.1 403")  # a search key on an admin route: refused as early
    wrong.close()

    held[0].sendall(form[-10:])
    assert _answer(held[0]).startswith(b"HTTP/1.1 200")
    held[0].close()
    assert wait_for(lambda: httpx.get(server.url + "/v1/health").json()["bodies_in_flight"] == 1)
    r = httpx.post(url, files=photo, headers=key, timeout=60)  # a place is free again
    assert r.status_code == 200, r.text
    held[1].sendall(form[-10:])
    assert _answer(held[1]).startswith(b"HTTP/1.1 200")
    held[1].close()


def test_an_oversized_chunked_body_is_413_on_the_real_server(server, lib):
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        for _ in range(30):
            yield b"\xff" * 100_000

    r = httpx.post(server.url + "/v1/search", content=chunks(), timeout=60, headers={
        "X-API-Key": lib["keys"]["search"], "content-type": "multipart/form-data; boundary=b"})
    problem(r, 413, "request_too_large")


def test_the_access_log_has_method_path_and_status_only(server, lib):
    secret = "lk_secret-in-the-query-string"
    r = httpx.get(server.url + f"/v1/stats?access_token={secret}&x=1", timeout=60,
                  headers={"X-API-Key": lib["keys"]["search"], "X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200
    httpx.get(server.url + "/v1/people/nobody_at_all?who=me", headers={"X-API-Key": lib["keys"]["search"]},
              timeout=60)
    wait_for(lambda: any("/v1/people/nobody_at_all" in line for line in server.log))  # logged once answered
    lines = [line for line in server.log if "HTTP/1.1" in line]
    assert sum('"GET /v1/stats HTTP/1.1" 200' in line for line in lines) == 1, lines  # once: uvicorn's own is off
    assert any('"GET /v1/people/nobody_at_all HTTP/1.1" 404' in line for line in lines), lines
    text = "\n".join(server.log)
    assert secret not in text and "access_token" not in text and "who=me" not in text
    assert not [line for line in lines if "127.0.0.1" in line] and "203.0.113.9" not in text
    # an encoded newline or quote in the path stays encoded: no forged line, no early quote
    httpx.get(server.url + "/v1/people/x%0AINFO:%20forged%22y", headers={"X-API-Key": lib["keys"]["search"]},
              timeout=60)
    wait_for(lambda: any("forged" in line for line in server.log))
    forged = [line for line in server.log if "forged" in line]
    assert forged == [line for line in forged if '"GET /v1/people/x%0AINFO:%20forged%22y HTTP/1.1" 404' in line], forged


def test_an_error_past_every_handler_is_logged_as_a_500(caplog):
    import asyncio

    from lookalike.serve.accesslog import AccessLog

    async def crash(scope, receive, send) -> None:
        raise RuntimeError("a bug")

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/v1/stats", "raw_path": b"/v1/stats", "headers": [],
             "http_version": "1.1", "client": ("127.0.0.1", 5000)}
    with caplog.at_level("INFO", logger="lookalike.access"), pytest.raises(RuntimeError):
        asyncio.run(AccessLog(crash)(scope, receive, send))
    assert [r.args for r in caplog.records if r.name == "lookalike.access"] == [
        ("-", "GET", "/v1/stats", "1.1", 500)]


def _forged(url: str, calls: int) -> list[int]:
    """``calls`` keyless searches of people, each claiming another client address."""
    return [httpx.get(url + "/v1/people", timeout=60, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
            for i in range(calls)]


def test_forwarded_headers_do_not_dodge_the_rate_limit(lib):
    """With --open-search the rate limit counts the client's address: a new X-Forwarded-For
    per call must not make a new client, unless the operator names the proxy."""
    s = serving.start(lib["db"], "--open-search", "--rate", "1")  # a burst of 5, then one a minute
    try:
        statuses = _forged(s.url, 60)
    finally:
        s.stop()
    assert statuses.count(200) <= 10 and statuses.count(429) >= 50, statuses
    behind = serving.start(lib["db"], "--open-search", "--rate", "1", "--forwarded-allow-ips", "127.0.0.1")
    try:
        honoured = _forged(behind.url, 60)
    finally:
        behind.stop()
    assert honoured == [200] * 60  # each forwarded address its own client: the proxy is trusted
    bad = cli("serve", "--db", str(lib["db"]), "--forwarded-allow-ips", "127.0.0.1,my-proxy")
    assert bad.returncode == 2 and "'my-proxy' is not an IP address" in bad.stderr


def test_open_search_cors_rate_and_size_limits(faces, tmp_path):
    """A kiosk server: search without a key, admin still refused; CORS for the named origin
    only; a rate of 6 a minute answered 429 with Retry-After; a body over the limit refused
    before it is read."""
    db = tmp_path / "lib.db"
    shutil.copytree(faces / "celeb" / "face_recognition" / "joe_biden", tmp_path / "c" / "joe_biden")
    assert cli("ingest", str(tmp_path / "c"), "--db", str(db), "-q").returncode == 0
    server = serving.start(db, "--open-search", "--cors-origin", "https://kiosk.example", "--rate", "6",
                           "--max-upload-mb", "1")
    try:
        url = server.url
        photo = {"photo": ("b.jpg", (faces / BIDEN).read_bytes(), "image/jpeg")}
        assert httpx.post(url + "/v1/search", files=photo, timeout=60).status_code == 200
        problem(httpx.post(url + "/v1/people", json={"name": "x"}, timeout=60), 401, "unauthorized")
        allowed = httpx.get(url + "/v1/stats", headers={"Origin": "https://kiosk.example"}, timeout=60)
        assert allowed.headers.get("access-control-allow-origin") == "https://kiosk.example"
        other = httpx.get(url + "/v1/stats", headers={"Origin": "https://evil.example"}, timeout=60)
        assert "access-control-allow-origin" not in other.headers
        big = {"photo": ("big.jpg", b"\xff" * (3 * 1024 * 1024), "image/jpeg")}
        problem(httpx.post(url + "/v1/search", files=big, timeout=60), 413, "request_too_large")
        one = {"photo": ("one.jpg", b"\xff" * (1024 * 1024 + 10), "image/jpeg")}
        problem(httpx.post(url + "/v1/search", files=one, timeout=60), 413, "photo_too_large")
        statuses = [httpx.get(url + "/v1/stats", timeout=60) for _ in range(8)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        problem(limited[0], 429, "rate_limited")
        assert int(limited[0].headers["retry-after"]) >= 1
    finally:
        server.stop()
    assert server.proc.returncode is not None


def test_a_large_upload_is_never_spooled_to_disk(faces, tmp_path, monkeypatch):
    """Starlette writes an upload past 1 MB to a temporary file; the server keeps every
    photo in memory instead. Checked where the spill would happen (the spooled file's
    rollover), on the app in this process with a 3 MB photo."""
    import tempfile

    from PIL import Image

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    db = tmp_path / "lib.db"
    shutil.copytree(faces / "celeb" / "face_recognition" / "barack_obama", tmp_path / "c" / "barack_obama")
    assert cli("ingest", str(tmp_path / "c"), "--db", str(db), "-q").returncode == 0
    spilled = []
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", lambda self: spilled.append(self))
    big = io.BytesIO()
    Image.open(faces / OBAMA).convert("RGB").resize((1600, 1600)).save(big, "PNG")
    assert big.tell() > 3 * 1024 * 1024 // 2
    app = create_app(ServeSettings(db=str(db), open_search=True, rate_per_minute=0))
    client = in_process(app)  # the models load in a thread: ready once they have
    try:
        r = client.post("/v1/search", files={"photo": ("big.png", big.getvalue(), "image/png")})
    finally:
        client.__exit__(None, None, None)
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["matches"][0]["person"] == "barack_obama"
    assert spilled == []
