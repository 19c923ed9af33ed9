"""bench/scale.py's ingest: the CLI into each store (PostgreSQL + pgvector, SQLite + Milvus
Lite, PostgreSQL + a Milvus server) and the peer, DeepFace.register into pgvector."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _common import STACKS, deepface_kw, free_port, machine, stack_args, table, wait_for_milvus
from _scale_data import STACK, du, pg_library
from _scale_milvus import ServerEngine


def make_corpus(folder: Path, photos: list[Path]) -> Path:
    corpus = folder / "corpus"
    for p in photos:
        (corpus / p.parent.name).mkdir(parents=True, exist_ok=True)
        (corpus / p.parent.name / p.name).symlink_to(p)
    return corpus


def cli_ingest(corpus: Path, photos: int, workers: int, db: str, *extra: str) -> dict:
    """``lookalike ingest --json`` in a subprocess: wall time, start-up included."""
    cmd = [sys.executable, "-m", "lookalike.cli", "ingest", str(corpus), "--db", db, "--workers", str(workers),
           "--json", *stack_args(STACK), *extra]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    summary = json.loads(out.stdout)
    return {"workers": workers, "photos": photos, "ok": summary["statuses"]["ok"], "faces": summary["faces"],
            "seconds": round(wall, 1), "run_seconds": round(summary["seconds"], 1),
            "photos_per_s": round(photos / wall, 2)}


def stack_settings() -> dict:
    s = STACKS[STACK]
    return {"model": s["model"], "detector": s["detector"], "aligner": s["aligner"]}


def stored_vectors(db: str, index_dir: Path, vectors: str | None) -> int:
    """How many vectors the library's store holds after the ingest (a check, untimed)."""
    import lookalike

    settings = stack_settings() | ({"vectors": vectors} if vectors else {})
    with lookalike.open(db, index_dir=index_dir, **settings) as lib:
        return int(lib.maintenance.info()["ntotal"])


def pg_ingest(folder: Path, corpus: Path, photos: int, workers: int) -> dict:
    """PostgreSQL + pgvector through the work queue (schema made before the clock starts)."""
    server, lib = pg_library(folder, f"ingest{workers}", **stack_settings())
    db = lib.settings.db_url
    lib.close()
    row = cli_ingest(corpus, photos, workers, db)
    server.cleanup()
    return row


def lite_ingest(folder: Path, corpus: Path, photos: int, workers: int) -> dict:
    """SQLite + Milvus Lite: the workers map photos, the parent (which serves Milvus Lite) writes."""
    import lookalike

    db, index_dir = folder / f"lite{workers}.db", folder / f"lite{workers}-idx"
    vectors = f"milvus-lite:{folder / f'lite{workers}-vectors.db'}"
    lookalike.open(db, index_dir=index_dir, vectors=vectors, **stack_settings()).close()
    row = cli_ingest(corpus, photos, workers, str(db), "--index-dir", str(index_dir), "--vectors", vectors)
    row["vectors_stored"] = stored_vectors(str(db), index_dir, vectors)
    row["disk_bytes"] = du(folder / f"lite{workers}-vectors.db")
    return row


def start_milvus_server(data: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """``milvus-lite server`` on loopback, ready for clients."""
    port = free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(exe), "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port",
                                 str(port)], stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_milvus(port, lambda: proc.poll() is None, 60, "milvus-lite server", log)
    except RuntimeError:
        proc.terminate()
        raise
    return proc, port


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pg_milvus_ingest(folder: Path, corpus: Path, photos: int, workers: int, standalone: bool = False) -> dict:
    """PostgreSQL metadata + a Milvus server on loopback (Milvus Lite's own, or with
    ``standalone`` the real Milvus 2.3.5): the work queue with ``workers`` queue-worker
    processes, each writing its outbox rows to Milvus."""
    name = f"milvus-{'standalone' if standalone else 'server'}-{workers}"
    data = folder / name
    if standalone:
        engine = ServerEngine(data / "data", folder / f"{name}.log")
        vectors, stop, disk = str(engine.vectors), engine.stop, engine.disk
    else:
        proc, port = start_milvus_server(data, folder / f"{name}.log")
        vectors, stop, disk = f"milvus://127.0.0.1:{port}", lambda: stop_process(proc), lambda: du(data)
    try:
        dbname = f"ingest{name.replace('-', '')}"
        server, lib = pg_library(folder, dbname, vectors=vectors, **stack_settings())
        db = lib.settings.db_url
        lib.close()
        row = cli_ingest(corpus, photos, workers, db, "--vectors", vectors)
        row["vectors_stored"] = stored_vectors(db, folder / f"idx-{dbname}", vectors)
        server.cleanup()
        row["disk_bytes"] = disk()
    finally:
        stop()
    return row


def servers_row(standalone: list[dict], lite_server: list[dict], photos: int) -> dict:
    """The two Milvus servers' ingest rows of one run, kept apart from the other stores'
    (a run of its own may meet the machine at another speed)."""
    return {"photos": photos, "machine": machine(), "standalone": standalone, "milvus_lite_server": lite_server}


def servers_table(row: dict) -> None:
    table(f"ingest, {row['photos']} lfw-dev photos into PostgreSQL + a Milvus server (queue), one run "
          f"({row['machine']['date']})",
          ["server", "workers", "ok", "vectors", "s", "photos/s", "x milvus-lite server"],
          [[kind, r["workers"], r["ok"], r.get("vectors_stored", "-"), r["seconds"], r["photos_per_s"],
            round(r["photos_per_s"] / lite["photos_per_s"], 2)]
           for kind, rows in (("Milvus 2.3.5 standalone", row["standalone"]),
                              ("milvus-lite server", row["milvus_lite_server"]))
           for r, lite in zip(rows, row["milvus_lite_server"])])


def deepface_pg_register(folder: Path, photos: list[Path]) -> dict:
    """The peer of a PostgreSQL ingest: DeepFace.register into its pgvector store, one call
    per photo, the same model and detector (the model loads before the clock starts, which
    favours DeepFace)."""
    import pgserver
    from deepface import DeepFace
    from deepface.modules.database import pgvector as deepface_pgvector

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE deepface_register;")
    # DeepFace remembers per process that it made its extension and tables, whichever the
    # database: a second database in the same process needs that memory cleared
    deepface_pgvector._SCHEMA_CHECKED.clear()  # noqa: SLF001 - DeepFace's own memory, no public reset
    kw = dict(**deepface_kw(STACK), database_type="pgvector", l2_normalize=True,
              connection_details=f"postgresql://postgres@/deepface_register?host={folder / 'pg'}")
    DeepFace.register(img=str(photos[0]), **kw)
    failed = 0
    started = time.perf_counter()
    for p in photos[1:]:
        try:
            DeepFace.register(img=str(p), **kw)
        except Exception:  # noqa: BLE001 - no face: DeepFace raises
            failed += 1
    seconds = time.perf_counter() - started
    server.cleanup()
    return {"workers": "DeepFace.register", "photos": len(photos) - 1, "ok": len(photos) - 1 - failed,
            "seconds": round(seconds, 1), "photos_per_s": round((len(photos) - 1) / seconds, 2)}
