"""Ingest throughput: `lookalike ingest` vs DeepFace.register vs the model-only bound.

    python bench/ingest.py [--photos 1200] [--stacks sface,dlib] [--rounds 3]

Same photos (the first N of lfw-dev, 250x250), for each model stack (the default SFace +
YuNet and the former Dlib + dlib, bench/_common.py STACKS), in the same run:

* lookalike: the real CLI in a subprocess, 2 workers (worker start and model loads
  included);
* DeepFace.register into DeepFace's sqlite database with the same model and detector,
  one call per photo (the model is loaded before the clock starts, which favours DeepFace);
* model-only bound: one process per core running only the stack's forward passes on
  pre-decoded photos (SFace stack: YuNet on the photo + SFace on the pre-aligned chip + the
  face mesh ingest runs for each face's dense landmarks, when installed; Dlib stack: the
  Dlib network on pre-aligned chips), one face a run — no decoding, alignment or storage;
  the workers load and warm their models before the clock starts. The issue's target is
  measured against it;
* the same passes grouped as ingest's workers run them (SFace stack: SFace and the mesh on
  the faces of eight photos a run, lookalike.ingest.local.PHOTOS_A_CALL), a second bound
  that the grouping cannot beat: its share says what is left besides the networks.

lookalike and the bounds run side by side ``--rounds`` times (the VM's speed moves by the
hour); the rows are the round whose share of its bound is the median (the grouped share is
the median of the rounds' own).

Targets (SFace stack): >= 60 photos/s, >= 2.5x DeepFace.register (issue 15), >= 90 % of
the bound, worker start-up included, on 1,200 photos (issue 26).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import STACKS, deepface_kw, earlier, lfw_photos, machine, stack_args, table, write

from lookalike.ingest.local import PHOTOS_A_CALL


def _share(ours: dict, bound: dict) -> float:
    """Our faces per second as a share of the bound's."""
    return (ours["faces"] / ours["seconds"]) / (bound["faces"] / bound["seconds"])


def run_lookalike(stack: str, corpus: Path, workdir: Path, round_no: int = 0) -> dict:
    """One ``lookalike ingest`` of ``corpus`` into a new library (one per round: a second run
    into the same one would find every photo unchanged)."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db",
                          str(workdir / f"bench-{stack}-{round_no}.db"), "--index-dir",
                          str(workdir / f"ix-{stack}-{round_no}"),
                          "--workers", "2", "--json", *stack_args(stack)],
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    summary = json.loads(out.stdout)
    return {"seconds": wall, "photos": summary["processed"], "faces": summary["faces"],
            "inner_seconds": summary["seconds"]}


def run_register(stack: str, photos: list[Path], workdir: Path) -> dict:
    from lookalike.config import activate_weights_home

    activate_weights_home()
    from deepface import DeepFace

    db = str(workdir / f"deepface-{stack}.sqlite")
    kw = dict(**deepface_kw(stack), database_type="sqlite", connection_details=db)
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


def _bound_worker(stack: str, data_file: str, group: int, conn) -> None:
    """The stack's forward passes only, one thread, as one ingest worker runs them: the
    detector (YuNet), the recognition network and, when it is installed (ingest then stores
    each face's dense landmarks), the face mesh; ``group`` faces a run of the last two."""
    import numpy as np

    from lookalike.config import DEFAULT_DETECT_MAX_SIDE, activate_weights_home
    from lookalike.faces import detect, landmarks
    from lookalike.faces.embed import Embedder
    from lookalike.ingest.mapper import prepare_process
    from lookalike.models import registry

    activate_weights_home()
    prepare_process()
    data = np.load(data_file)
    chips, images = data["chips"], data["images"] if "images" in data else None
    emb = Embedder(STACKS[stack]["model"], threads=1)
    detector = detect.build("yunet", DEFAULT_DETECT_MAX_SIDE) if images is not None else None
    mesh = detector is not None and registry.problem(landmarks.MODEL) is None  # as the mapper decides
    emb.embed(chips[:1])  # warm
    if detector is not None:
        found = detector.detect(images[0])
        if mesh:
            landmarks.landmarks(images[0], found[0], threads=1)
    conn.send("ready")
    conn.recv()  # start together
    started = time.perf_counter()
    for at in range(0, len(chips), group):
        faces = []
        for i in range(at, min(at + group, len(chips))):
            if detector is not None:
                found = detector.detect(images[i])
                faces += [(images[i], found[0])] if mesh and found else []
        if faces:
            landmarks.landmarks_of(faces, threads=1)
        emb.embed(chips[at:at + group])
    conn.send((time.perf_counter() - started, mesh))


def run_bound(stack: str, photos: list[Path], workdir: Path, group: int = 1) -> dict:
    import numpy as np

    from lookalike.config import DEFAULT_DETECT_MAX_SIDE
    from lookalike.faces.images import decode_file
    from lookalike.faces.pipeline import FacePipeline, FacesMode, Space

    s = STACKS[stack]
    pipe = FacePipeline(Space(s["model"], s["detector"], s["aligner"]), DEFAULT_DETECT_MAX_SIDE)
    chips, images = [], []
    for p in photos:
        rgb = decode_file(str(p), 10**8).rgb
        for d in pipe.detect(rgb, FacesMode.largest):
            chips.append(pipe.aligner.align(rgb, d, pipe.embedder.input_size))
            images.append(rgb)
    chips = np.stack(chips)
    with_detector = s["detector"] == "yunet"  # YuNet is a forward pass too; dlib's HOG is not a network
    cores = os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    for part in np.array_split(np.arange(len(chips)), cores):
        f = workdir / f"bound-{stack}-{len(procs)}.npz"
        arrays = {"chips": chips[part]} | ({"images": np.stack([images[i] for i in part])} if with_detector else {})
        np.savez(f, **arrays)
        a, b = ctx.Pipe()
        proc = ctx.Process(target=_bound_worker, args=(stack, str(f), group, b))
        proc.start()
        procs.append(proc)
        pipes.append(a)
    for a in pipes:  # every worker has loaded and warmed its models
        assert a.recv() == "ready"
    for a in pipes:
        a.send("go")
    done = [a.recv() for a in pipes]
    for proc in procs:
        proc.join()
    seconds, mesh = max(t for t, _ in done), all(m for _, m in done)
    passes = f"YuNet + {s['model']}" + (" + face mesh" if mesh else "") if with_detector else f"{s['model']} network"
    return {"seconds": seconds, "faces": len(chips), "processes": cores, "passes": passes, "faces_a_run": group}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1200)
    parser.add_argument("--stacks", default=",".join(STACKS), help="comma-separated: " + ", ".join(STACKS))
    parser.add_argument("--rounds", type=int, default=3, help="lookalike and the bound, side by side, this often")
    args = parser.parse_args()
    photos = lfw_photos(args.photos)
    stacks = args.stacks.split(",")
    rows, result = [], {"machine": machine(), "photos": len(photos), "stacks": earlier("ingest", "stacks", stacks),
                        "targets": {"sface": {"photos_per_s": 60, "speedup_vs_register": 2.5, "share_of_bound": 0.9}}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        for p in photos:
            (corpus / p.parent.name).mkdir(parents=True, exist_ok=True)
            (corpus / p.parent.name / p.name).symlink_to(p)
        for stack in stacks:
            print(f"{STACKS[stack]['label']}: DeepFace.register, then {args.rounds} rounds of lookalike and the "
                  "bound ...", flush=True)
            peer = run_register(stack, photos, work)
            # ours and the bound taken side by side, round after round: the VM's speed moves by
            # the hour, and a share of one run against a bound taken minutes later mixes hours
            rounds = []
            for n in range(args.rounds):
                one = {"ours": run_lookalike(stack, corpus, work, n), "bound": run_bound(stack, photos, work)}
                if stack == "sface":
                    one["grouped"] = run_bound(stack, photos, work, PHOTOS_A_CALL)
                rounds.append(one)
            # the rows are the round of median share: its run, its bound, its share
            median = sorted(rounds, key=lambda r: _share(r["ours"], r["bound"]))[len(rounds) // 2]
            ours, bound, grouped = median["ours"], median["bound"], median.get("grouped")
            share = _share(ours, bound)
            grouped_share = statistics.median(_share(r["ours"], r["grouped"]) for r in rounds) if grouped else None
            ours_pps, ours_fps = ours["photos"] / ours["seconds"], ours["faces"] / ours["seconds"]
            peer_pps = peer["photos"] / peer["seconds"]
            bound_fps = bound["faces"] / bound["seconds"]
            label = STACKS[stack]["label"]
            rows += [
                [label, "lookalike ingest (CLI, 2 workers)", ours["photos"], ours["faces"], ours["seconds"], ours_pps,
                 ours_fps, ours_pps / peer_pps, share],
                [label, "DeepFace.register (sqlite)", peer["photos"], peer["faces"], peer["seconds"], peer_pps,
                 peer["faces"] / peer["seconds"], 1.0, "-"],
                [label, f"model-only bound ({bound['passes']}, {bound['processes']} processes)", "-", bound["faces"],
                 bound["seconds"], "-", bound_fps, "-", 1.0],
            ]
            if grouped is not None:
                grouped_fps = grouped["faces"] / grouped["seconds"]
                rows.append([label, f"the same, {PHOTOS_A_CALL} faces a run as ingest", "-", grouped["faces"],
                             grouped["seconds"], "-", grouped_fps, "-", grouped_share])
            result["stacks"][stack] = {
                **STACKS[stack],
                "lookalike": ours | {"photos_per_s": ours_pps, "faces_per_s": ours_fps},
                "deepface_register": peer | {"photos_per_s": peer_pps},
                "model_only_bound": bound | {"faces_per_s": bound_fps},
                "speedup_vs_register": ours_pps / peer_pps,
                # register stores every face of a photo (lookalike the largest) and its no-face
                # photos raise at once: the two ratios bracket the comparison
                "faces_speedup_vs_register": ours_fps / (peer["faces"] / peer["seconds"]),
                "share_of_bound": share,
                "rounds": [{"ours_s": r["ours"]["seconds"], "bound_s": r["bound"]["seconds"],
                            "share_of_bound": _share(r["ours"], r["bound"])} for r in rounds],
                "measured": result["machine"]["date"],
            }
            if grouped is not None:
                result["stacks"][stack] |= {
                    "model_only_bound_grouped": grouped | {"faces_per_s": grouped["faces"] / grouped["seconds"]},
                    "share_of_grouped_bound": grouped_share}
    table(f"ingest, {len(photos)} lfw-dev photos", ["stack", "run", "photos", "faces", "s", "photos/s",
                                                    "faces/s", "vs register", "share of bound"], rows)
    for stack, r in result["stacks"].items():
        note = f" ({r['share_of_grouped_bound']:.0%} of it grouped)" if "share_of_grouped_bound" in r else ""
        print(f"{STACKS[stack]['label']}: {r['lookalike']['photos_per_s']:.1f} photos/s, "
              f"{r['speedup_vs_register']:.2f}x DeepFace.register, {r['share_of_bound']:.0%} of the bound"
              + note)
    if {"sface", "dlib"} <= set(stacks):  # both measured in this run: a ratio across runs would mix hours
        # (and machines): the VM's speed moves 2x by the hour
        speeds = {s: result["stacks"][s]["lookalike"]["photos_per_s"] for s in ("sface", "dlib")}
        gain = speeds["sface"] / speeds["dlib"]
        result["sface_vs_dlib"] = gain
        print(f"the new default ingests {gain:.2f}x as fast as the old one")
    print("wrote", write("ingest", result))


if __name__ == "__main__":
    main()
