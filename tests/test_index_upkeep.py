"""Upkeep rules: when ingest and removal rebuild the index by themselves."""

from __future__ import annotations

import pytest

from lookalike.index.choice import FLAT_MAX
from lookalike.index.upkeep import TOMBSTONE_MAX, plan


@pytest.mark.parametrize("key,pinned,n,share,expected", [
    ("Flat", False, 1_000, 0.0, None),                       # fits: nothing to do
    ("Flat", False, FLAT_MAX + 1, 0.0, "HNSW32"),            # grew past exact search
    ("HNSW32", False, FLAT_MAX - 1, 0.0, None),              # just under: hysteresis keeps it
    ("HNSW32", False, int(FLAT_MAX * 0.7), 0.0, "Flat"),     # well under: back to exact
    ("HNSW32", False, 200_000, TOMBSTONE_MAX + 0.01, "HNSW32"),  # too many tombstones
    ("HNSW32", False, 200_000, TOMBSTONE_MAX, None),         # at the line: not yet
    ("HNSW32", True, 1_000, 0.0, None),                      # pinned by hand: kept
    ("HNSW32", True, 1_000, 0.5, "HNSW32"),                  # pinned, tombstones: same key
    ("Flat", False, 10_000_000, 0.0, "IVF16384,PQ64"),       # far past the memory budget
])
def test_plan(key, pinned, n, share, expected):
    todo = plan(key, pinned, n, 128, share)
    assert todo.key == expected and todo.rebuild == (expected is not None)
    assert todo.reason


def test_growth_never_flaps():
    # a library growing one vector at a time switches exactly once at each tier boundary
    key, switches = "Flat", []
    for n in range(FLAT_MAX - 5, FLAT_MAX + 5):
        todo = plan(key, False, n, 128, 0.0)
        if todo.rebuild:
            key = todo.key
            switches.append(n)
    assert switches == [FLAT_MAX + 1] and key == "HNSW32"
    for n in range(FLAT_MAX + 5, FLAT_MAX - 5, -1):  # and shrinking back a little keeps it
        assert not plan(key, False, n, 128, 0.0).rebuild


def test_ingest_switches_index_when_the_library_crosses_a_tier(faces, tmp_path, monkeypatch):
    """The wiring: ingest applies the rules by itself (tier boundary lowered to 10 faces)."""
    import lookalike
    from lookalike.index import choice

    monkeypatch.setattr(choice, "FLAT_MAX", 10)
    monkeypatch.setattr(choice, "IVF_MIN", 10)
    lib = lookalike.open(tmp_path / "t.db")
    first = lib.ingest([str(faces / "celeb/face_recognition/barack_obama")])
    assert first.index_rebuilt is None and lib.maintenance.info()["index_key"] == "Flat"
    query = faces / "bad-inputs/collected/resolution_ladder__obama-720p.jpg"
    second = lib.ingest([str(faces / "celeb/face_recognition")])
    assert second.index_rebuilt and "16 vectors" in second.index_rebuilt
    info = lib.maintenance.info()
    assert info["index_key"] == "HNSW32" and info["ntotal"] == 16 and not info["pinned"]
    # the rebuilt index is the one searched, and it is saved: a fresh open sees it
    assert lib.search(str(query), k=1).faces[0].matches[0].person == "barack_obama"
    lib.close()
    again = lookalike.open(tmp_path / "t.db")
    assert again.maintenance.info()["index_key"] == "HNSW32"
    again.close()
