"""The engines that run a recognition graph: ONNX Runtime and OpenVINO, behind one :class:`Graph`.

SFace is most of a search on a 250-px photo. ``LOOKALIKE_RUNTIME`` chooses who runs it
(:class:`~lookalike.config.Runtime`; YuNet follows the same setting, :mod:`.yunet`):

* ``openvino`` (what ``auto``, the default, means where OpenVINO is installed — a core
  dependency): the graph at OpenVINO's own precision for this CPU, bfloat16 where the CPU
  computes it natively (Intel AMX), else float32;
* ``openvino-f32``: OpenVINO at float32: ONNX Runtime's vectors to 5e-7;
* ``onnxruntime``: ONNX Runtime, as before 2026-12-05.

Measured 2026-12-05 on this project's 2-core VM (Intel Xeon with AVX-512/VNNI/AMX, a
112 x 112 chip, median of 40 runs), one / two threads: ONNX Runtime 1.32 15.9 / 12.8 ms,
OpenVINO 2026.4 at f32 11.3 / 6.2 ms, at bf16 4.5 / 3.2 ms. (On the AMD EPYC the VM ran
on that morning, OpenVINO at f32 was only ~7 % faster; it has no bf16.)

bfloat16 keeps 8 bits of mantissa, so the vectors move a little: against float32's, on
446 faces of 429 photos (bad-inputs, celeb, lfw-dev), a median cosine of 0.99994 and a
lowest of 0.9984 — far inside what tells two people apart (the same-person threshold is
0.35) — and lfw-dev's 10-fold accuracy is 99.18 % against 99.14 % (AUC 0.996326 against
0.996332; the issue's bar: within 0.2 points). So a library is searched with vectors of
either precision and the engine is not part of a space; ``openvino-f32`` is there for
whoever needs the float32 vectors bit for bit (up to 5e-7).

Threads are not pinned to cores: a server, a kiosk beside its webcam or an ingest worker
is never alone on the machine.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..config import Runtime

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from openvino import CompiledModel, Core, InferRequest, Model

log = logging.getLogger(__name__)


class Graph(Protocol):
    """One loaded graph with one input and one output that matters."""

    runtime: Runtime
    precision: str  # what it computes in: "f32" or "bf16"
    batch: int  # how many inputs one run takes best (1: one at a time)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The graph's first output for ``batch``; safe to call from several threads."""
        ...


# the most threads a model run may take in this context (None: the model's own count)
_THREADS_CAP: ContextVar[int | None] = ContextVar("lookalike_threads_cap", default=None)


@contextmanager
def threads_at_most(threads: int | None) -> Iterator[None]:
    """OpenVINO model runs in this context (this thread, or a task) take at most
    ``threads`` threads (None: each model's own count).

    For processes that share the cores: a server's processes each compile their models
    for every core, so that a lone request takes both cores of a 2-core VM; when its
    sibling is busy too, two runs on two threads each fight over the two cores, and the
    same runs on one thread each use 20 % less CPU a search (typed, 2026-12-06: 24.7 ->
    19.9 ms of CPU, 14.5 -> 19.1 ms of wall time). A model asked for fewer threads than
    it was compiled for runs a copy compiled for that count, made at its first need
    (:meth:`OpenVinoGraph.run`, :meth:`lookalike.models.yunet.OpenVinoYuNet.detect`).
    ONNX Runtime's and OpenCV's sessions keep their own count."""
    token = _THREADS_CAP.set(threads)
    try:
        yield
    finally:
        _THREADS_CAP.reset(token)


def capped(threads: int | None) -> int | None:
    """The thread count a model compiled for ``threads`` (None: every core) runs at in
    this context: the context's cap when it is lower, else None (the model's own copy)."""
    cap = _THREADS_CAP.get()
    if cap is None:
        return None
    own = threads or os.cpu_count() or 1
    return max(1, cap) if cap < own else None


def resolve(requested: Runtime) -> Runtime:
    """The engine :attr:`Runtime.auto` stands for here: OpenVINO when importable."""
    if requested is not Runtime.auto:
        return requested
    return Runtime.openvino if importlib.util.find_spec("openvino") is not None else Runtime.onnxruntime


def load(path: Path, threads: int | None, runtime: Runtime) -> Graph:
    """``path``'s graph in ``runtime`` (resolved), on ``threads`` intra-op threads (None:
    one per core)."""
    chosen = resolve(runtime)
    if chosen is Runtime.onnxruntime:
        return OrtGraph(path, threads)
    return OpenVinoGraph(path, threads, f32=chosen is Runtime.openvino_f32)


def describe(runtime: Runtime) -> str:
    """The engine ``runtime`` resolves to here, its version and SFace's precision, e.g.
    ``openvino 2026.4.1, SFace at bf16`` (benchmarks record it beside the CPU)."""
    chosen = resolve(runtime)
    if chosen is Runtime.onnxruntime:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}, SFace at f32"
    ov = openvino_module()
    native = precision_of(openvino_core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    precision = native if chosen is Runtime.openvino else "f32"
    return f"openvino {ov.__version__.split('-')[0]}, SFace at {precision}"


def precision_of(hint: object) -> str:
    """``bf16`` or ``f32``: what an OpenVINO ``INFERENCE_PRECISION_HINT`` value computes in."""
    return "bf16" if "bfloat16" in str(hint) else "f32"


def openvino_core() -> Core:
    """OpenVINO's entry point, or a :class:`ConfigError` saying how to get it."""
    try:
        ov = openvino_module()
    except ImportError as err:
        from ..errors import ConfigError

        raise ConfigError(f"LOOKALIKE_RUNTIME asks for OpenVINO, which is not installed ({err}); "
                          "run: pip install openvino, or set LOOKALIKE_RUNTIME=onnxruntime") from err
    return ov.Core()


def openvino_module() -> ModuleType:
    """``openvino``, imported without its model converter (every import of it in lookalike
    goes through here).

    OpenVINO's ``__init__`` imports ``openvino.tools.ovc`` to offer ``convert_model``, and
    that starts its telemetry client and reads installed packages' metadata: 0.1-0.2 s of
    every process that runs a model (each ingest worker, CLI command and server process;
    2026-12-06) for a converter lookalike never calls. A ``None`` in ``sys.modules`` makes
    that one import fail, which OpenVINO's ``__init__`` expects and passes over; the entry
    goes again at once, so code that imports the converter itself later still gets it."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    converter = "openvino.tools.ovc"
    blocked = converter not in sys.modules
    if blocked:
        sys.modules[converter] = None  # type: ignore[assignment]
    try:
        import openvino
    finally:
        if blocked and sys.modules.get(converter, False) is None:
            del sys.modules[converter]
    return openvino


def openvino_config(threads: int | None, f32: bool) -> dict[str, object]:
    """How lookalike compiles for the CPU: for one request at a time, threads not pinned,
    float32 when asked (else OpenVINO's own choice for this CPU)."""
    config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
    if f32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def compile_cache() -> Path | None:
    """Where OpenVINO keeps the models it compiled (``CACHE_DIR``): the user's cache folder,
    ``lookalike/openvino``; ``None`` where it cannot be made (a read-only home)."""
    from platformdirs import user_cache_dir

    folder = Path(user_cache_dir("lookalike", appauthor=False)) / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


def compile_for_cpu(model: Path | Model, config: dict[str, object]) -> CompiledModel:
    """``model`` (a file, or one read and reshaped) compiled for the CPU, from OpenVINO's
    cache once compiled there before (SFace 0.29 -> 0.06 s, YuNet 0.12 -> 0.05 s a process:
    each ingest worker, CLI command and server process pays it). One process compiles at a
    time (a file lock), so a second one reads a finished blob, never one being written; a
    cache that fails is left out."""
    import fcntl

    core = openvino_core()
    source = str(model) if isinstance(model, Path) else model
    cache = compile_cache()
    if cache is None:
        return core.compile_model(source, "CPU", config)
    with open(cache / ".compile.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return core.compile_model(source, "CPU", config | {"CACHE_DIR": str(cache)})
        except RuntimeError as err:
            log.warning("OpenVINO's cache of compiled models in %s failed (%s); compiling without it", cache, err)
            return core.compile_model(source, "CPU", config)


class RequestPool:
    """Idle infer requests of one compiled model. A request holds its own buffers (YuNet's
    at 1,280 px: ~40-110 MB) and must not run twice at once, so a caller takes an idle one
    — a new one only when every one is busy — and gives it back: there are as many as calls
    ever ran at once, not one per thread that ever called (a server's thread pool has 40)."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled
        self.made = 0  # requests created so far
        self._idle: list[InferRequest] = []
        self._lock = threading.Lock()

    @contextmanager
    def request(self) -> Iterator[InferRequest]:
        with self._lock:
            request = self._idle.pop() if self._idle else None
            self.made += request is None
        if request is None:
            request = self.compiled.create_infer_request()
        try:
            yield request
        finally:
            with self._lock:
                self._idle.append(request)


class OrtGraph:
    """An ONNX Runtime session (:func:`lookalike.models.fastgraph.session`); ``run`` is
    thread-safe in ORT itself."""

    runtime = Runtime.onnxruntime
    precision = "f32"
    batch = 1  # a batch costs more per input in ONNX Runtime (models/recognizers.py)

    def __init__(self, path: Path, threads: int | None) -> None:
        from .fastgraph import session

        self.session: InferenceSession = session(path, threads)
        self._input = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self._input: batch})[0])


def _any_batch(path: Path) -> Model:
    """``path``'s graph read and reshaped to take any number of inputs a run."""
    model = openvino_core().read_model(str(path))
    shape = model.inputs[0].get_partial_shape()
    shape[0] = -1
    model.reshape({model.inputs[0]: shape})
    return model


class OpenVinoGraph:
    """An OpenVINO model compiled for the CPU, its infer requests in a :class:`RequestPool`."""

    def __init__(self, path: Path, threads: int | None, f32: bool, *, any_batch: bool = False,
                 runs_of: int | None = None) -> None:
        """``any_batch``: the file's graph takes one input a run (a TF Lite graph's fixed
        batch of 1), and is compiled for any number instead. ``runs_of``: inputs a run at
        most (:attr:`batch`); None: SFace's measure below."""
        self.runtime = Runtime.openvino_f32 if f32 else Runtime.openvino
        self._source: Path | Model = _any_batch(path) if any_batch else path
        self._threads, self._f32 = threads, f32
        self.compiled = compile_for_cpu(self._source, openvino_config(threads, f32))
        self.precision = precision_of(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        # at bf16 (AMX) SFace's faces run best a few at a time: 3.27 ms a face alone, 2.53 in
        # twos, 2.29 in fours, the same vectors (typed, 2026-12-05); at f32 no gain. Ingest's
        # workers embed eight photos' faces a call (one thread each, two busy: 11.9 ms of CPU
        # a photo in runs of four, 11.2 in runs of eight, 2026-12-06), so eight at most: it
        # bounds the input shapes OpenVINO prepares kernels for, and the vectors are the same
        # whatever the run's size (checked at 1, 4, 8 and 16).
        self.batch = runs_of or (8 if self.precision == "bf16" else 1)
        self.requests = RequestPool(self.compiled)
        self._fewer: dict[int, RequestPool] = {}  # copies compiled for fewer threads (threads_at_most)
        self._lock = threading.Lock()
        log.debug("%s compiled by OpenVINO at %s on %s threads", path.name, self.precision, threads or "all")

    def pool(self, threads: int | None = None) -> RequestPool:
        """The requests of the copy compiled for ``threads`` (None: the model's own), compiled
        at its first need, in the caller's thread (see :meth:`lookalike.models.yunet._Graphs.pool`
        for why never in one of its own)."""
        if threads is None:
            return self.requests
        with self._lock:
            fewer = self._fewer.get(threads)
            if fewer is None:
                fewer = self._fewer[threads] = RequestPool(
                    compile_for_cpu(self._source, openvino_config(threads, self._f32)))
            return fewer

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The first output for ``batch``, at most :attr:`batch` inputs (the caller splits)."""
        with self.pool(capped(self._threads)).request() as request:
            # the batch read in place, not copied into the request's own input first: 0.2 ms
            # less CPU a photo in an ingest worker (2026-12-07, four runs each way)
            request.infer({0: batch}, share_inputs=True)
            # the output tensor is the request's own buffer, overwritten by its next run
            return np.array(request.get_output_tensor(0).data, copy=True)
