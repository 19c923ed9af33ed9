"""Huge pages for a large FAISS index read from disk (Linux).

A graph search at 1 M faces reads a few thousand vectors and link lists scattered over
~800 MB; after a query's models have run, those reads miss the caches and, on 4 KB pages,
the TLB too. Backed by 2 MB pages the same index searched in 1.15 ms instead of 1.5 ms
inside a search (typed, 2026-12-06, the 1 M-face library of `bench/answer_scale.py`, 200
LFW queries, in two runs each).

The kernel makes huge pages of memory it is told about (``madvise``; the machine's
transparent huge pages are ``madvise`` on most distributions, as on this VM), and
``MADV_COLLAPSE`` (Linux 6.1+) copies what is already there into them: 740 MB in ~1.9 s of
one core. That runs in a thread of its own after the index is read, so opening a library
never waits for it, and searches meanwhile read the same vectors on small pages.
Elsewhere, on older kernels or where huge pages are off, nothing happens.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

HUGE_MIN = 64 << 20  # bytes: arrays smaller than this are left as they are
_PAGE = 2 << 20
MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25
_running: set[threading.Thread] = set()
_lock = threading.Lock()


def large_arrays(index: faiss.Index) -> list[np.ndarray]:
    """Views of the index's arrays of at least :data:`HUGE_MIN` bytes: a flat index's
    vectors, and an HNSW graph's vectors and links (IVF lists are many small arrays)."""
    import faiss

    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    parts = []
    if isinstance(inner, faiss.IndexHNSW):
        parts.append(inner.hnsw.neighbors)  # type: ignore[attr-defined]  # missing from faiss's stubs
        inner = faiss.downcast_index(inner.storage)
    if isinstance(inner, faiss.IndexFlatCodes):
        parts.append(inner.codes)
    views = [faiss.rev_swig_ptr(part.data(), part.size()) for part in parts if part.size()]
    return [view for view in views if view.nbytes >= HUGE_MIN]


def advise(index: faiss.Index) -> threading.Thread | None:
    """Ask for huge pages under ``index``'s large arrays, in a thread of its own (which
    holds the index until it is done); None when there is nothing to do here."""
    arrays = large_arrays(index) if sys.platform.startswith("linux") else []
    if not arrays:
        return None
    thread = threading.Thread(target=_collapse, args=(index, arrays), name="lookalike-huge-pages", daemon=True)
    with _lock:
        _running.add(thread)
    thread.start()
    return thread


def _collapse(index: faiss.Index, arrays: list[np.ndarray]) -> None:
    """``index`` is here only to keep the arrays' memory alive until the advice is given."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for array in arrays:
            start = array.ctypes.data
            low = -(-start // _PAGE) * _PAGE  # whole 2 MB pages inside the array
            high = (start + array.nbytes) // _PAGE * _PAGE
            if high <= low:
                continue
            for advice in (MADV_HUGEPAGE, MADV_COLLAPSE):  # ctypes lets go of the GIL meanwhile
                if libc.madvise(ctypes.c_void_p(low), high - low, advice) != 0:
                    log.debug("madvise(%d) on %d MB of the index: errno %d", advice, (high - low) >> 20,
                              ctypes.get_errno())
                    break
    finally:
        with _lock:
            _running.discard(threading.current_thread())


def settle(timeout: float | None = None) -> None:
    """Wait until the huge pages asked for so far are made (benchmarks and tests: a search
    after it runs on them)."""
    with _lock:
        threads = list(_running)
    for thread in threads:
        thread.join(timeout)


def huge_bytes(array: np.ndarray) -> int:
    """Bytes of huge pages under the mappings that hold ``array`` (``/proc/self/smaps``)."""
    start, end = array.ctypes.data, array.ctypes.data + array.nbytes
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low < end and high > start
            elif inside and head == "AnonHugePages:":
                total += int(line.split()[1]) * 1024
    return total
