"""Ingest throughput: `lookalike ingest` vs DeepFace.register vs the model-only bound.

    python bench/ingest.py [--photos 1200]

Same photos (the first N of lfw-dev, 250x250), same model (Dlib) and detector (dlib):

* lookalike: the real CLI in a subprocess (worker start and model loads included);
* DeepFace.register into DeepFace's sqlite database, one call per photo (the model is
  loaded before the clock starts, which favours DeepFace);
* model-only bound: DeepFace's Dlib network on pre-aligned 150x150 chips, one process per
  core, only the forward passes timed — no decoding, detection or storage.

Targets (issue 2): lookalike >= 3x DeepFace.register and >= 85 % of the bound.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import lfw_photos, machine, table, write  # noqa: E402


def run_lookalike(corpus: Path, workdir: Path) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db",
                          str(workdir / "bench.db"), "--json"], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    summary = json.loads(out.stdout)
    return {"seconds": wall, "photos": summary["processed"], "faces": summary["faces"],
            "inner_seconds": summary["seconds"]}


def run_register(photos: list[Path], workdir: Path) -> dict:
    from lookalike.config import activate_weights_home

    activate_weights_home()
    from deepface import DeepFace

    db = str(workdir / "deepface.sqlite")
    kw = dict(model_name="Dlib", detector_backend="dlib", database_type="sqlite", connection_details=db)
    DeepFace.register(img=str(photos[0]), **kw)  # model loads before the clock starts
    faces = 0
    failed = 0
    started = time.perf_counter()
    for p in photos[1:]:
        try:
            faces += DeepFace.register(img=str(p), **kw)["inserted"]
        except Exception:  # noqa: BLE001 - no face: DeepFace raises
            failed += 1
    return {"seconds": time.perf_counter() - started, "photos": len(photos) - 1, "faces": faces,
            "failed": failed}


def _embed_worker(chips_file: str, conn) -> None:  # noqa: ANN001
    import numpy as np

    from lookalike.config import activate_weights_home
    from lookalike.embed import Embedder

    activate_weights_home()
    chips = np.load(chips_file)
    emb = Embedder("Dlib")
    emb.embed(chips[:1])  # warm
    conn.recv()  # start together
    started = time.perf_counter()
    for chip in chips:
        emb.embed(chip[None])
    conn.send(time.perf_counter() - started)


def run_bound(photos: list[Path], workdir: Path) -> dict:
    import numpy as np

    from lookalike.config import DEFAULT_DETECT_MAX_SIDE
    from lookalike.faces import FacePipeline, FacesMode, Space
    from lookalike.images import decode_file

    pipe = FacePipeline(Space("Dlib", "dlib", "chip"), DEFAULT_DETECT_MAX_SIDE)
    chips = []
    for p in photos:
        for d in pipe.detect(decode_file(str(p), 10**8).rgb, FacesMode.largest):
            chips.append(pipe.aligner.align(decode_file(str(p), 10**8).rgb, d, (150, 150)))
    chips = np.stack(chips)
    cores = os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    for part in np.array_split(chips, cores):
        f = workdir / f"chips{len(procs)}.npy"
        np.save(f, part)
        a, b = ctx.Pipe()
        proc = ctx.Process(target=_embed_worker, args=(str(f), b))
        proc.start()
        procs.append(proc)
        pipes.append(a)
    time.sleep(8)  # let every worker load its model
    for a in pipes:
        a.send("go")
    seconds = max(a.recv() for a in pipes)
    for proc in procs:
        proc.join()
    return {"seconds": seconds, "faces": len(chips), "processes": cores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1200)
    args = parser.parse_args()
    photos = lfw_photos(args.photos)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        for p in photos:
            (corpus / p.parent.name).mkdir(parents=True, exist_ok=True)
            (corpus / p.parent.name / p.name).symlink_to(p)
        ours = run_lookalike(corpus, work)
        peer = run_register(photos, work)
        bound = run_bound(photos, work)
    ours_pps = ours["photos"] / ours["seconds"]
    ours_fps = ours["faces"] / ours["seconds"]
    peer_pps = peer["photos"] / peer["seconds"]
    bound_fps = bound["faces"] / bound["seconds"]
    rows = [
        ["lookalike ingest (CLI, 2 workers)", ours["photos"], ours["faces"], ours["seconds"], ours_pps, ours_fps],
        ["DeepFace.register (sqlite)", peer["photos"], peer["faces"], peer["seconds"], peer_pps,
         peer["faces"] / peer["seconds"]],
        [f"model-only bound ({bound['processes']} processes)", "-", bound["faces"], bound["seconds"], "-", bound_fps],
    ]
    table(f"ingest, {len(photos)} lfw-dev photos, Dlib + dlib", ["run", "photos", "faces", "s", "photos/s", "faces/s"], rows)
    result = {
        "machine": machine(), "photos": len(photos), "model": "Dlib", "detector": "dlib",
        "lookalike": ours | {"photos_per_s": ours_pps, "faces_per_s": ours_fps},
        "deepface_register": peer | {"photos_per_s": peer_pps},
        "model_only_bound": bound | {"faces_per_s": bound_fps},
        "speedup_vs_register": ours_pps / peer_pps,
        "share_of_bound": ours_fps / bound_fps,
        "targets": {"speedup_vs_register": 3.0, "share_of_bound": 0.85},
    }
    print(f"speed-up vs DeepFace.register: {result['speedup_vs_register']:.2f}x (target 3x); "
          f"share of model-only bound: {result['share_of_bound']:.0%} (target 85 %)")
    print("wrote", write("ingest", result))


if __name__ == "__main__":
    main()
