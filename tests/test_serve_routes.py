"""The HTTP API's shape, without a library or a model (fast): every error class declares
its HTTP status and problem code and the server answers with exactly those; the routes
are declared by topic routers on the application itself, and the gate knows the key each
one needs."""

from __future__ import annotations

import inspect

import fastapi  # noqa: F401 - the serve extra is part of the test install: missing is a failure, not a skip
import pytest

from lookalike import errors

# The statuses and codes as lookalike/serve/problems.py's table had them before each class
# declared its own: a client's handling of `code` must not change.
EXPECTED = {
    "LookalikeError": (500, "internal"),
    "ConfigError": (400, "invalid_option"),
    "BadPersonName": (422, "invalid_person_name"),
    "BadProfile": (422, "invalid_profile"),
    "BadImage": (422, "unreadable_photo"),
    "NoFace": (422, "no_face"),
    "ModelMissing": (503, "model_missing"),
    "DownloadFailed": (503, "model_missing"),
    "WheelUnavailable": (503, "model_missing"),
    "MissingExtra": (503, "missing_extra"),
    "UnknownName": (400, "unknown_name"),
    "ModelMismatch": (409, "model_mismatch"),
    "EmptyLibrary": (409, "empty_library"),
    "LibraryBusy": (503, "busy"),
    "ManifestError": (400, "invalid_manifest"),
    "NotFound": (404, "not_found"),
    "NothingIngested": (422, "nothing_ingested"),
    "SchemaTooNew": (500, "internal"),
    "IndexCorrupt": (500, "internal"),
    "IndexOwnedElsewhere": (500, "internal"),
    "IndexWidthChanged": (500, "internal"),
    "DatabaseUnreadable": (500, "internal"),
    "DatabaseReadOnly": (500, "internal"),
    "DatabaseUnavailable": (503, "database_unavailable"),
    "LibraryClosed": (500, "internal"),
    "VectorStoreUnavailable": (500, "internal"),
    "SourceUnavailable": (500, "internal"),
    "NoDisplay": (500, "internal"),
    "IngestFailed": (500, "internal"),
    "TooFewPeople": (422, "too_few_people"),
    "UnusableFace": (422, "unusable_face"),
    "NoLandmarks": (409, "no_landmarks"),
}
BAD_IMAGE = {"too_large": (413, "photo_too_large"), "decode_error": (415, "unreadable_photo"),
             "error": (422, "unreadable_photo"), "rejected": (422, "unreadable_photo")}


def _classes() -> list[type[errors.LookalikeError]]:
    found, todo = [errors.LookalikeError], [errors.LookalikeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _instance(cls: type[errors.LookalikeError]) -> errors.LookalikeError:
    """One of the error, made with text for every argument its constructor needs."""
    needed = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
              if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return cls(*["x"] * len(needed)) if needed else cls("x")


def test_every_error_class_declares_its_status_and_code():
    classes = _classes()
    assert {c.__name__ for c in classes} == set(EXPECTED), "an error class was added or removed: give it a row"
    for cls in classes:
        assert "http_status" in vars(cls) and "problem_code" in vars(cls), f"{cls.__name__} declares none"
        assert (cls.http_status, cls.problem_code) == EXPECTED[cls.__name__], cls.__name__
        assert 400 <= cls.http_status < 600 and cls.problem_code.isidentifier()


def test_an_error_keeps_what_it_means_across_a_process_boundary():
    """Worker processes (ingest, live matching) send errors back pickled; a subclass whose
    constructor takes other arguments would not survive, so its meaning travels on the
    instance: missing weights stay a 503 model_missing, a bad name exit 2."""
    import pickle

    missing = errors.ModelMissing("SFace", ["face_recognition_sface_2021dec.onnx"], "/w")
    back = pickle.loads(pickle.dumps(errors.carried(missing)))
    assert type(back) is errors.LookalikeError and str(back) == str(missing)
    assert (back.http_status, back.problem_code, back.exit_code) == (503, "model_missing", 1)
    name = errors.UnknownName("model", "NoSuchModel", ["SFace"])
    back = pickle.loads(pickle.dumps(errors.carried(name, errors.IngestFailed(f"a worker: {name}"))))
    assert type(back) is errors.IngestFailed and (back.exit_code, back.http_status, back.problem_code) == (
        2, 400, "unknown_name")
    assert errors.IngestFailed.exit_code == 1, "the class itself is untouched"


@pytest.fixture(scope="module")
def app():
    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    built = create_app(ServeSettings(db="/nonexistent/never-opened.db", warm=False))
    # a route that raises the error it names: the application's own handlers answer it

    def boom(kind: str, status: str = "") -> None:
        cls = next(c for c in _classes() if c.__name__ == kind)
        raise errors.BadImage("photo.jpg", "why", status) if status else _instance(cls)

    built.add_api_route("/test/raise/{kind}", boom)
    return built


def test_the_problem_answer_of_every_error_is_the_declared_one(app):
    from fastapi.testclient import TestClient

    client = TestClient(app)  # not entered: the library is never opened
    for cls in _classes():
        err = _instance(cls)
        answer = client.get(f"/test/raise/{cls.__name__}")
        assert answer.headers["content-type"] == "application/problem+json", cls.__name__
        body = answer.json()
        assert (answer.status_code, body["code"]) == (err.http_status, err.problem_code), cls.__name__
        assert body["status"] == answer.status_code
        # "try again in a moment": a busy library, a database gone away
        assert ("Retry-After" in answer.headers) == (body["code"] in ("busy", "database_unavailable")), cls.__name__
    for status, declared in BAD_IMAGE.items():
        answer = client.get("/test/raise/BadImage", params={"status": status})
        assert (answer.status_code, answer.json()["code"]) == declared, status
        assert errors.BadImage("p", "r", status).problem_code == declared[1]


def test_every_route_is_declared_on_the_app_and_the_gate_knows_its_key(app):
    from fastapi.routing import APIRoute

    from lookalike.serve.keys import needed_scopes
    from lookalike.store.values import KeyScope

    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/v1/")]
    assert len(routes) == 17, [r.path for r in app.routes]
    from lookalike.serve.guard import PICTURE_COST

    found = needed_scopes(app)
    scopes = {(next(iter(r.methods)), r.path): s for r, s, _ in found}
    # a picture takes a picture's worth of the caller's rate, every other route one request's
    assert {r.path: c for r, _, c in found if c != 1.0} == {
        r.path: PICTURE_COST for r, _, _ in found if "pictures" in r.tags} and len(
        [r for r, _, _ in found if "pictures" in r.tags]) == 4
    for route in routes:
        key = (next(iter(route.methods)), route.path)
        if route.path == "/v1/health":
            assert key not in scopes
        else:
            # a group's average is an admin's: a group narrowed far enough shows few people
            admin = route.tags == ["admin"] or route.path == "/v1/average.png"
            assert scopes[key] is (KeyScope.admin if admin else KeyScope.search), key


def test_an_admin_route_without_a_key_is_refused_before_its_body(app):
    from fastapi.testclient import TestClient

    client = TestClient(app)
    answer = client.post("/v1/people", json={"name": "x"})
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert answer.headers.get("connection") == "close"  # the gate's answer: the body was never read
    assert client.get("/v1/health").json()["status"] == "loading"  # never started
    # a trailing slash names no route: 404 before any key (not a redirect built from the Host header)
    slashed = client.get("/v1/people/x/", headers={"Host": "elsewhere.example"}, follow_redirects=False)
    assert (slashed.status_code, slashed.json()["code"]) == (404, "no_such_path"), slashed.headers


def test_every_problem_code_is_in_the_reference():
    """The codes clients branch on, the server's own (ServerCode) and the library errors'
    (each class's problem_code), are each a row of docs/http.md's errors table."""
    import re
    from pathlib import Path

    from lookalike.serve.problems import ServerCode

    text = (Path(__file__).resolve().parents[1] / "docs" / "http.md").read_text()
    documented = set(re.findall(r"^\| [0-9x]+ \| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", text, re.M))
    codes = {c for row in documented for c in row if c}
    declared = {c.value for c in ServerCode} | {cls.problem_code for cls in _classes()}
    assert declared - codes == set(), "not in docs/http.md's errors table"
