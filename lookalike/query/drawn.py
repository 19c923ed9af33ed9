"""Which stored faces a picture is drawn from, and each one's photo cut to its face.

The stage under ``lib.pictures`` (:mod:`lookalike.verbs.pictures`): a group's faces as an
audience may see them, the rules a picture of people keeps (an average of a group needs
:data:`MIN_PEOPLE` different people, so no group average is one person in disguise; the
faces ``lookalike person`` flags as outliers are left out unless asked for), their stored
landmarks (never detected again) and their photos read with the library's decode limits.
Handed the space's view as :class:`~lookalike.query.context.SpaceContext`, like every query
stage (architecture review 56, M8a: this was the verbs' own code, a stage in the wrong
folder). The drawing itself is :mod:`lookalike.imaging`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BadImage, EmptyLibrary, NoLandmarks, NotFound, TooFewPeople
from .facemath import Group, GroupKind, group_face_ids, no_faces

if TYPE_CHECKING:
    from ..store.values import Audience
    from .context import SpaceContext

log = logging.getLogger(__name__)

MIN_PEOPLE = 5  # different people in a group average
CROP_MARGIN = 1.5  # a stored photo is cut to its face's landmarks grown by this many sides each way


def group_faces(view: SpaceContext, group: Group | None, audience: Audience) -> np.ndarray:
    """The face ids of ``group`` (None: the corpus) that ``audience`` may see."""
    from ..store import photo_rows

    if group is not None and group.kind is GroupKind.person:
        try:  # a person on a library with no faces yet: a person with none (NotFound below)
            return group_face_ids(view, group, audience)
        except EmptyLibrary:
            return np.empty(0, dtype=np.int64)
    if group is not None:
        return group_face_ids(view, group, audience)
    allowed = view.facts.allowed_face_ids((), audience)
    if allowed is not None:
        return np.asarray(allowed, dtype=np.int64)
    with view.session() as session:
        return photo_rows.face_ids(session, view.row.existing_space_id())


def chosen_faces(view: SpaceContext, group: Group | None, audience: Audience, limit: int | None,
                 outliers: bool) -> tuple[list[tuple[int, str, str | None, np.ndarray]], dict[str, int], int]:
    """(face id, photo path, its stored sha256, landmarks) of the faces an average of ``group`` is made of,
    what was left out and why, and how many different people remain."""
    from ..faces.landmarks import MODEL
    from ..store import landmark_rows, photo_rows

    label = "the corpus" if group is None else f"group {group}"
    ids = group_faces(view, group, audience)
    if len(ids) == 0:  # a person's own average (`average --person`) as a person who is not there
        raise NotFound.person(group.value) if group is not None and group.kind is GroupKind.person \
            else no_faces(group)
    with view.session() as session:
        rows = photo_rows.face_rows(session, ids)
        points = landmark_rows.landmarks_of(session, ids, MODEL)
        hashes = photo_rows.photo_hashes(session, {row.photo_id for row in rows.values()})
    left_out = {"outliers": 0, "without_landmarks": 0, "unreadable": 0}
    keep = [int(i) for i in ids if int(i) in rows]
    if not outliers:
        odd = outlier_faces(view, keep, rows)
        left_out["outliers"] = len(odd)
        keep = [i for i in keep if i not in odd]
    with_points = [i for i in keep if i in points]
    left_out["without_landmarks"] = len(keep) - len(with_points)
    if not with_points:
        raise NoLandmarks(f"{label}: its {len(keep)} faces have no stored landmarks; run "
                          "`lookalike landmarks backfill` (the face-mesh model must be installed)")
    if limit is not None and len(with_points) > limit:
        picked = np.random.default_rng(0).choice(len(with_points), size=limit, replace=False)
        with_points = [with_points[i] for i in sorted(picked)]
    chosen = [(i, rows[i].photo, hashes.get(rows[i].photo_id), points[i]) for i in with_points]
    people = len({rows[i].person or f"photo:{rows[i].photo}" for i in with_points})
    if (group is None or group.kind is not GroupKind.person) and people < MIN_PEOPLE:
        raise TooFewPeople(f"{label}: {'only one person' if people == 1 else f'{people} different people'} "
                           "can be shown; a group average needs at "
                           f"least {MIN_PEOPLE}, so that it is never one person in disguise")
    return chosen, left_out, people


OUTLIER_READ = 20_000  # faces whose vectors outlier_faces reads at once (10 MB of 128-d)


def outlier_faces(view: SpaceContext, ids: list[int], rows: dict) -> set[int]:
    """Faces far from their own person's other faces (the flags of ``lookalike person``)."""
    from .person import MIN_FACES_FOR_OUTLIERS, typicality

    by_person: dict[str, list[int]] = {}
    for i in ids:
        if rows[i].person is not None:
            by_person.setdefault(rows[i].person, []).append(i)
    odd: set[int] = set()
    judged = [faces for faces in by_person.values() if len(faces) >= MIN_FACES_FOR_OUTLIERS]
    # the vectors of many people a read, not one read a person, but never the whole of a
    # large library's in memory at once
    while judged:
        part = [judged.pop()]
        size = len(part[0])
        while judged and size + len(judged[-1]) <= OUTLIER_READ:
            size += len(judged[-1])
            part.append(judged.pop())
        wanted = np.asarray([f for faces in part for f in faces], dtype=np.int64)
        vectors = view.vectors.stored(wanted)
        at = 0
        for faces in part:
            flags = typicality(vectors[at:at + len(faces)]).outlier
            odd.update(f for f, flagged in zip(faces, flags) if flagged)
            at += len(faces)
    return odd


def stored_face(path: str, sha256: str | None, points: np.ndarray, size: int,
                max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """A stored face's photo cut to its face (with room for the frame) and its landmarks
    in the cut's coordinates. A large JPEG is decoded smaller (by a power of two) as long
    as the face keeps at least ``size`` px: the frame draws it at half that."""
    from PIL import Image

    from ..faces.images import decode_stored

    face = float((points.max(axis=0) - points.min(axis=0)).max())
    max_side = None
    try:
        with Image.open(path) as header:
            long_side = max(header.size)
        if face > size:
            max_side = int(np.ceil(long_side * size / face))
    except (OSError, ValueError, Image.DecompressionBombError):
        pass  # decode_stored says what is wrong with the file
    decoded = decode_stored(path, sha256, max_pixels, max_side=max_side)
    rgb, points = decoded.rgb, points.astype(np.float64) * decoded.scale
    low, high = points.min(axis=0), points.max(axis=0)
    grow = CROP_MARGIN * float((high - low).max())
    height, width = rgb.shape[:2]
    x0, y0 = max(0, int(low[0] - grow)), max(0, int(low[1] - grow))
    x1, y1 = min(width, int(high[0] + grow) + 1), min(height, int(high[1] + grow) + 1)
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), points - (x0, y0)


def readable_faces(chosen: Sequence[tuple[int, str, str | None, np.ndarray]], size: int, max_pixels: int,
                   what: str) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """(face id, :func:`stored_face`) of each ``chosen`` face (id, path, sha256, landmarks)
    whose photo can still be read; a photo gone or changed since ingest is said (a warning
    naming ``what`` the picture is) and left out: the rest still make the picture."""
    for face_id, path, sha256, points in chosen:
        try:
            face = stored_face(path, sha256, points, size, max_pixels)
        except BadImage as err:
            log.warning("%s: %s", what, err)
            continue
        yield face_id, face
