"""HTTP as clients, monitors and browsers speak it, on a real server (`lookalike serve` on a
loopback port): HEAD on a GET route answers as GET without the body (it was 405), and needs
the GET's key; a refused CORS preflight is a problem like every other 4xx (it was plain
text); a library with no faces yet still verifies two photos and shows a profile written
before any face (both were 409 empty_library); malformed bodies are refused in words a
client can act on, a second query photo included (the last one was searched, unsaid)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from conftest import problem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import serving

import lookalike
from lookalike.store.values import KeyScope

pytestmark = pytest.mark.e2e

AMY = "celeb/faceapi_bbt/amy"


@pytest.fixture(scope="module")
def empty_site(tmp_path_factory):
    """A served library with a schema, two keys and one profile, and no face."""
    db = tmp_path_factory.mktemp("empty") / "kiosk.db"
    with lookalike.open(db) as lib:
        _, admin = lib.keys.create(KeyScope.admin)
        _, search = lib.keys.create(KeyScope.search)
    server = serving.start(db, "--cors-origin", "https://kiosk.example", "--rate", "0")
    try:
        httpx.post(server.url + "/v1/people", json={"name": "amy", "role": "engineer"},
                   headers={"X-API-Key": admin}, timeout=60).raise_for_status()
        yield server.url, {"X-API-Key": admin}, {"X-API-Key": search}
    finally:
        server.stop()


def test_head_answers_as_get_without_the_body(empty_site):
    url, admin, search = empty_site
    got = httpx.get(url + "/v1/health", timeout=60)
    head = httpx.head(url + "/v1/health", timeout=60)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(got.content)) != "0"
    assert head.headers["content-type"] == got.headers["content-type"]
    for path, headers, status in (("/v1/people/amy", admin, 200), ("/v1/people/amy", {}, 401),  # the GET's key
                                  ("/v1/average.png", search, 403), ("/v1/people/amy", search, 404)):
        assert httpx.get(url + path, headers=headers, timeout=60).status_code == status
        assert httpx.head(url + path, headers=headers, timeout=60).status_code == status, path
    assert httpx.head(url + "/v1/search", headers=search, timeout=60).status_code == 405  # no GET there
    assert httpx.head(url + "/v1/nothing", timeout=60).status_code == 404


def test_a_refused_cors_preflight_is_a_problem(empty_site):
    url, _, _ = empty_site
    asked = {"Origin": "https://kiosk.example", "Access-Control-Request-Method": "POST"}
    allowed = httpx.options(url + "/v1/search", headers=asked, timeout=60)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://kiosk.example"
    other = httpx.options(url + "/v1/search", headers={**asked, "Origin": "https://evil.example"}, timeout=60)
    assert "its origin is not allowed" in problem(other, 400, "cors_refused")["detail"]
    assert "access-control-allow-origin" not in other.headers
    patch = httpx.options(url + "/v1/search", headers={**asked, "Access-Control-Request-Method": "PATCH"}, timeout=60)
    assert "its method is not allowed" in problem(patch, 400, "cors_refused")["detail"]


def test_a_library_with_no_faces_verifies_and_shows_a_profile(faces, empty_site):
    url, admin, search = empty_site
    a, b = sorted((faces / AMY).iterdir())[:2]
    pair = {"photo_a": (a.name, a.read_bytes(), "image/png"), "photo_b": (b.name, b.read_bytes(), "image/png")}
    verified = httpx.post(url + "/v1/verify", files=pair, headers=search, timeout=60)
    assert verified.status_code == 200, verified.text
    assert verified.json()["same_person"] is True
    assert verified.json()["calibration"].startswith("lookalike default")
    amy = httpx.get(url + "/v1/people/amy", headers=admin, timeout=60)
    assert amy.status_code == 200, amy.text
    assert (amy.json()["profile"]["role"], amy.json()["faces"]) == ("engineer", [])
    problem(httpx.get(url + "/v1/people/nobody", headers=admin, timeout=60), 404, "not_found")
    problem(httpx.get(url + "/v1/people/amy/average.png", headers=admin, timeout=60), 404, "not_found")
    problem(httpx.get(url + "/v1/people/nobody/average.png", headers=admin, timeout=60), 404, "not_found")
    problem(httpx.get(url + "/v1/average.png", headers=admin, timeout=60), 409, "empty_library")


def test_malformed_bodies_are_refused_in_words_a_client_can_act_on(faces, empty_site):
    url, admin, search = empty_site
    a, b = sorted((faces / AMY).iterdir())[:2]
    two = [("photo", (a.name, a.read_bytes(), "image/png")), ("photo", (b.name, b.read_bytes(), "image/png"))]
    said = problem(httpx.post(url + "/v1/search", files=two, headers=search, timeout=60), 422, "invalid_request")
    assert said["detail"] == "body.photo: one photo here, not 2"
    text = httpx.post(url + "/v1/people/amy/photos", data={"photos": "a.jpg"},
                      files=[("other", ("x", b"x", "text/plain"))], headers=admin, timeout=60)
    assert problem(text, 422, "invalid_request")["detail"] == "body.photos.0: a photo file, not a text field"
    plain = httpx.post(url + "/v1/people", content=b'{"name": "x"}',
                       headers={**admin, "Content-Type": "text/plain"}, timeout=60)
    assert problem(plain, 422, "invalid_request")["detail"] == (
        "body: a JSON object was expected (Content-Type: application/json)")
