"""The removal verbs' bodies (``lib.remove_person``, ``remove_photo``, ``remove_space``): a
person, a photo or a whole embedding space taken out of every place that keeps a face. The
rows go first, in one transaction; every space's index follows and is saved; then the uploads
the library owns and the drawn averages that held the faces. A removal killed after its commit
is finished by running it again (:func:`settle`).

The library hands a removal what keeps faces (:class:`Holders`) as values made for the call;
nothing here reaches back into the library object.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, NotFound
from ..faults import crash_point
from ..store import db, person_rows, photo_rows, space_rows
from .maintenance import IndexMaintenance

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..store.schema import Person as PersonRow
    from ..store.schema import Photo as PhotoRow
    from .people import People
    from .pictures import AverageCache
    from .space import SpaceView

# what a removal deletes, found in its transaction: the person row (or None) and the photos
Chooser = Callable[["Session"], "tuple[PersonRow | None, list[PhotoRow]]"]


@dataclass(frozen=True)
class Removal:
    """What one removal deleted (the ``--json`` of ``lookalike remove``)."""

    photos: int
    faces: int
    person: str | None = None
    photo: str | None = None
    space: str | None = None
    index_rebuilt: str | None = None  # why the index was rebuilt after it, if it was

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` of ``lookalike remove``."""
        return asdict(self)


@dataclass(frozen=True)
class Holders:
    """Everything that keeps a library's faces, as the library hands it to one removal: the
    current space's view, every space's view (indexes not opened yet: :func:`settle` opens
    them under the writer exclusion), the people part (it deletes the uploads the library
    owns) and the cache of drawn averages."""

    view: SpaceView
    views: dict[int, SpaceView]
    people: People
    averages: AverageCache


def remove_person(holders: Holders, name: str) -> Removal:
    """Delete a person: every photo, face, vector and centroid contribution, the photos
    uploaded for them, copies of their photos refused as duplicates under anyone (and those
    copies' uploads) and the person row, in every embedding space."""

    def chosen(session: Session) -> tuple[PersonRow | None, list[PhotoRow]]:
        row = person_rows.person_by_name(session, name)
        if row is None:
            raise NotFound.person(name)
        photos = photo_rows.photos_of_person(session, row.id)
        return row, photos + photo_rows.copies_of(session, photos)

    photos, faces, rebuilt = _remove(holders, chosen)
    return Removal(photos, faces, person=name, index_rebuilt=rebuilt)


def remove_photo(holders: Holders, path: str | os.PathLike[str]) -> Removal:
    """Delete one photo: its faces, vectors and centroid contributions and its copies refused
    as duplicates, in every embedding space; the person stays. The path is looked up as
    given, normalised (``..`` undone) and resolved (links undone): the first one stored wins."""
    where = str(Path(path).expanduser().absolute())
    spellings = (where, os.path.normpath(where), os.path.realpath(where))

    def chosen(session: Session) -> tuple[PersonRow | None, list[PhotoRow]]:
        photos = next((found for s in spellings if (found := photo_rows.photos_at(session, s))), [])
        if not photos:
            raise NotFound(f"{where}: no such photo in this library")
        return None, photos + photo_rows.copies_of(session, photos)

    photos, faces, rebuilt = _remove(holders, chosen)
    return Removal(photos, faces, photo=str(path), index_rebuilt=rebuilt)


def _remove(holders: Holders, chosen: Chooser) -> tuple[int, int, str | None]:
    """Delete the photos ``chosen`` finds (and the person row it hands back, if any):
    (photos, faces, why the index was rebuilt after it or None)."""
    removed: dict[int, list[int]] = {}
    rebuilt = None
    view = holders.view
    with view.vectors.writers():
        settle(holders.views.values())  # open once: the removal below reuses them
        with view.session() as session:
            row, photos = chosen(session)
            for ph in photos:
                removed.setdefault(ph.space_id, []).extend(photo_rows.delete_photo(session, ph))
            if row is not None:
                photo_rows.delete_row(session, row)
            session.commit()
        crash_point("remove.committed")
        for space_id, ids in removed.items():
            if ids and space_id in holders.views:
                held = holders.views[space_id]
                held.vectors.index.remove(np.asarray(ids, dtype=np.int64))
                held.vectors.index.save()
                rebuilt = IndexMaintenance(held.vectors).upkeep() or rebuilt
        # each store that lost faces scrubs them from its files: the current space's and every
        # other one's (a Milvus collection of another space kept its tombstones: review, M6)
        IndexMaintenance(view.vectors).erase()
        for space_id, ids in removed.items():
            other = holders.views.get(space_id)
            if ids and other is not None and other.space.key != view.space.key:
                IndexMaintenance(other.vectors).erase()
        holders.people.delete_owned({ph.path for ph in photos})
        holders.averages.forget(i for ids in removed.values() for i in ids)  # no cached average keeps them
    view.refresh()
    return len(photos), sum(len(v) for v in removed.values()), rebuilt


def settle(views: Iterable[SpaceView]) -> None:
    """A removal killed after its database commit leaves the removed faces in the index
    file. Opening an index drops what the database no longer holds; saving it then makes the
    second run of that removal (which finds the person already gone) finish the job instead
    of failing with the vectors still on disk (also before a reembed goes on after a kill)."""
    for view in views:
        index = view.vectors.index
        if not view.vectors.backend.saved_matches(view.vectors.store(), index):
            index.save()


def remove_space(view: SpaceView, key: str) -> Removal:
    """Delete one whole embedding space (its key, e.g. after ``reembed`` moved the library
    elsewhere): its photo and face rows, vectors and index; the people, and the same photos
    in the other spaces, stay. ``view``: the library's current space (whose writer exclusion
    is the library's); the caller forgets its views afterwards."""
    with view.vectors.writers():
        with view.session() as session:
            row = space_rows.get_space(session, key)
            if row is None:
                keys = ", ".join(sp.key for sp in space_rows.list_spaces(session)) or "none"
                raise NotFound(f"no embedding space {key!r} in this library (it holds: {keys})")
            # an interrupted reembed's rest (a photo whose file is gone cannot be moved)
            if lost := [p for p in photo_rows.held_nowhere_else(session, row.id) if Path(p).is_file()]:
                raise ConfigError(f"{key}: {len(lost)} of its photos are in no other space; `lookalike "
                                  "reembed` moves them first (or `remove --photo`/`--person` removes them)")
            view.vectors.backend.drop_space(view.vectors.store(), session, key, row.id)
            photos, faces = space_rows.delete_space(session, row.id)
            session.commit()
        # the space's index went with drop_space; only the database's files are left to scrub.
        # Not the backend's erase: on Milvus it opened the current space's collection, which
        # may be the one removed (exit 1 after the removal: scale user test, F12)
        db.scrub(view.vectors.engine)
    return Removal(photos, faces, space=key)
