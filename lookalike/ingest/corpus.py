"""Corpus input: folders of people and manifests -> :class:`Item` s to ingest.

Two layouts are read:

* a folder per person, ``CORPUS/<Person Name>/*.jpg``: the person is the photo's
  immediate parent folder, at any depth (``celeb/deepface/<id>/img1.jpg`` works), folders
  that are symlinks followed and named by the link;
* a manifest, CSV/TSV or JSONL, with ``path`` and ``person`` and optional role-model
  profile fields. Relative paths resolve against the manifest's folder, and a path that
  leaves that folder (``..``, an absolute path elsewhere, a symlink out) is rejected.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..errors import BadPersonName, ManifestError, NothingIngested
from ..faces.images import IMAGE_EXTENSIONS
from ..store.profiles import PROFILE_FIELDS, Profile, check_profile, parse_bool, parse_tags, person_name_problem

MANIFEST_EXTENSIONS = {".csv", ".tsv", ".jsonl", ".ndjson"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    """Why an item is refused before it is read. ``kind`` is what a run's summary counts
    (``not in a person folder``, ``no face``, …), ``detail`` says which and why, ``where`` the
    manifest line. As text, the reason stored with the photo and written to ``--report``:
    ``"where: kind: detail"``, each part only when there is one."""

    kind: str
    detail: str | None = None
    where: str | None = None

    def __str__(self) -> str:
        return ": ".join(part for part in (self.where, self.kind, self.detail) if part is not None)


@dataclass(frozen=True)
class Item:
    """One photo to ingest, or a refusal with its reason."""

    path: str  # absolute
    person: str | None
    profile: Profile | None = None
    rejected: Rejection | None = None  # why, when refused before reading
    # the run names the person itself (a manifest row, --person), not a folder's name: only
    # then is a stored photo filed under another person refiled (ingest.reader.read_again)
    named: bool = False


PROFILE_REFUSED = "profile refused"  # a Rejection's kind: the row's text, not its photo
WITHDRAWN = Profile(consent_display=False)  # what a refused row still says: not to be displayed


@dataclass
class Scan:
    items: list[Item] = field(default_factory=list)
    skipped_files: int = 0  # files without an image extension (README.txt, MANIFEST.tsv...)


def scan(paths: Iterable[str | os.PathLike[str]], person: str | None = None) -> Scan:
    """Every photo named by ``paths`` (files, folders or manifests), in a stable order."""
    out = Scan()
    if person is not None and (problem := person_name_problem(person)) is not None:
        raise BadPersonName(f"--person: {problem}")
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise ManifestError(f"{path}: no such file or folder")
        if path.is_dir():
            # one spelling of each photo however the folder is named (`../photos`), as a
            # manifest's rows; but a folder named through `alice/..` keeps it, so that a loose
            # photo there is refused, not filed under the folder above (docs/data.md)
            if path.name != "..":
                path = Path(os.path.normpath(path.absolute()))
            for file in walk(path):
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    out.items.append(_folder_item(file.absolute(), person))
                else:
                    out.skipped_files += 1
        elif path.suffix.lower() in MANIFEST_EXTENSIONS:
            out.items.extend(read_manifest(path))
        else:
            out.items.append(_folder_item(path.absolute(), person))
    return out


def scan_photos(paths: Sequence[str | os.PathLike[str]], person: str | None = None) -> Scan:
    """:func:`scan`, refusing paths that name no photo at all (:class:`NothingIngested`)."""
    if not paths:
        raise NothingIngested("nothing to ingest: give photos, folders or manifests")
    found = scan(paths, person)
    if not found.items:
        raise NothingIngested(f"no image files found in {', '.join(map(str, paths))}")
    return found


def _folder_item(file: Path, person: str | None) -> Item:
    """A photo filed under ``person``, else under its folder's name; a folder name that
    cannot be a person's (``..`` as in ``photos/alice/..``, a backslash, a control
    character) refuses the photo with the reason instead of inventing a person."""
    if person is not None:
        return Item(str(file), person, named=True)
    name = file.parent.name
    problem = person_name_problem(name)
    if problem is not None:
        return Item(str(file), None, rejected=Rejection(f"its folder {problem}; name the folder after the person",
                                                                 where=str(file)))
    return Item(str(file), name)


def unlisted(err: OSError) -> None:
    """``os.walk``'s ``onerror``: a folder that cannot be listed stops the scan, before the
    library is opened. Skipped in silence, its person's photos would go missing from a run
    that says it succeeded."""
    raise ManifestError(f"{Path(str(err.filename)).absolute()}: the folder cannot be listed "
                        f"({err.strerror or err}); make it readable or leave it out") from None


def walk(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` but hidden ones, sorted, folders that are symlinks
    followed: a corpus is often put together from links to people's folders elsewhere
    (``ln -s /data/obama corpus/``), which ``os.walk`` alone would pass over, the run then
    saying "no image files found". A folder reached a second time (a loop, or two links to
    one folder) is walked once."""
    walked: dict[str, str] = {}  # real path -> the path it was walked as
    hidden: list[Path] = []  # hidden folders holding photos: left out, but said
    for root, dirs, files in os.walk(folder, onerror=unlisted, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            log.warning("%s: already walked as %s, skipped", root, walked[real])
            dirs[:] = []
            continue
        walked[real] = root
        hidden += [Path(root) / d for d in sorted(dirs) if d.startswith(".") and _holds_photos(Path(root) / d)]
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name
    if hidden:  # a person's folder named ".alice" or "..." would otherwise vanish from the run unsaid
        log.warning("%s: %d hidden folder(s) holding photos left out (a name starting with a dot "
                    "is hidden); rename to ingest them", ", ".join(map(str, hidden[:3])), len(hidden))


def _holds_photos(folder: Path) -> bool:
    """Whether ``folder`` itself holds an image file (not looked into deeper: a hidden
    ``.git`` or thumbnail cache is only listed, never walked)."""
    try:
        return any(Path(name).suffix.lower() in IMAGE_EXTENSIONS for name in os.listdir(folder))
    except OSError:
        return False


def read_manifest(path: Path) -> list[Item]:
    """Rows of a CSV/TSV/JSONL manifest as items; bad rows become rejected items."""
    base = path.absolute().parent
    rows = list(_manifest_rows(path))
    items = []
    for line, row in rows:
        where = f"{path}:{line}"
        raw_path = str(row.get("path") or "").strip()
        person = str(row.get("person") or "").strip() or None
        if not raw_path:
            items.append(Item(where, person, rejected=Rejection("manifest row has no path")))
            continue
        target, problem = resolve_inside(base, raw_path)
        if problem:
            items.append(Item(str(target), person, rejected=Rejection(problem, where=where)))
            continue
        if person is None:
            items.append(Item(str(target), None, rejected=Rejection("manifest row has no person", where=where)))
            continue
        if (problem := person_name_problem(person)) is not None:
            items.append(Item(str(target), None, rejected=Rejection(problem, where=where)))
            continue
        # a row whose text is refused: a photo stored before keeps its place (ingest.reader),
        # and the row still narrows consent (it never widens it): WITHDRAWN goes with it
        try:
            found = _profile(row)
        except ValueError as err:  # consent_display neither true nor false: that is no consent
            items.append(Item(str(target), person, WITHDRAWN, rejected=Rejection(PROFILE_REFUSED, str(err),
                                                                                 where=where)))
            continue
        try:  # checked as every other way in checks it (the API, the admin page, --format)
            profile = check_profile(found) if found is not None else None
        except ValueError as err:
            narrowed = WITHDRAWN if found is not None and found.consent_display is not True else None
            items.append(Item(str(target), person, narrowed, rejected=Rejection(PROFILE_REFUSED, str(err),
                                                                                where=where)))
            continue
        items.append(Item(str(target), person, profile, named=True))
    return items


def resolve_inside(base: Path, raw: str) -> tuple[Path, str | None]:
    """``raw`` resolved against ``base``, and why it is refused if it leaves ``base``."""
    if "\x00" in raw:
        return base, f"path {raw!r} contains a NUL byte; refused"
    target = base / raw
    try:
        candidate = Path(raw).expanduser()
        target = candidate if candidate.is_absolute() else base / candidate
        real = target.resolve()
    except (OSError, RuntimeError) as err:  # ~nobody, a symlink loop, a name too long
        return target, f"path {raw!r} cannot be resolved ({err}); refused"
    real_base = base.resolve()
    if real != real_base and real_base not in real.parents:
        return target, f"path {raw!r} leaves the manifest's folder {base}; refused"
    # one spelling of one file whichever folder the manifest was named from: `../kiosk.csv`
    # stored `/here/../photos/a.png`, and the same manifest run from elsewhere made a
    # duplicate row of every photo (move user test, F1); links stay as named
    return Path(os.path.normpath(target.absolute())), None


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """The rows of a manifest as (line, {column: value}), column names as the columns are read
    (:func:`_columns`)."""
    suffix = path.suffix.lower()
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            if suffix in (".jsonl", ".ndjson"):
                told: set[str] = set()
                for number, text in enumerate(fh, start=1):
                    if not text.strip():
                        continue
                    try:
                        row = json.loads(text, object_pairs_hook=partial(_one_each, f"{path}:{number}"))
                    except json.JSONDecodeError as err:
                        raise ManifestError(f"{path}:{number}: not valid JSON ({err.msg})") from err
                    if not isinstance(row, dict):
                        raise ManifestError(f"{path}:{number}: each line must be a JSON object")
                    yield number, _columns(f"{path}:{number}", row, told)
                return
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            # blank header cells (a spreadsheet's trailing commas) name nothing: left out
            names = [n for n in map(_column, reader.fieldnames or []) if n]
            if len(set(names)) < len(names):  # csv keeps the last of two same-named columns
                twice = next(n for n in names if names.count(n) > 1)
                raise ManifestError(f"{path}: the header names the column {twice!r} twice (as "
                                    f"{[f for f in reader.fieldnames or [] if _column(f) == twice]}); "
                                    "keep one: nothing was ingested")
            if "path" not in names:
                raise ManifestError(f"{path}: the header must name a 'path' column "
                                    f"(found {reader.fieldnames})")
            _columns(str(path), dict.fromkeys(reader.fieldnames or []), set())  # refused or said once
            for row in reader:
                yield reader.line_num, {_column(k): v for k, v in row.items() if k is not None and _column(k)}
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text ({err.reason})") from err
    except csv.Error as err:
        raise ManifestError(f"{path}: malformed CSV ({err})") from err
    except OSError as err:  # a folder, no permission, a vanished file
        raise ManifestError.unreadable(path, err) from err


MANIFEST_COLUMNS = ("path", "person", *PROFILE_FIELDS)


def _one_each(where: str, pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are each named once: ``json`` keeps the last of a key named
    twice, and a "no" before an empty one became never stated (review of 2026-12-07, M4)."""
    keys = [k for k, _ in pairs]
    if twice := next((k for k in keys if keys.count(k) > 1), None):
        raise ManifestError(f"{where}: the key {twice!r} is named twice; keep one: nothing was ingested")
    return dict(pairs)


def _column(name: object) -> str:
    """A column's name as read: case, surrounding spaces and a space or hyphen for ``_`` do
    not count (``Consent_Display``, `` consent_display``, ``Display Name`` as spreadsheets write
    them were dropped, and a "no" stored as never stated: shown to every visitor)."""
    return re.sub(r"[\s-]+", "_", str(name).strip().lower())


def _columns(where: str, row: dict, told: set[str]) -> dict:
    """``row`` with its columns' names read (:func:`_column`). A column no manifest has is
    said once in a warning (a note of the operator's own is theirs to keep); one that speaks
    of consent and is not ``consent_display`` refuses the manifest, as a person's "no"
    would otherwise be lost."""
    row = {k: v for k, v in row.items() if _column(k)}  # a blank header cell names nothing
    read = {_column(k): v for k, v in row.items()}
    if len(read) < len(row):  # two spellings of one column: the last one's value would win
        names = [str(k) for k in row]
        twice = next(n for n in names if sum(_column(m) == _column(n) for m in names) > 1)
        same = [repr(m) for m in names if _column(m) == _column(twice)]
        raise ManifestError(f"{where}: columns {' and '.join(same)} are one column ({_column(twice)!r}); "
                            "keep one: nothing was ingested")
    unknown = sorted(set(read) - set(MANIFEST_COLUMNS) - told)
    if consent := [name for name in unknown if "consent" in name]:
        raise ManifestError(f"{where}: unknown column {consent[0]!r}; consent is given in the column "
                            "'consent_display' (true or false): fix the header, nothing was ingested")
    if unknown:
        told.update(unknown)
        log.warning("%s: column(s) %s left out: a manifest's columns are %s", where, ", ".join(map(repr, unknown)),
                    ", ".join(MANIFEST_COLUMNS))
    return read


def _profile(row: dict) -> Profile | None:
    if not any(row.get(f) not in (None, "") for f in PROFILE_FIELDS):
        return None
    return Profile(
        display_name=_text(row.get("display_name")),
        role=_text(row.get("role")),
        organisation=_text(row.get("organisation")),
        story=_text(row.get("story")),
        tags=parse_tags(row.get("tags")),
        consent_display=parse_bool(row.get("consent_display")),
        source_url=_text(row.get("source_url")),
        license=_text(row.get("license")),
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

