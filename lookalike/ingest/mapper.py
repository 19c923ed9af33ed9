"""The mapper: decode -> detect -> align -> embed (-> estimates), in worker processes.

It never touches the database, so any number can run; each loads its models once.
"""

from __future__ import annotations

import logging
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from .. import logs
from ..errors import BadImage, IngestFailed, LookalikeError, carried
from ..faces.pipeline import Face, FacePipeline, FacesMode, Space, like_sized
from ..faults import crash_point
from ..store.values import encode_vector
from ..workers import spawn_context
from .report import IngestStatus, Processed, Task

if TYPE_CHECKING:
    import numpy as np

    from ..config import Settings
    from ..faces.detect import Detection

log = logging.getLogger(__name__)


class Mapper:
    """decode -> detect -> align -> embed (-> estimates) for one embedding space, with its
    models loaded once. Never touches the database."""

    def __init__(self, space: Space, detect_max_side: int, max_pixels: int, mode: FacesMode,
                 analyzer: str | None = None, pipeline: FacePipeline | None = None) -> None:
        """``pipeline``: one already loaded (the library's own, for an ingest in its process);
        by default a new one with one thread, as a pool worker is one process per core."""
        self.pipeline = pipeline or FacePipeline(space, detect_max_side, threads=1)
        self.max_pixels, self.mode = max_pixels, mode
        self.landmarks = _landmarks_ready()
        self._warned = False  # a joint run's failure said (_joint_failed)
        self._analysis_said = False  # an analyzer's failure said at WARNING
        self.analyzer = None
        if analyzer is not None:
            from .. import analysis

            self.analyzer = analysis.build(analysis.AnalyzerName(analyzer))

    GROUP_PIXELS = 12_000_000  # decoded pixels a group of photos holds at most while its chips wait

    def process(self, task: Task) -> Processed:
        """One photo's bytes to faces. Never raises: a bad photo gets a status and a reason."""
        return self.process_tasks([task])[0]

    def process_tasks(self, tasks: list[Task]) -> list[Processed]:
        """Several photos to faces, their faces embedded together. Never raises: a bad photo
        gets a status and a reason, the others are unaffected.

        Why together: the recognition model runs a few faces at a time for less than one at
        a time (SFace at bf16 on one thread with two workers busy, 2026-12-06: 15.2 ms of
        CPU a photo one by one, 11-12 ms eight at a time) and a portrait corpus gives one
        face a photo. Each photo is decoded and searched on its own; only the chips meet.
        Photos wait for their chips' run with their pixels, so a group closes early at
        :attr:`GROUP_PIXELS` (a few large photos are embedded together, not many)."""
        settled: dict[int, Processed] = {}
        found: dict[int, _Found] = {}
        pixels = 0
        for i, task in enumerate(tasks):
            done = self._found(task)
            if isinstance(done, Processed):
                settled[i] = done
            else:
                found[i] = done
                pixels += done.rgb.shape[0] * done.rgb.shape[1]
            if found and (i == len(tasks) - 1 or pixels >= self.GROUP_PIXELS):
                embedded = self._embedded(found)
                points = self._landmarks({k: (found[k], faces) for k, faces in embedded.items()
                                          if not isinstance(faces, Processed)})
                for k, faces in embedded.items():
                    settled[k] = self._finish(found[k], faces, points.get(k, []))
                found, pixels = {}, 0
        return [_read_again(settled[i], tasks[i]) for i in range(len(tasks))]

    def _found(self, task: Task) -> Processed | _Found:
        """Decode ``task``'s photo and find its faces, or the status saying why not."""
        from ..faces.images import decode

        mode = FacesMode(task.faces) if task.faces else self.mode
        base = Processed(task.path, task.person, task.item.profile, task.sha256, task.size, IngestStatus.error,
                         replaces=task.replaces, faces_mode=mode.value)
        try:
            decoded = decode(task.data, task.path, self.max_pixels)
        except BadImage as err:
            return replace(base, status=IngestStatus.of(err.status), reason=err.reason)
        sized = replace(base, width=decoded.width, height=decoded.height)
        try:
            detections = self.pipeline.detect(decoded.rgb, FacesMode.all)
        except Exception as err:  # noqa: BLE001 - one bad photo must not stop the run (_failed logs it)
            return _failed(sized, err)
        notes = list(decoded.notes)
        if mode.keeps_one:
            others = like_sized(detections)
            if others and mode is FacesMode.alone:
                return replace(sized, status=IngestStatus.rejected,
                               reason=f"{others + 1} faces of like size: which one is {task.person or 'theirs'} is a "
                                      "guess; add a photo of them alone, or cut the photo to their face")
            if others:  # a group photo kept one face, and nothing said so
                notes.append(f"{others + 1} faces of like size in it; the largest kept (--faces all keeps every one)")
            detections = detections[:1]
        return _Found(sized, decoded.rgb, detections, notes)

    def _embedded(self, found: dict[int, _Found]) -> dict[int, list[Face] | Processed]:
        """Every found photo's faces embedded in one call; if that fails, photo by photo,
        so the failure is pinned on the photo that causes it."""
        keys = list(found)
        try:
            return dict(zip(keys, self.pipeline.embed_found([(found[i].rgb, found[i].detections) for i in keys])))
        except Exception as err:  # noqa: BLE001 - pinned on its photo below (_failed, _joint_failed log it)
            if len(keys) == 1:
                return {keys[0]: _failed(found[keys[0]].base, err)}
            self._joint_failed("embedding", len(keys))
        return {i: self._embedded({i: found[i]})[i] for i in keys}

    def _finish(self, found: _Found, faces: list[Face] | Processed, points: list[bytes | None]) -> Processed:
        """A found photo's faces with their estimates and landmarks, packed for the writer."""
        if isinstance(faces, Processed):
            return faces
        notes = "; ".join(found.notes) or None
        if not faces:
            reason = "no face found" + (f" ({notes})" if notes else "")
            return replace(found.base, status=IngestStatus.no_face, reason=reason)
        estimates: list[dict | None] = [None] * len(faces)
        analyzed = False
        if self.analyzer is not None:
            try:
                estimates = [e.to_dict() for e in self.analyzer.analyze(found.rgb, [f.bbox for f in faces])]
                analyzed = True
            except Exception as err:  # the faces are still worth storing
                # the photo is stored and its reason says the analysis failed; an analyzer that
                # raises is a bug: its traceback once at WARNING (as every stage logs a bug),
                # then at DEBUG, so a corpus it fails on does not fill the log (review 56, L5)
                level = logging.DEBUG if self._analysis_said else logging.WARNING
                self._analysis_said = True
                log.log(level, "%s: analysis failed", found.base.path, exc_info=True)
                notes = "; ".join(filter(None, [notes, f"analysis failed: {type(err).__name__}: {err}"]))
        packed = [(f.bbox, f.confidence, encode_vector(f.embedding), e, p)
                  for f, e, p in zip(faces, estimates, points)]
        return replace(found.base, status=IngestStatus.ok, reason=notes, faces=packed, analyzed=analyzed)

    def _landmarks(self, photos: dict[int, tuple[_Found, list[Face]]]) -> dict[int, list[bytes | None]]:
        """Each face's dense landmarks, encoded for the store, the faces of all ``photos`` run
        through the mesh together; if that fails, face by face, so only the face it fails on
        goes without (None: the model is not installed, or it failed on this face; the face
        is stored all the same and ``lookalike landmarks backfill`` fills it later)."""
        out: dict[int, list[bytes | None]] = {k: [None] * len(faces) for k, (_, faces) in photos.items()}
        if not self.landmarks:
            return out
        from ..faces.landmarks import landmarks_of
        from ..store.values import encode_points

        meshed = [(k, j, found, face, detection) for k, (found, faces) in photos.items()
                  for j, face in enumerate(faces) if (detection := face.detection) is not None]
        points: list[np.ndarray | None]
        try:
            points = list(landmarks_of([(found.rgb, d) for _, _, found, _, d in meshed], threads=self.pipeline.threads))
        except Exception:  # noqa: BLE001 - pinned on its face below (_joint_failed, _alone log it)
            self._joint_failed("the face mesh", len(meshed))
            points = [self._alone(found, d) for _, _, found, _, d in meshed]
        for (k, j, _, face, _), found_points in zip(meshed, points):
            if found_points is not None:
                out[k][j] = encode_points(found_points, face.bbox)
        return out

    def _joint_failed(self, what: str, n: int) -> None:
        """A joint run failed and its items are being run one by one (each failure there is
        logged with its photo). Said once a process as a warning, since a joint run that
        fails every time (a model that refuses batches) would double the cost unseen;
        after that at debug level."""
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        log.log(level, "%s %d items together failed; one by one now", what, n, exc_info=True)

    def _alone(self, found: _Found, detection: Detection) -> np.ndarray | None:
        """One face's landmarks, or None (logged) when the mesh fails on it."""
        from ..faces.landmarks import landmarks

        try:
            return landmarks(found.rgb, detection, threads=self.pipeline.threads)
        except Exception:  # the face and its vector are still worth storing
            log.warning("%s: landmarks failed", found.base.path, exc_info=True)
            return None


class _Found(NamedTuple):
    """A decoded photo and the faces the detector found in it, not yet embedded."""

    base: Processed  # its row so far (path, hash, size, pixels)
    rgb: np.ndarray
    detections: list[Detection]
    notes: list[str]  # what decoding it noted (EXIF turned, draft...)


def _read_again(result: Processed, task: Task) -> Processed:
    """A stored photo read again says why first (``Task.again``), then what reading it noted.
    One whose faces were stored (``Task.keep``) and whose new read fails (a lower
    ``--max-pixels``, a file that decodes no more) keeps them: ``unchanged``, with the reason
    (a person's faces go only by ``lookalike remove``)."""
    why = task.again
    if not why:
        return result
    if task.keep and result.status is not IngestStatus.ok:
        return Processed(result.path, result.person, result.profile, result.sha256, result.size,
                         IngestStatus.unchanged,
                         f"{why}, but {result.status}: {result.reason}; what was stored from it before is kept")
    return replace(result, reason=f"{why}; {result.reason}" if result.reason else why)


def _failed(base: Processed, err: Exception) -> Processed:
    """A photo the face pipeline failed on. A warning with the traceback: its pixels decoded,
    so a failure to detect, align or embed them is a bug (ours or a model's), and the photo's
    reason keeps only the message; the traceback is what it takes to fix it."""
    log.warning("%s: face pipeline failed", base.path, exc_info=err)
    return replace(base, reason=f"face pipeline failed: {type(err).__name__}: {err}")


def _landmarks_ready() -> bool:
    """Whether ingest can store dense landmarks: their model is installed. Without it the
    photos are ingested all the same (search does not need landmarks) and each mapper (the
    run's, or each worker's) says once how to add them."""
    from ..faces import landmarks
    from ..models import registry

    problem = registry.problem(landmarks.MODEL)
    if problem is not None:
        log.warning("%s; faces are stored without dense landmarks until then (and "
                    "`lookalike landmarks backfill` adds them)", problem)
    return problem is None


def prepare_process() -> None:
    """What every worker process does first: Ctrl-C is the parent's business, the weights
    home is the parent's, so is the log level (:func:`lookalike.logs.inherit`), and one
    thread each for OpenMP and OpenCV (the processes are the parallelism). One BLAS thread
    is in its environment from its start (:mod:`lookalike.workers`): numpy is imported before
    this runs, as the call that names it is unpickled."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.inherit()
    from ..config import activate_weights_home

    activate_weights_home()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)  # OpenCV's own loops (YuNet too under LOOKALIKE_RUNTIME=onnxruntime)


class MapperSpec(NamedTuple):
    """What a worker's :class:`Mapper` is made of. Sent with every call (a few hundred
    bytes), so a worker started before its library was open (:func:`worker_pool` with a
    guess) maps for whichever space the library turns out to have."""

    space: Space
    detect_max_side: int
    max_pixels: int
    mode: FacesMode = FacesMode.largest
    analyzer: str | None = None

    @classmethod
    def of(cls, space: Space, settings: Settings, mode: FacesMode, analyzer: str | None = None) -> MapperSpec:
        return cls(space, settings.detect_max_side, settings.max_pixels, mode, analyzer)


_MAPPER: tuple[MapperSpec, Mapper] | None = None  # a pool worker's mapper, and what it was made for


def _mapper_for(spec: MapperSpec) -> Mapper:
    """This worker's mapper for ``spec``: the one it has, or a new one (its pipeline kept
    when only the faces mode or the analyzer differ)."""
    global _MAPPER
    if _MAPPER is not None and _MAPPER[0] == spec:
        return _MAPPER[1]
    same_pipeline = _MAPPER is not None and (_MAPPER[0].space, _MAPPER[0].detect_max_side) == (
        spec.space, spec.detect_max_side)
    kept = _MAPPER[1].pipeline if _MAPPER is not None and same_pipeline else None
    mapper = Mapper(spec.space, spec.detect_max_side, spec.max_pixels, spec.mode, spec.analyzer, pipeline=kept)
    _MAPPER = (spec, mapper)
    return mapper


def init_worker(spec: MapperSpec, guess: bool = False) -> None:
    """A pool worker's start: :func:`prepare_process`, then the models of ``spec``. A
    ``guess`` (a worker started while its library opens) that fails to load is no error:
    the first call loads what the library really needs, and says so if that fails too."""
    prepare_process()
    try:
        _mapper_for(spec)
    except Exception:
        if not guess:
            raise
        log.debug("the guessed models did not load; the first call loads the library's own", exc_info=True)


def embed_file(path: str) -> tuple[str, np.ndarray | None]:
    """``(path, vector of the largest face or None)``: for evaluation pools that share the
    ingest workers' set-up (:func:`init_worker`)."""
    from ..faces.images import decode_file

    assert _MAPPER is not None, "worker not initialised"
    mapper = _MAPPER[1]
    try:
        faces = mapper.pipeline.faces(decode_file(path, mapper.max_pixels).rgb, FacesMode.largest)
    except BadImage as err:  # an unreadable photo counts as "no face"
        log.debug("%s", err)
        return path, None
    except Exception:  # as does one the pipeline fails on, but that is a bug: keep its traceback
        log.warning("%s: face pipeline failed", path, exc_info=True)
        return path, None
    return path, faces[0].embedding if faces else None


def process(spec: MapperSpec, tasks: list[Task]) -> list[Processed]:
    """Pool entry point: :meth:`Mapper.process_tasks` in this worker, with the mapper of ``spec``.
    Models that do not load here (a worker started on another space loads them at its first
    call) end the run with one :class:`IngestFailed` naming them, not a worker's traceback."""
    try:
        mapper = _mapper_for(spec)
    except Exception as err:
        log.debug("the models of %s did not load", spec.space.key, exc_info=True)
        failed = IngestFailed(f"an ingest worker could not load the models of {spec.space.key}: "
                              f"{type(err).__name__}: {err}")
        # a library error keeps what it means: missing weights a 503 model_missing, a bad name exit 2
        raise (carried(err, failed) if isinstance(err, LookalikeError) else failed) from None
    for task in tasks:
        crash_point("ingest.photo", os.path.basename(task.path))  # a photo that kills its decoder
    done = mapper.process_tasks(tasks)
    for _ in done:
        crash_point("ingest.worker")  # mid-batch: the parent sees a broken pool
    return done


def worker_pool(workers: int, spec: MapperSpec, guess: bool = False) -> ProcessPoolExecutor:
    """``workers`` spawned processes, started now, each loading the models of ``spec`` once
    (:func:`init_worker`; ``guess``: a spec made before the library opened, see there).

    ``concurrent.futures`` rather than ``multiprocessing.Pool``: a worker that cannot start
    breaks the pool with an error instead of being respawned forever. Spawned, never
    forked (dlib / ONNX Runtime threads), and without re-running ``__main__``
    (:mod:`lookalike.workers`). The executor spawns a process at each submit while none is
    idle: one empty call per worker starts them all at once, not at the first photos."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn_context(), initializer=init_worker,
                               initargs=(spec, guess))
    for _ in range(workers):
        pool.submit(int)
    return pool
