"""Where a server process runs a query's library call (lookalike.serve.service.Service.run):
on the event loop's own thread when the library is free and the photo small (in pixels, as
its header says), in a worker thread when the photo is large, unreadable or the library
busy, and then without blocking the loop."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_for
from PIL import Image

from lookalike.serve.service import INLINE_PIXELS, Service
from lookalike.serve.settings import ServeSettings


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 60, 30)).save(out, "PNG")
    return out.getvalue()


SMALL = _png(250, 250)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A server process's service over a real library (a new one: the calls below use
    nothing of it but its one-call-at-a-time lock, so no model is loaded)."""
    served = Service(ServeSettings(db=str(tmp_path / "lib.db"), rate_per_minute=0, warm=False))
    served.start()
    # ready, or failed (which ends the wait at once); the guard only bounds a hang
    assert wait_for(lambda: served.ready.is_set() or served.failed is not None, guard=120), "never opened"
    assert served.failed is None, served.failed
    yield served
    served.close()


def _thread(lib: object) -> int:
    return threading.get_ident()


def test_a_small_photos_call_runs_on_the_event_loop_and_a_large_ones_in_a_worker_thread(service):
    large = _png(2000, INLINE_PIXELS // 2000 + 1)  # one colour: a few kB, over the pixels
    assert len(large) < 100_000

    async def main() -> dict[str, int]:
        return {"loop": threading.get_ident(), "small": await service.run(_thread, [SMALL]),
                "two small": await service.run(_thread, [SMALL, SMALL]),
                "large": await service.run(_thread, [large]),
                "small and large": await service.run(_thread, [SMALL, large]),
                "not a photo": await service.run(_thread, [b"not a photo at all"])}

    ran = asyncio.run(main())
    assert ran["small"] == ran["two small"] == ran["loop"]
    assert all(ran[k] != ran["loop"] for k in ("large", "small and large", "not a photo")), ran
    assert _free(service.library().calls)


def _free(lock) -> bool:
    """Whether another thread can take ``lock`` now (the library's is re-entrant: an RLock has
    no ``locked()`` before Python 3.14)."""
    took: list[bool] = []

    def probe() -> None:
        took.append(lock.acquire(blocking=False))
        if took[0]:
            lock.release()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return took[0]


def test_a_call_that_would_wait_for_the_library_waits_in_a_thread_and_the_loop_goes_on(service):
    """An admin's ingest holds the library: a search's call waits for it off the loop, which
    meanwhile answers others (here: runs other coroutines), and runs once it is free."""
    held, release = threading.Event(), threading.Event()

    def admin() -> None:
        with service.library().calls:
            held.set()
            release.wait(timeout=60)  # a guard: a call blocking the loop would never let main() release it

    writer = threading.Thread(target=admin)
    writer.start()
    assert held.wait(timeout=60), "the admin's call never took the library"  # fails, never hangs

    async def main() -> tuple[int, int, bool]:
        call = asyncio.create_task(service.run(_thread, [SMALL]))
        for _ in range(50):  # the loop runs on while the call waits for the lock
            await asyncio.sleep(0)
        waited = not call.done()
        release.set()
        return threading.get_ident(), await call, waited

    loop, ran_on, waited = asyncio.run(main())
    writer.join()
    assert waited and ran_on != loop
