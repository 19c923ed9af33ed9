"""The operator's password cannot be guessed at full speed: wrong tries are counted per
client across every session of the server, each try past a few waits longer, a try made
while waiting is not even checked, and secrets are compared in constant time. Time is a
fake clock the tests move: no sleeping."""

from __future__ import annotations

import hmac

import pytest
from conftest import app_page

from lookalike.ui import gate
from lookalike.ui.throttle import Throttle, client_key

PASSWORD = "operator-Secret-42"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_tries_past_the_free_ones_wait_longer_each_time():
    clock = Clock()
    t = Throttle(free=3, base=2.0, ceiling=30.0, forget=600.0, clock=clock)
    assert [t.failed("a") for _ in range(3)] == [0.0, 0.0, 0.0] and t.wait("a") == 0.0
    assert t.failed("a") == 2.0 and t.wait("a") == 2.0
    clock.now += 1.5
    assert t.wait("a") == pytest.approx(0.5)
    assert t.wait("b") == 0.0  # another client is not slowed by a's guesses
    clock.now += 0.5
    assert t.wait("a") == 0.0
    assert [t.failed("a") for _ in range(4)] == [4.0, 8.0, 16.0, 30.0]  # doubling, up to the ceiling
    assert t.failed("a") == 30.0
    t.succeeded("a")
    assert t.wait("a") == 0.0 and t.failed("a") == 0.0  # a right try starts the count afresh


def test_a_quiet_client_is_forgotten_and_memory_is_bounded():
    clock = Clock()
    t = Throttle(free=1, base=1.0, forget=60.0, max_clients=3, clock=clock)
    t.failed("a")
    assert t.failed("a") == 1.0
    clock.now += 61
    assert t.wait("a") == 0.0 and t.failed("a") == 0.0  # forgotten: one free try again
    for c in ("b", "c", "d"):
        t.failed(c)
        t.failed(c)
    assert t.wait("a") == 0.0 and t.failed("a") == 0.0  # dropped to keep 3 clients: counted afresh
    assert t.wait("d") == 1.0


def test_clients_are_counted_by_address():
    assert client_key(None) == client_key("") == "loopback"  # Streamlit names no loopback address
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"


def test_secrets_are_compared_in_constant_time_whatever_their_length(monkeypatch):
    seen = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert gate.same_secret(PASSWORD, PASSWORD) and not gate.same_secret("x", PASSWORD)
    assert len(seen) == 2 and all(len(a) == len(b) == 32 for a, b in seen)  # digests: the length shows nothing
    assert PASSWORD.encode() not in {x for pair in seen for x in pair}


def _try(at, secret: str):
    at.text_input(key="operator_secret").input(secret)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return "\n".join(e.value for e in at.error), "lk_operator" in at.session_state


@pytest.mark.parametrize("name", ["admin.py", "explore.py"])
def test_the_operator_gate_slows_guessing_across_sessions(kiosk_db, monkeypatch, name):
    clock = Clock()
    monkeypatch.setattr(gate, "LOGIN_THROTTLE", Throttle(free=3, base=2.0, clock=clock))
    at = app_page(name, kiosk_db, monkeypatch, LOOKALIKE_UI_PASSWORD=PASSWORD)
    for _ in range(3):
        errors, opened = _try(at, "guess")
        assert "neither the operator's password" in errors and "Wait" not in errors and not opened
    errors, opened = _try(at, "guess")
    assert "Wait 2 s before the next try" in errors and not opened
    # the right password while waiting: refused unchecked, in this session and in a new one
    errors, opened = _try(at, PASSWORD)
    assert "Too many wrong tries from your address: try again in 2 s" in errors and not opened
    other = app_page(name, kiosk_db, monkeypatch, LOOKALIKE_UI_PASSWORD=PASSWORD)
    errors, opened = _try(other, PASSWORD)
    assert "Too many wrong tries" in errors and not opened
    clock.now += 2.0
    errors, opened = _try(other, PASSWORD)
    assert not errors and opened
    assert gate.LOGIN_THROTTLE.wait("loopback") == 0.0  # a right try clears the count
