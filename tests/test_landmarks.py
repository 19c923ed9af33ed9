"""Dense landmarks (MediaPipe's face mesh) on real photos: where the points fall, how stable
they are, that ingest stores them, that an old library is migrated and backfilled
(resumably), and that a missing model or a bad input is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _libraries import copy_library, lfw_people
from conftest import cli

import lookalike
from lookalike.errors import ModelMissing
from lookalike.faces import detect, images, landmarks
from lookalike.models import registry
from lookalike.store import landmark_rows


@pytest.fixture(scope="module")
def yunet():
    return detect.build("yunet", 1280)


def _largest(detector, path: Path):
    rgb = images.decode_file(str(path), 100_000_000).rgb
    found = detector.detect(rgb)
    assert found, path
    return rgb, found[0]


def _eye_distance(face) -> float:
    (rx, ry), (lx, ly) = face.landmarks[:2]
    return float(np.hypot(lx - rx, ly - ry))


def test_points_fall_on_the_face_and_the_eyes_agree_with_yunet(faces, yunet):
    photos = sorted((faces / "celeb").rglob("*.jpg"))[::6] + \
        sorted((faces / "lfw-dev" / "images").rglob("*.jpg"))[::300]
    assert len(photos) >= 25
    for path in photos:
        rgb, face = _largest(yunet, path)
        points = landmarks.landmarks(rgb, face, threads=1)
        assert points.shape == (landmarks.POINTS, 2) and points.dtype == np.float32
        x, y, w, h = face.box
        # the mesh covers the face: every point within the box grown by a fifth (the
        # forehead's top row may rise above YuNet's box), the nose tip inside the box itself
        margin = 0.2 * max(w, h)
        inside = ((points[:, 0] >= x - margin) & (points[:, 0] <= x + w + margin) &
                  (points[:, 1] >= y - margin) & (points[:, 1] <= y + h + margin))
        assert inside.all(), (path, int((~inside).sum()))
        nx, ny = points[landmarks.NOSE_TIP]
        assert x <= nx <= x + w and y <= ny <= y + h, path
        # each eye's centre (between its corners) on YuNet's eye point, within a quarter of
        # the eye distance; and the viewer's-left eye is YuNet's first point, not swapped
        iod = _eye_distance(face)
        for corners, yunet_eye in ((landmarks.RIGHT_EYE, face.landmarks[0]), (landmarks.LEFT_EYE, face.landmarks[1])):
            centre = points[list(corners)].mean(axis=0)
            assert np.hypot(*(centre - np.array(yunet_eye))) < 0.25 * iod, (path, corners)


def _aligned_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance after the least-squares similarity from ``a`` onto ``b``, over
    ``b``'s eye distance (outer eye corners)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    ma, mb = a.mean(0), b.mean(0)
    u, sig, vt = np.linalg.svd((b - mb).T @ (a - ma))
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / ((a - ma) ** 2).sum()
    moved = scale * (a - ma) @ rot.T + mb
    iod = np.linalg.norm(b[landmarks.LEFT_EYE[0]] - b[landmarks.RIGHT_EYE[0]])
    return float(np.linalg.norm(moved - b, axis=1).mean() / iod)


def test_a_persons_shapes_agree_better_than_different_peoples(faces, yunet):
    """The shape (after a similarity alignment) of one person's photos is closer to that
    person's other photos than to other people's: the points follow the face's own
    geometry, not the crop."""
    people = lfw_people(faces, 12, min_photos=5)
    shapes = {}
    for name, photos in people.items():
        shapes[name] = [landmarks.landmarks(*_largest(yunet, p), threads=1) for p in photos[:5]]
    names = list(shapes)
    within, between = [], []
    for i, name in enumerate(names):
        own = shapes[name]
        within += [_aligned_error(own[a], own[b]) for a in range(len(own)) for b in range(a + 1, len(own))]
        other = shapes[names[(i + 1) % len(names)]]
        between += [_aligned_error(a, b) for a in own for b in other]
    assert np.mean(within) < np.mean(between), (np.mean(within), np.mean(between))
    # and a photo's own shape, fitted again from a box moved by a tenth, barely moves
    rgb, face = _largest(yunet, people[names[0]][0])
    x, y, w, h = face.box
    from dataclasses import replace

    moved = replace(face, box=(x + w // 10, y - h // 10, w, h))
    again = _aligned_error(landmarks.landmarks(rgb, moved, threads=1), landmarks.landmarks(rgb, face, threads=1))
    assert again < 0.5 * np.mean(within)


def test_every_face_of_the_bad_inputs_gets_finite_points(faces, yunet):
    """Hostile photos that decode (tiny faces, rotated, grayscale, huge, many faces) give
    points for every face YuNet finds; those that do not decode stay the decoder's clear
    error, naming the file."""
    from lookalike.errors import BadImage

    seen = refused = 0
    for path in sorted((faces / "bad-inputs").rglob("*")):
        if not path.is_file() or path.suffix in (".tsv", ".md"):
            continue
        try:
            rgb = images.decode_file(str(path), 100_000_000).rgb
        except BadImage as err:
            assert path.name in str(err)
            refused += 1
            continue
        for face in yunet.detect(rgb):
            points = landmarks.landmarks(rgb, face, threads=1)
            assert points.shape == (landmarks.POINTS, 2) and np.isfinite(points).all(), path
            seen += 1
    assert seen >= 40 and refused >= 3


def test_a_missing_model_says_how_to_install_it(faces, tmp_path, monkeypatch, yunet):
    rgb, face = _largest(yunet, sorted((faces / "celeb").rglob("*.jpg"))[0])
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "empty-home"))
    registry.forget()
    try:
        with pytest.raises(ModelMissing, match="lookalike models install face-mesh"):
            landmarks.landmarks(rgb, face)
        with pytest.raises(ModelMissing, match="lookalike models install face-mesh"):
            landmarks.require()
    finally:
        monkeypatch.undo()
        registry.forget()


def _ingested(small_golden, tmp_path) -> Path:
    golden, _ = small_golden
    return copy_library(golden, tmp_path / "lib" / "lib.db")


def _stored(db: Path) -> tuple[int, dict[int, np.ndarray]]:
    """(the library's face count, the stored landmarks by face id)."""
    with lookalike.open(db) as lib:
        with lib.session() as session:
            from lookalike.store import photo_rows

            ids = photo_rows.face_ids(session, lib.view.row.space_id)
            assert len(ids) > 0
            return len(ids), landmark_rows.landmarks_of(session, ids.tolist(), landmarks.MODEL)


def test_ingest_stores_every_faces_landmarks(small_golden, tmp_path, yunet):
    db = _ingested(small_golden, tmp_path)
    count, stored = _stored(db)
    assert len(stored) == count  # every face has its points
    with lookalike.open(db) as lib:
        with lib.session() as session:
            from lookalike.store import photo_rows

            rows = photo_rows.face_rows(session, list(stored))
    # the stored points are the model's points for that face, to float16's precision
    for fid, row in list(rows.items())[:4]:
        rgb, face = _largest(yunet, Path(row.photo))
        fresh = landmarks.landmarks(rgb, face)
        assert np.abs(stored[fid] - fresh).max() < 0.005 * max(row.bbox[2:]) + 0.5


def _make_old(db: Path) -> None:
    """``db`` as a library from before landmarks were stored: revision 0009, no table (the
    later migrations' downgrades; dropping the table alone left the later columns in place)."""
    from lookalike.store import db as store

    engine = store.make_engine(f"sqlite:///{db}")
    store.move_to(engine, "0009")
    engine.dispose()


def test_an_old_library_is_migrated_and_backfilled_resumably(small_golden, tmp_path):
    db = _ingested(small_golden, tmp_path)
    count, before = _stored(db)
    assert len(before) == count
    _make_old(db)
    with lookalike.open(db) as lib:  # opening migrates it
        with lib.session() as session:
            assert landmark_rows.count_missing(session, lib.view.row.space_id, landmarks.MODEL) == (count, count)
    first = cli("landmarks", "backfill", "--db", str(db), "--limit", "3", "--batch", "2", "--json")
    assert first.returncode == 0, first.stderr
    done = json.loads(first.stdout)
    assert done["filled"] == 3 and done["remaining"] == count - 3
    # stopped part way: the next run does only the rest
    second = cli("landmarks", "backfill", "--db", str(db), "--json")
    assert second.returncode == 0, second.stderr
    rest = json.loads(second.stdout)
    assert rest["missing"] == count - 3 and rest["filled"] == count - 3 and rest["remaining"] == 0
    _, after = _stored(db)
    assert set(after) == set(before)
    for fid in before:  # the same points as ingest stored
        assert np.abs(after[fid] - before[fid]).max() < 1.0
    again = cli("landmarks", "backfill", "--db", str(db), "--json")
    assert json.loads(again.stdout)["filled"] == 0


def test_backfill_without_the_model_is_one_clear_error(small_golden, tmp_path, monkeypatch):
    db = _ingested(small_golden, tmp_path)
    _make_old(db)
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "empty-home"))
    registry.forget()
    try:
        result = cli("landmarks", "backfill", "--db", str(db))
    finally:
        monkeypatch.undo()
        registry.forget()
    assert result.returncode != 0
    assert "lookalike models install face-mesh" in result.stderr and "Traceback" not in result.stderr


def test_face_mesh_comes_out_of_the_mediapipe_wheel_checked(tmp_path):
    """Provisioned into an empty home as a user's first install: the one file out of the
    wheel, its sha256 the catalog's, the licence shown, mediapipe itself never installed."""
    import subprocess
    import sys

    from lookalike.models import catalog

    env = {"LOOKALIKE_HOME": str(tmp_path / "home")}
    installed = cli("models", "install", "face-mesh", env=env)
    assert installed.returncode == 0, installed.stderr
    folder = tmp_path / "home" / ".deepface" / "weights"
    assert catalog.sha256_of(folder / catalog.FACE_MESH.name) == catalog.FACE_MESH.sha256
    listing = cli("models", "list", "--json", env=env)
    rows = {r["name"]: r for r in json.loads(listing.stdout)["models"]}
    assert rows["face-mesh"]["installed"] and rows["face-mesh"]["kind"] == "landmarks"
    assert rows["face-mesh"]["licence"].startswith("Apache-2.0")
    assert subprocess.run([sys.executable, "-c", "import mediapipe"], capture_output=True).returncode != 0


def test_ingest_without_the_model_stores_the_faces_and_says_how_to_add_landmarks(faces, tmp_path):
    """A weights home without face-mesh: the photos are ingested all the same (search needs
    no landmarks), one warning names the install and the backfill, and the backfill then
    fills them once the model is there."""
    from lookalike.models import catalog

    full = catalog.weights_dir()
    bare = tmp_path / "home" / ".deepface" / "weights"
    bare.mkdir(parents=True)
    for item in full.iterdir():
        if item.is_file() and item.name != catalog.FACE_MESH.name:
            (bare / item.name).symlink_to(item)
    corpus = tmp_path / "corpus" / "someone"
    corpus.mkdir(parents=True)
    for photo in sorted((faces / "lfw-dev" / "images").rglob("*.jpg"))[:3]:
        (corpus / photo.name).symlink_to(photo)
    db = tmp_path / "lib.db"
    registry.forget()
    try:
        run = cli("ingest", str(corpus.parent), "--db", str(db), "--json",
                  env={"LOOKALIKE_HOME": str(tmp_path / "home")})
    finally:
        registry.forget()
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["faces"] == 3
    assert "lookalike models install face-mesh" in run.stderr and "landmarks backfill" in run.stderr
    count, stored = _stored(db)
    assert count == 3 and stored == {}
    filled = cli("landmarks", "backfill", "--db", str(db), "--json")
    assert filled.returncode == 0, filled.stderr
    assert json.loads(filled.stdout)["filled"] == 3 and len(_stored(db)[1]) == 3


def test_the_mesh_in_openvino_gives_litert_points(faces, yunet):
    """OpenVINO runs the mesh's TF Lite file (LiteRT only for the onnxruntime engine): at f32
    the very points LiteRT gives, at bf16 within a pixel of them in the 192-px crop; and the
    points of faces run together are each face's own (a group photo's six faces together,
    then each alone)."""
    from lookalike.config import Runtime
    from lookalike.models.litert import TfliteModel
    from lookalike.models.runtime import OpenVinoGraph

    rgb, _ = _largest(yunet, faces / "bad-inputs" / "collected" / "group_many_faces__insightface_t1.jpg")
    found = yunet.detect(rgb)
    assert len(found) >= 6
    rois = [(rgb, landmarks.box_roi(face)) for face in found]
    path = registry.path(landmarks.MODEL)
    reference = landmarks.run_mesh(TfliteModel(path, 1), rois)
    side = np.array([roi[1] / landmarks.INPUT for _, roi in rois])[:, None]  # photo px per crop px
    for f32, tolerance in ((True, 1e-3), (False, 1.0)):
        graph = OpenVinoGraph(path, 1, f32, any_batch=True, runs_of=8)
        assert graph.runtime is (Runtime.openvino_f32 if f32 else Runtime.openvino)
        together = landmarks.run_mesh(graph, rois)
        alone = [landmarks.run_mesh(graph, [roi])[0] for roi in rois]
        for got in (together, alone):
            apart = np.stack([np.linalg.norm(g - r, axis=1) for g, r in zip(got, reference)]) / side
            assert apart.max() < tolerance, (f32, apart.max())
        # each face's own points (bit for bit on the Xeon this was measured on; a CPU whose
        # kernels differ by batch gets a hair's width)
        assert max(float(np.abs(t - a).max()) for t, a in zip(together, alone)) < 1e-3, f32
