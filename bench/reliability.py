"""Reliability figures (issue 9): crashes, concurrency, hostile input — one table.

    python bench/reliability.py [--photos 400] [--kills 20] [--stores faiss,milvus] [--fuzz 3000]
    python bench/reliability.py --only-crash [--stores faiss,milvus]   # the soak alone: reliability_soak.json

1. **Crash consistency (the randomised SIGKILL soak).** A real ``lookalike ingest`` of
   ``--photos`` lfw-dev photos (two workers) is SIGKILLed — writer and workers, no
   clean-up — at least ``--kills`` times, each run a random 0-0.1 s after it committed
   1-40 more photos (mid-batch, mid-commit; once all is stored, in the final index save
   and upkeep, or at start-up), each time resumed by the next run, until ``--kills`` // 2
   kills fell while photos were still being stored (at most 1.5 x ``--kills``); on SQLite
   with FAISS files and with Milvus Lite (``--stores``). Then ``lookalike remove
   --person`` is killed mid-way 8 times (between the time the CLI takes to open the library
   and the time a whole removal takes, both timed first, the latter on a ninth person).
   Where the kills land depends on the machine's speed, so this is a benchmark, not a
   test: tests/test_reliability.py crashes at each named point deterministically
   (:mod:`lookalike.faults`). After every kill: no duplicate photo row, no ``ok`` photo
   without its face, the saved index holds only faces the database holds (or faces a
   killed removal had not yet dropped). At the end: every photo has a status, ``doctor``
   is clean, each sampled photo finds itself first, removed people are gone.
2. **Concurrency.** While an ingest writes, a separate process searches the library
   without pause (vectors of known photos, ``search_vectors``): searches run / failed,
   answers naming a face the database does not hold, whether the reader picked up the
   faces added meanwhile. Then two ingests start at once on one library: the second must
   refuse with the "being written" message and nothing may break.
3. **Hostile input.** ``--fuzz`` random and mutated byte strings through the decoder
   (a valid image or a ``BadImage``; slowest decode), random manifests (CSV, JSONL) and
   filter strings: inputs tried / crashed.
4. **Privacy.** A query photo carrying a unique marker searched through the CLI, then the
   library, temp and working folders and stderr scanned for the marker and the query's
   vector; ``remove --person`` on an HNSW library, then its files scanned for the name and
   the person's vectors: scans passed.

Machine: whatever runs it (the README's figures: the 2-core VM).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import lfw_photos, machine, table, write


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lookalike.cli", *args]


def make_corpus(folder: Path, photos: list[Path]) -> int:
    for p in photos:
        target = folder / p.parent.name
        target.mkdir(parents=True, exist_ok=True)
        (target / p.name).symlink_to(p)
    return len(photos)


def sql(db: Path, query: str, *params: object) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(query, params).fetchall()


def index_ids(index_dir: Path) -> set[int]:
    """Face ids in the saved FAISS file(s), read the way the library reads them."""
    import faiss

    from lookalike.index.faiss_index import faiss_ids

    out: set[int] = set()
    for path in index_dir.glob("*.faiss"):
        out |= {int(i) for i in faiss_ids(faiss.read_index(str(path)))}
    return out


MILVUS_IDS = """
import json, sys
from pymilvus import MilvusClient
client = MilvusClient(sys.argv[1])
ids = []
for name in client.list_collections():
    client.load_collection(name)
    it = client.query_iterator(name, batch_size=10000, filter="", output_fields=["id"])
    while page := it.next():
        ids += [r["id"] for r in page]
    it.close()
print(json.dumps(ids))
"""


def milvus_ids(vectors: str) -> set[int]:
    """Face ids in a Milvus Lite folder (``milvus-lite:PATH``), read in a process of their
    own: Milvus Lite serves one process, and the next run must be able to open it."""
    folder = vectors.split(":", 1)[1]
    out = subprocess.run([sys.executable, "-c", MILVUS_IDS, folder], capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def invariants(db: Path, index_dir: Path, removed_ids: set[int], vectors: str | None = None) -> list[str]:
    """What must hold after any kill; the names of what does not. ``vectors``: a
    ``milvus-lite:PATH`` library, whose ids are read from Milvus instead of FAISS files."""
    broken = []
    if sql(db, "select count(*) from (select path from photos group by space_id, path having count(*) > 1)")[0][0]:
        broken.append("duplicate photo rows")
    if sql(db, "select count(*) from (select photo_id, x, y, w, h from faces "
               "group by photo_id, x, y, w, h having count(*) > 1)")[0][0]:
        broken.append("duplicate face rows")
    if sql(db, "select count(*) from photos p where status = 'ok' and not exists "
               "(select 1 from faces f where f.photo_id = p.id)")[0][0]:
        broken.append("ok photo without its face")
    db_ids = {r[0] for r in sql(db, "select id from faces")}
    held = milvus_ids(vectors) if vectors and Path(vectors.split(":", 1)[1]).exists() else (
        set() if vectors else index_ids(index_dir))
    if held - db_ids - removed_ids:
        broken.append("index holds a face the database never committed")
    return broken


def stored_photos(db: Path) -> int:
    """Photo rows committed so far in a SQLite library (0 while its schema is being created)."""
    try:
        return sql(db, "select count(*) from photos")[0][0] if db.exists() else 0
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def kill_when(command: list[str], stored: int, extra: float, count: Callable[[], int]) -> bool:
    """Run ``command``; SIGKILL its process group ``extra`` s after ``count()`` (photos
    committed) reaches ``stored``. True if it was still running."""
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and count() < stored:
        time.sleep(0.02)
    time.sleep(extra)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def crash(folder: Path, n_photos: int, kills: int, rng: random.Random, store: str = "faiss") -> dict:
    started = time.perf_counter()
    corpus = folder / "corpus"
    n = make_corpus(corpus, lfw_photos(n_photos))
    db, index_dir = folder / "crash.db", folder / "indexes"
    vectors = f"milvus-lite:{folder / 'vectors.db'}" if store == "milvus" else None
    where = ["--db", str(db), "--index-dir", str(index_dir), *(["--vectors", vectors] if vectors else [])]
    args = [*where, "-q", "--workers", "2"]
    landed, finished, mid_run, broken = 0, 0, 0, []
    tried = 0
    # each run is killed a little after it committed something new (mid-batch, mid-commit);
    # once everything is stored, in the final index save and upkeep or at start-up. How many
    # kills fall mid-run depends on the machine's speed: go on past ``kills`` until half did
    while (tried < kills or mid_run < kills // 2) and tried < kills * 3 // 2:
        stored = stored_photos(db)
        mid_run += stored < n
        # 0-0.1 s: an ingest commits ~5 batches a second on this VM since 2026-12-06 (0-0.5 s
        # let most runs finish their photos within a few kills)
        if kill_when(cli("ingest", str(corpus), *args), min(n, stored + rng.randint(1, 40)),
                     rng.uniform(0.0, 0.1), lambda: stored_photos(db)):
            landed += 1
        else:
            finished += 1
        tried += 1
        if db.exists():
            broken += [f"ingest kill {tried}: {b}" for b in invariants(db, index_dir, set(), vectors)]
    done = subprocess.run(cli("ingest", str(corpus), *where, "--json"), capture_output=True, text=True)
    summary = json.loads(done.stdout) if done.returncode == 0 else {}
    photos = {r[0] for r in sql(db, "select path from photos")}
    lost = n - len(photos)
    duplicates = sql(db, "select count(*) - count(distinct path) from photos")[0][0]
    # removals killed mid-way: each then finished by a second run
    people = [r[0] for r in sql(db, "select name from people order by name")]
    victims = rng.sample(people, 9)
    # when a removal's own work runs: after the CLI's start and the library's opening (timed
    # on a command that only opens it and reads), before the end of a whole removal (timed on
    # a ninth person); each kill falls in that window (a fixed 0.4-1.6 s had every removal
    # finish first once the CLI started in ~0.4 s)
    timed = time.perf_counter()
    subprocess.run(cli("stats", *where), capture_output=True, check=True)
    opened = time.perf_counter() - timed
    timed = time.perf_counter()
    subprocess.run(cli("remove", "--person", victims.pop(), *where), capture_output=True, check=True)
    took = time.perf_counter() - timed
    window = max(took - opened, 0.01)
    remove_landed = 0
    for name in victims:
        before = {r[0] for r in sql(db, "select f.id from faces f join people p on p.id = f.person_id "
                                        "where p.name = ?", name)}
        proc = subprocess.Popen(cli("remove", "--person", name, *where),
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=opened + rng.uniform(0.0, 1.0) * window)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            remove_landed += 1
        broken += [f"remove kill {name}: {b}" for b in invariants(db, index_dir, before, vectors)]
        subprocess.run(cli("remove", "--person", name, *where), capture_output=True)
        if sql(db, "select count(*) from people where name = ?", name)[0][0]:
            broken.append(f"{name} still in the library after remove")
    doctor = subprocess.run(cli("doctor", *where, "--json"), capture_output=True, text=True)
    doctor_ok = doctor.returncode == 0 and json.loads(doctor.stdout)["ok"]
    found_self, sampled = self_search(db, index_dir, rng, vectors)
    return {"store": store, "photos": n, "kills_tried": tried, "kills_landed": landed, "kills_while_storing": mid_run,
            "runs_finished_before_kill": finished, "remove_kills_tried": len(victims),
            "remove_kills_landed": remove_landed, "remove_window_ms": [round(1000 * opened), round(1000 * took)],
            "broken": broken, "photos_lost": lost,
            "duplicates": int(duplicates), "final_statuses": summary.get("statuses", {}),
            "doctor_ok": bool(doctor_ok), "self_search": f"{found_self}/{sampled}",
            "seconds": round(time.perf_counter() - started, 1)}


def self_search(db: Path, index_dir: Path, rng: random.Random, vectors: str | None = None) -> tuple[int, int]:
    """Sampled stored photos searched by their stored vectors: each must find itself first."""
    import lookalike

    with lookalike.open(db, index_dir=index_dir, vectors=vectors) as lib:
        ids = lib.view.vectors.index.ids()
        sample = [int(i) for i in rng.sample(list(ids), min(20, len(ids)))]
        vectors = lib.view.vectors.stored(sample)
        hits = 0
        for fid, vec in zip(sample, vectors):
            _, found = lib.view.vectors.index.search(vec[None], 1)
            hits += int(found[0][0]) == fid
    return hits, len(sample)


READER = r"""
import json, sys, time
import numpy as np
import lookalike
from lookalike.query.search import SearchOptions, search_vectors
db, index_dir, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
lib = lookalike.open(db, index_dir=index_dir)
queries = lib.view.vectors.stored(lib.view.vectors.index.ids()[:20])
runs = failed = phantom = 0
seen = []
end = time.monotonic() + seconds
import sqlite3
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
while time.monotonic() < end:
    for q in queries:
        try:
            result = search_vectors(lib.view, [((0, 0, 1, 1), 1.0, q)], SearchOptions(k=5))
            runs += 1
            ids = [m.face_id for f in result.faces for m in f.matches]
            held = {r[0] for r in conn.execute(f"select id from faces where id in ({','.join(map(str, ids)) or '-1'})")}
            phantom += len(set(ids) - held)
        except Exception as err:
            failed += 1
            print(type(err).__name__, err, file=sys.stderr)
    seen.append(lib.view.vectors.index.ntotal)
json.dump({"runs": runs, "failed": failed, "phantom": phantom, "ntotal_first": seen[0], "ntotal_last": seen[-1]},
          open(out, "w"))
"""


def concurrency(folder: Path, n_photos: int) -> dict:
    photos = lfw_photos(n_photos)
    first, second = folder / "first", folder / "second"
    make_corpus(first, photos[: n_photos // 3])
    make_corpus(second, photos[n_photos // 3:])
    db, index_dir = folder / "conc.db", folder / "conc-idx"
    args = ["--db", str(db), "--index-dir", str(index_dir), "-q"]
    subprocess.run(cli("ingest", str(first), *args), capture_output=True, check=True)
    out = folder / "reader.json"
    writer = subprocess.Popen(cli("ingest", str(second), *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    held = stored_photos(db)
    while writer.poll() is None and stored_photos(db) == held:  # it holds its lock and is storing
        time.sleep(0.05)
    rival = subprocess.run(cli("ingest", str(second), *args), capture_output=True, text=True)
    reader = subprocess.run([sys.executable, "-c", READER, str(db), str(index_dir), "20", str(out)],
                            capture_output=True, text=True)
    writer.wait()
    stats = json.loads(out.read_text()) if out.exists() else {"runs": 0, "failed": 1, "phantom": 0,
                                                              "ntotal_first": 0, "ntotal_last": 0}
    return {**stats, "reader_stderr": reader.stderr[-500:], "second_ingest_exit": rival.returncode,
            "second_ingest_refused": rival.returncode == 1 and "being written" in rival.stderr,
            "writer_exit": writer.returncode,
            "picked_up_new_faces": stats["ntotal_last"] > stats["ntotal_first"]}


def hostile(folder: Path, n: int, rng: random.Random) -> dict:
    import io

    from PIL import Image

    from lookalike.errors import BadImage, ConfigError, ManifestError
    from lookalike.faces.images import decode
    from lookalike.ingest.corpus import read_manifest
    from lookalike.query.search import Filter

    seeds = []
    for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (rng.randrange(256), 80, 40)).save(buf, fmt)
        seeds.append(buf.getvalue())
    tried = crashed = 0
    slowest = 0.0
    for i in range(n):
        if i % 2:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 9)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[: rng.randrange(1, len(data) + 1)])
        else:
            data = rng.randbytes(rng.randrange(0, 4096))
        started = time.perf_counter()
        try:
            decode(data, "fuzz.jpg", 100_000_000)
        except BadImage:
            pass
        except Exception:  # noqa: BLE001 - the figure being measured: any other exception is a crash
            crashed += 1
        slowest = max(slowest, time.perf_counter() - started)
        tried += 1
    manifests = manifest_crashes = 0
    alphabet = "ab/.\\~%,\";\n\t{}[]:truefalse0123 é"
    for i in range(n // 10):
        path = folder / ("m.jsonl" if i % 2 else "m.csv")
        head = "" if i % 2 else "path,person,tags,consent_display\n"
        path.write_text(head + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 300))), encoding="utf-8")
        try:
            read_manifest(path)
        except ManifestError:
            pass
        except Exception:  # noqa: BLE001 - the figure being measured: any other exception is a crash
            manifest_crashes += 1
        manifests += 1
    filters = filter_crashes = 0
    for _ in range(n // 10):
        text = "".join(rng.choice("tagorganisationrolperson=%_' ;") for _ in range(rng.randrange(0, 30)))
        try:
            Filter.parse(text)
        except ConfigError:
            pass
        except Exception:  # noqa: BLE001 - the figure being measured: any other exception is a crash
            filter_crashes += 1
        filters += 1
    return {"images_tried": tried, "images_crashed": crashed, "slowest_decode_ms": round(slowest * 1000, 1),
            "manifests_tried": manifests, "manifests_crashed": manifest_crashes,
            "filters_tried": filters, "filters_crashed": filter_crashes}


def privacy(folder: Path) -> dict:
    """Scans: a query photo with a unique marker searched through the CLI leaves no byte of
    it anywhere; a removed person leaves no row, vector or name in the library's files."""
    import uuid

    import numpy as np
    from _common import FACES
    from PIL import Image, PngImagePlugin

    import lookalike
    from lookalike.faces.images import decode_file

    bbt = FACES / "celeb" / "faceapi_bbt"
    db, index_dir, scratch = folder / "p.db", folder / "p-idx", folder / "scratch"
    scratch.mkdir()
    args = ["--db", str(db), "--index-dir", str(index_dir)]
    subprocess.run(cli("ingest", str(bbt), *args, "-q"), check=True, capture_output=True)
    subprocess.run(cli("index", "rebuild", *args, "--key", "HNSW32"), check=True, capture_output=True)

    def files() -> dict:
        return {p: p.read_bytes() for d in (folder, scratch) for p in d.rglob("*") if p.is_file()
                and p.suffix not in (".png",)}

    marker = f"visitor-{uuid.uuid4().hex}"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    visitor = folder / f"{marker}.png"
    Image.open(FACES / "bad-inputs/collected/resolution_ladder__obama-720p.jpg").save(visitor, pnginfo=info)
    with lookalike.open(db, index_dir=index_dir) as lib:
        vector = lib.view.models.pipeline.faces(decode_file(str(visitor), 10**8).rgb)[0].embedding
        with lib.session() as session:
            from sqlalchemy import text

            blobs = [r[0] for r in session.execute(text(
                "select f.embedding from faces f join people p on p.id = f.person_id where p.name = 'howard'"))]
    run = subprocess.run(cli("search", str(visitor), *args, "--json"), capture_output=True, text=True,
                         env=os.environ | {"TMPDIR": str(scratch)}, cwd=scratch)
    needles = [marker.encode(), np.asarray(vector, "<f4").tobytes()[:32]]
    query_leaks = [str(p) for p, data in files().items() for n in needles if n in data]
    query_leaks += ["stderr"] if marker in run.stderr else []
    subprocess.run(cli("remove", "--person", "howard", *args), check=True, capture_output=True)
    person_needles = [b"howard"] + [b[:32] for b in blobs]
    removal_leaks = [str(p) for p, data in files().items() for n in person_needles if n in data]
    return {"query_scan_passed": run.returncode == 0 and not query_leaks, "query_leaks": query_leaks,
            "removal_scan_passed": not removal_leaks and len(blobs) == 5, "removal_leaks": removal_leaks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--stores", default="faiss,milvus", help="comma-separated: faiss, milvus (Milvus Lite)")
    ap.add_argument("--fuzz", type=int, default=3000)
    ap.add_argument("--only-crash", action="store_true", help="the SIGKILL soak alone")
    args = ap.parse_args()
    rng = random.Random(20261123)
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        tmp = Path(tmp)
        soaks = {}
        for store in args.stores.split(","):
            (tmp / store).mkdir()
            soaks[store] = crash(tmp / store, args.photos, args.kills, rng, store)
        if not args.only_crash:
            (tmp / "k").mkdir()
            conc = concurrency(tmp / "k", args.photos)
            bad = hostile(tmp, args.fuzz, rng)
            (tmp / "p").mkdir()
            private = privacy(tmp / "p")
    rows = []
    for store, crashes in soaks.items():
        c = crashes
        rows += [
            [f"{store}: ingest kills landed / tried", f"{c['kills_landed']} / {c['kills_tried']} "
                                                      f"({c['kills_while_storing']} while photos were being stored)"],
            [f"{store}: remove kills landed / tried", f"{c['remove_kills_landed']} / {c['remove_kills_tried']}"],
            [f"{store}: invariants broken after a kill", len(crashes["broken"])],
            [f"{store}: photos lost / duplicated", f"{crashes['photos_lost']} / {crashes['duplicates']}"],
            [f"{store}: doctor clean at the end", crashes["doctor_ok"]],
            [f"{store}: stored faces finding themselves", crashes["self_search"]],
            [f"{store}: soak time", f"{crashes['seconds']} s"],
        ]
    if args.only_crash:
        table(f"reliability (SIGKILL soak), {args.photos} lfw-dev photos, {args.kills}+ kills",
              ["what", "result"], rows)
        print("wrote", write("reliability_soak", {"machine": machine(), "crash": soaks}))
        return
    rows += [
        ["concurrent searches run / failed", f"{conc['runs']} / {conc['failed']}"],
        ["answers naming an uncommitted face", conc["phantom"]],
        ["reader picked up new faces",
         f"{conc['picked_up_new_faces']} ({conc['ntotal_first']} -> {conc['ntotal_last']})"],
        ["second ingest refused cleanly", conc["second_ingest_refused"]],
        ["hostile images tried / crashed", f"{bad['images_tried']} / {bad['images_crashed']} "
                                           f"(slowest {bad['slowest_decode_ms']} ms)"],
        ["hostile manifests tried / crashed", f"{bad['manifests_tried']} / {bad['manifests_crashed']}"],
        ["hostile filters tried / crashed", f"{bad['filters_tried']} / {bad['filters_crashed']}"],
        ["privacy scans passed", f"{private['query_scan_passed'] + private['removal_scan_passed']} / 2 "
                                 "(query photo; removed person)"],
    ]
    table(f"reliability, {args.photos} lfw-dev photos, {args.kills} kills", ["what", "result"], rows)
    print("wrote", write("reliability", {"machine": machine(), "crash": soaks, "concurrency": conc,
                                         "hostile": bad, "privacy": private}))


if __name__ == "__main__":
    main()
