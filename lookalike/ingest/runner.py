"""The ingest runner: scan -> read and decide -> map -> write, each stage entered once.

* **scan** (:mod:`.corpus`, :mod:`.formats`): files, folders and manifests become
  :class:`.corpus.Item` s; the library scans, then hands the items here.
* **read and decide** (:class:`.reader.Reader`, this process): each file is read once and
  hashed, and the database decides whether it is new, unchanged (skipped: re-runs are
  free), changed (re-done) or a byte-for-byte duplicate. What needs no mapper is settled
  at once; the rest become :class:`.report.Task` s.
* **map** (a :class:`Distributor`): decode -> detect -> align -> embed
  (:class:`.mapper.Mapper`), in this process (:class:`.local.InProcess`), in worker
  processes (:class:`.local.ProcessPool`), or by workers claiming the rows of the
  PostgreSQL queue (:class:`.queued.PostgresQueue`), which also store what they map.
* **write** (:class:`.writer.Writer`, the only writer of this process): one transaction
  per batch of photos, *then* the vectors go into the index, saved every few seconds and
  at the end.

Because the database commits first and the index is rebuilt from its blobs, a crash or
SIGKILL at any moment loses nothing committed: the next run skips what is in the
database, re-does what is not, and tops the index up.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from .. import places
from ..errors import ConfigError
from ..faces.pipeline import FacesMode
from .corpus import Rejection
from .reader import Reader, Reading, once_each
from .report import IngestReport, Progress, Silent, Task
from .writer import Writer

if TYPE_CHECKING:
    from ..analysis import AnalyzerName
    from ..faces.pipeline import Space
    from .corpus import Item
    from .local import StartedWorkers
    from .protocol import IngestTarget
    from .queued import WorkerMain

READ_CHUNK = 256  # photos the reader looks up in the database with one query


@dataclass(frozen=True)
class IngestOptions:
    faces: FacesMode = FacesMode.largest
    workers: int = 0  # 0 = decide (:func:`.local.plan_workers`); N = N worker processes
    batch: int = 32  # photos per database transaction
    save_every: float = 20.0  # seconds between index saves
    analyzer: AnalyzerName | None = None  # estimate age / gender / emotion of each face (opt-in)

    @property
    def analyzer_name(self) -> str | None:
        """The analyzer's name as it travels to worker processes and queue rows."""
        return self.analyzer.value if self.analyzer is not None else None


def options(space: Space, faces: FacesMode, workers: int, analyzer: AnalyzerName | str | None) -> IngestOptions:
    """A run's options, once the weights it needs are known to be there: a missing file
    fails here, with the install command, not in every worker."""
    from ..models import registry

    try:  # the Python API takes the plain strings too
        faces = FacesMode(faces)
    except ValueError:
        raise ConfigError(f"faces={faces!r}: one of {', '.join(m.value for m in FacesMode)}") from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers={workers!r}: a number of worker processes, 0 to choose")
    registry.require(*space.names)
    resolved = None
    if analyzer is not None:
        from .. import analysis

        resolved = analysis.resolve(analysis.AnalyzerName.named(analyzer))
        registry.require(*analysis.required_weights(resolved))
    return IngestOptions(faces=faces, workers=workers, analyzer=resolved)


class Distributor(Protocol):
    """Where the reader's tasks are mapped. Results come back to the writer: mapped photos
    through :meth:`.writer.Writer.take` (stored by it), or, when the workers store them
    themselves (the PostgreSQL queue), as outcomes through :meth:`.writer.Writer.record`."""

    def send(self, tasks: list[Task], writer: Writer) -> None:
        """Hand tasks over; results already finished go to ``writer``."""
        ...

    def finish(self, writer: Writer) -> None:
        """Wait until every task sent is done, its result with ``writer``."""
        ...

    def close(self, writer: Writer, interrupted: bool) -> None:
        """Stop the workers (after the writer's last flush, also after Ctrl-C or an error)."""
        ...


def distributor(target: IngestTarget, options: IngestOptions, photos: int,
                started: StartedWorkers | None = None) -> Distributor:
    """The distributor for a run over ``photos`` files whose mapped faces this process
    stores: this process or a pool (:func:`.local.plan_workers`), the ``started`` workers
    if there are any (:func:`.local.start_workers`)."""
    from . import local

    workers = local.plan_workers(options.workers, photos, os.cpu_count() or 1)
    return local.ProcessPool(target, options, workers, started) if workers else local.InProcess(target, options)


def queue_distributor(target: IngestTarget, options: IngestOptions, photos: int, worker: WorkerMain) -> Distributor:
    """The distributor of a library whose workers store what they map themselves: the
    PostgreSQL queue (:class:`.queued.PostgresQueue`), served by processes that run
    ``worker`` (:func:`.local.plan_queue_workers` of them)."""
    from . import local
    from .queued import PostgresQueue

    return PostgresQueue(target, options, local.plan_queue_workers(options.workers, photos, os.cpu_count() or 1),
                         worker)


def _not_a_library_file(item: Item, own: frozenset[str]) -> Item:
    """``item``, refused when it names one of the library's own files (:func:`places.library_files`):
    a manifest row pointing at ``lookalike.db`` would have it read as a photo."""
    # the name first: a path is resolved (a system call) only when it is named like one of them
    if item.rejected is None and any(item.path.endswith(os.path.basename(f)) for f in own) \
            and os.path.realpath(item.path) in own:
        return replace(item, rejected=Rejection("the library's own database file, not a photo", where=item.path))
    return item


def run(target: IngestTarget, items: list[Item], options: IngestOptions, distributor: Distributor,
        progress: Progress | None = None, skipped_files: int = 0) -> IngestReport:
    """Ingest the scanned ``items`` into ``target`` (the library's current space), mapping
    through ``distributor``."""
    progress = progress or Silent()
    report = IngestReport(skipped_files=skipped_files)
    started = time.perf_counter()
    target.row.ensure_space()  # the first ingest of a space makes its row
    writer = Writer(target, report, progress, options)
    reader = Reader(target, writer, Reading(options.faces, options.analyzer is not None))
    progress.start(len(items))
    own = places.library_files(target.settings.db_url)
    items = [_not_a_library_file(item, own) for item in items] if own else items
    items, repeated, withholding = once_each(items)
    for outcome in repeated:
        writer.record(outcome)
    reader.withhold(withholding)
    try:
        for start in range(0, len(items), READ_CHUNK):
            distributor.send(reader.read(items[start:start + READ_CHUNK]), writer)
        distributor.finish(writer)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        writer.flush(force_save=True)
        distributor.close(writer, report.interrupted)
        progress.stop()
    report.seconds = time.perf_counter() - started
    return report
