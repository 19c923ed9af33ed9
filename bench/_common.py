"""Shared by the benchmarks: where the data is, machine facts, table + JSON output."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FACES = Path(os.environ.get("LOOKALIKE_FACES", ROOT.parent / "shared" / "faces")).resolve()
_STARTED = _dt.datetime.now(_dt.timezone.utc)  # when the benchmark began (this module is imported first)
_LOAD_AT_START = os.getloadavg()[0]


def _utc(moment: _dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    from lookalike.config import env_runtime
    from lookalike.models.runtime import describe

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mib": mem, "python": platform.python_version(),
            "runtime": describe(env_runtime()),  # the engine SFace and YuNet ran in (LOOKALIKE_RUNTIME)
            "date": _utc(_dt.datetime.now(_dt.timezone.utc)),
            # what else was running: the machine's load when the run began and now (a quiet
            # 2-core VM reads ~0 before a run; a run itself adds up to 2)
            "started": _utc(_STARTED), "load_average_1m": {"start": round(_LOAD_AT_START, 2)},
            "command": shlex.join(["python", *sys.argv])}  # :func:`write` adds when it finished


def lfw_photos(limit: int) -> list[Path]:
    photos = sorted((FACES / "lfw-dev" / "images").glob("*/*.jpg"))
    if not photos:
        raise SystemExit(f"no LFW photos under {FACES} (set LOOKALIKE_FACES)")
    return photos[:limit]


def write(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    facts = data.get("machine")
    # the run's end, whenever machine() was called; never re-stamped on a record an earlier run
    # wrote (scale.py --only-* rewrites the saved file around its new part)
    if isinstance(facts, dict) and "started" in facts and "finished" not in facts:
        facts["finished"] = _utc(_dt.datetime.now(_dt.timezone.utc))
        facts["load_average_1m"] = facts.get("load_average_1m", {}) | {"end": round(os.getloadavg()[0], 2)}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def previous(name: str) -> tuple[dict, str | None]:
    """The last ``results/NAME.json`` (empty when there is none) and the date it was measured."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return {}, None
    old = json.loads(path.read_text())
    return old, old.get("machine", {}).get("date")


def earlier(name: str, field: str, measured_now: list[str]) -> dict:
    """``results/NAME.json``'s ``field`` entries (stack -> figures) of the stacks this run
    does not measure, each with the date it was measured (``measured``): a run of one stack
    keeps the others' figures instead of dropping them."""
    old, date = previous(name)
    return {stack: entry | {"measured": entry.get("measured", date)} for stack, entry in old.get(field, {}).items()
            if stack in STACKS and stack not in measured_now}


def table(title: str, columns: list[str], rows: list[list]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in r])
    Console(width=200).print(t)  # a table, not a terminal: never squeezed to 80 columns


# The model stacks every benchmark measures side by side: today's default and the one
# before it (libraries made before 2026-12 still use it). Each is run the same way by
# lookalike (the space) and by DeepFace (its model and detector names), so every ratio
# compares like with like.
STACKS: dict[str, dict] = {
    "sface": {"label": "SFace + yunet (default)", "model": "SFace", "detector": "yunet", "aligner": "arcface"},
    "dlib": {"label": "Dlib + dlib (before)", "model": "Dlib", "detector": "dlib", "aligner": "chip"},
}


def stack_args(name: str) -> list[str]:
    """The CLI flags that select a stack's space."""
    s = STACKS[name]
    return ["--model", s["model"], "--detector", s["detector"], "--aligner", s["aligner"]]


def deepface_kw(name: str) -> dict:
    """DeepFace's names for the same stack."""
    s = STACKS[name]
    return {"model_name": s["model"], "detector_backend": s["detector"]}


def free_port() -> int:
    """A TCP port free on loopback now (the benchmarks' and the tests' servers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_milvus(port: int, alive: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    """Block until a Milvus server on loopback ``port`` answers a pymilvus call (the port
    opens before the API does); raise with the tail of its ``log`` if it exits (``alive``
    says no) or ``timeout`` seconds pass. The benchmarks' servers and the tests' share it."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            from pymilvus import MilvusClient

            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            # a channel of its own, closed here: a shared one left open would ping the idle
            # server until Milvus Lite's answers GOAWAY, and the next client sharing it fails
            client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=10, dedicated=True,
                                  grpc_options={"grpc.keepalive_permit_without_calls": 0})
            try:
                client.list_collections()
            finally:
                client.close()
            return
        except Exception as err:  # not up yet: the port or the API
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {err}; its log: "
                                   f"{log.read_text(errors='replace')[-2000:]}") from err
            time.sleep(0.5)


def _threads_cpu_ns(skip: int) -> int:
    """CPU time (ns) used so far by every thread of this process but ``skip`` (Linux's
    per-thread ``schedstat``; 0 where it is not there)."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for tid in tasks:
        if int(tid) == skip:
            continue
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


def settle(window_s: float = 0.001, quiet_windows: int = 5, busy_share: float = 0.1, limit_s: float = 1.0) -> float:
    """Wait until the other threads of this process have gone quiet; the seconds waited.

    A runtime's worker threads keep spinning on the cores for a while after a call returns
    (DeepFace 0.0.103 runs SFace in ONNX Runtime, whose intra-op pool spins ~20 ms after
    each run: on this 2-core VM lookalike's search right after a DeepFace call took 24 ms,
    15 ms right after its own, 2026-12-05), so a timed call would pay for whatever ran
    before it. Quiet = the other threads used under ``busy_share`` of one core in each of
    ``quiet_windows`` windows of ``window_s`` in a row (a spinning pool dips now and then):
    a signal read from the kernel's per-thread CPU clocks, not a fixed pause. Gives up
    after ``limit_s`` (a thread that never sleeps)."""
    import threading

    me = threading.get_native_id()
    started = time.perf_counter()
    before, calm = _threads_cpu_ns(me), 0
    while calm < quiet_windows and time.perf_counter() - started < limit_s:
        tick = time.perf_counter()
        time.sleep(window_s)
        now = _threads_cpu_ns(me)
        calm = calm + 1 if now - before < busy_share * (time.perf_counter() - tick) * 1e9 else 0
        before = now
    return time.perf_counter() - started
