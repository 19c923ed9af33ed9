"""4096-d models (VGG-Face) end to end, on both backends: exact search while small, a
stored PCA reduction, searches re-ranked on the full vectors, new faces reduced as they
come.

VGG-Face's real weights download from GitHub, unreachable here: the model is DeepFace's
real architecture with generated weights (tests/vgg_random.py), loaded by DeepFace's own
onnx code from where DeepFace looks. This proves the plumbing, not recognition: the
assertions are about dimensions, the stored reduction and exact re-ranking, never about
who looks like whom."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def vgg_home(weights_home, tmp_path_factory) -> Path:
    """A weights home of its own (the shared one keeps VGG-Face missing, as other tests
    expect): the default detector's file (YuNet) and Dlib's copied, VGG-Face's graph generated."""
    import vgg_random

    from lookalike.models import catalog as weights

    home = tmp_path_factory.mktemp("vgg-home")
    folder = home / ".deepface" / "weights"
    folder.mkdir(parents=True)
    for item in [*weights.PACKAGED["Dlib"], *weights.PACKAGED["dlib"], *weights.WHEELED["yunet"]]:
        shutil.copy(weights.weights_dir() / item.name, folder / item.name)
    _generated_vgg(folder / vgg_random.FILE_NAME)
    return home


def _generated_vgg(path: Path) -> None:
    """VGG-Face's generated graph at ``path``: from the cross-session weights cache when one
    made by the same generator, converter and DeepFace layers is there (making it is ~12 s
    of CPU: 138 M random weights and a 540 MB ONNX file), else made and put there."""
    import hashlib
    import importlib.util

    import onnx
    import vgg_random
    from _weights import copy_atomic, weights_cache

    from lookalike.models import keras_onnx

    deepface = Path(importlib.util.find_spec("deepface").submodule_search_locations[0])
    sources = [Path(vgg_random.__file__), Path(keras_onnx.__file__),
               deepface / "models" / "facial_recognition" / "tf" / "VGGFace.py"]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)
                         + f"{np.__version__} {onnx.__version__}".encode()).hexdigest()[:16]
    cache = weights_cache()
    cached = cache / f"vgg-face-random-{key}.onnx" if cache is not None else None
    if cached is not None and cached.is_file():
        shutil.copyfile(cached, path)
        return
    vgg_random.write(path.parent)
    if cached is None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("vgg-face-random-*.onnx"):  # made by an older generator
        old.unlink(missing_ok=True)
    copy_atomic(path, cached)


@pytest.fixture(scope="module", autouse=True)
def vgg_vectors_once():
    """Each chip through VGG-Face once per process: the stores this module's test runs on
    get the vectors the first one computed, the same bytes the model would make again (its
    weights and graph are fixed), so each store's assertions hold as before and only the
    repeated 4096-d forward passes go. SFace and the ingest worker's process are untouched
    (the worker still runs VGG-Face itself). Module-scoped, hence one xdist group."""
    import hashlib

    from lookalike.faces.embed import Embedder

    real = Embedder.embed
    seen: dict[bytes, np.ndarray] = {}

    def embed(self, chips):
        if self.name != "VGG-Face" or len(chips) == 0:
            return real(self, chips)
        keys = [hashlib.sha256(np.ascontiguousarray(c).tobytes() + repr(c.shape).encode()).digest() for c in chips]
        todo = [i for i, key in enumerate(keys) if key not in seen]
        if todo:
            for i, vector in zip(todo, real(self, [chips[i] for i in todo]), strict=True):
                seen[keys[i]] = vector
        return np.stack([seen[key] for key in keys]).astype(np.float32, copy=True)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Embedder, "embed", embed)
        yield seen


def _cli(home: Path, *args: str) -> dict:
    """The CLI in this process (the VGG model then loads once, not once per command), with
    the random-weights home; its worker processes inherit that home."""
    run = cli(*args, "--json", env={"LOOKALIKE_HOME": str(home)})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _full_vectors(db) -> dict[int, np.ndarray]:
    rows = db.sql("select id, embedding from faces")
    return {fid: np.frombuffer(blob, dtype="<f4") for fid, blob in rows}


def _assert_exact(db, result: dict, k: int) -> None:
    """The answer is the exact top-k of the full 4096-d vectors, scored on them."""
    vectors = _full_vectors(db)
    matches = result["faces"][0]["matches"]
    query = vectors[matches[0]["face_id"]]  # the query photo is in the library: itself first
    assert matches[0]["similarity"] > 0.999
    ids = np.array(sorted(vectors))
    exact = np.stack([vectors[i] for i in ids]) @ query
    order = ids[np.argsort(-exact, kind="stable")][:k]
    assert [m["face_id"] for m in matches] == list(order)
    for m in matches:
        assert abs(m["similarity"] - float(vectors[m["face_id"]] @ query)) < 1e-3


def test_vgg_face_4096d_reduced_and_reranked(vgg_home, faces, tmp_path, backend, monkeypatch):
    bbt = faces / "celeb" / "faceapi_bbt"
    first = tmp_path / "first"
    later = tmp_path / "later"
    for person in sorted(bbt.iterdir())[:5]:  # 20 faces to train a 16-d PCA on, 5 newcomers
        for i, photo in enumerate(sorted(person.iterdir())):
            target = (later if i == 4 else first) / person.name
            target.mkdir(parents=True, exist_ok=True)
            (target / photo.name).symlink_to(photo)
    args = backend.args()
    report = _cli(vgg_home, "ingest", str(first), *args, "--model", "VGG-Face")  # in this process
    assert report["statuses"]["ok"] == 20

    info = _cli(vgg_home, "index", "info", *args)
    assert info["dim"] == 4096 and info["reduction"]["kind"] is None
    assert "searched exactly in 4096 dimensions" in info["reduction"]["plan"]
    query = str(next((first / "amy").iterdir()))
    _assert_exact(backend, _cli(vgg_home, "search", query, *args, "-k", "5"), 5)

    # a long-running reader (a server, the web app) that searched before the PCA was trained
    # elsewhere follows it: on pgvector, whose column the training reduced in its own
    # transaction, it had kept its full-width query and failed until restarted
    monkeypatch.setenv("LOOKALIKE_HOME", str(vgg_home))
    reader = backend.open()
    reader.search(query, k=5)

    info = _cli(vgg_home, "index", "rebuild", *args, "--reduce", "16")
    red = info["reduction"]
    assert (red["kind"], red["dim_in"], red["dim_out"], red["trained_on"]) == ("pca", 4096, 16, 20)
    assert info["dim"] == 16 and info["ntotal"] == 20
    if backend.name == "postgres":  # the searchable column holds the reduced vectors
        assert backend.sql("select distinct vector_dims(vec) from faces") == [(16,)]
        assert backend.sql("select count(*) from pg_indexes where indexname like 'faces_vec_hnsw_%_r16'") == [(1,)]
    elif backend.vectors:  # Milvus: the collection was made again at the reduced width
        assert "Milvus collection" in info["file"] and not list(backend.index_dir.glob("*.json"))
    else:
        manifest = json.loads(next(backend.index_dir.glob("*.json")).read_text())
        assert manifest["dim"] == 16 and manifest["reduction"] == red["uid"]
    assert backend.sql("select dim_in, dim_out from reductions") == [(4096, 16)]
    _assert_exact(backend, _cli(vgg_home, "search", query, *args, "-k", "5"), 5)
    _assert_exact(backend, reader.search(query, k=5).to_dict(), 5)
    # and a PCA of the same width trained again elsewhere: no error tells the reader, whose
    # queries went through the old one; the PCA its answers were read with does, once the
    # vectors searched are reduced with it (pgvector: at once; a Milvus collection records
    # its PCA; a FAISS file's manifest does)
    again = _cli(vgg_home, "index", "rebuild", *args, "--reduce", "16")["reduction"]
    assert again["uid"] != red["uid"]
    _assert_exact(backend, reader.search(query, k=5).to_dict(), 5)
    assert reader.maintenance.info()["reduction"]["uid"] == again["uid"]
    # between a PCA's commit and the index made with it (a Milvus collection, a FAISS file),
    # the reader still answers, and after it follows
    with backend.open() as other:
        with other.view.vectors.writers():
            other.maintenance.train_reduction(8)
        _assert_exact(backend, reader.search(query, k=5).to_dict(), 5)
        other.maintenance.rebuild()
    with reader:
        _assert_exact(backend, reader.search(query, k=5).to_dict(), 5)
        assert reader.maintenance.info()["reduction"]["dim_out"] == 8
    red = _cli(vgg_home, "index", "info", *args)["reduction"]

    # new faces go through the stored reduction on the way in; the PCA is not retrained
    # a worker loads VGG-Face too: SQLite's local pool, PostgreSQL's queue worker (it writes
    # itself); Milvus Lite's store maps in the same local pool as SQLite's, so it is spared
    # the worker's second VGG-Face load
    workers = ["--workers", "1"] if backend.name != "milvus" else []
    more = _cli(vgg_home, "ingest", str(later), *args, *workers)
    assert more["statuses"]["ok"] == 5
    info = _cli(vgg_home, "index", "info", *args)
    assert info["ntotal"] == 25 and info["reduction"]["uid"] == red["uid"]
    if backend.name == "postgres":
        assert backend.sql("select distinct vector_dims(vec) from faces") == [(8,)]
    newcomer = str(next((later / "penny").iterdir()))
    _assert_exact(backend, _cli(vgg_home, "search", newcomer, *args, "-k", "8"), 8)
