"""The reader's one decision: is a photo new, unchanged, or a duplicate of another?

Both runners ask it: the local one for each file it reads, a queue worker for each photo
it claims. A photo is *unchanged* when a row at its path holds the same bytes (and is not
an error to retry); a *duplicate* when the same bytes are already stored, or earlier in
this run, under another path (a *conflict* when filed under another person); otherwise
it goes to the mapper, replacing the old row of a changed file.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..store.schema import PhotoStatus
from .corpus import Item

if TYPE_CHECKING:
    from ..store.photo_rows import Known


class Verdict(enum.Enum):
    new = "new"  # to the mapper
    unchanged = "unchanged"
    duplicate = "duplicate"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    replaces: bool  # a row for this path exists (changed file, or an error retried)
    reason: str = ""
    conflict: bool = False


def read_file(path: str) -> tuple[bytes, str]:
    """The file's bytes and their sha256 (raises ``OSError``)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return data, hashlib.sha256(data).hexdigest()


def decide(item: Item, sha: str, old: Known | None, first: Known | None, earlier: Item | None) -> Decision:
    """``old``: the stored row at ``item.path`` (``photo_rows.known_by_path``), ``first``: the
    first stored photo with these bytes (``photo_rows.first_by_sha``), ``earlier``: a photo with
    these bytes met earlier in this run; each may be ``None``."""
    replaces = old is not None
    if old is not None and old.sha256 == sha and old.status != PhotoStatus.error.value:
        return Decision(Verdict.unchanged, replaces, old.status)
    if first is not None and first.path != item.path:
        original, person = first.path, first.person
    elif earlier is not None and earlier.path != item.path:
        original, person = earlier.path, earlier.person
    else:
        return Decision(Verdict.new, replaces)
    conflict = bool(person and item.person and person != item.person)
    reason = f"same bytes as {original}"
    if conflict:
        reason += f", filed under another person ({person!r} vs {item.person!r})"
    return Decision(Verdict.duplicate, replaces, reason, conflict)
