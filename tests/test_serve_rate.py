"""What a request costs of its caller's rate: a picture (a morph, a transform, an average
face) costs 10 to 50 searches on the library's one lock, and one key's 48-frame morphs within
120 requests a minute held honest searches 7.8 s (security probe, 2026-12-07); a keyless
caller is counted by its address, an IPv6 one by its /64."""

from __future__ import annotations

import pytest
from _site import in_process
from conftest import problem

import lookalike
from lookalike.serve.guard import FRAMES_PAID, PICTURE_COST, RateLimit, caller_address
from lookalike.store.values import KeyScope

pytestmark = pytest.mark.e2e


def test_a_picture_takes_a_pictures_worth_of_the_callers_rate(tmp_path, monkeypatch):
    """At --rate 120 (a burst of 12) a picture takes 8: a second one at once is a 429 while
    the caller's searches still go in, four of them."""
    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    with lookalike.open(tmp_path / "lib.db") as lib:
        key = {"X-API-Key": lib.keys.create(KeyScope.search)[1]}
    take = RateLimit.take  # the buckets' clock held still: the counts are exact however slow
    monkeypatch.setattr(RateLimit, "take", lambda self, caller, now=None, cost=1.0: take(self, caller, 1_000.0, cost))
    client = in_process(create_app(ServeSettings(db=str(tmp_path / "lib.db"), rate_per_minute=120, warm=False)))
    try:
        assert client.get("/v1/people/nobody/average.png", headers=key).status_code == 404  # admitted
        problem(client.get("/v1/people/nobody/average.png", headers=key), 429, "rate_limited")
        assert [client.get("/v1/stats", headers=key).status_code for _ in range(4)] == [200] * 4
        problem(client.get("/v1/stats", headers=key), 429, "rate_limited")
    finally:
        client.__exit__(None, None, None)
    assert PICTURE_COST == 8


def test_a_morphs_frames_past_those_paid_for_are_owed_after_it(tmp_path, monkeypatch, faces):
    """A 48-frame morph costs four 12-frame ones: the flat cost let one key's 48-frame morphs
    hold about 40 % of the library's lock (security probe, 2026-12-07). The frames are known
    only once the body is read, so the rest is owed after the morph: the caller's bucket goes
    below empty and their next request waits for it to fill (the clock held still)."""
    from lookalike.serve.app import create_app
    from lookalike.serve.settings import ServeSettings

    with lookalike.open(tmp_path / "lib.db") as lib:
        key = {"X-API-Key": lib.keys.create(KeyScope.search)[1]}
    take, owe = RateLimit.take, RateLimit.owe
    monkeypatch.setattr(RateLimit, "take", lambda self, caller, now=None, cost=1.0: take(self, caller, 1_000.0, cost))
    monkeypatch.setattr(RateLimit, "owe", lambda self, caller, cost, now=None: owe(self, caller, cost, 1_000.0))
    photos = {name: (f"{name}.jpg", (faces / "celeb" / "face_recognition" / name / f"{name.split('_')[1]}.jpg")
                     .read_bytes(), "image/jpeg") for name in ("barack_obama", "joe_biden")}
    client = in_process(create_app(ServeSettings(db=str(tmp_path / "lib.db"), rate_per_minute=120, warm=False)))
    try:
        def morph(frames: int) -> int:
            return client.post("/v1/morph", headers=key, data={"frames": str(frames)},
                               files={"photo": photos["barack_obama"], "photo_b": photos["joe_biden"]}).status_code

        assert morph(FRAMES_PAID) == 200  # a burst of 12: the morph's 8 paid, 4 left
        assert [client.get("/v1/stats", headers=key).status_code for _ in range(4)] == [200] * 4
        client.__exit__(None, None, None)
        client = in_process(create_app(ServeSettings(db=str(tmp_path / "lib.db"), rate_per_minute=120, warm=False)))
        assert morph(48) == 200  # 8 paid, 24 owed: 4 - 24 = -20 left
        said = problem(client.get("/v1/stats", headers=key), 429, "rate_limited")
        assert "try again in 10.5 s" in said["detail"], said  # (1 + 20) at 2 a second
    finally:
        client.__exit__(None, None, None)


def test_a_keyless_caller_is_counted_by_its_address_and_an_ipv6_one_by_its_64():
    assert caller_address("2001:db8:1:2::5") == caller_address("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert caller_address("192.0.2.7") == "192.0.2.7"
    # an IPv4 client of a dual-stack socket (--host ::) is its IPv4 address, not ::/64 with all the others
    assert caller_address("::ffff:192.0.2.7") == "192.0.2.7" != caller_address("::ffff:192.0.2.8")
    assert caller_address("::1") == "::1"

