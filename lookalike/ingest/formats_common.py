"""What the public corpus readers of :mod:`.formats` share: the formats' names, each
corpus's licence and home page, and the helpers that find a corpus's folders, files and
photos, tidy its names and make its items and profiles.

Light on purpose: the CLI imports :class:`CorpusFormat` for its option type, so the corpus
module (and, through it, NumPy and SQLAlchemy) is imported inside the helpers that need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ManifestError

if TYPE_CHECKING:
    from ..store.profiles import Profile
    from .corpus import Item

PathLike = str | os.PathLike[str]


class CorpusFormat(str, Enum):
    """The layouts ``lookalike ingest --format`` reads."""

    lfw = "lfw"
    vggface2 = "vggface2"
    celeba = "celeba"
    imdb_wiki = "imdb-wiki"
    utkface = "utkface"


# what a profile says of where the corpus comes from and on which terms
LICENCES = {
    CorpusFormat.lfw: "LFW: public research benchmark, no licence stated; photos (c) their photographers",
    CorpusFormat.vggface2: "VGGFace2: research use only; annotations CC BY-SA 4.0; images from the web, "
                           "(c) their owners",
    CorpusFormat.celeba: "CelebA: non-commercial research purposes only (CelebA release agreement)",
    CorpusFormat.imdb_wiki: "IMDB-WIKI: academic research purposes only",
    CorpusFormat.utkface: "UTKFace: non-commercial research purposes only",
}
SOURCES = {
    CorpusFormat.lfw: "http://vis-www.cs.umass.edu/lfw/",
    CorpusFormat.vggface2: "https://www.robots.ox.ac.uk/~vgg/data/vgg_face2/",
    CorpusFormat.celeba: "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
    CorpusFormat.imdb_wiki: "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/",
    CorpusFormat.utkface: "https://susanqq.github.io/UTKFace/",
}


def corpus_folder(path: PathLike, corpus_format: CorpusFormat) -> Path:
    folder = Path(path).expanduser().absolute()
    if not folder.is_dir():
        what = "no such folder" if not folder.exists() else "not a folder"
        raise ManifestError(f"{folder}: {what}; --format {corpus_format.value} reads the corpus's folder "
                            "as it was unpacked")
    return folder


def first_file(root: Path, candidates: tuple[str, ...], corpus_format: CorpusFormat, why: str) -> Path:
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    raise ManifestError(f"{root}: no {' or '.join(candidates)}; --format {corpus_format.value} needs it ({why}): "
                        "download it with the photos")


def text_lines(path: Path) -> list[str]:
    """The file's lines, as UTF-8, else Latin-1: the identity files predate any encoding
    rule, and Latin-1 reads every byte, so a name is misspelt at worst, never refused."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ManifestError.unreadable(path, err) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def photos(folder: Path) -> Iterator[Path]:
    """Image files under ``folder``, sorted, hidden files and folders left out, linked
    folders followed as a folder ingest follows them (:func:`lookalike.ingest.corpus.walk`)."""
    from .corpus import IMAGE_EXTENSIONS, walk

    return (file for file in walk(folder) if file.suffix.lower() in IMAGE_EXTENSIONS)


def reject(path: Path, kind: str, detail: str) -> Item:
    from .corpus import Item, Rejection

    return Item(str(path), None, rejected=Rejection(kind, detail))


def person_name(raw: str) -> tuple[str, str | None]:
    """The name with its spaces tidied, and why it cannot be a person's name
    (:func:`lookalike.store.profiles.person_name_problem`: empty, ``..``, a path separator, a control
    character, too long). Corpus names are kept as written otherwise: ``O'Brien`` is a
    name, though staff could not type it (:func:`lookalike.store.profiles.check_person_name`)."""
    from ..store.profiles import person_name_problem

    name = " ".join(raw.split())
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in raw):  # the tidying would hide a tab or a newline
        return name, person_name_problem(raw)
    return name, person_name_problem(name)


def profile(corpus_format: CorpusFormat, tags: list[str]) -> Profile:
    """A labelled corpus's profile: its tags, licence and home page, checked as every
    stored profile is."""
    from ..store.profiles import Profile, check_profile, parse_tags

    return check_profile(Profile(tags=parse_tags(tags), consent_display=None, license=LICENCES[corpus_format],
                                 source_url=SOURCES[corpus_format]))
