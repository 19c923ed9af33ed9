"""``lookalike ingest``: its progress bar, summary table and CSV report."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..config import shown_url
from ..places import sqlite_files, sqlite_path
from ._common import (
    JsonOpt,
    app,
    chosen,
    not_an_input,
    one_line_errors,
    opened,
    output,
    print_json,
    terminal,
    terminated_as_interrupted,
    writing,
)
from ._options import AnalysisOptions, DbOpt, LibraryOptions, ReadingOptions, SpaceOptions, VectorsOpt, grouped

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ingest.report import Outcome


@app.command()
@grouped
def ingest(
    paths: Annotated[list[Path], typer.Argument(
        help="Folders (one sub-folder per person), photos, or CSV/TSV/JSONL manifests; "
             "with --format, the corpus's folder.")],
    lib: LibraryOptions = LibraryOptions(),
    space: SpaceOptions = SpaceOptions(),
    reading: ReadingOptions = ReadingOptions(),
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, show_default=False, help=(
        "Worker processes; 0 chooses [default: this process for under 100 photos, else one per core]."))] = 0,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="Write the per-file status table to this CSV.")] = None,
    analysis: AnalysisOptions = AnalysisOptions(),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Detect, align and embed every face of a corpus into the library. Re-runs skip what is done."""
    from ..analysis import resolve as resolve_analyzer
    from ..config import Settings
    from ..errors import ConfigError, NothingIngested
    from ..faces.pipeline import FacesMode
    from ..ingest.local import workers_first

    corpus_format, person, faces, max_pixels = reading.corpus_format, reading.person, reading.faces, reading.max_pixels
    with one_line_errors():
        output(report, "--report", (".csv",))  # an hour's ingest must not end on a report's missing folder
        skips = None
        if corpus_format is not None:  # read the corpus first: a missing identity file fails before the library opens
            from ..ingest import formats

            if person is not None:
                raise ConfigError(f"--person cannot be combined with --format {corpus_format.value}: "
                                  "the corpus names its people")
            items = formats.read(corpus_format, paths)
            if not items:
                raise NothingIngested(f"no {corpus_format.value} photos found in {', '.join(map(str, paths))}")
            skips, skipped_files = formats.skipped(items), 0
        else:
            from ..ingest import corpus

            scan = corpus.scan_photos(paths, person)
            items, skipped_files = scan.items, scan.skipped_files
        progress = None if (quiet or as_json) else _RichProgress()
        result = None
        # this command's settings as lookalike.open resolves them, without importing the library:
        # into a new library the workers start now (ingest.local.workers_first)
        settings = Settings.resolve(**chosen(lib, space, max_pixels=max_pixels))
        database = sqlite_path(settings.db_url)
        library_files = [] if database is None else sqlite_files(database)
        not_an_input(report, "--report", [*map(Path, paths), *library_files])
        estimates = resolve_analyzer(analysis.analyzer).value if analysis.analyze else None
        with terminated_as_interrupted(), \
                workers_first(settings, workers, len(items), FacesMode(faces.value), estimates) as started, \
                opened(lib, space, create=True, max_pixels=max_pixels) as library:
            try:
                result = library.ingest_items(items, faces=FacesMode(faces.value), workers=workers, progress=progress,
                                              skipped_files=skipped_files, analyzer=analysis.chosen(),
                                              started=started, refuse_empty=False)
            finally:
                if report is not None:  # also when the run failed: what was seen is reported
                    done = result.outcomes if result else (progress.outcomes if progress else [])
                    _report(report, done, failed=result is None)
            try:
                result.check_not_empty()  # after the report: it says each photo's reason
            except NothingIngested:
                if as_json:  # a script reading stdout gets the run's counts, then the error
                    print_json(result.to_dict())
                raise
            summary = result.to_dict()
            # the index as stats names it: a FAISS file, PostgreSQL's HNSW index, a Milvus collection
            summary["library"] = {"db": shown_url(library.settings.db_url), "space": library.view.space.key,
                                  "index_dir": str(library.settings.index_dir),
                                  "index": library.maintenance.info()["file"]}
        if corpus_format is not None:
            summary["format"] = {"name": corpus_format.value, "skipped": skips}
        if as_json:
            print_json(summary)
        elif not quiet:
            _print_ingest_summary(summary)
            if corpus_format is not None and skips:
                kinds = ", ".join(f"{n} {kind}" for kind, n in skips.items())
                terminal().print(f"rejected by --format {corpus_format.value}: {kinds} (each reason: --report FILE)")
        if result.interrupted:
            terminal(stderr=True).print(
                f"interrupted: {result.processed} photos saved; run the same command again to finish")
            raise typer.Exit(130)


class _RichProgress:
    """Progress bar: photos/s, faces, errors, ETA (on stderr, so --json stays clean).

    The rate is the run's own so far (photos over the time since it started, as the summary
    counts it), not rich's recent speed, which a burst of photos settled at once (unchanged on
    a re-run) made tens of thousands a second. ``get_time``: rich's clock, for the tests."""

    def __init__(self, get_time: Callable[[], float] | None = None) -> None:
        self.outcomes: list[Outcome] = []
        self.faces = 0
        self.errors = 0
        self.get_time = get_time
        self.rate = "-"  # photos/s as the bar shows it

    def start(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} photos/s"), TextColumn("faces {task.fields[faces]}"),
            TextColumn("errors {task.fields[errors]}"), TimeRemainingColumn(),
            console=terminal(stderr=True), get_time=self.get_time,
        )
        self._bar.start()
        self._task = self._bar.add_task("ingest", total=total, faces=0, errors=0, rate="-")

    def advance(self, outcome: Outcome) -> None:
        from ..ingest.report import IngestStatus

        self.outcomes.append(outcome)
        if outcome.status is IngestStatus.ok:
            self.faces += outcome.faces
        elif outcome.status in (IngestStatus.decode_error, IngestStatus.too_large, IngestStatus.error,
                                IngestStatus.rejected):
            self.errors += 1
        task = self._bar.tasks[0]
        elapsed = task.elapsed
        self.rate = f"{(task.completed + 1) / elapsed:.1f}" if elapsed else "-"
        self._bar.update(self._task, advance=1, faces=self.faces, errors=self.errors, rate=self.rate)

    def stop(self) -> None:
        self._bar.stop()


SHOWN_REFUSALS = 5  # rejected rows printed after the summary table


def _print_ingest_summary(summary: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = terminal()
    console.print(f"ingested {summary['processed']} photos in {summary['seconds']:.1f} s "
                  f"({summary['photos_per_s']} photos/s, {summary['faces']} faces)")
    table = Table()
    table.add_column("status")
    table.add_column("photos", justify="right")
    for status, n in summary["statuses"].items():
        if n:
            table.add_row(status, str(n))
    console.print(table)
    for c in summary["conflicts"]:
        console.print(f"[yellow]same photo under two people:[/] {escape(c['path'])}: {escape(c['reason'])}")
    for r in summary["profiles_refused"]:  # the photo stayed as it was: its status says nothing
        console.print(f"[yellow]profile text refused, photo kept:[/] {escape(r['reason'])}")
    refused = summary["rejected"]  # a count alone told no operator that a person's photos were not stored
    for r in refused[:SHOWN_REFUSALS]:
        console.print(f"[yellow]rejected:[/] {escape(r['path'])}: {escape(r['reason'] or '')}")
    if len(refused) > SHOWN_REFUSALS:
        console.print(f"… and {len(refused) - SHOWN_REFUSALS} more rejected (each reason: --report FILE or --json)")
    if summary.get("index_rebuilt"):
        console.print(f"index rebuilt: {summary['index_rebuilt']}")
    lib = summary["library"]
    console.print(f"library {lib['db']}  index {lib['index']}")


def _report(path: Path, outcomes: list[Outcome], failed: bool) -> None:
    """The report written; if it cannot be, a ConfigError, or (when the run itself ``failed``)
    a warning, so that the run's own error is the one the command ends with."""
    import logging

    from ..errors import ConfigError

    try:
        with writing(path, "--report"):
            _write_report(path, outcomes)
    except ConfigError as err:
        if not failed:
            raise
        logging.getLogger(__name__).warning("%s", err)


def _write_report(path: Path, outcomes: list[Outcome]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "person", "status", "reason", "faces", "sha256"])
        for o in outcomes:
            writer.writerow([o.path, o.person or "", o.status, o.reason or "", o.faces, o.sha256 or ""])


@app.command()
def worker(
    db: DbOpt = None,
    vectors: VectorsOpt = None,
    workers: Annotated[int, typer.Option(
        "--workers", "-w", min=0, show_default=False,
        help="Worker processes on this machine; 0 chooses [default: one per core].")] = 0,
    until_empty: Annotated[bool, typer.Option(
        "--until-empty", help="Stop when nothing is left to claim (default: wait for more until Ctrl-C).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Join the ingest of a PostgreSQL library from this machine: claim queued photos, embed, store.

    The photos are read at the paths `lookalike ingest` queued them under: mount the corpus
    at the same path on every worker machine."""
    import os

    from ..config import Settings
    from ..errors import ConfigError
    from ..ingest.queued import run_workers
    from ..verbs.library import serve_queue

    not_joinable = ConfigError("lookalike worker joins a PostgreSQL library (--db postgresql+psycopg://…) whose "
                               "vectors are in pgvector or a Milvus server (--vectors milvus://HOST:PORT); on "
                               "SQLite or with Milvus Lite, run lookalike ingest --workers N on the machine that "
                               "holds it")
    with one_line_errors():
        if sqlite_path(Settings.resolve(**chosen(LibraryOptions(db=db, vectors=vectors))).db_url) is not None:
            raise not_joinable  # said before a SQLite file is looked for
        with opened(LibraryOptions(db=db, vectors=vectors)) as lib:  # only to check and resolve its settings
            queued, settings = lib.backend.queued_ingest, lib.settings
        if not queued:
            raise not_joinable
        n = workers or os.cpu_count() or 1
        total, failed = run_workers(settings, n, until_empty, serve_queue)
        summary = total.to_dict() | {"workers": n, "failed_workers": failed}
        if as_json:
            print_json(summary)
        else:
            terminal().print(f"{summary['photos']} photos, {summary['faces']} faces in {summary['seconds']:.1f} s "
                             f"by {n} workers ({summary['photos_per_s']} photos/s); statuses {summary['statuses']}")
        if failed:
            raise typer.Exit(1)
