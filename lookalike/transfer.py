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
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import places
from .config import Settings, shown_url
from .errors import ConfigError
from .store import db
from .store.copy_rows import copy_rows, refuse_a_library

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
    ``target``, made or upgraded to the schema's head here."""
    if target.db_url == settings.db_url:
        raise ConfigError(f"--to {shown_url(target.db_url)}: that is this library itself")
    files = _uploads(settings.upload_dir)
    if files and target.upload_dir is None:
        raise ConfigError(f"the library holds {len(files)} uploaded photos in {settings.upload_dir}; a server "
                          "database keeps them in a folder every machine mounts at the same path: give it "
                          "with --uploads-to DIR (or LOOKALIKE_UPLOAD_DIR)")
    places.claim_folders(target.db_url, (target.index_dir, target.upload_dir))  # before its file: its own
    engine = db.make_engine(target.db_url)
    moved: dict[str, str] = {}
    try:
        db.migrate(engine)
        with engine.connect() as conn:  # before any file is copied: never over another library's
            refuse_a_library(conn)
        if target.upload_dir is not None and settings.upload_dir is not None \
                and target.upload_dir.resolve() != settings.upload_dir.resolve():
            _copy_files(files, settings.upload_dir, target.upload_dir, moved)
        rows = copy_rows(source, engine, lambda path: moved.get(path, path))
    except BaseException:
        for copied in moved.values():  # the copy's files go with its failed rows
            Path(copied).unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    return Copied(rows, len(files))


def _uploads(folder: Path | None) -> list[Path]:
    """The files under a library's upload folder (every one an uploaded photo)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _copy_files(files: list[Path], source: Path, target: Path, moved: dict[str, str]) -> None:
    """Each file copied to the same place under ``target``, recorded in ``moved`` (stored path
    -> new path) as it lands, so that a failure removes exactly the files this copy made."""
    for file in files:
        into = target / file.relative_to(source)
        if into.exists():  # another library's file in a shared folder is never overwritten
            raise ConfigError(f"{into}: already there; give the copy an upload folder of its own (--uploads-to)")
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, into)
        moved[str(file)] = str(into)
    log.info("%d uploaded photos copied from %s to %s", len(moved), source, target)
