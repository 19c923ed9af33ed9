"""What the command modules share: the top-level app, option types and groups, opening a
library, console, errors, output."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Iterator

import typer

from ..analysis import AnalyzerName
from ..config import shown_url
from ..store.values import Audience
from ._options import OptionGroup

if TYPE_CHECKING:
    from rich.console import Console

    from ..config import Settings
    from ..verbs.library import Library

log = logging.getLogger(__name__)

app = typer.Typer(
    name="lookalike",
    help="Who looks like me? Face look-alike search over a photo corpus "
         "(DeepFace embeddings, FAISS index, SQLite metadata).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # help texts are plain text: "[default: …]" must print, not vanish as rich markup
    rich_markup_mode=None,
)


@app.callback()
def _global_options(
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log what happens, at debug level, on stderr (default: warnings only).")] = False,
) -> None:
    # runs before every command; worker processes read the level it exports

    from .. import logs

    logs.setup(logging.DEBUG if verbose else logging.WARNING)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
AnalyzerOpt = Annotated[AnalyzerName, typer.Option(
    "--analyzer", help="auto: deepface's models when installed, else the offline ones.")]
# whom a picture is for: a group's face for the kiosk screen or a poster leaves out the
# people who withhold consent (kiosk user test, F5: only search could)
PictureAudienceOpt = Annotated[Audience, typer.Option(
    "--audience", help="Whom the picture is for: operator (every face), visitor (not the people who withhold "
                       "consent) or consented (only those who gave it).")]


def terminal(stderr: bool = False) -> Console:
    """Where a command writes for people (rich: tables, colour); ``stderr`` for what must not
    mix with ``--json`` on stdout."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn library errors into one clean line and an exit code."""
    from ..errors import LookalikeError

    try:
        yield
    except LookalikeError as err:
        log.debug("the command failed: %s", err, exc_info=True)  # -v: where it came from
        from rich.markup import escape

        # the message names files and people: their brackets are text, not rich markup
        terminal(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", markup=True, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        terminal(stderr=True).print("interrupted")
        raise typer.Exit(130) from None


PICTURE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".pdf", ".tif", ".tiff", ".webp")  # what matplotlib writes


def output(path: Path | None, flag: str, suffixes: Iterable[str] = ()) -> Path | None:
    """``path`` checked before any work is done for it: its suffix one of ``suffixes`` (when
    given), its folder there and writable. A ConfigError naming the flag otherwise, so an
    evaluation is not thrown away at its end for a plot's missing folder."""
    import os

    from ..errors import ConfigError

    if path is None:
        return None
    allowed = sorted(suffixes)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: that is a folder; name a file")
    if allowed and path.suffix.lower() not in allowed:
        raise ConfigError(f"{flag} {path}: write it as {', '.join(allowed)}, not {path.suffix or 'no suffix'!r}")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{flag} {path}: the folder {folder} cannot be written")
    return path


@contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """SIGTERM (``kill PID``, ``timeout``, a service manager) handled as Ctrl-C while the
    block runs: an ingest stops after what it stored, saves its index and says so (exit 130),
    where it died mid-batch with the index unsaved and semaphores leaked."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def counted(n: int, one: str, many: str | None = None) -> str:
    """``1 face``, ``2 faces``: a count and its noun as the count needs it."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def not_an_input(path: Path | None, flag: str, inputs: Iterable[Path]) -> None:
    """A ConfigError when the output ``path`` is one of the command's own files (a manifest
    it reads, the library's database): ``--report people.csv`` wrote the run's report over
    the manifest it was reading, ``--report lookalike.db`` over the library."""
    from ..errors import ConfigError

    if path is None:
        return
    target = path.resolve()
    for given in inputs:
        if given.resolve() == target:
            raise ConfigError(f"{flag} {path}: that is one of this command's own files ({given}); name another file")


def output_folder(path: Path | None, flag: str) -> Path | None:
    """``path`` made (with its parents) before any work; a ConfigError naming the flag if it cannot be."""
    from ..errors import ConfigError

    if path is not None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{flag} {path}: cannot be made ({err.strerror or err})") from None
    return path


@contextmanager
def writing(path: Path, flag: str | None = None) -> Iterator[None]:
    """An OSError while ``path`` is written (a full disk, a folder gone since) as a ConfigError
    naming the file (and the flag, when given), instead of a traceback."""
    from ..errors import ConfigError

    try:
        yield
    except OSError as err:
        named = f"{flag} {path}" if flag else str(path)
        raise ConfigError(f"{named}: cannot be written ({err.strerror or err})") from None


def _open(settings: Settings) -> Library:
    """The library of ``settings`` (resolved as :func:`lookalike.open` resolves them, ``--vectors``'
    text too, once: :func:`opened` looks at where it is first)."""
    from ..verbs.library import Library

    log.debug("opening the library %s", shown_url(settings.db_url))
    lib = Library(settings)
    log.debug("opened the library %s (index folder %s)", shown_url(lib.settings.db_url), lib.settings.index_dir)
    return lib


def chosen(*groups: OptionGroup, **settings: object) -> dict[str, Any]:
    """The option groups' settings and ``settings`` as one set of :func:`lookalike.open`
    arguments (``settings`` first, then the groups in order)."""
    out: dict[str, Any] = dict(settings)
    for group in groups:
        out = group.settings() | out
    return out


@contextmanager
def opened(*groups: OptionGroup, create: bool = False, **settings: object) -> Iterator[Library]:
    """The library the option groups name (:class:`LibraryOptions`, and a
    :class:`SpaceOptions` where the command takes one), closed when the block ends: also on
    an error or Ctrl-C, so its connections, index files and vector-store clients never
    outlive the command. Only a command that ``create`` s one (ingest, a key, a
    calibration) makes a missing SQLite file: `stats --db typo.db` made an empty library
    and said it held nobody."""
    from ..config import Settings
    from ..errors import NotFound
    from ..places import sqlite_path

    resolved = Settings.resolve(**chosen(*groups, **settings))
    path = sqlite_path(resolved.db_url)
    if not create and path is not None and not path.exists():
        raise NotFound(f"{path}: no library there; `lookalike ingest PHOTOS --db {path}` makes one")
    lib = _open(resolved)
    try:
        yield lib
    finally:
        lib.close()
        log.debug("closed the library %s", shown_url(lib.settings.db_url))


def print_json(data: object) -> None:
    """``--json``: the data on stdout, nothing else (rich would wrap and colour it)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

