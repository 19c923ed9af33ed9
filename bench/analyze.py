"""Per-face latency of each face-analysis backend.

    python bench/analyze.py [--faces 100]

The faces are the first N utkface-dev photos (200 x 200 crops), decoded once; each
backend estimates age, gender and emotion one face at a time (what `search --analyze`
and `ingest --analyze` do per face), after one warm-up. A backend whose weights are not
installed is reported as unavailable with the reason (DeepFace's own models download
from GitHub, so on a machine without a network only the offline backend runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FACES, machine, table, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100)
    args = parser.parse_args()

    from lookalike import analysis
    from lookalike.errors import LookalikeError
    from lookalike.faces.images import decode_file

    photos = sorted((FACES / "utkface-dev" / "images").glob("*.jpg"))[:args.faces]
    if not photos:
        raise SystemExit(f"no utkface-dev photos under {FACES} (set LOOKALIKE_FACES)")
    images = [decode_file(str(p), 10**8).rgb for p in photos]
    rows = []
    for name in (analysis.AnalyzerName.offline, analysis.AnalyzerName.agender, analysis.AnalyzerName.deepface):
        try:
            started = time.perf_counter()
            model = analysis.build(name)
            load_s = time.perf_counter() - started
        except LookalikeError as err:
            rows.append({"backend": name.value, "available": False, "reason": str(err).split(";")[0]})
            print(f"{name.value}: unavailable ({err})")
            continue
        model.analyze(images[0], [(0, 0, images[0].shape[1], images[0].shape[0])], crop=True)
        times = []
        for rgb in images:
            started = time.perf_counter()
            model.analyze(rgb, [(0, 0, rgb.shape[1], rgb.shape[0])], crop=True)
            times.append((time.perf_counter() - started) * 1000)
        rows.append({"backend": name.value, "available": True, "model": model.description, "faces": len(images),
                     "load_s": round(load_s, 2), "p50_ms": round(float(np.percentile(times, 50)), 1),
                     "p95_ms": round(float(np.percentile(times, 95)), 1)})
    table("Face analysis: age + gender + emotion per face (one face at a time)",
          ["backend", "available", "load s", "p50 ms", "p95 ms", "model / reason"],
          [[r["backend"], r["available"], r.get("load_s", "-"), r.get("p50_ms", "-"), r.get("p95_ms", "-"),
            r.get("model") or r.get("reason")] for r in rows])
    print("wrote", write("analyze", {"machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
