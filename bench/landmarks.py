"""Dense landmarks: MediaPipe's face mesh (468 points) vs dlib's 68-point predictor.

    python bench/landmarks.py [--people 40] [--per-person 6] [--timing 60] [--ingest 200] [--pictures DIR]

Both models get the same faces: YuNet's (lookalike's default detector) largest face in
each photo, its box and five points. The mesh runs as :mod:`lookalike.faces.landmarks`
runs it (one pass from the box, and the default second pass re-cut from its own points);
dlib's predictor is given YuNet's box as its rectangle.

* ms per face: the landmark call alone (decoding and detection excluded), median over
  ``--timing`` faces, at 1 thread and at the runtime's default (dlib runs one thread);
* stability: for each person with several photos (lfw-dev people with >= 4 photos, celeb
  people with >= 4), the shapes are aligned to their mean by a similarity (generalised
  Procrustes) and the mean point error is divided by the mean shape's inter-ocular
  distance; "between" is the same figure for as many photos of *different* people. A model
  whose points follow the face's own geometry has within << between: the ratio is the
  figure (lower is better), the within figure alone mixes model noise with real changes
  of pose and expression;
* eye agreement: each model's eye centres against YuNet's two eye points, over the
  inter-ocular distance (median, and the share of faces past 0.25: a misfit);
* small faces: lfw-dev photos shrunk until the face box is 24, 32 or 48 px wide, the
  points against those of the full-size photo (same normalisation);
* bad inputs: every file of bad-inputs: refused (a clear decode error), no face, faces
  given points, misfits (eye agreement past 0.25), and for the mesh the faces its own
  presence score calls no face (< 0.5).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FACES, machine, table, write

MISFIT = 0.25  # eye centre off YuNet's eye point by a quarter of the eye distance


def _people(min_photos: int, people: int, per_person: int) -> dict[str, list[Path]]:
    by: dict[str, list[Path]] = defaultdict(list)
    with open(FACES / "lfw-dev" / "retrieval.tsv") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            by["lfw:" + row["identity"]].append(FACES / "lfw-dev" / row["path"])
    with open(FACES / "celeb" / "MANIFEST.tsv") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            by["celeb:" + row["identity"]].append(FACES / "celeb" / row["path"])
    keep = {k: sorted(v)[:per_person] for k, v in by.items() if len(v) >= min_photos}
    celeb = [k for k in keep if k.startswith("celeb:")]
    lfw = [k for k in sorted(keep) if k.startswith("lfw:")][: max(0, people - len(celeb))]
    return {k: keep[k] for k in celeb + lfw}


class Models:
    """The two models on one face."""

    def __init__(self) -> None:
        import dlib

        from lookalike.faces import detect, landmarks
        from lookalike.models import registry

        landmarks.require()
        self.lm = landmarks
        self.registry = registry
        self.detector = detect.build("yunet", 1280)
        frm = Path(__import__("importlib").util.find_spec("face_recognition_models").submodule_search_locations[0])
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(frm / "models" / "shape_predictor_68_face_landmarks.dat"))

    def mesh(self, rgb: np.ndarray, face: object, variant: str = "mesh", threads: int | None = 1) -> np.ndarray:
        """``variant``: mesh (lookalike's: a second pass when the first crop was off),
        mesh-1pass, mesh-2pass (always two)."""
        saved = self.lm.PASSES, self.lm.REFIT
        self.lm.PASSES = 1 if variant == "mesh-1pass" else 2
        self.lm.REFIT = -1.0 if variant == "mesh-2pass" else saved[1]
        try:
            return self.lm.landmarks(rgb, face, threads=threads)
        finally:
            self.lm.PASSES, self.lm.REFIT = saved

    def run(self, variant: str, rgb: np.ndarray, face: object) -> np.ndarray:
        return self.dlib68(rgb, face) if variant == "dlib68" else self.mesh(rgb, face, variant)

    def presence(self, rgb: np.ndarray, face: object) -> float:
        """The mesh's own face score (sigmoid of its second output) on the final crop."""
        from lookalike.models.litert import TfliteModel

        if getattr(self, "_reference", None) is None:  # LiteRT: the reference run, every output
            self._reference = TfliteModel(self.registry.path(self.lm.MODEL), 1)
        model = self._reference
        points = self.mesh(rgb, face)
        center, side, angle = self.lm.points_roi(points)
        import cv2

        matrix = self.lm.crop_matrix(center, side, angle)
        crop = cv2.warpAffine(rgb, matrix, (192, 192), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        score = float(model.outputs(crop.astype(np.float32)[None] / 255.0)[1].ravel()[0])
        return 1.0 / (1.0 + np.exp(-score))

    def dlib68(self, rgb: np.ndarray, face: object) -> np.ndarray:
        x, y, w, h = face.box  # type: ignore[attr-defined]
        shape = self.predictor(rgb, self.dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def _jittered(face: object) -> list[object]:
    from dataclasses import replace

    x, y, w, h = face.box  # type: ignore[attr-defined]
    out = []
    for dx, dy, k in ((0.08, 0, 1.0), (-0.08, 0.08, 1.0), (0, 0, 1.1), (0, -0.05, 0.9)):
        nw, nh = round(w * k), round(h * k)
        box = (round(x + dx * w + (w - nw) / 2), round(y + dy * h + (h - nh) / 2), nw, nh)
        out.append(replace(face, box=box))  # type: ignore[type-var]
    return out


def eyes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(viewer's-left eye centre, viewer's-right eye centre) of a 68- or 468-point shape."""
    if len(points) == 68:
        return points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    return points[[33, 133]].mean(axis=0), points[[263, 362]].mean(axis=0)


def eye_error(points: np.ndarray, face: object) -> float:
    right, left = (np.array(p) for p in face.landmarks[:2])  # type: ignore[attr-defined]
    a, b = eyes(points)
    iod = float(np.linalg.norm(left - right))
    return float((np.linalg.norm(a - right) + np.linalg.norm(b - left)) / 2 / iod)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` moved onto ``dst`` by the least-squares similarity (Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    u, sig, vt = np.linalg.svd(d.T @ s)
    sign = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, sign])
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / (s ** 2).sum()
    return (scale * (rot @ s.T)).T + md


def dispersion(shapes: list[np.ndarray]) -> float:
    """Mean point distance to the group's Procrustes mean, over the mean's eye distance."""
    mean = shapes[0].astype(np.float64)
    for _ in range(3):
        aligned = [_similarity(s.astype(np.float64), mean) for s in shapes]
        mean = np.mean(aligned, axis=0)
    a, b = eyes(mean)
    iod = float(np.linalg.norm(a - b))
    return float(np.mean([np.linalg.norm(s - mean, axis=1).mean() for s in aligned]) / iod)


def small_error(ref: np.ndarray, got: np.ndarray) -> float:
    a, b = eyes(ref)
    return float(np.linalg.norm(ref - got, axis=1).mean() / np.linalg.norm(a - b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--per-person", type=int, default=6)
    ap.add_argument("--timing", type=int, default=60)
    ap.add_argument("--pictures", type=Path, help="draw both models' points on a few faces here (PNG)")
    ap.add_argument("--ingest", type=int, default=200,
                    help="photos per ingest run for the cost at ingest (0: skip): with and without the mesh")
    args = ap.parse_args()

    from lookalike.errors import BadImage
    from lookalike.faces import images

    models = Models()
    people = _people(4, args.people, args.per_person)
    names = ("mesh", "mesh-1pass", "mesh-2pass", "dlib68")
    runs_of_mesh = [0]
    inner = models.lm.run_mesh

    def counted(*a: object) -> np.ndarray:
        runs_of_mesh[0] += 1
        return inner(*a)

    jitter: dict[str, list[float]] = {n: [] for n in names}
    shapes: dict[str, dict[str, list[np.ndarray]]] = {n: defaultdict(list) for n in names}
    eye: dict[str, list[float]] = {n: [] for n in names}
    faces_seen: list[tuple[np.ndarray, object, str]] = []
    for person, paths in people.items():
        for path in paths:
            rgb = images.decode_file(str(path), 50_000_000).rgb
            found = models.detector.detect(rgb)
            if not found:
                continue
            face = found[0]
            faces_seen.append((rgb, face, person))
            models.lm.run_mesh = counted
            got = {"mesh": models.mesh(rgb, face)}
            models.lm.run_mesh = inner
            got |= {n: models.run(n, rgb, face) for n in names[1:]}
            for n, pts in got.items():
                shapes[n][person].append(pts)
                eye[n].append(eye_error(pts, face))
                # the detector's box moved by 8 % and scaled by 10 %: the points should stay
                for moved in _jittered(face):
                    jitter[n].append(small_error(pts, models.run(n, rgb, moved)))

    # timing: the landmark call alone, on the first faces
    sample = faces_seen[: args.timing]
    runs = {"mesh": lambda r, f: models.mesh(r, f, threads=1),
            "mesh, default threads": lambda r, f: models.mesh(r, f, threads=None),
            "mesh-1pass": lambda r, f: models.mesh(r, f, "mesh-1pass", threads=1),
            "mesh-2pass": lambda r, f: models.mesh(r, f, "mesh-2pass", threads=1),
            "dlib68": lambda r, f: models.dlib68(r, f)}
    # interleaved, face by face, so that the other processes of a shared machine slow every
    # run alike; each face's best of three
    times: dict[str, list[float]] = {label: [] for label in runs}
    for call in runs.values():
        call(*sample[0][:2])  # warm
    for rgb, face, _ in sample:
        for label, call in runs.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                call(rgb, face)
                best = min(best, (time.perf_counter() - started) * 1000)
            times[label].append(best)
    timing = {label: statistics.median(values) for label, values in times.items()}

    # stability: within a person vs the same number of different people
    rng = np.random.default_rng(0)
    stability = {}
    for n in names:
        groups = {p: s for p, s in shapes[n].items() if len(s) >= 3}
        within = [dispersion(s) for s in groups.values()]
        keys = list(groups)
        between = []
        for s in groups.values():
            picks = rng.choice(len(keys), size=len(s), replace=False)
            between.append(dispersion([groups[keys[i]][int(rng.integers(len(groups[keys[i]])))] for i in picks]))
        stability[n] = {"people": len(groups), "within": float(np.mean(within)), "between": float(np.mean(between)),
                        "ratio": float(np.mean(within) / np.mean(between))}

    # small faces: shrink the photo so the face box is `side` px wide
    import cv2

    from lookalike.faces.detect import rescale

    small: dict[str, dict[int, float]] = {n: {} for n in ("mesh", "dlib68")}
    lfw_faces = [(r, f) for r, f, p in faces_seen if p.startswith("lfw:")][:40]
    for side in (24, 32, 48):
        errs: dict[str, list[float]] = {n: [] for n in small}
        for rgb, face in lfw_faces:
            factor = side / face.box[2]  # type: ignore[attr-defined]
            tiny = cv2.resize(rgb, (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor))),
                              interpolation=cv2.INTER_AREA)
            shrunk = rescale(face, factor)  # type: ignore[arg-type]
            errs["mesh"].append(small_error(models.mesh(rgb, face), models.mesh(tiny, shrunk) / factor))
            errs["dlib68"].append(small_error(models.dlib68(rgb, face), models.dlib68(tiny, shrunk) / factor))
        for n in small:
            small[n][side] = float(np.median(errs[n]))

    # bad inputs
    bad: dict = {"files": 0, "refused": 0, "no_face": 0, "faces": 0, "errors": 0,
           "misfit": {"mesh": 0, "dlib68": 0}, "mesh_says_no_face": 0}
    for path in sorted((FACES / "bad-inputs").rglob("*")):
        if not path.is_file() or path.suffix in (".tsv", ".md"):
            continue
        bad["files"] += 1
        try:
            rgb = images.decode_file(str(path), 50_000_000, max_side=4096).rgb
        except BadImage:
            bad["refused"] += 1
            continue
        found = models.detector.detect(rgb)
        if not found:
            bad["no_face"] += 1
        for face in found:
            bad["faces"] += 1
            try:
                mesh, d68 = models.mesh(rgb, face), models.dlib68(rgb, face)
            except Exception as err:  # noqa: BLE001 - the figure: how many faces a model fails on
                print(f"{path.name}: {type(err).__name__}: {err}", file=sys.stderr)
                bad["errors"] += 1
                continue
            bad["misfit"]["mesh"] += int(eye_error(mesh, face) > MISFIT or not np.isfinite(mesh).all())
            bad["misfit"]["dlib68"] += int(eye_error(d68, face) > MISFIT or not np.isfinite(d68).all())
            bad["mesh_says_no_face"] += int(models.presence(rgb, face) < 0.5)

    cost = ingest_cost(args.ingest) if args.ingest else None
    mapper = mapper_cost(args.ingest) if args.ingest else None

    if args.pictures:
        _draw(args.pictures, faces_seen[:: max(1, len(faces_seen) // 8)][:8], models)

    rows = []
    for n in names:
        st = stability[n]
        rows.append([n, st["people"], st["within"], st["between"], st["ratio"], float(np.median(jitter[n])),
                     float(np.median(eye[n])), f"{sum(e > MISFIT for e in eye[n])}/{len(eye[n])}"])
    table("Landmark stability (error / eye distance after similarity alignment; ratio lower = better)",
          ["model", "people", "within person", "between people", "ratio", "box jitter", "eye err (median)",
           "misfits"], rows)
    second = runs_of_mesh[0] / max(1, len(faces_seen)) - 1
    print(f"mesh: a second pass on {second:.1%} of the faces")
    table("ms per face (median of each face's best of 3, landmark call only, 1 thread unless said)", ["run", "ms"],
          [[k, v] for k, v in timing.items()])
    table("small faces: error vs the full-size photo (median, / eye distance)",
          ["model", "24 px", "32 px", "48 px"], [[n, *small[n].values()] for n in small])
    table("bad-inputs", ["files", "refused", "no face", "faces", "errors", "misfit mesh", "misfit dlib68",
                         "mesh presence < 0.5"],
          [[bad["files"], bad["refused"], bad["no_face"], bad["faces"], bad["errors"], bad["misfit"]["mesh"],
            bad["misfit"]["dlib68"], bad["mesh_says_no_face"]]])
    if cost is not None:
        table(f"ingest cost ({args.ingest} lfw-dev photos, CLI, 2 workers, runs alternated)",
              ["run", "photos/s (each run)", "median"],
              [[k, ", ".join(f"{v:.1f}" for v in cost[k]), statistics.median(cost[k])] for k in ("without", "with")])
        print(f"landmarks cost {cost['cost']:.1%} of the photos/s (wall clock, the machine's load included)")
    if mapper is not None:
        print(f"mapper CPU per photo: {mapper['ms_per_photo_without']:.1f} ms without landmarks, "
              f"{mapper['ms_per_photo_with']:.1f} ms with: {mapper['cost']:.1%} fewer photos/s (target <= 10 %)")
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    out = write("landmarks", {
        "machine": machine(), "load_average": [round(v, 2) for v in load], "faces": len(faces_seen),
        "people": len(people),
        "rows": [{"model": n, "points": 68 if n == "dlib68" else 468, "within": stability[n]["within"],
                  "between": stability[n]["between"], "ratio": stability[n]["ratio"],
                  "jitter": float(np.median(jitter[n])), "eye_error": float(np.median(eye[n])),
                  "eye_misfits": int(sum(e > MISFIT for e in eye[n])), "ms": timing[n],
                  "small_24": small.get(n, {}).get(24), "small_32": small.get(n, {}).get(32),
                  "small_48": small.get(n, {}).get(48), "bad_misfits": bad["misfit"].get(n)} for n in names],
        "mesh_second_pass_share": second, "ms_mesh_default_threads": timing["mesh, default threads"],
        "ingest_cost": cost, "ingest_photos": args.ingest, "mapper_cost": mapper, "small_face_error": small,
        "bad_inputs": bad,
        "choice": "mesh (MediaPipe face mesh, Apache-2.0)",
    })
    print(f"wrote {out}")


def mapper_cost(photos: int) -> dict:
    """CPU seconds a photo costs ingest's mapper (decode, detect, align, embed: what each
    worker process does, one thread) with and without the landmarks, the two mappers given
    the same calls of photos as a pool's worker (lookalike.ingest.local.PHOTOS_A_CALL),
    alternating which goes first: a figure that the machine's other load barely moves
    (unlike photos/s when other processes share the cores)."""
    import hashlib

    from _common import lfw_photos

    from lookalike import config
    from lookalike.faces.pipeline import FacesMode, Space
    from lookalike.ingest.corpus import Item
    from lookalike.ingest.local import PHOTOS_A_CALL
    from lookalike.ingest.mapper import Mapper
    from lookalike.ingest.report import Task

    config.activate_weights_home()
    import cv2

    cv2.setNumThreads(1)  # as in a worker process (lookalike.ingest.mapper.prepare_process)
    space = Space(config.DEFAULT_MODEL, config.DEFAULT_DETECTOR, config.DEFAULT_ALIGNER)
    mappers = {"with": Mapper(space, config.DEFAULT_DETECT_MAX_SIDE, config.DEFAULT_MAX_PIXELS, FacesMode.largest)}
    mappers["without"] = Mapper(space, config.DEFAULT_DETECT_MAX_SIDE, config.DEFAULT_MAX_PIXELS, FacesMode.largest)
    mappers["without"].landmarks = False
    assert mappers["with"].landmarks, "face-mesh is not installed"
    cpu = {"with": 0.0, "without": 0.0}
    paths = lfw_photos(photos)
    for n, at in enumerate(range(0, len(paths), PHOTOS_A_CALL)):  # calls of photos, as a pool's worker gets them
        tasks = []
        for path in paths[at:at + PHOTOS_A_CALL]:
            data = path.read_bytes()
            tasks.append(Task(Item(str(path), path.parent.name), hashlib.sha256(data).hexdigest(), len(data), data,
                              False))
        for label in (("with", "without") if n % 2 else ("without", "with")):
            started = time.process_time()
            done = mappers[label].process_tasks(tasks)
            cpu[label] += time.process_time() - started
            assert all((f[4] is not None) == (label == "with") for r in done for f in r.faces)
    return {"photos": len(paths), "ms_per_photo_with": 1000 * cpu["with"] / len(paths),
            "ms_per_photo_without": 1000 * cpu["without"] / len(paths),
            "cost": 1 - cpu["without"] / cpu["with"]}


def ingest_cost(photos: int, rounds: int = 2) -> dict:
    """photos/s of ``lookalike ingest`` (the CLI, 2 workers) on the first lfw-dev photos with
    the mesh installed (landmarks stored) and without it (a weights home holding every
    other file: ingest then stores none), alternated so that both meet the same load."""
    import json
    import shutil
    import subprocess
    import tempfile

    from _common import lfw_photos

    from lookalike import config
    from lookalike.faces.landmarks import MODEL
    from lookalike.models import catalog, registry

    folder = catalog.weights_dir()
    mesh = registry.path(MODEL).name
    speeds: dict[str, list[float]] = {"with": [], "without": []}
    with tempfile.TemporaryDirectory(prefix="bench-landmarks-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        for p in lfw_photos(photos):
            (corpus / p.parent.name).mkdir(parents=True, exist_ok=True)
            (corpus / p.parent.name / p.name).symlink_to(p)
        bare = work / "home" / ".deepface" / "weights"
        bare.mkdir(parents=True)
        for item in folder.iterdir():
            if item.name != mesh:
                (bare / item.name).symlink_to(item) if item.is_file() else shutil.copytree(item, bare / item.name)
        homes = {"with": str(config.weights_home()), "without": str(work / "home")}
        for n in range(rounds):
            for label in ("without", "with"):
                db = work / f"{label}-{n}.db"
                env = os.environ | {"LOOKALIKE_HOME": homes[label]}
                started = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db", str(db),
                                       "--index-dir", str(work / f"ix-{label}-{n}"), "--workers", "2", "--json", "-q"],
                                      capture_output=True, text=True, env=env, check=True)
                seconds = time.perf_counter() - started
                speeds[label].append(json.loads(done.stdout)["processed"] / seconds)
                import sqlite3

                with sqlite3.connect(db) as conn:
                    stored = conn.execute("select count(*) from face_landmarks").fetchone()[0]
                assert (stored > 0) == (label == "with"), (label, stored)
    with_, without = statistics.median(speeds["with"]), statistics.median(speeds["without"])
    return speeds | {"cost": 1 - with_ / without}


def _draw(folder: Path, faces: list, models: Models) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    for rgb, face, _ in faces:
        x, y, w, h = face.box
        for pts, colour in ((models.mesh(rgb, face), (0, 255, 0)), (models.dlib68(rgb, face), (255, 0, 255))):
            img = np.ascontiguousarray(rgb[:, :, ::-1])
            for q in pts:
                cv2.circle(img, (int(q[0]), int(q[1])), max(1, w // 120), colour, -1)
            cv2.rectangle(img, (x, y), (x + w, y + h), (255, 0, 0), 1)
            m = max(w, h)
            cx, cy = x + w // 2, y + h // 2
            tiles.append(cv2.resize(img[max(0, cy - m):cy + m, max(0, cx - m):cx + m], (320, 320)))
    rows = [np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles) - len(tiles) % 4, 4)]
    cv2.imwrite(str(folder / "landmarks.png"), np.vstack(rows))
    print(f"pictures: {folder / 'landmarks.png'} (green: mesh, magenta: dlib68)")


if __name__ == "__main__":
    main()
