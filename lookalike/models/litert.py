"""A TF Lite model run by Google's LiteRT runtime (``ai-edge-litert`` from the package index).

MediaPipe's face mesh ships as a ``.tflite`` file inside the mediapipe wheel; the
mediapipe package itself is never installed (jax, GUI OpenCV, an old protobuf), but its
graph needs nothing beyond the stock TF Lite kernels, which ``ai-edge-litert`` (Apache-2.0,
maintained by Google, one 21 MB wheel with no heavy dependencies) runs on the CPU.

An interpreter holds its input and output buffers, so one call at a time runs through
it: a lock makes the registry's one cached model per (name, threads) safe to share
between threads (the HTTP server's workers); processes (ingest workers) each have
their own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MissingExtra

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter


class TfliteModel:
    """One ``.tflite`` graph: a float32 batch in, every output tensor out."""

    def __init__(self, path: Path, threads: int | None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:  # pragma: no cover - a core dependency
            raise MissingExtra(f"running {path.name}", "landmarks", str(err)) from err
        self.path = path
        self._interpreter: Interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        detail = self._interpreter.get_input_details()[0]
        self._input = int(detail["index"])
        self.input_shape = tuple(int(v) for v in detail["shape"])  # (1, h, w, c)
        self._outputs = [int(d["index"]) for d in self._interpreter.get_output_details()]
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The outputs (copies) for one input of :attr:`input_shape`, float32."""
        with self._lock:
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, dtype=np.float32))
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(i).copy() for i in self._outputs]
