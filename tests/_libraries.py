"""Libraries ingested once a run from the real photos (golden copies that tests never change:
each takes its own copy) and the corpora they are made of."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from conftest import ROOT, cli


def lfw_people(faces: Path, n_people: int, min_photos: int = 2) -> dict[str, list[Path]]:
    """The first ``n_people`` LFW identities with at least ``min_photos`` photos."""
    out: dict[str, list[Path]] = {}
    for folder in sorted((faces / "lfw-dev" / "images").iterdir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= min_photos:
            out[folder.name] = photos
        if len(out) == n_people:
            break
    return out


def link_people(folder: Path, people: Iterable[tuple[str, list[Path]]], per_person: int) -> int:
    """A folder-per-person corpus under ``folder``: symlinks to each person's first
    ``per_person`` photos (nothing copied). Returns how many photos it holds."""
    n = 0
    for name, photos in people:
        (folder / name).mkdir(parents=True)
        for photo in photos[:per_person]:
            (folder / name / photo.name).symlink_to(photo)
            n += 1
    return n


@pytest.fixture(scope="session")
def lfw_corpus(faces: Path, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A folder-per-person corpus of 40 LFW people with one photo per person held back
    (returned separately) for search tests. Symlinks, so nothing is copied."""
    people = lfw_people(faces, 40)

    def build(root: Path) -> None:
        for name, photos in people.items():
            (root / name).mkdir()
            for photo in photos[:-1]:
                (root / name / photo.name).symlink_to(photo)

    return built_once(tmp_path_factory, "lfw-corpus", build), {name: photos[-1] for name, photos in people.items()}


@pytest.fixture(scope="session")
def library(faces: Path, lfw_corpus, tmp_path_factory):
    """celeb + the LFW slice, ingested once with the real default models (SFace + YuNet)."""
    import lookalike

    def build(folder: Path) -> None:
        with lookalike.open(folder / "lib.db") as lib:
            lib.ingest([str(faces / "celeb"), str(lfw_corpus[0])])

    golden = built_once(tmp_path_factory, "golden-library", build)
    lib = lookalike.open(copy_library(golden / "lib.db", tmp_path_factory.mktemp("lib") / "lib.db"))
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def small_golden(faces: Path, tmp_path_factory) -> tuple[Path, dict]:
    """celeb/face_recognition (16 photos, 6 people) ingested once by the CLI with the default
    models, alone in its folder (the database and its ``lib.indexes/``), and the ingest's
    ``--json`` summary. Never opened by a test: tests take a copy (:func:`copy_library`)."""
    import json

    def build(folder: Path) -> None:
        result = cli("ingest", str(faces / "celeb" / "face_recognition"), "--db", str(folder / "lib.db"), "--json")
        assert result.returncode == 0, result.stderr
        (folder / "summary.json").write_text(result.stdout)

    folder = built_once(tmp_path_factory, "golden-small", build)
    return folder / "lib.db", json.loads((folder / "summary.json").read_text())


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` of this run's temporary root, made by ``build`` once for the
    whole run: under pytest-xdist by the first worker that needs it, while the other waits
    on a file lock (pytest-xdist's recipe for session data) and then uses the same files
    instead of making them again. Tests never change it: they take a copy
    (:func:`copy_library`). A build that failed leaves no folder, so the next one retries."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # gw0, gw1 share the parent
    folder = root / name
    with FileLock(root / f"{name}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            (folder / ".built").touch()
    return folder


def copy_library(golden: Path, db: Path, index_dir: Path | None = None) -> Path:
    """A private copy of the SQLite library ``golden`` as ``db``: the database (through
    SQLite's backup, so a consistent file) and golden's default index folder (``NAME.indexes/``
    beside it, places.default_index_dir, when it has one) as ``index_dir`` (default: ``db``'s
    own), as if the test had ingested it itself."""
    import sqlite3

    from lookalike.places import default_index_dir

    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(golden) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    dst.close()
    src.close()
    source = default_index_dir(f"sqlite:///{golden}")
    if source.is_dir():
        shutil.copytree(source, index_dir or default_index_dir(f"sqlite:///{db}"), dirs_exist_ok=True)
    return db


@pytest.fixture
def small_db(small_golden, tmp_path) -> Path:
    """This test's own copy of :func:`small_golden` (``tmp_path/lib.db`` + ``lib.indexes/``)."""
    return copy_library(small_golden[0], tmp_path / "lib.db")


@pytest.fixture(scope="session")
def planted_db(faces: Path, tmp_path_factory) -> Path:
    """celeb/deepface plus one mislabelled photo: Aaron Sorkin filed as deepface_id01.
    Read-only for the tests that share it (person ordering, outliers)."""
    import lookalike

    def build(folder: Path) -> None:
        planted = folder / "plant" / "deepface_id01"
        planted.mkdir(parents=True)
        sorkin = faces / "lfw-dev/images/Aaron_Sorkin/Aaron_Sorkin_0001.jpg"
        (planted / "planted.jpg").write_bytes(sorkin.read_bytes())
        with lookalike.open(folder / "p.db") as lib:
            lib.ingest([str(faces / "celeb" / "deepface")])
            lib.ingest([str(folder / "plant")])

    golden = built_once(tmp_path_factory, "golden-planted", build)
    return copy_library(golden / "p.db", tmp_path_factory.mktemp("planted") / "p.db")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def kiosk_db(faces: Path, tmp_path_factory) -> Path:
    """The README's role-model manifest (lookalike/ui/role-models.example.csv) ingested as written,
    its ``photos/<person>/…`` paths copies of the celeb faceapi_bbt photos (a manifest may
not point outside its folder, symlinks included). Photo 5 of each
    person is not in it: visitors' test photos. Read-only for the tests that share it."""
    import lookalike

    folder = tmp_path_factory.mktemp("kiosk")
    manifest = folder / "role-models.csv"
    shutil.copy(ROOT / "lookalike" / "ui" / "role-models.example.csv", manifest)
    for person in (faces / "celeb" / "faceapi_bbt").iterdir():
        (folder / "photos" / person.name).mkdir(parents=True)
        for photo in person.iterdir():
            shutil.copy(photo, folder / "photos" / person.name / photo.name)
    with lookalike.open(folder / "kiosk.db") as lib:
        lib.ingest([str(manifest)])
    return folder / "kiosk.db"
