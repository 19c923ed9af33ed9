"""A library whose vectors move between stores (scale user test, 2026-12-07): a SQLite
library's FAISS file left behind when its vectors moved to Milvus Lite holds every face it
had, so a removal deletes it; the file of another library in the same folder stays."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import cli

pytestmark = pytest.mark.e2e


def test_a_removal_after_a_move_to_milvus_deletes_the_faiss_file_left_behind(faces, tmp_path, caplog):
    corpus = tmp_path / "corpus"
    shutil.copytree(faces / "celeb" / "faceapi_bbt", corpus)
    db = ["--db", str(tmp_path / "lib.db")]
    assert cli("ingest", str(corpus), *db, "-q").returncode == 0
    stale = tmp_path / "lib.indexes" / "SFace__yunet__arcface.faiss"
    assert stale.is_file()
    milvus = [*db, "--vectors", f"milvus-lite:{tmp_path / 'vectors'}"]
    assert json.loads(cli("stats", *milvus, "--json").stdout)["faces"] == 40  # the collection made on open
    manifest = stale.with_suffix(".json")
    ours = manifest.read_text()
    manifest.write_text(ours.replace('"space_uid": "', '"space_uid": "x'))  # as another library's file
    assert cli("remove", "--person", "raj", *milvus).returncode == 0
    assert stale.is_file()  # never another library's, in a folder they share
    manifest.write_text(ours)
    gone = cli("remove", "--person", "amy", *milvus, "--json")
    assert gone.returncode == 0 and json.loads(gone.stdout)["faces"] == 5, gone.stderr
    assert not stale.exists() and not manifest.exists()
    assert "held the removed faces" in caplog.text
    back = cli("search", str(corpus / "howard" / "howard1.png"), *db, "-k", "40", "--json")  # FAISS again: rebuilt
    assert back.returncode == 0 and {m["person"] for m in json.loads(back.stdout)["faces"][0]["matches"]} \
        == {p.name for p in corpus.iterdir()} - {"amy", "raj"}


def test_every_spaces_faiss_file_goes_with_a_removal_or_its_space(faces, tmp_path):
    """A library of two spaces (reembed) moved to Milvus: a removal deleted the current space's
    old FAISS file only, and remove --space kept the dropped space's (review of 2026-12-07, M6)."""
    corpus = tmp_path / "corpus"
    shutil.copytree(faces / "celeb" / "face_recognition", corpus)
    db = ["--db", str(tmp_path / "lib.db")]
    dlib = ["--model", "Dlib", "--detector", "yunet", "--aligner", "arcface"]
    assert cli("ingest", str(corpus), *db, *dlib, "-q").returncode == 0
    assert cli("reembed", *db, "--json").returncode == 0  # to the default space: two FAISS files
    files = {key: tmp_path / "lib.indexes" / f"{key}.faiss"
             for key in ("Dlib__yunet__arcface", "SFace__yunet__arcface")}
    assert all(f.is_file() for f in files.values())
    milvus = [*db, "--vectors", f"milvus-lite:{tmp_path / 'vectors'}"]
    gone = cli("remove", "--person", "joe_biden", *milvus)  # each space's collection made on the way
    assert gone.returncode == 0, gone.stderr
    assert not any(f.exists() for f in files.values())  # both held his faces
