"""Worker processes (lookalike.workers): spawned with an empty ``__main__``, and ended with
their exit code as soon as multiprocessing's own ending is done, without the interpreter's
teardown of every module they imported."""

from __future__ import annotations

import os
import sys

import pytest

from lookalike.workers import BLAS_THREAD_VARIABLES, spawn_context


class _Marker:
    """Writes its file when it is torn down."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __del__(self, _open=open) -> None:  # builtins may be gone when the teardown gets here
        with _open(self.path, "w") as f:
            f.write("torn down")


def _work(queue, marker: str, end: str) -> None:
    sys.modules[__name__].kept_marker = _Marker(marker)  # a module global: freed only by the teardown
    queue.put("result")  # through a queue's feeder thread: must reach the parent all the same
    if end == "raise":
        raise RuntimeError("planted")
    if end == "exit":
        sys.exit(3)


@pytest.mark.parametrize(("end", "code"), [("return", 0), ("raise", 1), ("exit", 3)])
def test_a_worker_keeps_its_exit_code_and_its_results_and_skips_the_teardown(tmp_path, end, code):
    ctx = spawn_context()
    queue = ctx.Queue()
    marker = tmp_path / "marker"
    proc = ctx.Process(target=_work, args=(queue, str(marker), end))
    proc.start()
    assert queue.get(timeout=120) == "result"
    proc.join(timeout=120)
    assert proc.exitcode == code
    assert not marker.exists()  # the module's objects were never torn down one by one


def _blas(queue) -> None:
    import os

    import numpy  # noqa: F401 - its OpenBLAS starts its threads here
    from threadpoolctl import threadpool_info

    queue.put(([p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"],
               {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}))


@pytest.mark.parametrize("chosen", [None, *BLAS_THREAD_VARIABLES])
def test_a_worker_runs_one_blas_thread_unless_the_user_chose(monkeypatch, chosen):
    """OpenBLAS starts a thread per core at numpy's import, each spinning before it sleeps:
    CPU a worker's neighbours need. A count the user set is theirs; the parent's own
    environment is as it was (its own BLAS keeps a thread per core)."""
    for name in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if chosen:
        monkeypatch.setenv(chosen, "2")
    ctx = spawn_context()
    queue = ctx.Queue()
    proc = ctx.Process(target=_blas, args=(queue,))
    proc.start()
    threads, env = queue.get(timeout=120)
    proc.join(timeout=120)
    assert threads  # numpy's OpenBLAS was found in the worker
    if chosen is None:
        assert threads == [1] * len(threads)
        assert env == dict.fromkeys(BLAS_THREAD_VARIABLES) | {"OPENBLAS_NUM_THREADS": "1"}
    chose = dict.fromkeys(BLAS_THREAD_VARIABLES) | ({chosen: "2"} if chosen else {})
    if chosen:
        assert env == chose
    assert {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES} == chose  # the parent's: as it was
