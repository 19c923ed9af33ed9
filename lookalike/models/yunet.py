"""YuNet's graph, run by OpenCV (``cv2.FaceDetectorYN``) or by OpenVINO with the same decoding.

:class:`lookalike.faces.detect.YuNetDetector` hands an RGB photo to :func:`build`'s object,
which pads it (and, for OpenCV, turns it to BGR; OpenVINO does that inside its graph) and
gives OpenCV's rows back: ``(n, 15)`` float32, box (x, y, w, h), five landmarks, score.
OpenVINO runs the same float32 graph about twice as fast (typed, 2026-12-05, Intel Xeon,
two threads: 18.0 against 39.3 ms on a 1,280 x 960 photo,
1.4 against 2.3 ms on LFW's 256 x 256; one thread 34.5 / 69.6 ms), compiled once with a
dynamic height and width, and again for each size up to 640 px as it comes (10-25 % faster,
the same outputs: :meth:`_Graphs.pool`). Its decoding is OpenCV's ``FaceDetectorYNImpl::postProcess``
(``modules/objdetect/src/face_detect.cpp``) in numpy: for each stride s of 8, 16, 32 and
each cell (row r, column c), score = sqrt(clamp(cls) x clamp(obj)); the box's centre is
((c, r) + bbox[:2]) x s, its size exp(bbox[2:]) x s; landmark k is (kps[2k:2k+2] + (c, r)) x s;
then ``cv2.dnn.NMSBoxes`` on the boxes truncated to integers, as OpenCV does.

OpenVINO prepares its kernels once for each new input shape (7-30 ms on this VM, then
cached): OpenCV's padding to multiples of 32 px would let every new photo size pay that,
and let a client that sends photos of ever new sizes fill the cache. Padded to multiples
of :data:`SHAPE_STEP` (128 px) there are at most 100 shapes up to 1,280 px. The extra black
beyond a photo's right and bottom edges is seen by faces cut by those edges: measured
2026-12-05 against OpenCV's rows on 429 photos (bad-inputs, celeb, 300 lfw-dev), the same
faces everywhere, the same boxes in 425 (others moved by 1-5 px), the SFace vectors of the
446 faces at a median cosine of 1.0000 to OpenCV's (1st percentile 0.9985; lowest 0.934,
a face cut in half by the frame); lfw-dev 10-fold accuracy 99.14 % either way (AUC
0.996331 against 0.996332). So the engine is not part of a space (``tests/test_model_stack.py``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from ..config import Runtime
from .runtime import RequestPool, capped, compile_for_cpu, openvino_config, openvino_core, openvino_module, resolve

if TYPE_CHECKING:
    from openvino import Model

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
SHAPE_STEP = 128  # px: OpenVINO's input sides are multiples of this (see OpenVinoYuNet.detect)


class Thresholds(NamedTuple):
    """What YuNet keeps: faces scoring at least ``score``, after NMS at IoU ``nms`` over at
    most ``top_k`` candidates (OpenCV's ``FaceDetectorYN`` arguments)."""

    score: float
    nms: float
    top_k: int


class YuNetGraph(Protocol):
    """What the detector needs of YuNet."""

    runtime: Runtime

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (uint8, any size) -> ``(n, 15)`` float32 rows in its pixels, best first."""
        ...


def build(path: Path, thresholds: Thresholds, threads: int | None, runtime: Runtime) -> YuNetGraph:
    """YuNet from ``path``, in OpenVINO where ``runtime`` resolves to it (on ``threads``
    threads, None: every core), else in OpenCV."""
    chosen = resolve(runtime)
    if chosen is Runtime.onnxruntime:
        return OpenCvYuNet(path, thresholds)
    return OpenVinoYuNet(path, thresholds, threads, chosen)


class OpenCvYuNet:
    """``cv2.FaceDetectorYN``: keeps its input size between calls, so one per detector."""

    runtime = Runtime.onnxruntime  # the engines lookalike ran before OpenVINO: OpenCV for YuNet

    def __init__(self, path: Path, thresholds: Thresholds) -> None:
        import cv2

        score, nms, top_k = thresholds
        self._lock = threading.Lock()
        self._yunet = cv2.FaceDetectorYN.create(str(path), "", (0, 0), score, nms, top_k)

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        bgr = _pad_to(np.ascontiguousarray(rgb[:, :, ::-1]), 32)
        with self._lock:  # the input size is the object's state
            self._yunet.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._yunet.detect(bgr)
        return np.zeros((0, 15), np.float32) if rows is None else np.asarray(rows, np.float32)


class _Graphs:
    """YuNet compiled on one thread count: the graph for any size and, for each size up to
    :attr:`OpenVinoYuNet.FIXED_SIDE`, the graph for exactly that size (:meth:`pool`)."""

    def __init__(self, path: Path, threads: int | None, fixed_side: int, fixed_pixels: int) -> None:
        self._path = path
        # always float32: at bf16 the boxes and landmarks move (2026-12-05: the same boxes in
        # 87 of 429 photos, one face's vector at a cosine of 0.14 to its f32 one)
        self._config = openvino_config(threads, f32=True)
        self.fixed_side, self.fixed_pixels = fixed_side, fixed_pixels
        self.requests = RequestPool(compile_for_cpu(_graph(path, None), self._config))
        self.fixed: OrderedDict[tuple[int, int], RequestPool] = OrderedDict()
        self._tried: set[tuple[int, int]] = set()  # sizes compiled (or tried) for themselves
        self.lock = threading.Lock()

    def pool(self, shape: tuple[int, int]) -> RequestPool:
        """The requests for an input of ``shape`` (height, width): of the graph compiled for
        exactly that size, for a size of at most :attr:`fixed_side`, else of the graph for
        any size. A size's graph is compiled the first time it comes (30-45 ms, or a read from
        OpenVINO's cache, instead of the 7-23 ms the graph for any size takes to prepare for a
        new size), at most once a process, so a stream of ever other sizes costs at most 25
        compiles. Fixed sizes run 10-25 % faster (typed, 2026-12-05, two threads: 1.49 ->
        1.17 ms at 256 x 256, 4.2 -> 3.7 ms at 512 x 512) and give the same outputs bit for bit
        (20 sizes of celeb photos, lfw-dev), so which graph ran never shows in an answer.

        Compiled in the caller's thread, never in one of its own: OpenVINO sets the process's
        locale to "C" while it reads a model, and a thread reading a text file meanwhile
        decoded it as ASCII (seen in the test suite, 2026-12-05)."""
        with self.lock:
            fixed = self.fixed.get(shape)
            if fixed is not None:
                self.fixed.move_to_end(shape)
                return fixed
            if shape in self._tried or max(shape) > self.fixed_side:
                return self.requests
            self._tried.add(shape)
            try:
                fixed = RequestPool(compile_for_cpu(_graph(self._path, shape), self._config))
            except Exception:  # the graph for any size serves it
                log.warning("YuNet: compiling its graph for %d x %d failed", shape[1], shape[0], exc_info=True)
                return self.requests
            self.fixed[shape] = fixed
            while sum(h * w for h, w in self.fixed) > self.fixed_pixels:
                self.fixed.popitem(last=False)  # served by the graph for any size from now on
            return fixed


class OpenVinoYuNet:
    """The graph compiled by OpenVINO for any height and width, decoded as OpenCV does; and,
    for each input size up to :attr:`FIXED_SIDE`, the graph compiled for exactly that size
    (:meth:`_Graphs.pool`). A run asked to take fewer threads than the detector's
    (:func:`lookalike.models.runtime.threads_at_most`) runs graphs compiled for that count,
    made as they are needed."""

    # sizes compiled for themselves: at most this large (a webcam's 640 x 480 frame is; a
    # request's buffers grow with its size, ~40-110 MB at 1,280 px), and at most this many
    # padded pixels of them kept (least recently used dropped first)
    FIXED_SIDE = 640
    FIXED_PIXELS = 1024 * 1024

    def __init__(self, path: Path, thresholds: Thresholds, threads: int | None,
                 runtime: Runtime) -> None:
        self.runtime = runtime
        self.score, self.nms, self.top_k = thresholds
        self._path, self._threads = path, threads
        self._names = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]
        # by thread count (None: the detector's own, compiled now; others at their first need)
        self._graphs: dict[int | None, _Graphs] = {None: _Graphs(path, threads, self.FIXED_SIDE, self.FIXED_PIXELS)}
        self._lock = threading.Lock()

    @property
    def requests(self) -> RequestPool:
        """The requests of the detector's own graph for any size."""
        return self._graphs[None].requests

    def graphs(self, threads: int | None = None) -> _Graphs:
        """The graphs compiled for ``threads`` (None: the detector's own count), compiled at
        their first need, in the caller's thread."""
        with self._lock:
            found = self._graphs.get(threads)
            if found is None:
                found = self._graphs[threads] = _Graphs(self._path, threads, self.FIXED_SIDE, self.FIXED_PIXELS)
            return found

    def _made(self, threads: int | None) -> _Graphs | None:
        """The graphs for ``threads`` if they were compiled (asking never compiles them)."""
        with self._lock:
            return self._graphs.get(threads)

    def fixed_requests(self, shape: tuple[int, int], threads: int | None = None) -> RequestPool | None:
        """The requests of the graph compiled for exactly ``shape``, if there is one."""
        graphs = self._made(threads)
        if graphs is None:
            return None
        with graphs.lock:
            return graphs.fixed.get(shape)

    def compiled_sizes(self, threads: int | None = None) -> list[tuple[int, int]]:
        """The sizes with a graph of their own, least recently used first."""
        graphs = self._made(threads)
        if graphs is None:
            return []
        with graphs.lock:
            return list(graphs.fixed)

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        # sides padded to multiples of SHAPE_STEP: a bounded number of input shapes (module
        # doc); the photo is copied once, as it is (the graph turns it into BGR planes)
        height, width = (-(-side // SHAPE_STEP) * SHAPE_STEP for side in rgb.shape[:2])
        blob = np.zeros((1, height, width, 3), np.uint8)
        blob[0, :rgb.shape[0], :rgb.shape[1]] = rgb
        with self.graphs(capped(self._threads)).pool((height, width)).request() as request:
            request.infer({0: blob}, share_inputs=True)  # read in place (runtime.OpenVinoGraph.run)
            # views of the request's buffers: decoded before it goes back to the pool
            out = {name: request.get_tensor(name).data[0] for name in self._names}
            rows = [self._decode(out, s, height // s, width // s) for s in STRIDES]
        faces = np.concatenate(rows) if rows else np.zeros((0, 15), np.float32)
        if len(faces) <= 1:
            return faces
        import cv2

        boxes = [(int(x), int(y), int(w), int(h)) for x, y, w, h in faces[:, :4]]
        keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), self.score, self.nms, 1.0, self.top_k)
        return faces[np.asarray(keep, dtype=int).reshape(-1)]

    def _decode(self, out: dict[str, np.ndarray], stride: int, rows: int, cols: int) -> np.ndarray:
        cls, obj = out[f"cls_{stride}"][:, 0], out[f"obj_{stride}"][:, 0]
        score = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
        (idx,) = np.nonzero(score >= self.score)
        if len(idx) == 0:
            return np.zeros((0, 15), np.float32)
        cell = np.stack([idx % cols, idx // cols], axis=1).astype(np.float32)  # (c, r)
        bbox, kps = out[f"bbox_{stride}"][idx], out[f"kps_{stride}"][idx].reshape(-1, 5, 2)
        centre = (cell + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:]) * stride
        marks = (kps + cell[:, None, :]) * stride
        return np.concatenate([centre - size / 2, size, marks.reshape(-1, 10), score[idx, None]],
                              axis=1).astype(np.float32)


def _graph(path: Path, shape: tuple[int, int] | None) -> Model:
    """YuNet read from ``path`` for inputs of ``shape`` (height, width; None: any), taking
    the photo as it is, uint8 RGB rows: OpenVINO turns them into the graph's float BGR planes
    inside the compiled graph, on its threads, where numpy took one thread 1.3 ms to fill a
    1,024 x 768 float blob (2026-12-05, celeb: detect p50 6.6 -> 5.8 ms, LFW 1.9 -> 1.7 ms;
    the rows the same to 1e-4)."""
    ov = openvino_module()
    from openvino.preprocess import PrePostProcessor

    model = openvino_core().read_model(str(path))
    height, width = shape or (-1, -1)
    model.reshape({model.inputs[0]: ov.PartialShape([1, 3, height, width])})
    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(ov.Type.f32).reverse_channels()
    return steps.build()


def _pad_to(image: np.ndarray, multiple: int) -> np.ndarray:
    """``image`` padded with black on the right and bottom to sides that are multiples of
    ``multiple`` and at least :data:`YUNET_MIN_INPUT` (coordinates are unchanged).

    OpenCV's FaceDetectorYN pads to 32 itself, but on inputs with a side of 32 px or less
    (the 4000 x 100 strip of bad-inputs is detected at 1,280 x 32) its coarsest feature
    map is one row and the result depends on what ran before: the previous photo's faces,
    or, on a fresh detector with two threads, a face that is not there (seen in CI,
    2026-12-02). Padded to 64 px the strip gave no face in 24 shuffled runs at 1 and 2
    threads, and the 32 x 32 face of bad-inputs the same face each time."""
    import cv2

    height, width = image.shape[:2]
    bottom = max(-height % multiple, YUNET_MIN_INPUT - height)
    right = max(-width % multiple, YUNET_MIN_INPUT - width)
    if not bottom and not right:
        return image
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=0)


YUNET_MIN_INPUT = 64  # px: see :func:`_pad_to`
