"""``lookalike copy``'s body: a library copied into another database, the way a library
that outgrew SQLite moves to PostgreSQL (or back, or to a second SQLite file). Ingesting the
corpus again there lost what only the library knew — consent withdrawn by staff (the person
was shown to visitors again), profiles, API keys, calibration, uploaded people — and gave
every face and photo a new id (scale user test, 2026-12-07, F1).

The rows go in one transaction (:func:`lookalike.store.copy_rows.copy_rows`); the photos
uploaded through the HTTP API or the Admin page are copied into the new library's upload
folder first and their rows point there, so removing a person from the copy deletes the
copy's files. The original is not changed.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import places
from ..config import Settings, shown_url
from ..errors import ConfigError
from ..store import db
from ..store.copy_rows import copy_rows, photo_paths, refuse_a_library

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Copied:
    """What a copy carried: rows per table and the uploaded photos' files."""

    rows: dict[str, int]
    uploads: int


def copy_library(source: Engine, settings: Settings, target: Settings) -> Copied:
    """Copy the library at ``source`` (opened with ``settings``) into the empty database of
    ``target``, made at the schema's head here. Everything that can refuse the copy does so
    before anything is written: the same library, a target that holds any row of a library
    (an API key alone included) or another version's schema, a shared index or upload folder."""
    if target.db_url == settings.db_url:
        raise ConfigError(f"--to {shown_url(target.db_url)}: that is this library itself")
    faiss_files = places.sqlite_path(target.db_url) is not None and target.vectors is None
    if faiss_files and target.index_dir.resolve() == settings.index_dir.resolve():  # its index refused
        raise ConfigError(f"the copy's index folder would be this library's ({settings.index_dir})")
    folders = _upload_folders(settings)
    files = {folder: _uploads(folder, photo_paths(source, os.path.normpath(folder))) for folder in folders}
    count = sum(len(found) for found in files.values())
    if count and target.upload_dir is None:
        raise ConfigError(f"the library holds {count} uploaded photos; a server database keeps them in a "
                          "folder every machine mounts at the same path: give it with --uploads-to DIR")
    if target.upload_dir is not None and any(_overlap(target.upload_dir, folder) for folder in folders):
        # both libraries would own the same files: removing a person from one deleted the other's
        raise ConfigError(f"--uploads-to {target.upload_dir}: that is (or holds, or is inside) this library's "
                          "upload folder; give the copy a folder of its own")
    path = places.sqlite_path(target.db_url)
    if path is not None and path.is_file() and path.stat().st_size > 0:
        raise ConfigError(f"--to {path}: already there; copy into a new file (a copy that stopped after its "
                          f"rows went in is finished by: lookalike doctor --fix --db {path})")
    new_file = path is not None and not path.exists()  # a copy that fails leaves none behind
    places.claim_folders(target.db_url, (target.index_dir, target.upload_dir))  # before its file: its own
    engine = db.make_engine(target.db_url)
    moved: dict[str, str] = {}
    try:
        if (revision := db.current_revision(engine)) is not None:
            if revision != db.HEAD:
                raise ConfigError(f"--to {shown_url(target.db_url)}: holds a lookalike library (schema "
                                  f"{revision}); copy into an empty database")
            with engine.connect() as conn:
                refuse_a_library(conn)
        db.migrate(engine)
        for folder, found in files.items():
            if target.upload_dir is not None:
                _copy_files(found, folder, target.upload_dir, moved)
        rows = copy_rows(source, engine, lambda stored: moved.get(stored, stored))
    except BaseException:
        for copied in moved.values():  # the copy's files go with its failed rows
            Path(copied).unlink(missing_ok=True)
        if new_file and path is not None:  # and the file it made (a retry was refused: "already there")
            engine.dispose()
            for made in places.sqlite_files(Path(path)):
                made.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    return Copied(rows, count)


def _upload_folders(settings: Settings) -> list[Path]:
    """Where this library's uploads are: its upload folder, and for a SQLite file the one
    beside it too (``LOOKALIKE_UPLOAD_DIR`` set for the copy's sake named another, and the
    real uploads were left behind, unsaid)."""
    found = [settings.upload_dir] if settings.upload_dir is not None else []
    beside = places.default_upload_dir(settings.db_url)
    if beside is not None and all(beside.resolve() != f.resolve() for f in found):
        found.append(beside)
    return [folder for folder in found if folder.is_dir()]


def _overlap(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def _uploads(folder: Path, named: set[str]) -> list[Path]:
    """The files under a library's upload folder that its rows name. Any other file there
    (a removed person's photo a failed removal left behind) stays out of the copy: it is no
    one's photo in the library, and may be one a person asked to have deleted."""
    found = sorted(p for p in folder.rglob("*") if p.is_file())
    kept = [p for p in found if os.path.normpath(p) in named]  # stored paths are normalised (ingest)
    if left := sorted(set(found) - set(kept)):
        log.warning("%s: %d files that no photo of the library names are not copied (first: %s)",
                    folder, len(left), left[0])
    return kept


def _copy_files(files: list[Path], source: Path, target: Path, moved: dict[str, str]) -> None:
    """Each file copied to the same place under ``target``, recorded in ``moved`` (stored path
    -> new path) as it lands, so that a failure removes exactly the files this copy made."""
    for file in files:
        into = target / file.relative_to(source)
        if into.exists():  # never overwritten, nor taken over: it may be another library's
            raise ConfigError(f"{into}: already there (another library's, or left by a copy that was killed "
                              "before its rows went in); give the copy an empty upload folder (--uploads-to)")
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, into)
        moved[str(file)] = str(into)
    log.info("%d uploaded photos copied from %s to %s", len(moved), source, target)
