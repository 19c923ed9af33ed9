"""What an ingest says about each photo and about the run: the types every stage shares."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ..store.profiles import Profile
from ..store.values import FaceFound, PhotoStatus
from .corpus import Item


class IngestStatus(StrEnum):
    """What a run says of a photo: the status it is stored with (:class:`PhotoStatus`, the
    same values), or ``unchanged``, skipped by a re-run. Prints, serialises and compares as
    its value, so summaries, reports and stored rows read as before."""

    ok = "ok"
    no_face = "no_face"
    decode_error = "decode_error"
    too_large = "too_large"
    duplicate = "duplicate"
    rejected = "rejected"
    error = "error"
    unchanged = "unchanged"

    @classmethod
    def of(cls, status: PhotoStatus | str) -> IngestStatus:
        """The run's status for a stored one (or for its value, as read back from a row)."""
        return cls(str(status))


@dataclass(frozen=True)
class Task:
    """A photo the reader hands to a mapper (or to the PostgreSQL queue): new or changed,
    read and hashed, not yet decoded. Picklable: it travels to the pool's processes."""

    item: Item
    sha256: str
    size: int
    data: bytes
    replaces: bool  # a row for this path exists (changed file, or an error retried)
    again: str = ""  # why a stored photo is read again (another person, faces mode, analysis)
    keep: bool = False  # a stored photo with faces, read again: kept as it was if this read fails
    faces: str | None = None  # the faces mode it is read with instead of the run's (a photo stored with all)

    @property
    def path(self) -> str:
        return self.item.path

    @property
    def person(self) -> str | None:
        return self.item.person


@dataclass
class Processed:
    """What the mapper made of one photo (small and picklable)."""

    path: str
    person: str | None
    profile: Profile | None
    sha256: str | None
    size: int | None
    status: IngestStatus
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    faces: list[FaceFound] = field(default_factory=list)  # (bbox, confidence, vector, estimate, landmarks)
    replaces: bool = False  # a row for this path exists (changed file, or an error retried)
    conflict: bool = False  # a duplicate filed under another person than the first copy
    faces_mode: str | None = None  # what the models read it with (None: not read by them)
    analyzed: bool = False  # its faces were given estimates

    def outcome(self) -> Outcome:
        """The report's line of it."""
        return Outcome(self.path, self.person, self.status, self.reason, len(self.faces), self.sha256, self.conflict)

    @classmethod
    def settled(cls, item: Item, status: PhotoStatus, reason: str, *, sha256: str | None = None,
                size: int | None = None, replaces: bool = False, conflict: bool = False) -> Processed:
        """A photo decided without the mapper (rejected, unreadable, duplicate, worker died)."""
        return cls(item.path, item.person, item.profile, sha256, size, IngestStatus.of(status), reason,
                   replaces=replaces, conflict=conflict)


@dataclass
class Outcome:
    """One line of the per-file report."""

    path: str
    person: str | None
    status: IngestStatus
    reason: str | None
    faces: int
    sha256: str | None
    conflict: bool = False
    text_refused: bool = False  # a manifest row's profile text refused, the photo stored before kept


@dataclass
class IngestReport:
    """Summary of one ingest run."""

    outcomes: list[Outcome] = field(default_factory=list)
    skipped_files: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    index_rebuilt: str | None = None  # why upkeep rebuilt the index after this run, if it did

    @property
    def statuses(self) -> dict[str, int]:
        counts = Counter(o.status for o in self.outcomes)
        return {s.value: counts.get(s, 0) for s in IngestStatus}

    @property
    def faces(self) -> int:
        return sum(o.faces for o in self.outcomes if o.status is IngestStatus.ok)

    @property
    def processed(self) -> int:
        return sum(1 for o in self.outcomes if o.status is not IngestStatus.unchanged)

    def check_not_empty(self) -> None:
        """:class:`NothingIngested` when a finished run stored not one photo and found none
        stored before: the caller's report of each file's reason comes first."""
        from ..errors import NothingIngested

        statuses = self.statuses
        if not self.interrupted and statuses["ok"] == 0 and statuses["unchanged"] == 0:
            raise NothingIngested(f"not one photo could be ingested ({self.processed} tried: " +
                                  ", ".join(f"{n} {s}" for s, n in statuses.items() if n) + ")")

    @property
    def conflicts(self) -> list[Outcome]:
        """Duplicates filed under a different person than the first copy."""
        return [o for o in self.outcomes if o.conflict]

    @property
    def profiles_refused(self) -> list[Outcome]:
        """Rows whose profile text was refused while their stored photo was kept: reported
        apart, since their status (unchanged) says nothing of it."""
        return [o for o in self.outcomes if o.text_refused]

    def to_dict(self) -> dict:
        rate = self.processed / self.seconds if self.seconds > 0 else 0.0
        return {
            "photos": len(self.outcomes),
            "processed": self.processed,
            "faces": self.faces,
            "statuses": self.statuses,
            "skipped_files": self.skipped_files,
            "seconds": round(self.seconds, 3),
            "photos_per_s": round(rate, 2),
            "faces_per_s": round(self.faces / self.seconds, 2) if self.seconds > 0 else 0.0,
            "interrupted": self.interrupted,
            "index_rebuilt": self.index_rebuilt,
            "conflicts": [{"path": o.path, "person": o.person, "reason": o.reason}
                          for o in self.conflicts],
            "profiles_refused": [{"path": o.path, "person": o.person, "reason": o.reason}
                                 for o in self.profiles_refused],
            # manifest rows and photos refused before any model ran: each reason, with its line
            "rejected": [{"path": o.path, "person": o.person, "reason": o.reason}
                         for o in self.outcomes if o.status is IngestStatus.rejected],
        }


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, outcome: Outcome) -> None: ...
    def stop(self) -> None: ...


class Silent:
    """No progress shown (the library API's default)."""

    def start(self, total: int) -> None: pass
    def advance(self, outcome: Outcome) -> None: pass
    def stop(self) -> None: pass
