"""Readers of the public celebrity corpora, each in the layout it is downloaded in.

``lookalike ingest --format NAME PATH`` turns a corpus folder, as unpacked, into the
ingest's :class:`lookalike.ingest.corpus.Item` s: photo path, person, profile. Each
corpus names its people its own way (folder names, an identity file, a MATLAB struct,
the file name itself); a plain folder ingest would file VGGFace2's photos under
``n000002`` and CelebA's under one folder for all. The readers are pure (they read the
corpus, never the library) and refuse nothing silently: a photo they skip comes back as
an item with :attr:`Item.rejected` set to a ``Rejection(kind, detail)`` (stored as the
reason ``"<kind>: <detail>"``), so it is counted under
``rejected`` in the ingest's summary and listed with its reason in ``--report``
(:func:`skipped` tallies the kinds).

The corpora (licence terms as their authors state them; read them before use):

* **LFW** (Labeled Faces in the Wild, ``lfw``), http://vis-www.cs.umass.edu/lfw/ :
  13,233 photos of 5,749 people. Public; no licence is stated, it is published as a
  research benchmark and the photos' copyright stays with their photographers.
  Layout ``PATH/<Person_Name>/<Person_Name>_0001.jpg`` (``lfw``, ``lfw_funneled`` and
  ``lfw-deepfunneled`` alike). Person: the folder name, ``_`` -> space. No profile.
* **VGGFace2** (``vggface2``), formerly https://www.robots.ox.ac.uk/~vgg/data/vgg_face2/
  (withdrawn by its authors; mirrors exist): 3.31 M photos of 9,131 people. Research use
  only; the annotations were released under CC BY-SA 4.0, the images come from the web
  (Google Image Search) and stay their owners'. Mirrors label it otherwise (one says
  CC BY-NC 4.0): the authors' terms are the ones that hold. Layout
  ``PATH/{train,test}/<class_id>/<nnnn_nn>.jpg`` plus ``identity_meta.csv`` (in ``PATH``
  or ``PATH/meta``). Person: the csv's ``Name``, ``_`` -> space; gender -> a tag.
* **CelebA** (``celeba``), https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html : 202,599
  photos of 10,177 identities. Non-commercial research only (its release agreement).
  Layout ``PATH/img_align_celeba/*.jpg`` (or ``img_celeba/``, or both under ``Img/``)
  plus ``identity_CelebA.txt`` (in ``PATH`` or ``PATH/Anno``). CelebA publishes identity
  numbers, never names: the person is ``celeba-<id>``. No profile; the attribute lists
  are not read.
* **IMDB-WIKI** (``imdb-wiki``), https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/ :
  523,051 photos of 20,284 people. Academic research only. Layout ``PATH/imdb.mat`` (or
  ``wiki.mat``) beside the photo folders ``PATH/00/ ... PATH/99/``. Person: the struct's
  ``name``; gender and date of birth -> tags.
* **UTKFace** (``utkface``), https://susanqq.github.io/UTKFace/ : 23,708 photos, no
  identities. Non-commercial research only. Layout
  ``PATH/[age]_[gender]_[race]_[date&time].jpg(.chip.jpg)``, at any depth. Person: the
  file name's stem (each photo is its own person, as the project's UTKFace tests file it:
  the labelled age leads the name); age and gender -> tags.

Profile fields: :class:`lookalike.store.profiles.Profile` has no gender, age or birth date
field, so those labels become tags (``gender:female``, ``age:34``, ``born:1955-01-20``),
which ``--filter tag=gender:female`` and ``--toward tag:gender:female`` match. The people
of a corpus that has labels (VGGFace2, IMDB-WIKI, UTKFace) each get a profile with those
tags, the corpus's licence in ``license`` and its home page in ``source_url``, and consent
"never stated" (``None``), as after a folder ingest: the corpus's own terms govern its use,
a visitor-facing deployment shows only people with ``--consented-only`` / the kiosk, which
these are not. LFW and CelebA have no labels and get no profile.

Not used, and why: UTKFace's race label (the project never estimates, searches or filters
by race; ``lookalike eval attributes`` reads it from a manifest to measure error gaps);
IMDB-WIKI's ``face_location`` and ``photo_taken`` (an :class:`Item` has no place for a face
box, the detector finds the face again; a photo's year is not a person's field); CelebA's
attributes and landmarks; VGGFace2's ``Sample_Num`` and ``Flag`` (the folders say both).
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ManifestError
from .formats_common import (
    CorpusFormat,
    PathLike,
    corpus_folder,
    first_file,
    person_name,
    photos,
    profile,
    reject,
    text_lines,
)

if TYPE_CHECKING:
    from ..store.profiles import Profile
    from .corpus import Item

# The module is imported by the CLI (`lookalike ingest --format`): the corpus module (and,
# through it, NumPy and SQLAlchemy) is imported inside the readers, where it is needed.

# IMDB-WIKI's face_score is the dataset's own detector score: -inf where it found no face
# (face_location is then the whole photo), low scores mostly background faces, cartoons
# and posters. Keeping scores above 1.0 is the filter the corpus's users settled on (the
# age-estimation code built on it filters with min_score=1.0): below it the face is
# often not the named person's, and a look-alike filed under the wrong name is worse
# than one photo fewer.
IMDB_MIN_FACE_SCORE = 1.0

UTKFACE_GENDERS = {"0": "male", "1": "female"}
UTKFACE_MAX_AGE = 120  # UTKFace's oldest is 116; a larger number is a misnamed file
_UTKFACE_NAME = re.compile(r"(\d{1,3})_(\d)_(\d)_(\d{6,})")


# -- LFW ----------------------------------------------------------------------------------
LFW_FOLDERS = ("lfw-deepfunneled", "lfw_funneled", "lfw")


def lfw(path: PathLike) -> list[Item]:
    """LFW: ``PATH/<Person_Name>/<Person_Name>_0001.jpg``; PATH may also be the folder the
    archive unpacked into (holding ``lfw/`` or ``lfw-deepfunneled/``). A photo outside a
    person folder is rejected: LFW names nobody there."""
    from .corpus import Item

    root = corpus_folder(path, CorpusFormat.lfw)
    for _ in range(2):  # lfw-deepfunneled.tgz, and Kaggle's lfw-deepfunneled/lfw-deepfunneled/
        inner = [root / name for name in LFW_FOLDERS if (root / name).is_dir()]
        if len(inner) > 1:
            raise ManifestError(f"{root}: holds {' and '.join(p.name for p in inner)}; "
                                "ingest one of them (they are the same photos, aligned differently)")
        if not inner:
            break
        root = inner[0]
    items = []
    for file in photos(root):
        parts = file.relative_to(root).parts
        if len(parts) != 2:
            items.append(reject(file, "not in a person folder", "LFW keeps each photo in PATH/<Person_Name>/"))
            continue
        name, problem = person_name(parts[0].replace("_", " "))
        if problem:
            items.append(reject(file, "bad person name", f"folder {parts[0]!r}: {problem}"))
        else:
            items.append(Item(str(file), name))
    return items


# -- VGGFace2 -----------------------------------------------------------------------------
def vggface2(path: PathLike) -> list[Item]:
    """VGGFace2: ``PATH/{train,test}/<class_id>/<nnnn_nn>.jpg`` named by ``identity_meta.csv``
    (``Class_ID, Name, Sample_Num, Flag, Gender``). The person is the class's name, ``_`` ->
    space; gender becomes the tag ``gender:male`` / ``gender:female``. A class the csv does
    not name is rejected: filing it under ``n000002`` would invent a person."""
    from .corpus import Item

    root = corpus_folder(path, CorpusFormat.vggface2)
    meta = first_file(root, ("identity_meta.csv", "meta/identity_meta.csv"), CorpusFormat.vggface2,
                       "it names each class folder")
    identities = _vggface2_identities(meta)
    splits = [root / split for split in ("train", "test") if (root / split).is_dir()]
    if not splits:
        raise ManifestError(f"{root}: no train/ or test/ folder; VGGFace2 keeps its photos in "
                            "PATH/train/<class_id>/ and PATH/test/<class_id>/")
    profiles: dict[str, Profile] = {}
    items = []
    for split in splits:
        for file in photos(split):
            parts = file.relative_to(split).parts
            if len(parts) != 2:
                items.append(reject(file, "not in a class folder",
                                     f"VGGFace2 keeps photos in {split.name}/<class_id>/"))
                continue
            known = identities.get(parts[0])
            if known is None:
                items.append(reject(file, "unknown class", f"{parts[0]} is not in {meta}"))
                continue
            raw, gender = known
            name, problem = person_name(raw.replace("_", " "))
            if problem:
                items.append(reject(file, "bad person name", f"{parts[0]} in {meta.name}: {problem}"))
                continue
            if name not in profiles:
                tags = [f"gender:{gender}"] if gender else []
                profiles[name] = profile(CorpusFormat.vggface2, tags)
            items.append(Item(str(file), name, profiles[name]))
    return items


def _vggface2_identities(meta: Path) -> dict[str, tuple[str, str | None]]:
    """Class id -> (name as written, gender word or None). The names are quoted after a
    space (`` "Aaron_Eckhart"``): the csv module with ``skipinitialspace`` reads them."""
    genders = {"m": "male", "f": "female"}
    out: dict[str, tuple[str, str | None]] = {}
    rows = csv.reader(text_lines(meta), skipinitialspace=True)
    header = [h.strip().lower() for h in next(rows, [])]
    if "class_id" not in header or "name" not in header:
        raise ManifestError(f"{meta}: the header must name Class_ID and Name columns (found {header})")
    at_id, at_name = header.index("class_id"), header.index("name")
    at_gender = header.index("gender") if "gender" in header else None
    try:
        for row in rows:
            if not row or len(row) <= max(at_id, at_name):
                continue
            gender = row[at_gender].strip().lower() if at_gender is not None and len(row) > at_gender else ""
            out[row[at_id].strip()] = (row[at_name].strip(), genders.get(gender))
    except csv.Error as err:
        raise ManifestError(f"{meta}:{rows.line_num}: malformed CSV ({err})") from err
    return out


# -- CelebA -------------------------------------------------------------------------------
CELEBA_IMAGES = ("img_align_celeba", "img_celeba", "Img/img_align_celeba", "Img/img_celeba")
CELEBA_IDENTITY = ("identity_CelebA.txt", "Anno/identity_CelebA.txt")


def celeba(path: PathLike) -> list[Item]:
    """CelebA: ``PATH/img_align_celeba/*.jpg`` with ``identity_CelebA.txt`` (``000001.jpg 2880``).

    CelebA gives identity numbers, not names, so the person is ``celeba-2880``; nobody is
    named and no profile is made. With both ``img_align_celeba/`` and ``img_celeba/`` the
    aligned crops are read (the same photos: reading both would file each face twice).
    Photos the identity file does not list, and files it lists that are not there (a
    partial download), are rejected with that reason."""
    from .corpus import Item

    root = corpus_folder(path, CorpusFormat.celeba)
    identity = first_file(root, CELEBA_IDENTITY, CorpusFormat.celeba, "it says whose each photo is")
    images = next((root / p for p in CELEBA_IMAGES if (root / p).is_dir()), None)
    if images is None:
        raise ManifestError(f"{root}: no img_align_celeba/ or img_celeba/ folder; unpack "
                            "img_align_celeba.zip into it")
    if (images / images.name).is_dir():  # Kaggle's img_align_celeba/img_align_celeba/
        images = images / images.name
    ids = _celeba_identities(identity)
    items = []
    on_disk = set()
    for file in photos(images):
        on_disk.add(file.name)
        ident = ids.get(file.name) if file.parent == images else None
        if ident is None:
            items.append(reject(file, "unknown photo", f"{file.name} is not in {identity}"))
        else:
            items.append(Item(str(file), f"celeba-{ident}"))
    for name in sorted(set(ids) - on_disk):
        items.append(reject(images / name, "missing photo", f"listed in {identity.name} but not in {images}"))
    return items


def _celeba_identities(identity: Path) -> dict[str, int]:
    out = {}
    for number, line in enumerate(text_lines(identity), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise ManifestError(f"{identity}:{number}: expected 'FILE IDENTITY' (000001.jpg 2880), "
                                f"found {line.strip()[:60]!r}")
        out[fields[0]] = int(fields[1])
    return out


# -- IMDB-WIKI ----------------------------------------------------------------------------
IMDB_FIELDS = ("full_path", "face_score", "second_face_score")


def imdb_wiki(path: PathLike) -> list[Item]:
    """IMDB-WIKI: ``PATH/imdb.mat`` (struct ``imdb``) or ``PATH/wiki.mat`` (struct ``wiki``)
    beside the photo folders it names (``full_path``, relative to PATH).

    Skipped, each as a rejected item with its reason: no face found by the dataset's
    detector (``face_score`` -inf), a weak face (below :data:`IMDB_MIN_FACE_SCORE`), a
    second face (``second_face_score`` not NaN: which face is the named person would be
    a guess), no name, a path outside PATH, a photo not on disk. Skipped photos are filed
    under nobody, so a name seen only on skipped photos makes no person.

    ``gender`` (1 male, 0 female, NaN unknown) and ``dob`` (a MATLAB serial date number)
    become the tags ``gender:male`` and ``born:1955-01-20``. A profile belongs to a person,
    not a photo: a label is kept only when every photo of the person that has it agrees
    (the corpus was labelled automatically and some people's photos disagree). People are
    keyed by name, as everywhere in the library: two people of one name would share a
    person (and then, their birth dates disagreeing, no ``born`` tag)."""
    from .corpus import Item, resolve_inside

    root = corpus_folder(path, CorpusFormat.imdb_wiki)
    mats = [(root / f"{key}.mat", key) for key in ("imdb", "wiki") if (root / f"{key}.mat").is_file()]
    if not mats:
        raise ManifestError(f"{root}: no imdb.mat or wiki.mat; it is in the imdb_crop / wiki_crop "
                            "archive (or imdb_meta.tar), beside the photo folders 00/ ... 99/")
    rejected: list[Item] = []
    kept: list[tuple[Path, str, str | None, str | None]] = []  # path, name, gender, birth date
    for mat, key in mats:
        for raw, name, score, second, gender, born in _imdb_rows(mat, key):
            target, problem = resolve_inside(root, raw) if raw else (mat, "the row has no full_path")
            if problem:  # resolve_inside speaks of manifests; here the .mat is the manifest
                rejected.append(reject(target, "bad path", f"{mat.name}: "
                                        + problem.replace("the manifest's folder", "the corpus folder")))
            elif math.isnan(score) or score == -math.inf:
                rejected.append(reject(target, "no face", f"the dataset's detector found none (face_score {score})"))
            elif score < IMDB_MIN_FACE_SCORE:
                rejected.append(reject(target, "weak face", f"face_score {score:.2f} is below "
                                        f"{IMDB_MIN_FACE_SCORE}: often not a face, or not the named person's"))
            elif not math.isnan(second):
                rejected.append(reject(target, "second face", f"second_face_score {second:.2f}: which face is "
                                        f"{name or 'the named person'} would be a guess"))
            elif not name:
                rejected.append(reject(target, "no name", f"{mat.name} names nobody for this photo"))
            elif (problem := person_name(name)[1]) is not None:
                rejected.append(reject(target, "bad person name", problem))
            elif not target.is_file():
                rejected.append(reject(target, "missing photo", f"listed in {mat.name} but not found"))
            else:
                kept.append((target, " ".join(name.split()), gender, born))
    genders: dict[str, set[str]] = {}
    births: dict[str, set[str]] = {}
    for _, name, gender, born in kept:
        if gender:
            genders.setdefault(name, set()).add(gender)
        if born:
            births.setdefault(name, set()).add(born)
    profiles: dict[str, Profile] = {}
    items = []
    for target, name, _, _ in kept:
        if name not in profiles:
            tags = [f"gender:{g}" for g in genders.get(name, ()) if len(genders[name]) == 1]
            tags += [f"born:{b}" for b in births.get(name, ()) if len(births[name]) == 1]
            profiles[name] = profile(CorpusFormat.imdb_wiki, tags)
        items.append(Item(str(target), name, profiles[name]))
    return sorted(items + rejected, key=lambda item: item.path)


def _imdb_rows(mat: Path, key: str) -> Iterator[tuple[str, str, float, float, str | None, str | None]]:
    """(full_path, name, face_score, second_face_score, gender word, ISO birth date) per
    photo of the struct ``key`` in ``mat``, read with SciPy (imported here: only this
    corpus needs it)."""
    import numpy as np
    import scipy.io

    try:
        data = scipy.io.loadmat(str(mat))
    except Exception as err:  # a damaged file fails with whatever SciPy's parser meets (IndexError, zlib.error...)
        why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise ManifestError(f"{mat}: cannot be read as a MATLAB v5 file ({why}), as IMDB-WIKI ships it; "
                            "download it again if it is damaged") from err
    struct = data.get(key)
    if not isinstance(struct, np.ndarray) or struct.dtype.names is None or struct.size != 1:
        found = sorted(k for k in data if not k.startswith("__"))
        raise ManifestError(f"{mat}: holds no struct {key!r} (found {found})")
    record = struct.reshape(-1)[0]
    fields = set(struct.dtype.names)
    missing = [f for f in IMDB_FIELDS if f not in fields]
    if missing or not ({"name"} <= fields or {"celeb_names", "celeb_id"} <= fields):
        raise ManifestError(f"{mat}: the struct {key!r} has no {', '.join(missing) or 'name'} field")

    def column(name: str) -> np.ndarray:
        return np.asarray(record[name]).reshape(-1) if name in fields else np.array([])

    paths = column("full_path")
    n = len(paths)
    try:
        scores, seconds = column("face_score").astype(float), column("second_face_score").astype(float)
    except (TypeError, ValueError) as err:
        raise ManifestError(f"{mat}: {key}.face_score / second_face_score are not numbers ({err})") from None
    names, gender, dob, taken = column("name"), column("gender"), column("dob"), column("photo_taken")
    celeb_names, celeb_id = column("celeb_names"), column("celeb_id")
    for label, values in (("face_score", scores), ("second_face_score", seconds)):
        if len(values) != n:
            raise ManifestError(f"{mat}: {key}.{label} has {len(values)} entries, full_path {n}")
    for i in range(n):
        try:
            name = _cell_text(names[i]) if i < len(names) else ""
            if not name and i < len(celeb_id) and 0 < int(celeb_id[i]) <= len(celeb_names):
                name = _cell_text(celeb_names[int(celeb_id[i]) - 1])
            sex = float(gender[i]) if i < len(gender) else math.nan
            year = float(taken[i]) if i < len(taken) else math.nan
            born = _matlab_date(float(dob[i]), year) if i < len(dob) else None
        except (TypeError, ValueError) as err:  # a NaN id, a string where a number belongs
            raise ManifestError(f"{mat}: {key} entry {i + 1}: a field that should be a number is not ({err})") from None
        yield (_cell_text(paths[i]), name, float(scores[i]), float(seconds[i]),
               {1.0: "male", 0.0: "female"}.get(sex), born)


def _cell_text(cell: object) -> str:
    """The string in one MATLAB cell as loadmat returns it (``array(['text'])``, or an
    empty array for an empty cell)."""
    import numpy as np

    values = np.asarray(cell).reshape(-1)
    return str(values[0]).strip() if values.size else ""


def _matlab_date(number: float, photo_year: float) -> str | None:
    """A MATLAB serial date number (days from the year 0) as ISO ``YYYY-MM-DD``, or None
    when it cannot be a birth date (missing, before 1800, after the photo was taken)."""
    if not math.isfinite(number) or number < 367:
        return None
    try:
        born = date.fromordinal(int(number)) - timedelta(days=366)
    except (ValueError, OverflowError):
        return None
    if born.year < 1800 or (math.isfinite(photo_year) and born.year > photo_year):
        return None
    return born.isoformat()


# -- UTKFace ------------------------------------------------------------------------------
def utkface(path: PathLike) -> list[Item]:
    """UTKFace: ``[age]_[gender]_[race]_[date&time].jpg`` (``.chip.jpg`` for the aligned
    crops), in PATH at any depth. UTKFace has no identities: each photo is its own person,
    named by the file's stem (``26_1_0_20170116171048641``), as the project files it
    elsewhere (the labelled age leads the name). Age and gender (0 male, 1 female) become
    the tags ``age:26`` and ``gender:female``; race is not stored (see the module's notes).
    A file whose name does not parse is rejected with the reason, never guessed at."""
    from .corpus import Item

    root = corpus_folder(path, CorpusFormat.utkface)
    items = []
    for file in photos(root):
        stem = file.name.split(".")[0]
        match = _UTKFACE_NAME.fullmatch(stem)
        if match is None:
            items.append(reject(file, "unparsed name", f"{file.name} is not AGE_GENDER_RACE_DATETIME.jpg"))
            continue
        age, gender, race = int(match[1]), UTKFACE_GENDERS.get(match[2]), int(match[3])
        if gender is None or race > 4 or age > UTKFACE_MAX_AGE:
            items.append(reject(file, "unparsed name", f"{file.name}: age {age}, gender {match[2]} or race "
                                 f"{race} is outside UTKFace's labels (age 0-116, gender 0-1, race 0-4)"))
            continue
        items.append(Item(str(file), stem, profile(CorpusFormat.utkface, [f"age:{age}", f"gender:{gender}"])))
    return items


# -- the registry -------------------------------------------------------------------------
Reader = Callable[[PathLike], "list[Item]"]
FORMATS: dict[CorpusFormat, Reader] = {
    CorpusFormat.lfw: lfw,
    CorpusFormat.vggface2: vggface2,
    CorpusFormat.celeba: celeba,
    CorpusFormat.imdb_wiki: imdb_wiki,
    CorpusFormat.utkface: utkface,
}


def read(corpus_format: CorpusFormat | str, paths: Iterable[PathLike]) -> list[Item]:
    """The items of every corpus folder in ``paths``, read as ``corpus_format``."""
    reader = FORMATS[CorpusFormat(corpus_format)]
    return [item for path in paths for item in reader(path)]


def skipped(items: Iterable[Item]) -> dict[str, int]:
    """How many items were rejected, by kind, most frequent first: what the CLI prints after
    a ``--format`` ingest."""
    counts = Counter(item.rejected.kind for item in items if item.rejected)
    return dict(counts.most_common())
