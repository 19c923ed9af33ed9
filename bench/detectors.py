"""Which detector and aligner should be the default? Accuracy and speed on real photos.

    python bench/detectors.py [--configs MODEL:DETECTOR:ALIGNER,...]

(default: SFace:yunet:arcface,Dlib:dlib:chip,Dlib:dlib:eyes,Dlib:opencv:chip,Dlib:opencv:eyes)

For each (model, detector, aligner), through lookalike's own pipeline:

* lfw-dev: all 3,443 photos of the 2,200 pairs in ``pairs.tsv`` are embedded (largest
  face, 2 worker processes); verification accuracy is 10-fold cross-validated (threshold
  chosen on 9 folds, scored on the 10th), plus ROC AUC, photos with no face (a pair with a
  missing face counts as wrong), and ms per photo;
* celeb: 122 in-the-wild photos (up to 2,000+ px): how many get a face, and ms per photo.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FACES, machine, table, write

from lookalike.measure.evaluate import best_threshold, cv_accuracy, roc_auc

_PIPE = None


def _init(model: str, detector: str, aligner: str) -> None:
    global _PIPE
    from lookalike.config import DEFAULT_DETECT_MAX_SIDE, activate_weights_home
    from lookalike.faces.pipeline import FacePipeline, Space
    from lookalike.ingest.mapper import prepare_process

    activate_weights_home()
    prepare_process()  # one thread per worker process, as ingest runs it
    _PIPE = FacePipeline(Space(model, detector, aligner), DEFAULT_DETECT_MAX_SIDE, threads=1)


def _embed(path: str):
    from lookalike.faces.images import decode_file
    from lookalike.faces.pipeline import FacesMode

    started = time.perf_counter()
    faces = _PIPE.faces(decode_file(path, 10**8).rgb, FacesMode.largest)
    return path, (faces[0].embedding if faces else None), time.perf_counter() - started


def embed_all(paths: list[str], model: str, detector: str, aligner: str) -> tuple[dict, float, float]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(os.cpu_count(), initializer=_init, initargs=(model, detector, aligner)) as pool:
        pool.map(_embed, paths[:2])  # warm both workers
        started = time.perf_counter()
        out = pool.map(_embed, paths, chunksize=8)
        wall = time.perf_counter() - started
    per_photo = float(np.mean([t for _, _, t in out]))
    return {p: e for p, e, _ in out}, wall, per_photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", help="MODEL:DETECTOR:ALIGNER, comma-separated",
                        default="SFace:yunet:arcface,Dlib:dlib:chip,Dlib:dlib:eyes,Dlib:opencv:chip,Dlib:opencv:eyes")
    args = parser.parse_args()
    lfw = FACES / "lfw-dev"
    with open(lfw / "pairs.tsv", newline="") as fh:
        pairs = [(str(lfw / r["path_a"]), str(lfw / r["path_b"]), r["same"] == "1")
                 for r in csv.DictReader(fh, delimiter="\t")]
    lfw_paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    celeb = sorted(str(p) for p in (FACES / "celeb").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    same = np.array([s for _, _, s in pairs])
    results, rows = [], []
    for config in args.configs.split(","):
        model, detector, aligner = config.split(":")
        vectors, wall, per_photo = embed_all(lfw_paths, model, detector, aligner)
        missing = sum(v is None for v in vectors.values())
        scores = np.array([float(vectors[a] @ vectors[b]) if vectors[a] is not None and vectors[b] is not None
                           else -1.0 for a, b, _ in pairs])
        acc, threshold = cv_accuracy(scores, same), best_threshold(scores, same)
        celeb_vectors, celeb_wall, celeb_ms = embed_all(celeb, model, detector, aligner)
        celeb_found = sum(v is not None for v in celeb_vectors.values())
        r = {"model": model, "detector": detector, "aligner": aligner, "lfw_cv_accuracy": acc,
             "lfw_auc": roc_auc(scores, same), "lfw_threshold": threshold, "lfw_no_face": missing,
             "lfw_ms_per_photo": per_photo * 1000,
             "lfw_photos_per_s_2_workers": len(lfw_paths) / wall, "celeb_found": celeb_found,
             "celeb_photos": len(celeb), "celeb_ms_per_photo": celeb_ms * 1000}
        results.append(r)
        rows.append([f"{model} + {detector} + {aligner}", f"{acc:.2%}", f"{r['lfw_auc']:.4f}", missing,
                     f"{r['lfw_ms_per_photo']:.0f}", f"{celeb_found}/{len(celeb)}", f"{r['celeb_ms_per_photo']:.0f}"])
        print(rows[-1], flush=True)
    table("model + detector + aligner on lfw-dev (2,200 pairs) and celeb (122 photos)",
          ["config", "10-fold acc", "AUC", "no face", "ms/photo", "celeb found", "celeb ms/photo"], rows)
    print("wrote", write("detectors", {"machine": machine(), "pairs": len(pairs), "photos": len(lfw_paths),
                                       "results": results}))


if __name__ == "__main__":
    main()
