"""Who an audience may see, kept between searches (lookalike/query/shown.py): a visitor's
list leaves out who withholds consent, is kept while the space's generation stands and is
read again when a search asks for a newer one; the least recently used lists go first."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike
from lookalike.query import shown
from lookalike.query.search import Filter
from lookalike.store import centroid_rows, person_rows, photo_rows
from lookalike.store.values import Audience

pytestmark = pytest.mark.e2e


def _faces_of(lib, person: str) -> set[int]:
    with lib.session() as session:
        pid = person_rows.person_ids_by_name(session, [person])[person]
        return set(photo_rows.person_face_ids(session, lib.view.row.space_id, [pid])[pid])


def _get(cache: shown.ShownCache, space_id: int, filters, audience: Audience, at: int | None) -> shown.Shown:
    """As the view asks: the kept list, else one read now (no Milvus fields here)."""
    kept = cache.kept(filters, audience, at)
    return kept if kept is not None else cache.read(space_id, filters, audience, False)


def _names(lib) -> list[str]:
    return sorted(p.profile.name for p in lib.people.summaries(Audience.operator))


def test_a_visitors_list_is_kept_until_a_newer_generation_is_asked_for(small_db):
    with lookalike.open(small_db) as lib:
        cache = shown.ShownCache(lib.view.session)
        space_id = lib.view.row.space_id
        first = _get(cache, space_id, (), Audience.visitor, None)
        assert first.allowed is None and first.excluded is None  # nobody withholds consent yet
        person = _names(lib)[0]
        lib.people.set_consent(person, False)
        with lib.session() as session:
            now = centroid_rows.centroid_generation(session, space_id)
        assert now != first.generation
        assert _get(cache, space_id, (), Audience.visitor, None) is first  # kept: no answer said otherwise
        fresh = _get(cache, space_id, (), Audience.visitor, now)  # an answer read at the new generation
        assert fresh.generation == now and set(fresh.excluded.tolist()) == _faces_of(lib, person)
        assert fresh.corpus is not None and np.isclose(np.linalg.norm(fresh.corpus[0]), 1.0, atol=1e-5)
        assert _get(cache, space_id, (), Audience.operator, None) is shown.NOTHING_HIDDEN


def test_the_least_recently_used_lists_go_first(small_db, monkeypatch):
    monkeypatch.setattr(shown, "SHOWN_KEPT", 2)
    with lookalike.open(small_db) as lib:
        cache = shown.ShownCache(lib.view.session)
        space_id = lib.view.row.space_id
        people = _names(lib)[:3]
        filters = [(Filter.parse(f"person={name}"),) for name in people]
        kept = [_get(cache, space_id, f, Audience.operator, None) for f in filters[:2]]
        assert set(kept[0].allowed.tolist()) == _faces_of(lib, people[0])
        assert _get(cache, space_id, filters[0], Audience.operator, None) is kept[0]  # used: now the newest
        _get(cache, space_id, filters[2], Audience.operator, None)  # a third: the oldest (the second) goes
        assert _get(cache, space_id, filters[0], Audience.operator, None) is kept[0]
        assert _get(cache, space_id, filters[1], Audience.operator, None) is not kept[1]
