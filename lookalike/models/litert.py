"""A TF Lite model run by Google's LiteRT runtime (``ai-edge-litert`` from the package index).

MediaPipe's face mesh ships as a ``.tflite`` file inside the mediapipe wheel; the
mediapipe package itself is never installed (jax, GUI OpenCV, an old protobuf), but its
graph needs nothing beyond the stock TF Lite kernels, which ``ai-edge-litert`` (Apache-2.0,
maintained by Google, one 21 MB wheel with no heavy dependencies) runs on the CPU. Since
2026-12-06 OpenVINO runs the same file where it is the engine (faster, and several crops a
run: :func:`lookalike.models.registry.load`); LiteRT runs it under
``LOOKALIKE_RUNTIME=onnxruntime`` or without OpenVINO, and gives the reference points.

An interpreter holds its input and output buffers, so one call at a time runs through
it: a lock makes the registry's one cached model per (name, threads) safe to share
between threads (the HTTP server's workers); processes (ingest workers) each have
their own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..config import Runtime
from ..errors import MissingExtra

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter


class TfliteModel:
    """One ``.tflite`` graph, one input a run (its graph's fixed batch), its first output out:
    a :class:`lookalike.models.runtime.Graph`, for the engine that has no OpenVINO (which
    runs the same file faster, :func:`lookalike.models.registry.load`)."""

    runtime = Runtime.onnxruntime  # the engine setting it stands in for
    precision = "f32"
    batch = 1  # LiteRT runs a batch of crops slower a crop than one by one (1.46 ms, 1.86 in eights)

    def __init__(self, path: Path, threads: int | None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:  # pragma: no cover - a core dependency
            raise MissingExtra(f"running {path.name}", "landmarks", str(err)) from err
        self.path = path
        with _native_stderr_muted():
            self._interpreter: Interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        detail = self._interpreter.get_input_details()[0]
        self._input = int(detail["index"])
        self.input_shape = tuple(int(v) for v in detail["shape"])  # (1, h, w, c)
        self._outputs = [int(d["index"]) for d in self._interpreter.get_output_details()]
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The first output (a copy) for one input of :attr:`input_shape`, float32."""
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output (copies) for one input of :attr:`input_shape` (the mesh's second is
        its face score, which bench/landmarks.py reads)."""
        with self._lock:
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, dtype=np.float32))
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(i).copy() for i in self._outputs]


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """LiteRT's C++ side prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
    file descriptor 2 whenever a model loads, which no Python logging setting reaches; it
    would land in every CLI command's output. Failures still reach us as Python
    exceptions, so only the chatter is lost while the model loads."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stderr (tests): nothing to mute
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
