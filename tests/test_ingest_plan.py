"""How many worker processes an ingest starts: an explicit, tested rule (no photo needed)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("requested", "photos", "cores", "planned"), [
    (0, 0, 2, 0), (0, 99, 2, 0), (0, 100, 2, 2), (0, 5000, 8, 8),  # decided: here, else one per core
    (1, 3, 2, 1), (2, 3, 2, 2), (3, 5000, 2, 3),  # asked for: kept, however few the photos
    (0, 500, 0, 1),  # no core count known: one worker
])
def test_plan_workers(requested, photos, cores, planned):
    from lookalike.ingest.local import plan_workers

    assert plan_workers(requested, photos, cores) == planned


@pytest.mark.parametrize(("requested", "photos", "cores", "planned"), [
    (0, 1, 2, 1), (0, 99, 8, 1), (0, 100, 2, 2), (0, 5000, 8, 8),  # decided: one, else one per core
    (2, 3, 2, 2), (3, 5000, 2, 3),  # asked for: kept
    (0, 500, 0, 1),  # no core count known: one worker
])
def test_plan_queue_workers(requested, photos, cores, planned):
    """PostgreSQL's queue workers store what they map: never zero of them."""
    from lookalike.ingest.local import plan_queue_workers

    assert plan_queue_workers(requested, photos, cores) == planned


@pytest.mark.parametrize(("photos", "workers", "sizes"), [
    (100, 2, [8] * 12 + [4]),  # calls of PHOTOS_A_CALL photos
    (10, 2, [5, 5]), (3, 2, [2, 1]), (1, 2, [1]), (0, 2, []),  # too few: every worker gets some
    (20, 0, [8, 8, 4]),  # in this process: the same calls
])
def test_calls(photos, workers, sizes):
    """How many photos each call to a worker carries (their faces embedded together)."""
    from lookalike.ingest.local import calls

    assert [len(c) for c in calls(list(range(photos)), workers)] == sizes
