"""The live face tracker: pure logic, no camera."""

from __future__ import annotations

from lookalike.faces.detect import iou
from lookalike.live.tracker import Tracker


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9


def test_a_moving_face_keeps_its_track_and_a_new_face_gets_one():
    tr = Tracker()
    (a,) = tr.update([(100, 100, 80, 80)], now=0.0)
    moved = tr.update([(108, 104, 80, 80)], now=0.04)
    assert [t.id for t in moved] == [a.id] and moved[0].box == (108, 104, 80, 80)
    both = tr.update([(110, 106, 80, 80), (400, 100, 90, 90)], now=0.08)
    assert sorted(t.id for t in both) == [a.id, a.id + 1]


def test_tracks_expire_and_matches_are_refreshed_not_repeated():
    tr = Tracker(max_missing=1.0, refresh=2.0)
    (t,) = tr.update([(0, 0, 50, 50)], now=0.0)
    assert tr.due(0.0) == [t]
    t.last_matched = 0.0
    tr.update([(2, 0, 50, 50)], now=0.5)
    assert tr.due(0.5) == []  # matched half a second ago
    tr.update([(2, 0, 50, 50)], now=2.5)
    assert tr.due(2.5) == [t]  # time to refresh
    assert tr.update([], now=3.0) == [t]  # unseen for 0.5 s: still there
    assert tr.update([], now=4.0) == []  # unseen for 1.5 s: gone


def test_new_faces_are_matched_before_old_ones_are_refreshed():
    tr = Tracker(refresh=1.0)
    (old,) = tr.update([(0, 0, 50, 50)], now=0.0)
    old.last_matched = 0.0
    tracks = tr.update([(0, 0, 50, 50), (300, 0, 50, 50)], now=5.0)
    new = next(t for t in tracks if t.id != old.id)
    assert [t.id for t in tr.due(5.0)] == [new.id, old.id]
