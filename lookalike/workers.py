"""Worker processes: spawned, and never re-running the parent's ``__main__``.

Ingest, evaluation and live matching run their models in spawned processes (forking
after dlib or ONNX Runtime have started threads is unsafe). A spawned child normally
re-imports the parent's ``__main__`` script first; that is why plain Python scripts need
an ``if __name__ == "__main__":`` guard, and under Streamlit (its server, or AppTest)
``__main__`` is a page script that must never run in a worker. Our workers only need
lookalike's own modules, so they start with an empty ``__main__``: no guard needed, no
page re-run. And they start with one BLAS thread (:func:`_child_environment`).
"""

from __future__ import annotations

import os
import sys
import threading
import types
from contextlib import contextmanager
from multiprocessing import context as _mp
from typing import Iterator

# the variables OpenBLAS reads its thread count from (numpy's, and FAISS's OpenMP build, which
# then keeps one thread for good, whatever omp_set_num_threads says)
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
_ENVIRONMENT = threading.Lock()  # held while a child is started with an environment of its own


@contextmanager
def _child_environment() -> Iterator[None]:
    """The environment a worker is spawned with: the parent's, with one BLAS thread unless the
    user chose a count (:data:`BLAS_THREAD_VARIABLES`); the parent's own is as it was once
    the child has started.

    Why: a worker's parallelism is the processes beside it and its models' own runtimes,
    never a matrix product large enough to share, while OpenBLAS starts a thread per core as
    numpy is imported, and each spins ~0.1 s before it sleeps: 0.2 s of CPU a process on this
    2-core VM (numpy, OpenCV and OpenVINO imported: 0.39 s against 0.19 s, 2026-12-07), taken
    from the workers that start beside it. Only the workers: the command's own process and
    its servers keep a thread per core for the products they do run (a PCA of the library's
    vectors, FAISS's k-means and batched exact searches). Under a lock, so that two threads
    starting workers at once do not restore each other's setting while a child starts."""
    with _ENVIRONMENT:
        chosen = any(name in os.environ for name in BLAS_THREAD_VARIABLES)
        if not chosen:
            os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            yield
        finally:
            if not chosen:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)


@contextmanager
def _plain_main() -> Iterator[None]:
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class _Process(_mp.SpawnProcess):
    def start(self) -> None:
        # the child's preparation data is taken from __main__ here, its environment from ours
        with _plain_main(), _child_environment():
            super().start()

    def _bootstrap(self, parent_sentinel: int | None = None) -> int:
        """In the child: run, then leave with the exit code as soon as multiprocessing's own
        ending is done (queues flushed to the parent, threads joined, streams flushed),
        skipping the interpreter's teardown of every module a worker imported (numpy, OpenCV,
        OpenVINO and its compiled models): 0.15-0.2 s a worker that its parent waited for at
        the end of every ingest (2026-12-06). A worker's work all went back over its pipe;
        nothing is left to tear down that the operating system does not free."""
        code = super()._bootstrap(parent_sentinel)  # type: ignore[misc]
        os._exit(code)


class _SpawnContext(_mp.SpawnContext):
    Process = _Process


def spawn_context() -> _mp.SpawnContext:
    """A ``spawn`` multiprocessing context whose processes skip the parent's ``__main__``."""
    return _SpawnContext()
