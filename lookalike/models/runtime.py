"""The engines that run a recognition graph: ONNX Runtime and OpenVINO, behind one :class:`Graph`.

SFace is ~75 % of a search on a 250-px photo. The same float32 graph runs in
either engine with the same vectors (cosine 1.00000 measured; the test suite checks them
against DeepFace's own ``SFaceClient`` either way), so the engine is a speed setting and
never part of a space: a library built with one is searched with the other.

Measured 2026-12-05 on this project's 2-core VM (Intel Xeon with AVX-512/VNNI/AMX, a
112 x 112 chip, median of 40 runs): SFace 15.9 ms on one thread / 12.8 ms on two in
ONNX Runtime 1.32, 11.3 / 6.2 ms in OpenVINO 2026.4 at f32. On the AMD EPYC the VM ran on
earlier that day OpenVINO was only ~7 % faster. ``auto`` (the default, ``LOOKALIKE_RUNTIME``)
takes OpenVINO when it is installed: it is never slower, and where it is not installed
(a platform without its wheels) ONNX Runtime runs as before.

YuNet, the detector, follows the same setting (:mod:`.yunet`: OpenVINO or, as before, OpenCV).

OpenVINO would by default compute in bfloat16 on a CPU with AMX (4.5 / 3.2 ms here), but
its vectors move (cosine 0.9996 to float32's), which would make them another space; this
module asks for f32 explicitly. Threads are not pinned to cores: a server, a kiosk beside
its webcam or an ingest worker is never alone on the machine.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..config import Runtime

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from openvino import CompiledModel, InferRequest

log = logging.getLogger(__name__)


class Graph(Protocol):
    """One loaded graph with one input and one output that matters."""

    runtime: Runtime

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The graph's first output for ``batch``; safe to call from several threads."""
        ...


def resolve(requested: Runtime) -> Runtime:
    """The engine :attr:`Runtime.auto` stands for here: OpenVINO when importable."""
    if requested is not Runtime.auto:
        return requested
    return Runtime.openvino if importlib.util.find_spec("openvino") is not None else Runtime.onnxruntime


def load(path: Path, threads: int | None, runtime: Runtime) -> Graph:
    """``path``'s graph in ``runtime`` (resolved), on ``threads`` intra-op threads (None:
    one per core)."""
    chosen = resolve(runtime)
    if chosen is Runtime.openvino:
        return OpenVinoGraph(path, threads)
    return OrtGraph(path, threads)


class OrtGraph:
    """An ONNX Runtime session (:func:`lookalike.models.fastgraph.session`); ``run`` is
    thread-safe in ORT itself."""

    runtime = Runtime.onnxruntime

    def __init__(self, path: Path, threads: int | None) -> None:
        from .fastgraph import session

        self.session: InferenceSession = session(path, threads)
        self._input = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self._input: batch})[0])


class OpenVinoGraph:
    """An OpenVINO model compiled for the CPU at f32, one infer request per calling thread
    (a request holds its own buffers and must not run twice at once)."""

    runtime = Runtime.openvino

    def __init__(self, path: Path, threads: int | None) -> None:
        try:
            import openvino as ov
        except ImportError as err:
            from ..errors import ConfigError

            raise ConfigError(f"LOOKALIKE_RUNTIME=openvino, but OpenVINO is not installed ({err}); "
                              "run: pip install openvino, or use onnxruntime") from err
        config: dict[str, object] = {
            "INFERENCE_PRECISION_HINT": "f32",  # bf16 on AMX would change the vectors
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled: CompiledModel = ov.Core().compile_model(str(path), "CPU", config)
        self._local = threading.local()
        log.debug("%s compiled in OpenVINO %s on %s threads", path.name, ov.__version__, threads or "all")

    def _request(self) -> InferRequest:
        request: InferRequest | None = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def run(self, batch: np.ndarray) -> np.ndarray:
        request = self._request()
        request.infer({0: batch})
        # the output tensor is the request's own buffer, overwritten by its next run
        return np.array(request.get_output_tensor(0).data, copy=True)
