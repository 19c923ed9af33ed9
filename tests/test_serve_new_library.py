"""A kiosk's library built through the HTTP API from nothing, as docs/http.md's admin
routes promise: profiles come before any face is stored (they answered 409 empty_library
for a profile they had saved), and a batch of photos gives each file its own status, an
empty one included (it refused the whole batch, storing none)."""

from __future__ import annotations

import contextlib

import pytest

import lookalike

pytestmark = pytest.mark.e2e


def test_a_library_is_built_through_the_api_profile_first(faces, tmp_path):
    from _site import in_process

    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings
    from lookalike.store.values import KeyScope

    db = tmp_path / "kiosk.db"
    with lookalike.open(db) as lib:  # a new library: its schema and one key, no face
        _, admin = lib.keys.create(KeyScope.admin)
    headers = {"X-API-Key": admin}
    amy = sorted((faces / "celeb" / "faceapi_bbt" / "amy").iterdir())
    app = create_app(ServeSettings(db=str(db), rate_per_minute=0))
    with contextlib.ExitStack() as stack:
        client = in_process(app)
        stack.callback(client.__exit__, None, None, None)
        assert client.get("/v1/people", headers=headers).json() == {"people": []}
        saved = client.post("/v1/people", json={"name": "amy", "role": "engineer", "consent_display": False},
                            headers=headers)
        assert saved.status_code == 200, saved.text
        assert (saved.json()["role"], saved.json()["photos"], saved.json()["faces"]) == ("engineer", 0, 0)
        consent = client.put("/v1/people/amy/consent", json={"consent_display": True}, headers=headers)
        assert consent.status_code == 200 and consent.json()["consent_display"] is True, consent.text
        assert [p["name"] for p in client.get("/v1/people", headers=headers).json()["people"]] == ["amy"]
        with lookalike.open(db) as lib:  # the admin page's list of a person's photos, before any
            assert lib.people.photos("amy") == [] and lib.people.display_tags() == []

        files = [("photos", (p.name, p.read_bytes(), "image/png")) for p in amy[:2]]
        files.insert(1, ("photos", ("empty.jpg", b"", "image/jpeg")))
        added = client.post("/v1/people/amy/photos", files=files, headers=headers)
        assert added.status_code == 200, added.text
        said = {o["filename"]: (o["status"], o["reason"]) for o in added.json()["photos"]}
        assert said[amy[0].name][0] == said[amy[1].name][0] == "ok"
        assert said["empty.jpg"][0] == "decode_error" and "empty" in said["empty.jpg"][1], said
        line = client.get("/v1/people", headers=headers).json()["people"][0]
        assert (line["photos"], line["faces"]) == (2, 2)
        query = {"photo": (amy[3].name, amy[3].read_bytes(), "image/png")}
        found = client.post("/v1/search", files=query, data={"k": "1"}, headers=headers).json()
        assert found["faces"][0]["matches"][0]["person"] == "amy"
        # the same photo uploaded for someone else: a duplicate whose reason names the copy kept
        # in words ("the upload folder/…"), as every answer of the API says the server's places
        assert client.post("/v1/people", json={"name": "bea"}, headers=headers).status_code == 200
        again = client.post("/v1/people/bea/photos", files=[("photos", ("a.png", amy[0].read_bytes(), "image/png"))],
                            headers=headers)
        assert again.status_code == 200, again.text
        again = again.json()["photos"][0]
        assert again["status"] == "duplicate" and again["reason"].startswith("same bytes as the upload folder/amy/")
        assert str(tmp_path) not in again["reason"] and "('amy' vs 'bea')" in again["reason"]
