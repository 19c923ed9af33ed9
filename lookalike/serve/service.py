"""One server process's state: the :class:`Service` (the library and its models, loaded
once; one call that runs a model or touches the index at a time, reads of people and
photos beside it; and the API keys it has read, remembered a while). Who may call it is
:mod:`lookalike.serve.keys`'s."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ..config import shown_url
from ..errors import LookalikeError
from ..store.values import KeyScope
from .board import Board, threads_for
from .guard import ApiProblem, RateLimit
from .problems import ServerCode
from .settings import ServeSettings
from .timing import recorded

if TYPE_CHECKING:
    from ..verbs.library import Library

log = logging.getLogger(__name__)
T = TypeVar("T")
# a query whose photos have no more pixels (their headers say) runs on the event loop's thread
# when the library is free (Service.run): a phone's 12-MP photo takes a worker thread, a
# 1280 x 720 webcam frame or a 250-px photo does not
INLINE_PIXELS = 2_000_000
PING_SECONDS = 3.0  # /v1/health's question to the database: longer is an answer too


class Service:
    """The process's library and its models, loaded once (in a thread, so that the server
    answers ``/v1/health`` while they load)."""

    KEY_TTL = 2.0  # seconds a key's scope is trusted before the database is asked again
    KEYS_KEPT = 10_000  # keys remembered at most (the oldest read go first)

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        # key -> (scope, when read), oldest first: made-up keys push out the oldest, never all
        self._keys: OrderedDict[str, tuple[KeyScope | None, float]] = OrderedDict()
        self._keys_lock = threading.Lock()
        self.lib: Library | None = None
        self.failed: str | None = None
        self.ready = threading.Event()
        self.limit = RateLimit(settings.rate_per_minute)
        # which of the server's processes are busy: the cores are shared out among them
        self.board = Board(settings.board) if settings.board else None
        # /v1/health asks the database on a thread of its own: never behind the requests'
        # threads, and a database that hangs holds up no one but the next health check
        self.pinger = ThreadPoolExecutor(1, thread_name_prefix="lookalike-health")
        # reads at once (read): a photo's portrait decodes it, and without the library's lock
        # nothing else bounded how many of them ran together (40 threads, 100-MP files)
        self.reading = threading.BoundedSemaphore(max(2, os.cpu_count() or 1))

    def start(self) -> None:
        threading.Thread(target=self._load, name="lookalike-load", daemon=True).start()

    def _load(self) -> None:
        import cv2

        import lookalike

        cv2.setNumThreads(self.settings.model_threads)  # OpenCV's own loops (YuNet too under onnxruntime)
        try:
            lib = lookalike.open(self.settings.db, index_dir=self.settings.index_dir,
                                 max_pixels=self.settings.max_megapixels * 1_000_000,
                                 model_threads=self.settings.model_threads)
            if self.settings.warm:
                lib.warm()
            self.lib = lib
            self.ready.set()
            log.info("ready: %s", shown_url(lib.settings.db_url))
            self._say_ready()
        except LookalikeError as err:
            self.failed = _failed(err)
            log.error("the library could not be opened: %s", err)
        except Exception as err:  # health must say failed, never "loading" for ever
            self.failed = _failed(err)
            # as given: reading it may be what failed
            where = shown_url(str(self.settings.db or "the library LOOKALIKE_DB names"))
            log.error("%s: the library could not be opened", where, exc_info=err)

    def _say_ready(self) -> None:
        """A file named by this process's pid in ``ready_dir`` (when set): whoever started
        ``serve --workers N`` knows every process is ready when N files are there, without
        guessing from which process the kernel happened to hand its health requests to."""
        if self.settings.ready_dir is None:
            return
        from pathlib import Path

        folder = Path(self.settings.ready_dir)
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f".{os.getpid()}.part"
        part.write_text("ready\n")
        part.replace(folder / str(os.getpid()))

    def library(self) -> Library:
        """The open library; a 503 ``not_ready`` until it is (or when it could not be)."""
        if self.lib is None:
            if self.failed is not None:
                raise ApiProblem(503, ServerCode.not_ready, self.failed)
            raise ApiProblem(503, ServerCode.not_ready, "the models are still loading", {"Retry-After": "2"})
        return self.lib

    def call(self, work: Callable[[Library], T]) -> T:
        """``work`` on the library, one call at a time in this process (the caller's thread
        waits for its turn): a call that runs a model or changes the index (reads take
        :meth:`read`); its time (the wait for the lock left out) goes into the answer's
        ``Server-Timing`` (:mod:`.timing`)."""
        lib = self.library()
        with lib.calls:
            return self._held(lib, work)

    def read(self, work: Callable[[Library], T]) -> T:
        """``work`` that reads rows and stored photos only (people, a person, a photo): no
        model runs and the index is not opened, so it does not wait for the library's lock,
        and a visitor's list of people never queues behind an admin's upload or a large
        transform (architecture review 56, M3). The verbs that need the lock take it
        themselves (:func:`lookalike.verbs.space.serialised`). As many run at once as the
        machine has cores (a photo is decoded); its time (the wait left out) goes into
        ``Server-Timing`` as a call's does."""
        lib = self.library()
        with self.reading, recorded():
            return work(lib)

    async def run(self, work: Callable[[Library], T], photos: Sequence[bytes]) -> T:
        """A query's call (search, analyze, verify) from an ``async`` route: on the event
        loop's own thread when the library is free and the photos are small (at most
        :data:`INLINE_PIXELS` together, as their headers say), else in a worker thread as
        :meth:`call`.

        Why: the worker thread's hop there and back is two wake-ups of sleeping threads on
        the critical path; on this 2-core VM a search of a 250-px photo through the real
        server took 1.20 ms of HTTP stack around 5.4 ms of search with the hop and 0.97 ms
        without (560 searches each, 2026-12-06 10:20 UTC). While the call runs the loop
        serves nobody else: another request of this process would have waited for the
        library anyway, but health answers and refusals wait too — for a small photo's call,
        a few to a few tens of milliseconds (more for a group photo, each face embedded and
        searched). Pixels, not bytes, bound it: a PNG of one colour is 100 kB at 40 MP. A
        larger photo, one whose header Pillow cannot read, and a call that would wait for
        the lock (an admin's ingest holds it) never block the loop."""
        from ..faces.images import pixels

        lib = self.library()
        sizes = [pixels(photo) for photo in photos]
        small = all(n is not None for n in sizes) and sum(n or 0 for n in sizes) <= INLINE_PIXELS
        if small and lib.calls.acquire(blocking=False):
            try:
                return self._held(lib, work)
            finally:
                lib.calls.release()
        import anyio

        return await anyio.to_thread.run_sync(self.call, work)

    def _held(self, lib: Library, work: Callable[[Library], T]) -> T:
        """``work`` once this thread holds the library's lock, on the cores it may take."""
        with self._cores(), recorded():
            return work(lib)

    @contextmanager
    def _cores(self) -> Iterator[None]:
        """The models' threads for one library call: every core while the server's other
        processes are idle, their share of the cores while some are busy too
        (:mod:`lookalike.serve.board`)."""
        if self.board is None:
            yield
            return
        from ..models.runtime import threads_at_most

        with self.board.busy() as others, threads_at_most(threads_for(others, self.settings.model_threads)):
            yield

    def _fresh(self, key: str) -> tuple[KeyScope | None, float] | None:
        """The key's remembered (scope, when read), while younger than :attr:`KEY_TTL`."""
        import time

        cached = self._keys.get(key)
        return cached if cached is not None and time.monotonic() - cached[1] < self.KEY_TTL else None

    def private(self) -> dict[str, str]:
        """The operator's places, each with what an answer says instead: a library error's
        message names them for the CLI, and a client is told neither where the library is nor
        (with a PostgreSQL URL) its password."""
        return self.lib.settings.places() if self.lib is not None else {}

    def knows(self, key: str) -> bool:
        """Whether :meth:`scope_of` answers ``key`` from memory (no database read)."""
        return self._fresh(key) is not None

    def vouched(self, key: str) -> bool:
        """Whether ``key`` was a valid key when last read, however long ago: its next read
        is a refresh, not a made-up key's probe."""
        remembered = self._keys.get(key)
        return remembered is not None and remembered[0] is not None

    def scope_of(self, key: str) -> KeyScope | None:
        """The key's scope, read from the database at most every :attr:`KEY_TTL` seconds per
        key (a revoked key is refused within that time, in every server process)."""
        import time

        cached = self._fresh(key)
        if cached is not None:
            return cached[0]
        now = time.monotonic()
        # its own session: no need to wait for a search; a database gone away is the store's
        # DatabaseUnavailable, answered by the gate as any library error (problems.answer_of)
        scope = self.library().keys.scope(key)
        with self._keys_lock:  # worker threads and the event loop both ask
            self._keys[key] = (scope, now)
            self._keys.move_to_end(key)
            while len(self._keys) > self.KEYS_KEPT:  # made-up keys must not grow this without bound
                self._keys.popitem(last=False)
        return scope

    async def unreachable(self) -> str | None:
        """Why this process's library cannot reach its database now, or None; a check that
        takes over :data:`PING_SECONDS` counts as unreachable."""
        import asyncio

        lib = self.library()
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self.pinger, lib.unreachable),
                                          PING_SECONDS)
        except TimeoutError:
            return f"no answer within {PING_SECONDS:g} s"

    def close(self) -> None:
        self.pinger.shutdown(wait=False)
        if self.board is not None:
            self.board.close()  # the slot back, the shared page unmapped
        if self.lib is not None:
            self.lib.close()


def _failed(err: BaseException) -> str:
    """What health and every route say when the library could not be opened: the kind of
    failure, not its message (which names the database, a server path, perhaps a password);
    the log has the rest."""
    return f"the library could not be opened ({type(err).__name__}); the server's log says why"
