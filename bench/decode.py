"""The cost of decoding one hostile photo: lookalike's decode against the naive peers.

    python bench/decode.py [--repeat N] [--timeout S] [--before COMMIT] [--before-timeout S]

The files of issue 23, made in a temp folder (never committed): TIFFs of 40,000 and
160,000 one-pixel pages and a 1,000-page TIFF whose IFD chain loops back to its start
(``../shared/hostile/mktiff.py``), a 16-bit 6300 x 6300 PNG, a float ("F") 6300 x 6300
TIFF, and the 8000 x 6000 JPEG of bad-inputs. Each is decoded in a fresh process by

* ``lookalike``: ``faces.images.decode_file`` (what ingest, search, the API and the web
  app use), and for the JPEG also with ``max_side=1280`` (the detector's size);
* ``pillow``: ``np.asarray(Image.open(path).convert("RGB"))``, the naive Pillow way;
* ``deepface``: ``cv2.imread(path)``, which is what DeepFace's ``load_image`` does with a path;

and the table gives the wall time and the peak RSS the decode added to the process, with
lookalike's ratio to each peer (time ratio < 1: lookalike is faster). The figures are the
best of ``--repeat`` runs (3; before 2026-12-06 one). ``--before COMMIT`` adds a row for the
``decode_file`` of that commit (e.g. the one before issue 23's fix), with its own
``--before-timeout``, run once: its rows take minutes and tell an order of magnitude.
Results: ``bench/results/decode.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FACES, ROOT, machine, table, write

SIDE = 6300


def make_files(folder: Path) -> dict[str, Path]:
    """The hostile files, written into ``folder``."""
    import io

    import numpy as np
    from PIL import Image

    tiff = runpy.run_path(str(FACES.parent / "hostile" / "mktiff.py"))["tiff"]
    files: dict[str, Path] = {}
    for name, pages, loop in (("tiff_40k_pages", 40_000, False), ("tiff_160k_pages", 160_000, False),
                              ("tiff_looped_1k", 1_000, True)):
        files[name] = folder / f"{name}.tif"
        files[name].write_bytes(tiff(pages, loop))
    column = (np.arange(SIDE, dtype=np.uint32) * 10 % 65536).astype(np.uint16)
    files["png_16bit_6300"] = folder / "png_16bit_6300.png"
    Image.fromarray(np.repeat(column[:, None], SIDE, axis=1)).save(files["png_16bit_6300"])
    floats = np.repeat(np.linspace(-3, 5, SIDE, dtype=np.float32)[:, None], SIDE, axis=1)
    buf = io.BytesIO()
    Image.fromarray(floats, "F").save(buf, "TIFF", compression="tiff_adobe_deflate")
    files["tiff_float_6300"] = folder / "tiff_float_6300.tif"
    files["tiff_float_6300"].write_bytes(buf.getvalue())
    files["jpeg_48mp"] = FACES / "bad-inputs" / "generated" / "huge_image__huge_8000x6000.jpg"
    return files


def one(way: str, path: str) -> dict:
    """Decode ``path`` one ``way`` in this process; its time and the peak RSS it added."""
    import cv2
    import numpy as np
    from PIL import Image

    from lookalike.faces.images import decode_file

    Image.init()  # every plugin imported up front, as in a server that has decoded before
    old = (runpy.run_path(way.split(":", 1)[1], run_name="lookalike.faces.before")  # loaded before the clock
           if way.startswith("before:") else {})
    before = _high_water_kb()
    started = time.perf_counter()
    try:
        if way == "lookalike":
            shape = decode_file(path, 100_000_000).rgb.shape
        elif way == "lookalike_draft":
            shape = decode_file(path, 100_000_000, max_side=1280).rgb.shape
        elif way.startswith("before:"):
            shape = old["decode_file"](path, 100_000_000).rgb.shape
        elif way == "pillow":
            shape = np.asarray(Image.open(path).convert("RGB")).shape
        else:
            read = cv2.imread(path)
            shape = read.shape if read is not None else None
        error = None
    except Exception as err:  # noqa: BLE001 - a refusal or a decoder failure is an answer too
        shape, error = None, f"{type(err).__name__}: {err}"[:160]
    seconds = time.perf_counter() - started
    peak = _high_water_kb()
    return {"seconds": seconds, "peak_mb": (peak - before) / 1024, "shape": shape and list(shape), "error": error}


def _high_water_kb() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent
    that forked it, which made the test files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(way: str, path: Path, timeout: float) -> dict:
    """:func:`one` in a fresh interpreter, so each peak RSS is that decode's alone."""
    try:
        done = subprocess.run([sys.executable, __file__, "--one", way, str(path)], capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                   "OMP_NUM_THREADS": "1", "LOOKALIKE_FACES": str(FACES)})
    except subprocess.TimeoutExpired:
        return {"seconds": timeout, "peak_mb": float("nan"), "shape": None, "error": f"over {timeout:.0f} s"}
    if done.returncode:
        return {"seconds": float("nan"), "peak_mb": float("nan"), "shape": None,
                "error": (done.stderr.strip().splitlines() or ["crashed"])[-1][:160]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _before(commit: str, folder: Path) -> Path:
    """faces/images.py as of ``commit``, runnable alone (its one relative import made absolute)."""
    text = subprocess.run(["git", "show", f"{commit}:lookalike/faces/images.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = folder / "images_before.py"
    path.write_text(text.replace("from ..errors import", "from lookalike.errors import"))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per file and way; the best is kept")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before one decode is given up")
    parser.add_argument("--before", metavar="COMMIT", help="also time faces/images.py as of this commit")
    parser.add_argument("--before-timeout", type=float, default=60, help="seconds for the --before decodes")
    parser.add_argument("--one", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    results: dict = {"machine": machine(), "repeat": args.repeat, "files": {}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="lookalike-decode-") as tmp:
        files = make_files(Path(tmp))
        before = _before(args.before, Path(tmp)) if args.before else None
        for name, path in files.items():
            ways = ["lookalike", "pillow", "deepface"] + (["lookalike_draft"] if name.startswith("jpeg") else [])
            ways += [f"before:{before}"] if before else []
            measured = {}
            for way in ways:
                limit = args.before_timeout if way.startswith("before:") else args.timeout
                times = 1 if way.startswith("before:") else max(1, args.repeat)  # the old decoder: minutes a row
                runs = [run(way, path, limit) for _ in range(times)]
                measured[way] = min(runs, key=lambda r: r["seconds"] if r["seconds"] == r["seconds"] else 1e9)
            ours = measured["lookalike"]
            entry = {"bytes": path.stat().st_size, "ways": measured,
                     "time_ratio_vs_pillow": ours["seconds"] / measured["pillow"]["seconds"],
                     "time_ratio_vs_deepface": ours["seconds"] / measured["deepface"]["seconds"],
                     "memory_ratio_vs_pillow": ours["peak_mb"] / max(measured["pillow"]["peak_mb"], 1.0)}
            results["files"][name] = {**entry, "ways": {w.split(":")[0]: m for w, m in measured.items()}}
            for way, m in measured.items():
                rows.append([name, f"{entry['bytes'] / 1024:,.0f} KB", way.split(":")[0], m["seconds"], m["peak_mb"],
                             "x".join(map(str, m["shape"] or [])) or "-", (m["error"] or "")[:70]])
            rows.append([name, "", "ratio vs pillow / deepface",
                         f"{entry['time_ratio_vs_pillow']:.2f} / {entry['time_ratio_vs_deepface']:.2f}",
                         f"{entry['memory_ratio_vs_pillow']:.2f} (vs pillow)", "", ""])
    table(f"decode cost, one process per decode ({results['machine']['date']})",
          ["file", "size", "way", "seconds", "peak +MB", "decoded", "refused / error"], rows)
    print(f"wrote {write('decode', results)}")


if __name__ == "__main__":
    main()
