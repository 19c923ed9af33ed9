"""Who an audience may see: the faces a search with filters may return, and the averages
of the faces an audience may see.

The consent rule itself is the store's (:mod:`lookalike.store.consent`); this module reads
it for one space and keeps what a search needs between searches (:class:`ShownCache`), so
a kiosk's or a visitor's search reads nothing but its answer. Everything here is handed
values: a session or the session factory, the space's id, and whether the index filters on
fields of its own (Milvus). A space's facts (:class:`lookalike.query.facts.SpaceFacts`, a part
of the view) keep one cache and pass their calls on (architecture review 50, M4: this was the
view's own code).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..store import centroid_rows, consent, person_rows, photo_rows
from ..store.values import Audience, GroupKey

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..index.protocol import SearchFilters
    from .search import Filter

# audiences x filter sets whose face lists a cache keeps (a kiosk uses a few; an API client
# could send ever-new ones), and the bytes of id lists they may hold together
SHOWN_KEPT = 32
SHOWN_BYTES = 64 << 20


@dataclass(frozen=True)
class Shown:
    """What one audience's search with one set of filters may return, as read at one
    generation of the space (:mod:`lookalike.store.generations`): kept between searches, so
    a kiosk's or a visitor's search reads nothing but its answer; the answer's own
    generation says whether it still holds."""

    generation: int | None  # None: nothing filters (an operator's plain search), never stale
    allowed: np.ndarray | None  # the face ids a search may return; None: all ...
    how: SearchFilters | None  # the same filters, for an index that keeps their fields (Milvus)
    corpus: tuple[np.ndarray, int] | None  # the average of the faces the audience may see (not the operator's)
    excluded: np.ndarray | None = None  # ... but these (a visitor's: the faces of who withholds consent)

    def holds_for(self, generations: set[int]) -> bool:
        """Whether answers read at ``generations`` were made of what this was read from."""
        return self.generation is None or generations <= {self.generation}


NOTHING_HIDDEN = Shown(None, None, None, None)


def unit(corpus: tuple[np.ndarray, int] | None) -> tuple[np.ndarray, int] | None:
    """A corpus sum and count (:func:`lookalike.store.consent.corpus_sum`) as its unit average."""
    if corpus is None:
        return None
    total, n = corpus
    norm = float(np.linalg.norm(total))
    return (total / norm if norm > 0 else total).astype(np.float32), n


def visible_corpus(session: Session, space_id: int, audience: Audience) -> tuple[np.ndarray, int] | None:
    """The unit average of the faces ``audience`` (not the operator) may see and their
    count, or ``None`` (no face): without the people who withhold consent from it."""
    return unit(consent.corpus_sum(session, space_id, audience))


def centroid_means(session: Session, space_id: int, names: Sequence[str], audience: Audience) -> dict:
    """Mean similarity of each group's faces to its own centroid (``None`` = the corpus
    ``audience`` may see, else the people ``names``): the reference for calling a face
    typical, per model."""
    out = centroid_rows.centroid_means(session, space_id, names)
    if audience is not Audience.operator:
        corpus = consent.corpus_sum(session, space_id, audience)
        out.pop(None, None)
        if corpus is not None:
            out[None] = float(np.linalg.norm(corpus[0]) / corpus[1])
    return out


def allowed_face_ids(session: Session, space_id: int, filters: Sequence[Filter],
                     audience: Audience) -> np.ndarray | None:
    """Face ids whose person passes the metadata ``filters`` and ``audience`` may see;
    ``None`` when unfiltered."""
    if not filters and audience is Audience.operator:
        return None
    return photo_rows.shown_faces(session, space_id, [f.group for f in filters], audience)


def read_shown(session: Session, space_id: int, filters: Sequence[Filter], audience: Audience,
               filter_on_fields: bool) -> Shown:
    """What a search for ``audience`` with ``filters`` may return, read now; with
    ``filter_on_fields`` (Milvus) also the filters an index applies on fields of its own."""
    from ..index.protocol import SearchFilters

    groups = tuple(f.group for f in filters)
    # the generation first: a write landing before the faces are read moves it past this
    # value, so the next answer sends the search back here (store/generations.py)
    generation = centroid_rows.centroid_generation(session, space_id)
    excluded = None
    if audience is Audience.visitor and not groups:  # all but a few: those left out
        withheld = consent.withheld_faces(session, space_id)
        allowed, excluded = None, (withheld if len(withheld) else None)
    else:
        allowed = photo_rows.shown_faces(session, space_id, list(groups), audience)
    how = None
    if allowed is not None and filter_on_fields:
        names = [v for k, v in groups if k is GroupKey.person]
        how = SearchFilters(groups, person_rows.person_ids_by_name(session, names), audience)
    corpus = None if audience is Audience.operator else consent.corpus_sum(session, space_id, audience)
    return Shown(generation, allowed, how, unit(corpus), excluded)


class ShownCache:
    """The :class:`Shown` of each (filters, audience) a space's searches used, least recently
    used out first (at most :data:`SHOWN_KEPT`, :data:`SHOWN_BYTES` of ids); shared by the
    threads that share a library (the web app's sessions), so under a lock of its own."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self._sessions = sessions
        self._kept: OrderedDict[tuple, Shown] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def kept(self, filters: Sequence[Filter], audience: Audience, at: int | None) -> Shown | None:
        """The kept :class:`Shown` of ``filters`` and ``audience``, whatever the space's
        generation now, unless ``at`` names the generation wanted; ``None`` when there is
        none (or an older one): :meth:`read` it then."""
        if not filters and audience is Audience.operator:
            return NOTHING_HIDDEN
        key = (tuple(filters), audience)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)  # the most recently used last
        return kept if kept is not None and (at is None or kept.generation == at) else None

    def read(self, space_id: int, filters: Sequence[Filter], audience: Audience, filter_on_fields: bool) -> Shown:
        """:func:`read_shown` now, kept for the next search (the least recently used out)."""
        with self._sessions() as session:
            made = read_shown(session, space_id, filters, audience, filter_on_fields)
        key = (tuple(filters), audience)
        with self._lock:
            self._kept[key] = made
            self._kept.move_to_end(key)
            while len(self._kept) > 1 and (len(self._kept) > SHOWN_KEPT or sum(
                    s.allowed.nbytes for s in self._kept.values() if s.allowed is not None) > SHOWN_BYTES):
                self._kept.popitem(last=False)  # the least recently used
        return made
