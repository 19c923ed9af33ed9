"""The ingest mapper maps several photos a call, their faces embedded together
(lookalike.ingest.mapper.Mapper.process_tasks): each photo's result is the one it gets
alone, and a photo that fails, however it fails, fails alone."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace

import pytest

from lookalike.config import DEFAULT_DETECT_MAX_SIDE, DEFAULT_MAX_PIXELS
from lookalike.faces.pipeline import FacesMode, Space
from lookalike.ingest.corpus import Item
from lookalike.ingest.mapper import Mapper
from lookalike.ingest.report import IngestStatus, Task

pytestmark = pytest.mark.e2e

BAD = "bad-inputs/generated"
# a call of the kinds a corpus mixes: portraits, a group, no face, unreadable bytes, a 48 MP photo
MIXED = ["lfw-dev/images/Aaron_Peirsol", f"{BAD}/corrupt__truncated.jpg", f"{BAD}/noise__noise_512.png",
         "bad-inputs/collected/multi_face__two_people.jpg", f"{BAD}/huge_image__huge_8000x6000.jpg",
         f"{BAD}/grayscale__grayscale_L.jpg"]


def _tasks(faces) -> list[Task]:
    paths = []
    for name in MIXED:
        path = faces / name
        paths += sorted(path.rglob("*.jpg"))[:3] if path.is_dir() else [path]
    assert len(paths) == 8, paths
    tasks = []
    for path in paths:
        data = path.read_bytes()
        tasks.append(Task(Item(str(path), path.parent.name), hashlib.sha256(data).hexdigest(), len(data), data, False))
    return tasks


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper(Space("SFace", "yunet", "arcface"), DEFAULT_DETECT_MAX_SIDE, DEFAULT_MAX_PIXELS, FacesMode.all)


@pytest.fixture(scope="module")
def alone(mapper, faces):
    """Each photo of the call mapped on its own, as before calls of several."""
    return [mapper.process_tasks([task])[0] for task in _tasks(faces)]


def _same(got: list, expected: list) -> None:
    """The same results: statuses, reasons, boxes and confidences exactly; vectors and dense
    landmarks to a hair (bit for bit on the Xeon this was measured on; a CPU whose kernels
    differ with the batch's size gets float noise)."""
    import numpy as np

    from lookalike.store.values import decode_vector

    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert (a.path, a.status, a.reason, a.width, a.height) == (b.path, b.status, b.reason, b.width, b.height)
        assert [f[:2] + f[3:4] for f in a.faces] == [f[:2] + f[3:4] for f in b.faces], a.path
        for fa, fb in zip(a.faces, b.faces):
            assert float(decode_vector(fa[2]) @ decode_vector(fb[2])) > 0.99999, a.path
            assert (fa[4] is None) == (fb[4] is None), a.path
            if fa[4] is not None:
                pa, pb = (np.frombuffer(x, "<f2").astype(np.float32) for x in (fa[4], fb[4]))
                assert float(np.abs(pa - pb).max()) < 2e-3, a.path


def _counting(monkeypatch, mapper) -> list[int]:
    """The number of photos in each run of the recognition model's caller."""
    runs: list[int] = []
    embed_found = mapper.pipeline.embed_found

    def counted(photos):
        runs.append(len(photos))
        return embed_found(photos)

    monkeypatch.setattr(mapper.pipeline, "embed_found", counted)
    return runs


def test_a_call_of_photos_gives_each_the_result_it_gets_alone(mapper, faces, alone, monkeypatch):
    statuses = [r.status for r in alone]
    assert statuses.count(IngestStatus.ok) == 6 and IngestStatus.decode_error in statuses, statuses
    assert IngestStatus.no_face in statuses and max(len(r.faces) for r in alone) >= 2
    runs = _counting(monkeypatch, mapper)
    together = mapper.process_tasks(_tasks(faces))
    _same(together, alone)
    # the seven photos that decoded met in two runs, not seven: the 48 MP photo takes its
    # group past GROUP_PIXELS, which closes with it
    assert runs == [6, 1], runs


def test_a_group_closes_at_its_pixel_budget(mapper, faces, alone, monkeypatch):
    monkeypatch.setattr(Mapper, "GROUP_PIXELS", 1)
    runs = _counting(monkeypatch, mapper)
    _same(mapper.process_tasks(_tasks(faces)), alone)
    assert runs == [1] * 7, runs


def test_a_photo_the_pipeline_fails_on_fails_alone(mapper, faces, alone, monkeypatch, caplog):
    """The aligner raises on one photo's pixels: the call's joint run fails, the photos are
    embedded again one by one, and only that photo gets the error (with its traceback logged)."""
    tasks = _tasks(faces)
    align = mapper.pipeline.aligner.align
    doomed_shape = (250, 250, 3)  # the LFW portraits' size: the first of them is the doomed one
    seen = []

    def failing(rgb, detection, size):
        if rgb.shape == doomed_shape and not seen:
            seen.append(rgb)
        if seen and rgb is seen[0]:
            raise ValueError("planted alignment fault")
        return align(rgb, detection, size)

    monkeypatch.setattr(mapper.pipeline.aligner, "align", failing)
    with caplog.at_level("WARNING", logger="lookalike.ingest.mapper"):
        together = mapper.process_tasks(tasks)
    assert together[0].status is IngestStatus.error and together[0].faces == []
    assert together[0].reason == "face pipeline failed: ValueError: planted alignment fault"
    _same(together[1:], alone[1:])
    logged = [r for r in caplog.records if "face pipeline failed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None and tasks[0].path in logged[0].getMessage()


def test_a_worker_maps_photos_without_sqlalchemy_or_openvinos_converter(faces):
    """A pool worker never touches the database, and lookalike never converts a model: a
    worker that imported SQLAlchemy (0.25 s) or OpenVINO's converter and its telemetry
    client (0.1-0.2 s) paid for them at each start (2026-12-06: 1.0 -> 0.5 s to its first
    photo). Checked in a fresh process, as a worker starts."""
    photo = sorted((faces / "lfw-dev" / "images" / "Aaron_Peirsol").glob("*.jpg"))[0]
    code = (
        "import hashlib, sys\n"
        "from lookalike.ingest.mapper import MapperSpec, init_worker, process\n"
        "from lookalike.ingest.corpus import Item\n"
        "from lookalike.ingest.report import Task\n"
        "from lookalike.faces.pipeline import Space\n"
        "spec = MapperSpec(Space('SFace', 'yunet', 'arcface'), 640, 10**8)\n"
        "init_worker(spec)\n"
        f"data = open({str(photo)!r}, 'rb').read()\n"
        "done = process(spec, [Task(Item('p.jpg', 'p'), hashlib.sha256(data).hexdigest(), len(data), data, False)])\n"
        "print(done[0].status.value, len(done[0].faces), done[0].faces[0][4] is not None)\n"
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'openvino.tools.ovc', 'openvino_telemetry') "
        "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["ok 1 True", "[]"], out.stdout


def test_a_face_the_mesh_fails_on_goes_without_points_alone(mapper, faces, alone, monkeypatch, caplog):
    """The mesh raises on one photo's crops: the call's joint run fails, the faces go
    through it again one by one, and only that photo's face is stored without points."""
    from lookalike.faces import landmarks

    run = landmarks.run_mesh
    doomed = []

    def failing(model, crops):
        if not doomed:
            doomed.append(crops[0][0])  # the first photo of the call (an LFW portrait)
        if any(rgb is doomed[0] for rgb, _ in crops):
            raise RuntimeError("planted mesh fault")
        return run(model, crops)

    monkeypatch.setattr(landmarks, "run_mesh", failing)
    with caplog.at_level("WARNING", logger="lookalike.ingest.mapper"):
        together = mapper.process_tasks(_tasks(faces))
    first = together[0]
    assert first.status is IngestStatus.ok and [f[4] for f in first.faces] == [None]
    unmeshed = replace(alone[0], faces=[f[:4] + (None,) for f in alone[0].faces])
    _same([first], [unmeshed])  # box, vector: stored all the same
    _same(together[1:], alone[1:])
    logged = [r for r in caplog.records if "landmarks failed" in r.getMessage()]
    assert len(logged) == 1 and first.path in logged[0].getMessage()


def test_an_analyzer_that_raises_is_said_once_at_warning_and_the_faces_are_kept(faces, analysis_weights, caplog):
    """An analyzer that raises is a bug: its traceback is logged at WARNING for the first
    photo and at DEBUG after (a corpus it fails on must not fill the log), and every photo
    keeps its faces with the failure in its reason (review 56, L5: all at DEBUG before)."""
    mapper = Mapper(Space("SFace", "yunet", "arcface"), DEFAULT_DETECT_MAX_SIDE, DEFAULT_MAX_PIXELS,
                    FacesMode.largest, analyzer="offline")

    def broken(rgb, boxes):
        raise RuntimeError("planted analyzer fault")

    mapper.analyzer.analyze = broken  # the fault, placed where the mapper meets the analyzer
    portraits = sorted((faces / "lfw-dev" / "images" / "Aaron_Peirsol").glob("*.jpg"))[:3]
    tasks = [Task(Item(str(p), p.parent.name), hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size,
                  p.read_bytes(), False) for p in portraits]
    with caplog.at_level("DEBUG", logger="lookalike.ingest.mapper"):
        done = mapper.process_tasks(tasks)
    assert [d.status for d in done] == [IngestStatus.ok] * 3 and all(d.faces for d in done)
    assert all("analysis failed: RuntimeError: planted analyzer fault" in (d.reason or "") for d in done)
    said = [r for r in caplog.records if "analysis failed" in r.getMessage()]
    assert [r.levelname for r in said] == ["WARNING", "DEBUG", "DEBUG"] and all(r.exc_info for r in said)
