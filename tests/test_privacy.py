"""Privacy and deletion, checked by scanning the bytes: a query photo leaves nothing on
disk, in the database or in logs; a removed person leaves no row, vector or name in any
file of the library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import lookalike

pytestmark = pytest.mark.e2e


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike.cli", *args], capture_output=True, text=True,
                          env=os.environ | (env or {}), cwd=cwd, timeout=600)


def _files(*folders: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file()}


def _holding(files: dict[Path, bytes], needles: list[bytes]) -> list[str]:
    return [f"{path.name} holds {needle[:24]!r}" for path, data in files.items() for needle in needles
            if needle in data]



def _visitor_and_library(faces: Path, small_golden, tmp_path: Path) -> tuple[Path, str, Path]:
    """A copy of the small library, and a visitor's photo (Obama, not in it) carrying a
    unique marker in its PNG text, so its bytes and its name can be searched for later."""
    from _libraries import copy_library
    from PIL import Image, PngImagePlugin

    db = copy_library(small_golden[0], tmp_path / "lib" / "lib.db")
    marker = f"visitor-{uuid.uuid4().hex}"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    visitor = tmp_path / "in" / f"{marker}.png"
    visitor.parent.mkdir()
    Image.open(faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg").save(visitor, pnginfo=info)
    return db, marker, visitor

def test_a_query_photo_never_reaches_disk_database_or_logs(faces, small_golden, tmp_path):
    db, marker, visitor = _visitor_and_library(faces, small_golden, tmp_path)
    with lookalike.open(db) as lib:  # the vector the query makes, to look for its bytes too
        from lookalike.faces.images import decode_file

        vector = lib.view.models.pipeline.faces(decode_file(str(visitor), 10**8).rgb)[0].embedding
    scratch, cwd = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    before = _files(db.parent)
    run = _cli("search", str(visitor), "--db", str(db), "--json", env={"TMPDIR": str(scratch)}, cwd=cwd)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["faces"][0]["matches"][0]["person"] == "barack_obama"
    after = _files(db.parent, scratch, cwd)
    needles = [marker.encode(), np.asarray(vector, "<f4").tobytes()[:32], visitor.read_bytes()[-64:]]
    assert _holding(after, needles) == []
    assert {p for p in after if p.parent != db.parent or p.name.endswith((".db", ".faiss", ".json"))} \
        <= set(before), "a new file appeared"
    assert marker not in run.stderr  # nor in what it logged


def test_a_visitors_morph_and_transform_reach_only_the_file_asked_for(faces, small_golden, tmp_path):
    """``lookalike morph`` / ``transform`` of a visitor's photo write the --out file and
    nothing else: no new file, and nothing of the photo, in the library's folder, the
    temporary folder or the working folder (issue 25 §3)."""
    db, marker, visitor = _visitor_and_library(faces, small_golden, tmp_path)
    scratch, cwd, out = tmp_path / "tmp", tmp_path / "cwd", tmp_path / "out"
    for folder in (scratch, cwd, out):
        folder.mkdir()
    before = _files(db.parent)
    for args in (("morph", str(visitor), "person:joe_biden", "--frames", "3", "--out", str(out / "m.gif")),
                 ("transform", str(visitor), "--toward", "person:joe_biden", "--away", "person:barack_obama",
                  "--out", str(out / "t.png"))):
        run = _cli(*args, "--db", str(db), env={"TMPDIR": str(scratch)}, cwd=cwd)
        assert run.returncode == 0, run.stderr
        assert marker not in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["m.gif", "t.png"]
    after = _files(db.parent, scratch, cwd)
    assert _holding(after, [marker.encode(), visitor.read_bytes()[-64:]]) == []
    assert {p for p in after if p.parent != db.parent or p.name.endswith((".db", ".faiss", ".json"))} \
        <= set(before), "a new file appeared"


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_remove_person_leaves_no_row_vector_or_name_in_any_file(faces, tmp_path, store):
    """FAISS files, or Milvus Lite's folder (whose deletes are tombstones until the
    collection is rewritten) beside SQLite: every file is scanned."""
    db, index_dir = tmp_path / "lib.db", tmp_path / "indexes"
    vectors = f"milvus-lite:{tmp_path / 'vectors.db'}" if store == "milvus" else None
    args = ["--db", str(db), "--index-dir", str(index_dir)] + (["--vectors", vectors] if vectors else [])
    assert _cli("ingest", str(faces / "celeb" / "faceapi_bbt"), *args, "-q").returncode == 0
    # a graph index cannot delete: the removed faces' vectors must still leave the file
    rebuilt = _cli("index", "rebuild", *args, "--key", "HNSW" if vectors else "HNSW32")
    assert rebuilt.returncode == 0, rebuilt.stderr
    with lookalike.open(db, index_dir=index_dir, vectors=vectors) as lib:
        with lib.session() as session:
            from sqlalchemy import text

            blobs = [r[0] for r in session.execute(text(
                "select f.embedding from faces f join people p on p.id = f.person_id where p.name = 'howard'"))]
            # the dense landmarks stored at ingest are the face's shape: they go too
            shapes = [r[0] for r in session.execute(text(
                "select l.points from face_landmarks l join faces f on f.id = l.face_id "
                "join people p on p.id = f.person_id where p.name = 'howard'"))]
        # a copy of his photo uploaded under someone else: refused as a duplicate whose reason
        # names him and his file, and kept in the other's upload folder (kiosk user test, F2)
        from lookalike.store.profiles import Profile

        photo = (faces / "celeb/faceapi_bbt/howard/howard1.png").read_bytes()
        lib.people.save_profile("zoe", Profile(consent_display=True))
        own = (faces / "celeb/face_recognition/barack_obama/obama.jpg").read_bytes()
        report, _ = lib.add_photos("zoe", [("mixup.png", photo), ("own.png", own)])
        assert sorted(o.status for o in report.outcomes) == ["duplicate", "ok"]
    assert len(blobs) == 5 and len(shapes) == 5
    needles = [b"howard", photo[-64:]] + [blob[:32] for blob in blobs] + [shape[:32] for shape in shapes]
    assert _holding(_files(tmp_path), needles)  # the scan can see them while they are there
    gone = _cli("remove", "--person", "howard", *args, "--json")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["faces"] == 5
    assert _holding(_files(tmp_path), needles) == []
    found = _cli("search", str(faces / "celeb/faceapi_bbt/howard/howard1.png"), *args, "-k", "40", "--json")
    answer = json.loads(found.stdout)["faces"]
    assert found.returncode == 0 and len(answer[0]["matches"]) == 36  # the 40 faces + zoe's but howard's 5
    assert all(m["person"] != "howard" and "howard" not in m["photo"] for f in answer for m in f["matches"])
    assert _cli("doctor", *args).returncode == 0
    assert [p.name for p in (tmp_path / "lib.uploads" / "zoe").iterdir()] != []  # zoe's own photo stays
