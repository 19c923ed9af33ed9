"""The model registry: one table for every catalog name, one per-process cache, one weights
check, and lookalike's own YuNet (DeepFace's cached detector is left as DeepFace built it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import ModelMissing
from lookalike.models import catalog, registry, status

YUNET = catalog.YUNET.name


def test_the_registry_lists_every_model_the_catalog_has(weights_home):
    rows = {row.name: row for row in status.list_all()}
    table = registry.registry()
    assert set(table) == set(rows)
    for name, spec in table.items():
        row = rows[name]
        assert (spec.kind.value, spec.dim) == (row.kind, row.dim), name
        assert tuple(f.name for f in spec.files) == row.files, name
    assert table["SFace"].input_size == (112, 112) and table["SFace"].dim == 128
    # the shape predictor is the chip aligner's file: the aligners and Cydral's analyzer need it
    assert table["eyes"].needs == ("chip",) and table["age-gender-dlib"].needs == ("chip",)
    # files with a published sha256 carry it
    assert {f.name: f.sha256 for f in table["yunet"].files} == {YUNET: catalog.YUNET.sha256}
    # the dense landmark model: out of the mediapipe wheel, its licence shown
    assert table["face-mesh"].kind is registry.Kind.landmarks and table["face-mesh"].input_size == (192, 192)
    assert rows["face-mesh"].licence.startswith("Apache-2.0") and rows["face-mesh"].installed
    assert "mediapipe==0.10.14" in rows["face-mesh"].source
    # lookalike's own rows name only what the catalog knows (``skip``: no model, not listed)
    assert set(registry.OWN) <= set(table) | {"skip"} and registry.spec("skip").loader is None


def test_the_builders_tables_name_what_the_catalog_lists(weights_home):
    """The faces stage builds its own detectors and the aligners from tables, by name: each
    name there is one the catalog lists, of that kind, and every aligner has a class."""
    from lookalike.faces import align, detect

    assert set(align.ALIGNER_CLASSES) == set(catalog.ALIGNERS)
    assert {catalog.kind_of(name) for name in detect.OWN_DETECTORS} == {catalog.Kind.detector}
    assert {type(align.build(name)).__name__ for name in catalog.ALIGNERS} == \
        {cls.__name__ for cls in align.ALIGNER_CLASSES.values()}
    assert detect.build("skip", 640).name == "skip" and detect.build("yunet", 640).name == "yunet"


def test_one_model_per_name_and_threads_in_a_process(weights_home):
    from lookalike.faces.embed import Embedder

    one = registry.load("SFace", threads=1)
    assert registry.load("SFace", threads=1) is one
    assert registry.load("SFace", threads=2) is not one  # a session's threads are fixed when made
    # every pipeline of the process shares it: the embedder holds the cached model
    assert Embedder("SFace", threads=1).model is one
    assert registry.load("chip") is registry.load("chip")


@pytest.fixture
def own_home(tmp_path, monkeypatch) -> Path:
    """A weights home of this test's own with YuNet's file copied in (the shared one stays
    intact for the other tests)."""
    source = catalog.weights_dir() / YUNET
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path))
    monkeypatch.delenv("DEEPFACE_HOME", raising=False)  # restored after: activate sets it
    folder = catalog.weights_dir()
    assert folder.is_relative_to(tmp_path)
    folder.mkdir(parents=True)
    shutil.copy(source, folder / YUNET)
    return folder


def _later(path: Path) -> None:
    """A modification time 1 s on: a file rewritten within one kernel timestamp tick of its
    check keeps its mtime, which no real damage does."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_missing_or_damaged_file_is_one_clear_error(own_home, weights_home):
    from lookalike.faces import detect

    registry.require("yunet")  # intact: passes, and the verdict is remembered beside it
    stamps = own_home / ".lookalike-sha256-ok"
    assert (stamps / YUNET).is_file()

    data = bytearray((own_home / YUNET).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    (own_home / YUNET).write_bytes(bytes(data))
    _later(own_home / YUNET)
    with pytest.raises(ModelMissing) as damaged:
        detect.build("yunet", 640)
    text = str(damaged.value)
    assert f"model 'yunet' has a damaged {YUNET} under {own_home}" in text
    assert "sha256" in text and text.endswith("run: lookalike models install yunet")
    assert damaged.value.files == [YUNET] and damaged.value.damaged
    assert not [row for row in status.list_all() if row.name == "yunet"][0].installed

    (own_home / YUNET).write_bytes(bytes(data[:1000]))  # a truncated download
    with pytest.raises(ModelMissing, match=r"1000 bytes instead of the release's .*install yunet"):
        registry.require("yunet")

    (own_home / YUNET).unlink()
    with pytest.raises(ModelMissing) as missing:
        registry.load("chip")  # another model, its file never copied here
    assert "shape_predictor_5_face_landmarks.dat" in str(missing.value)
    assert str(missing.value).endswith("run: lookalike models install chip")
    with pytest.raises(ModelMissing, match=f"model 'yunet' is not installed .missing {YUNET} "):
        detect.build("yunet", 640)


def test_deepfaces_cached_yunet_is_left_as_deepface_built_it(faces, weights_home):
    """lookalike's YuNet keeps faces from 0.7 and DeepFace's from 0.9. Once they shared
    DeepFace's cached object, so building ours lowered DeepFace's threshold, and DeepFace's
    ``detect_faces`` (which sets its own) raised ours back. Each now has its own."""
    from deepface.modules import modeling

    from lookalike.faces import detect
    from lookalike.faces.images import decode_file

    # a real face YuNet scores 0.89: kept by ours, not by DeepFace's default
    rgb = decode_file(str(faces / "bad-inputs/collected/grayscale_small_face__skimage_camera.png"),
                      10**8).rgb
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    theirs = modeling.build_model(task="face_detector", model_name="yunet")
    cv_object = theirs.model

    def deepface_raw() -> object:
        cv_object.setInputSize((bgr.shape[1], bgr.shape[0]))
        return cv_object.detect(bgr)[1]

    assert deepface_raw() is None
    ours = detect.build("yunet", 1280)
    assert [round(d.confidence, 2) for d in ours.detect(rgb)] == [0.89]
    assert modeling.build_model(task="face_detector", model_name="yunet") is theirs
    assert theirs.model is cv_object and deepface_raw() is None  # its threshold is still 0.9
    assert theirs.detect_faces(bgr) == []  # DeepFace's own path sets its 0.9 ...
    assert [round(d.confidence, 2) for d in ours.detect(rgb)] == [0.89]  # ... and ours keeps 0.7
