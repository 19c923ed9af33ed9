"""The body places and the caller's share the :class:`~lookalike.serve.guard.Gate` hands
out, given back as the answer's last bytes are sent: a client has its answer before the
request ends in the server (a route's last steps, the close), and one that sent its next
request on its answer found the one place, or its own share, still taken (a 503 ``busy``
in CI, 2026-12-07). Pure ASGI: the route is a coroutine of the test's, so the moment each
count is read is chosen, not raced."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from lookalike.serve.guard import BodySlots, Gate

SCOPE = {"type": "http", "method": "POST", "path": "/v1/search", "headers": [(b"content-length", b"1")]}


async def _admit(scope):
    return SimpleNamespace(identity="key-1")


async def _receive():
    return {"type": "http.request", "body": b"x", "more_body": False}


async def _send(message):
    pass


def _slots() -> BodySlots:
    """Eight places, so a caller's share is two; the caller already holds one of them
    elsewhere, so a share given back twice shows as a count gone wrong."""
    slots = BodySlots(size=8, wait=0)
    assert slots.claim("key-1")
    return slots


def test_the_place_and_the_share_are_back_once_the_last_bytes_go():
    slots, seen = _slots(), []

    async def route(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        seen.append((slots.in_flight, dict(slots.held)))  # the answer is not whole yet
        await send({"type": "http.response.body", "body": b""})
        seen.append((slots.in_flight, dict(slots.held)))  # whole, and the route still runs

    asyncio.run(Gate(route, _admit, slots)(SCOPE, _receive, _send))
    assert seen == [(1, {"key-1": 2}), (0, {"key-1": 1})]
    assert (slots.in_flight, slots.held) == (0, {"key-1": 1})  # given back once only


def test_an_answer_broken_off_gives_them_back_too():
    slots = _slots()

    async def route(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise RuntimeError("the route failed half way through its answer")

    with pytest.raises(RuntimeError):
        asyncio.run(Gate(route, _admit, slots)(SCOPE, _receive, _send))
    assert (slots.in_flight, slots.held) == (0, {"key-1": 1})


def test_a_caller_over_its_share_is_refused_and_keeps_what_it_holds():
    slots = _slots()
    assert slots.claim("key-1")  # its second: the share is full
    sent: list = []

    async def route(scope, receive, send):
        raise AssertionError("a caller over its share reached the route")

    async def send(message):
        sent.append(message)

    asyncio.run(Gate(route, _admit, slots)(SCOPE, _receive, send))
    assert sent[0]["status"] == 429
    assert (slots.in_flight, slots.held) == (0, {"key-1": 2})
