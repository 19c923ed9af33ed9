"""The pictures of lookalike.imaging: how long each takes, and whether they still work as faces.

    python bench/imaging.py [--repeat 3]

Times (median of ``--repeat`` runs, wall clock and this process's CPU time, photos
decoded and landmarks found beforehand — the landmarks' own cost per face is stated on its
own, since a library stores them at ingest):

* ``average_100``: 100 lfw-dev faces averaged at 256 px (mean shape + warps + sums);
* ``morph_24``: a 24-frame morph at 256 px between two celeb photos (frames only), and
  ``morph_24_gif``: the same frames written as a GIF;
* ``transform``: one celeb photo (full resolution) moved toward the UTKFace 60+ average
  away from the 20-39 one (the prototypes made beforehand);
* ``slider_frame``: one picture of an appearance model (``draw(component, sigma)``),
  fitted beforehand on 100 lfw-dev faces at 128 px (``appearance_fit_100`` is its own row).

Targets (issue 25): average <= 3 s, morph <= 2 s, transform <= 0.5 s, slider frame <= 0.2 s.

Figures of the pictures themselves, judged by lookalike's SFace pipeline and the offline
age model:

* averages: celeb people with >= 5 photos, each person's average face vs every person's
  centroid (nearest = the person? same_person?); the average of all of them vs each
  person's centroid (it should be no one);
* morph: similarity of each frame to A and B;
* transform: 20 utkface-dev photos aged 20-39 (5 per group of the race column, used only
  to measure), both colour modes: estimated age rise, identity kept (>= floor, >= same-person
  threshold), cheek ΔE and its a*b* part (hue and saturation: the complexion), per group.

Results: ``bench/results/imaging.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FACES, machine, table, write
from _landmarks import Landmarker, cheek_masks

RACES = ("white", "black", "asian", "indian")
TARGETS_S = {"average_100": 3.0, "morph_24": 2.0, "transform": 0.5, "slider_frame": 0.2}


def _load(path: Path, side: int = 0) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as picture:
        picture = picture.convert("RGB")
        if side:
            picture.thumbnail((side, side))
        return np.asarray(picture)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _median_s(work, repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (all its threads) of ``work``:
    on a shared machine the wall time carries the other tenants' load, the CPU time does not."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return round(statistics.median(wall), 4), round(statistics.median(cpu), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from lookalike.analysis import AnalyzerName, build
    from lookalike.config import DEFAULT_ALIGNER, DEFAULT_CALIBRATIONS, DEFAULT_DETECTOR, DEFAULT_MODEL
    from lookalike.faces.pipeline import FacePipeline, FacesMode, Space
    from lookalike.imaging import appearance, average, colour, morph, transform

    threshold, floor = DEFAULT_CALIBRATIONS["SFace__yunet__arcface"]
    marks = Landmarker()
    pipeline = FacePipeline(Space(DEFAULT_MODEL, DEFAULT_DETECTOR, DEFAULT_ALIGNER), 1280)
    analyzer = build(AnalyzerName.offline)
    load_before = os.getloadavg()

    def vector(rgb: np.ndarray) -> np.ndarray | None:
        found = pipeline.faces(rgb, FacesMode.largest)
        return found[0].embedding if found else None

    def faces_of(paths: list[Path], side: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for path in paths:
            rgb = _load(path, side)
            got = marks(rgb)
            if got is not None:
                out.append((rgb, got[1]))
        return out

    # --- times ------------------------------------------------------------------------------
    lfw = sorted((FACES / "lfw-dev" / "images").glob("*/*.jpg"))[:100]
    images = [_load(p) for p in lfw]
    marks(images[0])  # the face mesh loaded and YuNet compiled for the size before the clock
    started = time.perf_counter()
    found = [marks(rgb) for rgb in images]
    landmarks_ms = (time.perf_counter() - started) / len(images) * 1000
    hundred = [(rgb, got[1]) for rgb, got in zip(images, found) if got is not None]
    times: dict[str, tuple[float, float | None]] = {
        "average_100": _median_s(lambda: average.average(hundred, 256), args.repeat)}

    a_path = FACES / "celeb" / "deepface" / "deepface_id01" / "img1.jpg"
    b_path = FACES / "celeb" / "faceapi_bbt" / "sheldon" / "sheldon1.png"
    (a, pa), (b, pb) = faces_of([a_path, b_path])
    frames: list[np.ndarray] = []

    def make_morph() -> None:
        frames[:] = morph.frames((a, pa), (b, pb), 24, 256)

    times["morph_24"] = _median_s(make_morph, args.repeat)
    gif = Path("/tmp") / f"lookalike-bench-morph-{os.getpid()}.gif"
    times["morph_24_gif"] = _median_s(lambda: morph.write(frames, gif), args.repeat)
    gif.unlink(missing_ok=True)

    utk = FACES / "utkface-dev"
    rows = _rows(utk / "MANIFEST.tsv")
    young = [r for r in rows if 20 <= int(r["age"]) < 40]
    tests = [r for race in RACES for r in [r for r in young if r["race"] == race][:5]]
    toward = average.average(faces_of([utk / r["path"] for r in rows if int(r["age"]) >= 60]), 256)
    away = average.average(faces_of([utk / r["path"] for r in young if r not in tests]), 256)
    times["transform"] = _median_s(lambda: transform.transform(a, pa, toward, away, 1.0), args.repeat)

    started = time.perf_counter()
    model = appearance.fit(hundred, components=8, size=128)
    times["appearance_fit_100"] = (round(time.perf_counter() - started, 3), None)
    times["slider_frame"] = _median_s(lambda: appearance.draw(model, 0, 1.5), max(args.repeat, 10))

    # --- the pictures as faces -------------------------------------------------------------
    people: dict[str, list[Path]] = {}
    for row in _rows(FACES / "celeb" / "MANIFEST.tsv"):
        people.setdefault(row["identity"], []).append(FACES / "celeb" / row["path"])
    people = {n: p for n, p in sorted(people.items()) if len(p) >= 5}
    centroids, averages, everyone = {}, {}, []
    for name, paths in people.items():
        found_faces = faces_of(paths, 800)
        everyone += found_faces
        vectors = np.stack([v for v in (vector(rgb) for rgb, _ in found_faces) if v is not None])
        centroids[name] = vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0))
        averages[name] = average.average(found_faces, 256)
    names = sorted(centroids)
    matrix = np.stack([centroids[n] for n in names])
    nearest_own, same_person, own_sims = 0, 0, []
    for name in names:
        v = vector(averages[name].image)
        sims = matrix @ v if v is not None else np.full(len(names), -1.0)
        nearest_own += names[int(np.argmax(sims))] == name
        same_person += sims[names.index(name)] >= threshold
        own_sims.append(float(sims[names.index(name)]))
    corpus = average.average(everyone, 256)
    corpus_v = vector(corpus.image)
    corpus_best = float((matrix @ corpus_v).max()) if corpus_v is not None else None
    averages_fig = {"people": len(names), "photos": len(everyone),
                    "nearest_own_pct": round(100 * nearest_own / len(names), 1),
                    "same_person_pct": round(100 * same_person / len(names), 1),
                    "own_similarity_mean": round(float(np.mean(own_sims)), 3),
                    "corpus_average_best_similarity": None if corpus_best is None else round(corpus_best, 3),
                    "corpus_average_is_someone": corpus_best is not None and corpus_best >= threshold}

    va, vb = vector(a), vector(b)
    frame_vectors = [vector(f) for f in frames]
    morph_fig = {"frames": len(frames),
                 "to_a": [round(float(v @ va), 3) for v in frame_vectors],
                 "to_b": [round(float(v @ vb), 3) for v in frame_vectors]}

    transform_rows = []
    photos = []
    for row in tests:
        rgb = _load(utk / row["path"])
        got = marks(rgb)
        if got is not None:
            photos.append((row["race"], rgb, got[0], got[1], vector(rgb)))
    for mode in transform.ColourMode:
        per: dict[str, list[tuple[float, float, float, float]]] = {}
        for race, rgb, box, points, v0 in photos:
            out = transform.transform(rgb, points, toward, away, 1.0, mode)
            rise = analyzer.analyze(out, [box])[0].age - analyzer.analyze(rgb, [box])[0].age
            v1 = vector(out)
            sim = float(v1 @ v0) if v1 is not None and v0 is not None else -1.0
            after = marks(out)
            before_lab = colour.mean_lab(rgb, cheek_masks(points, rgb.shape))
            after_lab = colour.mean_lab(out, cheek_masks(after[1] if after else points, out.shape))
            per.setdefault(race, []).append((rise, sim, colour.delta_e(before_lab, after_lab),
                                             colour.delta_e(before_lab[1:], after_lab[1:])))
        for race in (*RACES, "all"):
            values = np.array([x for r, xs in per.items() if race in (r, "all") for x in xs])
            transform_rows.append({"mode": mode.value, "group": race, "photos": len(values),
                                   "age_rise_mean": round(float(values[:, 0].mean()), 1),
                                   "above_floor_pct": round(100 * float((values[:, 1] >= floor).mean()), 1),
                                   "same_person_pct": round(100 * float((values[:, 1] >= threshold).mean()), 1),
                                   "similarity_mean": round(float(values[:, 1].mean()), 3),
                                   "cheek_delta_e_mean": round(float(values[:, 2].mean()), 2),
                                   "cheek_delta_e_max": round(float(values[:, 2].max()), 2),
                                   "cheek_tint_max": round(float(values[:, 3].max()), 2)})

    result = {"machine": {**machine(), "load_average_1m_before": round(load_before[0], 2),
                          "load_average_1m_after": round(os.getloadavg()[0], 2)},
              "landmarker": "YuNet box + MediaPipe face mesh, 468 points (lookalike.faces.landmarks)",
              "landmarks_ms_per_face": round(landmarks_ms, 1),
              "times": [{"what": k, "median_s": wall, "cpu_s": cpu, "target_s": TARGETS_S.get(k),
                         "met": None if k not in TARGETS_S else wall <= TARGETS_S[k]}
                        for k, (wall, cpu) in times.items()],
              "averages": averages_fig, "morph": morph_fig, "transform": transform_rows,
              "appearance": {"faces": model.count, "size": model.size,
                             "shares": [round(float(s), 4) for s in model.shares]}}
    path = write("imaging", result)
    table("lookalike.imaging: median times (landmarks excluded: "
          f"{landmarks_ms:.0f} ms per face on their own)", ["what", "median s", "cpu s", "target s", "met"],
          [[t["what"], t["median_s"], t["cpu_s"] if t["cpu_s"] is not None else "-", t["target_s"] or "-",
            t["met"] if t["met"] is not None else "-"] for t in result["times"]])
    table("Averages as faces (celeb people with >= 5 photos)", list(averages_fig), [list(averages_fig.values())])
    table("Transform toward 60+ away from 20-39 (utkface-dev, strength 1)",
          ["mode", "group", "photos", "age rise", "> floor %", "same %", "sim", "cheek ΔE mean", "max",
           "a*b* max"],
          [list(r.values()) for r in transform_rows])
    print("morph similarity to A:", morph_fig["to_a"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
