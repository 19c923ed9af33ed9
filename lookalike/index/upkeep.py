"""When an index should be rebuilt: pure rules, run after every ingest and removal.

Two reasons, checked in this order:

1. **Tombstones.** Graph indexes (HNSW) cannot delete; removed ids are filtered at
   search time. Past ``TOMBSTONE_MAX`` of the stored vectors, searches waste that share
   of their work and the file keeps dead faces, so the index is rebuilt (same key).
2. **Size.** The library grew (or shrank) into another tier of
   :func:`lookalike.index.choice.choose`. Growth switches at once; shrinking switches
   only when the smaller tier would still hold with a third more vectors
   (``HYSTERESIS``), so a library hovering around a boundary is not rebuilt after every
   ingest and removal. A key pinned by hand (``lookalike index rebuild --key``) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from .choice import DEFAULT_BUDGET, choose

TOMBSTONE_MAX = 0.2
HYSTERESIS = 4 / 3


@dataclass(frozen=True)
class Plan:
    """What upkeep should do: ``key`` None means leave the index as it is."""

    key: str | None
    reason: str

    @property
    def rebuild(self) -> bool:
        return self.key is not None


def plan(current_key: str, pinned: bool, n: int, dim: int, tombstone_share: float,
         budget: int = DEFAULT_BUDGET) -> Plan:
    """The upkeep decision for an index of ``current_key`` holding ``n`` live vectors."""
    wanted = choose(n, dim, budget).key
    if tombstone_share > TOMBSTONE_MAX:
        key = current_key if pinned else wanted
        return Plan(key, f"{tombstone_share:.0%} of the stored vectors are removed faces "
                         f"(over {TOMBSTONE_MAX:.0%})")
    if pinned or wanted == current_key:
        return Plan(None, "index fits the library" if not pinned else f"{current_key} pinned by hand")
    if choose(int(n * HYSTERESIS), dim, budget).key == current_key:
        return Plan(None, f"{current_key} kept: the library is just under its tier")
    return Plan(wanted, f"{n:,} vectors of {dim} dimensions: {choose(n, dim, budget).reason}")
