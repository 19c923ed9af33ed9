"""Option groups: flags several commands share, declared once and handed over as one typed value.

A group is a frozen dataclass whose fields carry their typer declarations. A command names
the group once (``lib: LibraryOptions = LibraryOptions()``) and :func:`grouped` puts the
group's options in its place in the command's signature, so ``--help`` lists them where the
command put them, and builds the dataclass again from the parsed values before the command
runs. Every command then sees the same names, help and defaults, and a change to one of them
is made here, once.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, ParamSpec, TypeVar, get_type_hints

import typer

from ..analysis import AnalyzerName
from ..config import MAX_SEARCH_STRENGTH
from ..ingest.formats_common import CorpusFormat
from ..serve.settings import (
    DEFAULT_BODY_WAIT,
    DEFAULT_MAX_BODIES,
    DEFAULT_MAX_MEGAPIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_RATE,
    DEFAULT_READ_SECONDS,
)
from ..store.values import Audience

if TYPE_CHECKING:
    from ..query.facemath import Group

DbOpt = Annotated[Optional[str], typer.Option(
    "--db", help="Library database: a path or SQLAlchemy URL [env LOOKALIKE_DB; default lookalike.db]")]
IndexDirOpt = Annotated[Optional[Path], typer.Option(
    "--index-dir", help="Index folder [default: NAME.indexes/ beside NAME.db; indexes/ for lookalike.db]")]
VectorsOpt = Annotated[Optional[str], typer.Option(
    "--vectors", help="Where the vectors are searched: faiss, pgvector, milvus-lite:PATH or milvus://HOST:PORT "
                      "[env LOOKALIKE_VECTORS; default faiss with SQLite, pgvector with PostgreSQL]")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", help="DeepFace recognition model [default: the library's, else SFace; reembed: the default "
                    "stack, SFace + yunet + arcface]")]
DetectorOpt = Annotated[Optional[str], typer.Option(
    "--detector", help="Face detector [default: the library's, else yunet]")]
AlignerOpt = Annotated[Optional[str], typer.Option(
    "--aligner", help="arcface (5-landmark similarity transform), chip (dlib 5-point chip) or eyes "
                      "(DeepFace) [default: the library's, else arcface]")]


class OptionGroup:
    """A frozen dataclass whose fields are typer options that :func:`grouped` spreads out,
    each named like the :func:`lookalike.open` / ``Settings.resolve`` argument it sets."""

    def settings(self) -> dict[str, Any]:
        """The group as keyword arguments of :func:`lookalike.open` / ``Settings.resolve``
        (each field's type is that argument's)."""
        return dict(vars(self))


@dataclass(frozen=True)
class LibraryOptions(OptionGroup):
    """Which library: ``--db``, ``--index-dir``, ``--vectors`` (each unset means: the
    environment's, else the default; :func:`lookalike.open` decides)."""

    db: DbOpt = None
    index_dir: IndexDirOpt = None
    vectors: VectorsOpt = None


@dataclass(frozen=True)
class SpaceOptions(OptionGroup):
    """Which embedding space: ``--model``, ``--detector``, ``--aligner`` (unset: the library's)."""

    model: ModelOpt = None
    detector: DetectorOpt = None
    aligner: AlignerOpt = None


@dataclass(frozen=True)
class ServeLimits(OptionGroup):
    """What one request may cost the HTTP API (``lookalike serve``): each field is named like
    the :class:`lookalike.serve.settings.ServeSettings` field it sets."""

    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", min=1, help="Largest photo, in MB.")] \
        = DEFAULT_MAX_UPLOAD_MB
    max_megapixels: Annotated[int, typer.Option(
        "--max-megapixels", min=1, help="Largest photo once decoded, in megapixels.")] = DEFAULT_MAX_MEGAPIXELS
    rate_per_minute: Annotated[int, typer.Option(
        "--rate", min=0, help="Requests per minute per key (or per address with --open-search); 0 = no limit.")] \
        = DEFAULT_RATE
    max_bodies: Annotated[int, typer.Option(
        "--max-bodies", min=1, help="Requests with a body (photos, JSON) read and served at once per process; "
                                    "more wait up to --body-wait seconds, then get 503.")] = DEFAULT_MAX_BODIES
    body_wait: Annotated[int, typer.Option(
        "--body-wait", min=0, help="Seconds a request over --max-bodies waits for a place (0: 503 at once).")] \
        = DEFAULT_BODY_WAIT
    read_seconds: Annotated[int, typer.Option(
        "--read-timeout", min=1, help="Seconds a request's head may take to arrive, and a body's grace before it "
                                      "must average 8 kB/s; slower clients get 408. An idle kept-alive "
                                      "connection is closed after as long.")] = DEFAULT_READ_SECONDS


class FacesChoice(str, Enum):
    largest = "largest"
    all = "all"


@dataclass(frozen=True)
class ReadingOptions(OptionGroup):
    """How ingest reads its PATHS: ``--format``, ``--person``, ``--faces``, ``--max-pixels``."""

    corpus_format: Annotated[Optional[CorpusFormat], typer.Option(
        "--format", help="Read PATHS as this public corpus, as downloaded: its names, identity files and "
                         "labels become people and profile tags (docs/data.md: Public celebrity corpora) "
                         "[default: folders and manifests].")] = None
    person: Annotated[Optional[str], typer.Option(
        "--person", help="File every photo under this person instead of its folder's name.")] = None
    faces: Annotated[FacesChoice, typer.Option(
        "--faces", help="Keep the largest face of each photo, or all.")] = FacesChoice.largest
    max_pixels: Annotated[Optional[int], typer.Option(
        "--max-pixels", min=1, show_default=False,
        help="Refuse larger photos (decompression-bomb guard) [default: 100,000,000; LOOKALIKE_MAX_PIXELS].")] = None


@dataclass(frozen=True)
class WhoseFace(OptionGroup):
    """Whose average face ``lookalike average`` draws: ``--person``, ``--group`` or ``--corpus``."""

    person: Annotated[Optional[str], typer.Option("--person", help="The average face of this person.")] = None
    group: Annotated[Optional[str], typer.Option(
        "--group", help="The average face of GROUP (tag:…, age:60-, emotion:…, person:…; at least 5 people).")
    ] = None
    corpus: Annotated[bool, typer.Option("--corpus", help="The average face of the whole library.")] = False

    def chosen(self) -> Group | None:
        """The group named (None: the corpus); exactly one of the three must be given."""
        from ..errors import ConfigError
        from ..query.facemath import Group, GroupKind

        if sum((self.person is not None, self.group is not None, self.corpus)) != 1:
            raise ConfigError("name exactly one of --person NAME, --group GROUP or --corpus")
        if self.person is not None:
            return Group(GroupKind.person, self.person)
        return Group.parse(self.group) if self.group else None


class ByChoice(str, Enum):
    face = "face"
    centroid = "centroid"


@dataclass(frozen=True)
class RankOptions(OptionGroup):
    """How a search ranks: ``-k``, ``--per-person/--per-face``, ``--by``."""

    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Matches per face.")] = 5
    per_person: Annotated[bool, typer.Option(
        "--per-person/--per-face", help="Best face per person (people-facing output), or every face.")] = False
    by: Annotated[ByChoice, typer.Option(
        "--by", help="Rank single faces, or people by their average face (centroid).")] = ByChoice.face


@dataclass(frozen=True)
class WhomOptions(OptionGroup):
    """Whose faces an answer is made of: ``--filter``, ``--consented-only``, ``--audience``."""

    filters: Annotated[Optional[list[str]], typer.Option(
        "--filter", help="tag=…, organisation=…, role=… or person=… (repeatable; applied before top-k).")] = None
    consented_only: Annotated[bool, typer.Option(
        "--consented-only", help="Only people who consented to be displayed (= --audience consented).")] = False
    audience: Annotated[Audience, typer.Option(
        "--audience", help="Whom the answer is for: operator (everyone), visitor (not the people who withhold "
                           "consent) or consented; their matches and every face-math average alike.")
    ] = Audience.operator

    def chosen_audience(self) -> Audience:
        return Audience.consented if self.consented_only else self.audience


@dataclass(frozen=True)
class AnalysisOptions(OptionGroup):
    """Age, gender and emotion estimates: ``--analyze``, ``--analyzer``."""

    analyze: Annotated[bool, typer.Option(
        "--analyze", help="Also estimate age, gender and emotion of each face (ingest stores them with it).")] = False
    analyzer: Annotated[AnalyzerName, typer.Option(
        "--analyzer", help="auto: deepface's models when installed, else the offline ones.")] = AnalyzerName.auto

    def chosen(self) -> AnalyzerName | None:
        """The analyzer when ``--analyze`` asks for one, else None."""
        return self.analyzer if self.analyze else None


@dataclass(frozen=True)
class FaceMathOptions(OptionGroup):
    """Face math in a search: ``--toward``, ``--away``, ``--strength``."""

    toward: Annotated[Optional[str], typer.Option(
        "--toward", help="Face math: move the query toward GROUP (tag:…, person:…, age:60-70, emotion:…).")] = None
    away: Annotated[Optional[str], typer.Option(
        "--away", help="…and away from GROUP [default: the query's own group, else the corpus average].")] = None
    strength: Annotated[float, typer.Option("--strength", min=-MAX_SEARCH_STRENGTH, max=MAX_SEARCH_STRENGTH,
                                            help="How far to move (0 = plain search).")] = 1.0


P = ParamSpec("P")
R = TypeVar("R")


def _group_fields(annotation: object) -> tuple[type, tuple[str, ...]] | None:
    """The group class and its field names, if ``annotation`` is an option group."""
    if isinstance(annotation, type) and is_dataclass(annotation) and issubclass(annotation, OptionGroup):
        return annotation, tuple(f.name for f in fields(annotation))
    return None


def grouped(command: Callable[P, R]) -> Callable[P, R]:
    """Spread every :class:`OptionGroup` parameter of ``command`` into its options, in place,
    for typer; gather them into the dataclass again when the command is called."""
    hints = get_type_hints(command, include_extras=True)
    spread: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, tuple[str, ...]]] = {}
    for param in inspect.signature(command).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        group = _group_fields(annotation)
        if group is None:
            spread.append(param.replace(annotation=annotation, kind=inspect.Parameter.KEYWORD_ONLY))
            continue
        groups[param.name] = group
        cls, names = group
        group_hints = get_type_hints(cls, include_extras=True)
        defaults = cls()
        spread += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name),
                                     annotation=group_hints[name]) for name in names]
    taken = [p.name for p in spread]
    clashes = sorted({n for n in taken if taken.count(n) > 1})
    if clashes:
        raise TypeError(f"{command.__name__}: an option group's field has the name of a parameter: {clashes}")

    @functools.wraps(command)
    def gathered(*args: P.args, **kwargs: P.kwargs) -> R:
        for name, (group_cls, group_names) in groups.items():
            kwargs[name] = group_cls(**{field: kwargs.pop(field) for field in group_names if field in kwargs})
        return command(*args, **kwargs)

    # typer reads the parameters from __signature__ and their types from __annotations__
    gathered.__signature__ = inspect.Signature(spread)  # type: ignore[attr-defined]
    gathered.__annotations__ = {p.name: p.annotation for p in spread}
    return gathered
