"""Read and decide: is a photo new, unchanged, or a duplicate of another?

The runner's :class:`Reader` asks it for each file it reads (and settles every photo that
needs no mapper: rejected, unreadable, unchanged, duplicate); a queue worker asks
:func:`decide` again for each photo it claims.

A photo is *unchanged* when a row at its path holds the same bytes, read as this run would
read them (:func:`read_again`: same person, faces mode, analysis; not an error or a photo
too large to retry); a *duplicate* when the same bytes are already stored, or earlier in
this run, under another path (a *conflict* when filed under another person); otherwise
it goes to the mapper, replacing the old row of a changed file.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from ..faces.pipeline import FacesMode
from ..store import person_rows, photo_rows
from ..store.values import PhotoStatus
from .corpus import PROFILE_REFUSED, Item
from .report import IngestStatus, Outcome, Processed, Task

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..store.photo_rows import Known
    from .protocol import IngestTarget


log = logging.getLogger(__name__)


class Seen(enum.Enum):
    """How the database has seen a file read for ingest (not a search's
    :class:`lookalike.query.search.Verdict`, which says how alike two faces are)."""

    new = "new"  # to the mapper
    unchanged = "unchanged"
    duplicate = "duplicate"


@dataclass(frozen=True)
class Decision:
    seen: Seen
    replaces: bool  # a row for this path exists (changed file, or an error retried)
    reason: str = ""  # new: why a stored photo is read again ("" for a photo not stored)
    conflict: bool = False
    original: str = ""  # duplicate: the path of the first copy
    keeps: bool = False  # new, read again with faces stored: a failed read keeps them (Task.keep)


@dataclass(frozen=True)
class Reading:
    """What a run reads photos with; a photo stored from another reading is read again."""

    faces: FacesMode
    analyzes: bool  # the run estimates age / gender / emotion


def refiles(item: Item, old: Known) -> bool:
    """Whether this run files a stored photo under another person: only when it names the
    person itself (a manifest row, ``--person``), or the photo was filed under no one. A
    folder's name never moves a photo a manifest filed (``Alice`` in the manifest, the folder
    ``alice``: moved to a new person whose consent nobody stated, her face was shown)."""
    return bool(item.person) and old.person != item.person and (item.named or old.person is None)


def read_again(item: Item, old: Known, reading: Reading) -> str:
    """Why a photo stored with these bytes is read again by this run ("" when it is not): a
    run that files it under another person (:func:`refiles`), a photo too large for an
    earlier run's ``--max-pixels`` (the limit may have been raised; refused again at its
    header otherwise), ``--faces all`` on a photo read for its largest face (never the other
    way: a plain re-run, ``largest`` by default, would drop a group photo's other faces),
    ``--analyze`` on faces stored without estimates. Only what it was stored with decides; a
    row from before the options were stored (``faces_mode`` NULL) is never read again for
    its mode."""
    why = []
    if refiles(item, old):
        why.append(f"filed under {old.person!r} before" if old.person else "filed under no one before")
    if old.status == PhotoStatus.too_large.value:
        why.append("too large for an earlier run's --max-pixels")
    if old.status == PhotoStatus.ok.value:
        # an upload (alone) is never read for every face: each would be filed under its person
        if old.faces_mode == FacesMode.largest.value and reading.faces is FacesMode.all:
            why.append("stored with --faces largest")
        if reading.analyzes and not old.analyzed:
            why.append("its faces had no estimates")
    return "read again: " + ", ".join(why) if why else ""


def filed(item: Item, old: Known | None) -> str | None:
    """The person a photo is filed under after this run: the stored one unless the run
    refiles it (:func:`refiles`; a folder's name never does), else the run's."""
    return old.person if old is not None and old.person and not refiles(item, old) else item.person


def read_file(path: str) -> tuple[bytes, str]:
    """The file's bytes and their sha256 (raises ``OSError``)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return data, hashlib.sha256(data).hexdigest()


def decide(item: Item, sha: str, old: Known | None, first: Known | None, earlier: Item | None,
           reading: Reading) -> Decision:
    """``old``: the stored row at ``item.path`` (``photo_rows.known_by_path``), ``first``: the
    first stored photo with these bytes (``photo_rows.first_by_sha``), ``earlier``: a photo with
    these bytes met earlier in this run; each may be ``None``. ``reading``: the run's options."""
    replaces = old is not None
    again = ""
    # a duplicate whose original is gone (removed since) is decided again: it stayed a
    # duplicate of nothing, its face in no one's gallery
    orphaned = old is not None and old.status == PhotoStatus.duplicate.value and first is None
    if old is not None and old.sha256 == sha and old.status != PhotoStatus.error.value and not orphaned:
        again = read_again(item, old, reading)
        if not again:
            return Decision(Seen.unchanged, replaces, old.status)
    if first is not None and first.path != item.path:
        original, person = first.path, first.person
        if earlier is not None and earlier.path == first.path:  # refiled earlier in this run: filed as it is now
            person = earlier.person
    elif earlier is not None and earlier.path != item.path:
        original, person = earlier.path, earlier.person
    else:
        return Decision(Seen.new, replaces, again, keeps=bool(again) and old is not None
                        and old.status == PhotoStatus.ok.value)
    conflict = bool(person and item.person and person != item.person)
    reason = f"same bytes as {original}"
    if conflict:
        reason += f", filed under another person ({person!r} vs {item.person!r})"
    return Decision(Seen.duplicate, replaces, reason, conflict, original)


_RETRIED = (PhotoStatus.decode_error.value, PhotoStatus.error.value)


def unreadable(item: Item, why: str, old: Known | None, where: str = "") -> Processed:
    """A photo whose file cannot be read now (gone, unmounted, no permission): a row it left
    before that holds what was read from it (faces, no face, a duplicate) is kept and the
    run says why (a file moved away must not take its person's faces with it: removal is
    ``lookalike remove``'s); with no row, or an error row, the failure is stored, replacing
    the old one (a second run inserted it again: an IntegrityError). The kept row's answer
    is ``unchanged``: reported, never stored."""
    if old is not None and old.status not in _RETRIED:
        return Processed(item.path, item.person, None, old.sha256, None, IngestStatus.unchanged,
                         f"cannot be read now{where} ({why}); what was stored from it before is kept")
    return Processed.settled(item, PhotoStatus.decode_error, f"cannot be read{where} ({why})",
                             replaces=old is not None)


def once_each(items: list[Item]) -> tuple[list[Item], list[Outcome], set[str]]:
    """Each path once: its first mention is ingested, a later one (a folder and a file in it,
    one file named twice, a manifest row repeated) is reported and not stored — a second
    row at one path was an IntegrityError that lost the whole batch. A later row refused
    for its own problem says that problem, with its line; one after a refused first mention
    says the first decides (both were "ingested once", though nothing was: kiosk user test,
    F4). Also returns the people a dropped refused row withholds consent for: consent
    narrows on any row (:meth:`Reader.withhold`)."""
    first: dict[str, Item] = {}
    kept: list[Item] = []
    again: list[Outcome] = []
    withholding: set[str] = set()
    for item in items:
        earlier = first.setdefault(item.path, item)
        if earlier is item:
            kept.append(item)
            continue
        if item.rejected:
            if _withholds(item) and item.person:
                withholding.add(item.person)
            again.append(Outcome(item.path, item.person, IngestStatus.rejected,
                                 f"{item.rejected}; named again in this run, not stored", 0, None))
            continue
        if item.person and item.profile is not None and item.profile.consent_display is False:
            withholding.add(item.person)  # consent narrows on any row, a repeated one too (review, M9)
        conflict = bool(item.person and earlier.person and item.person != earlier.person)
        if earlier.rejected:
            reason = (f"named twice in this run; its first mention was refused ({earlier.rejected}), "
                      "and that decides: fix or remove that row")
        else:
            reason = "named twice in this run: ingested once, as its first mention"
        if conflict:
            reason += f" (under {earlier.person!r}, not {item.person!r})"
        again.append(Outcome(item.path, item.person, IngestStatus.duplicate, reason, 0, None, conflict))
    return kept, again, withholding


def _every_face(old: Known | None) -> str | None:
    """``all`` for a photo stored with every face: read again (for estimates, another person, a
    changed file), it keeps them, whatever this run's ``--faces`` (``largest`` by default)."""
    kept = (FacesMode.all.value, FacesMode.alone.value)  # an upload stays read alone too
    return old.faces_mode if old is not None and old.faces_mode in kept else None


def duplicate_reason(d: Decision, item: Item) -> str:
    """A duplicate's reason; a conflict whose first copy is gone from disk was most likely
    moved to file it under the right person, and the reason says how that is done (the
    stored photo is kept: its faces are never dropped because a path is missing)."""
    if not d.conflict or os.path.exists(d.original):
        return d.reason
    return (f"{d.reason}; {d.original} is gone from disk: to file the photo under {item.person!r}, "
            f"run `lookalike remove --photo {d.original}` and ingest again")


class Settles(Protocol):
    """Where the reader sends what it settles itself: the writer."""

    def take(self, result: Processed) -> None: ...
    def record(self, outcome: Outcome) -> None: ...


def _withholds(item: Item) -> bool:
    """A manifest row refused for its text that still says its person is not to be displayed
    (corpus.WITHDRAWN: the only profile a refused row carries)."""
    return item.profile is not None and item.rejected is not None and item.rejected.kind == PROFILE_REFUSED


class Reader:
    """The runner's reader: bytes and hash of each photo, :func:`decide` against the
    database; what needs no mapper goes straight to ``sink``, the rest become tasks."""

    def __init__(self, target: IngestTarget, sink: Settles, reading: Reading) -> None:
        self.target, self.sink, self.reading = target, sink, reading
        self.in_flight: dict[str, Item] = {}  # bytes met earlier in this run
        self.people: dict[str, int] = {}
        self.withheld: set[str] = set()  # people a refused row of this run withheld: no row widens it

    def withhold(self, people: set[str]) -> None:
        """The people a refused row withholds consent for, where the row itself is not read
        (a path named again: :func:`once_each`): created if new, withheld, and no later row of
        the run widens it."""
        if people:
            with self.target.session() as session:
                for person in sorted(people):
                    person_rows.upsert_person(session, person, None, self.people)
                    person_rows.set_consent(session, person, False)
                session.commit()
            self.withheld |= people

    def read(self, items: list[Item]) -> list[Task]:
        """Bytes + hash of each new or changed photo; the rest is settled here."""
        loaded: list[tuple[Item, str, bytes]] = []
        failed: list[tuple[Item, str]] = []
        rejected = [item for item in items if item.rejected]
        before: dict[str, photo_rows.Known] = {}
        withdrawn: set[str] = set()
        if rejected:  # a re-run meets them again: a rejected row stays, any other is replaced
            with self.target.session() as session:
                before = photo_rows.known_by_path(session, self.target.row.space_id, [item.path for item in rejected])
                # a refused row's one word that still counts: its person is not to be displayed
                # (its profile is then corpus.WITHDRAWN; consent narrows on any row, and only a
                # row whose text is stored can widen it). A person new in this run is created
                # withheld: the word was lost when nobody had the name yet, and a later row
                # without a profile made them a person whose consent was never stated (shown)
                for person in sorted({item.person for item in rejected if item.person and _withholds(item)}):
                    person_rows.upsert_person(session, person, None, self.people)
                    person_rows.set_consent(session, person, False)
                    withdrawn.add(person)
                session.commit()
        self.withheld |= withdrawn
        for item in items:
            if not item.rejected and item.person in self.withheld and item.profile is not None \
                    and item.profile.consent_display is not False:
                item = replace(item, profile=replace(item.profile, consent_display=False))  # narrowed
            if item.rejected:
                old = before.get(item.path)
                refused_text = item.rejected.kind == PROFILE_REFUSED
                reason = str(item.rejected)
                if _withholds(item) and item.person in withdrawn:
                    reason += "; the row withholds consent: that is recorded, the rest of its text is not"
                item = replace(item, profile=None)  # nothing else of a refused row is written
                if old is not None and (refused_text or old.status == PhotoStatus.rejected.value):
                    # bad text loses no stored photo; a rejected row stays as it was
                    kept = refused_text and old.status != PhotoStatus.rejected.value
                    self.sink.record(Outcome(item.path, item.person, IngestStatus.unchanged, reason, 0, None,
                                             text_refused=kept))
                else:
                    self.sink.take(Processed.settled(item, PhotoStatus.rejected, reason, replaces=old is not None))
                continue
            try:
                data, sha = read_file(item.path)
            except OSError as err:
                failed.append((item, err.strerror or str(err)))
                continue
            loaded.append((item, sha, data))
        with self.target.session() as session:
            known = photo_rows.known_by_path(session, self.target.row.space_id,
                                             [i.path for i, _, _ in loaded] + [i.path for i, _ in failed])
            for item, why in failed:
                settled = unreadable(item, why, known.get(item.path))
                if settled.status is IngestStatus.unchanged:
                    self.sink.record(settled.outcome())
                else:
                    self.sink.take(settled)
            firsts = photo_rows.first_by_sha(session, self.target.row.space_id, [sha for _, sha, _ in loaded])
            profiles_changed = False
            tasks: list[Task] = []
            for item, sha, data in loaded:
                old = known.get(item.path)
                d = decide(item, sha, old, firsts.get(sha), self.in_flight.get(sha), self.reading)
                if d.seen is Seen.unchanged:
                    if item.profile is not None and item.person:  # a manifest may update profiles
                        person_rows.upsert_person(session, item.person, item.profile, self.people)
                        profiles_changed = True
                    where, reason = filed(item, old), d.reason
                    if where != item.person and item.person:
                        reason += (f"; filed under {where!r}, not the folder's {item.person!r} "
                                   "(a manifest row or --person refiles it)")
                    self.sink.record(Outcome(item.path, where, IngestStatus.unchanged, reason, 0, sha))
                elif d.seen is Seen.duplicate:
                    self.sink.take(Processed.settled(item, PhotoStatus.duplicate, duplicate_reason(d, item), sha256=sha,
                                                     size=len(data), replaces=d.replaces, conflict=d.conflict))
                else:
                    if (where := filed(item, old)) != item.person:
                        # a folder's name, the file changed or read again: it stays where it is filed
                        item = replace(item, person=where, profile=None)
                    self.in_flight[sha] = item
                    if old is not None and old.withheld and old.person and refiles(item, old):
                        item = self._withheld_along(session, item, old.person)
                        profiles_changed = True
                    tasks.append(Task(item, sha, len(data), data, d.replaces, d.reason, d.keeps, _every_face(old)))
            if profiles_changed:
                session.commit()
        return tasks

    def _withheld_along(self, session: Session, item: Item, old: str) -> Item:
        """A photo refiled from ``old``, who withholds consent, to a person whose consent the
        run does not state: they withhold it too (recorded now, and said; a row that states it
        decides), so moving a photo never shows a face that was not shown."""
        person = item.person
        if person is None or (item.profile is not None and item.profile.consent_display is not None):
            return item
        if item.profile is not None:  # a public corpus's profile says "never stated": not here
            item = replace(item, profile=replace(item.profile, consent_display=False))
        if person_rows.withhold_unless_stated(session, person, self.people) or item.profile is not None:
            log.warning("%s: refiled from %r, who withholds consent to be displayed: so does %r now, "
                        "until a manifest row states theirs", item.path, old, person)
        return item
