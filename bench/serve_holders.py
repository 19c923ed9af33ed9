"""What slow uploaders cost the HTTP server: N connections that each announce a large body
and send all of it but the last byte (issue 23, item 5).

    python bench/serve_holders.py [--connections 60] [--mb 30] [--hold 15]

Two runs against one ``lookalike serve`` (1 process, defaults: ``--max-bodies 16
--body-wait 10``, ``--max-upload-mb 15``):

* ``keyless``: no key, to an admin route. The server answers 401 from the headers and
  closes, so it should hold nothing;
* ``search key``: a valid key to ``/v1/search``, admitted. At most ``--max-bodies`` are
  read at once, and the rest wait without their body being read, then get 503.

Figures: the server's resident memory before, its peak while the connections hold (sampled
every 50 ms for ``--hold`` seconds), and after they closed; the answers they got; the MB
the server accepted from them. Before this change the issue measured 2.2 GB peak (1.7 GB
after) for 60 keyless connections of 30 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving
from _common import FACES, machine, table, write


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def hold(url: str, path: str, key: str | None, size: int, answers: list[str], sent: list[int]) -> None:
    """One connection: headers, then ``size - 1`` bytes of body as far as the server reads."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: multipart/form-data; boundary=b",
            f"Content-Length: {size}"] + ([f"X-API-Key: {key}"] if key else [])
    field = "photos" if key is None else "photo"
    part = f'--b\r\nContent-Disposition: form-data; name="{field}"; filename="x.jpg"\r\n\r\n'.encode()
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + part)  # a form the server would parse
    chunk, done = b"\xff" * 65536, len(part)
    sock.settimeout(0.5)
    try:
        while done < size - 1:
            try:
                done += sock.send(chunk[: size - 1 - done])
            except TimeoutError:  # the server reads no further (its buffer is full): does it answer?
                try:
                    got = sock.recv(64)
                except TimeoutError:
                    continue
                answers.append(got.split(b"\r\n", 1)[0].decode() or "closed")
                return
        sock.settimeout(None)
        answers.append("held")
    except OSError:
        answers.append("closed")
    finally:
        sent.append(done)
        holders.append(sock)


holders: list[socket.socket] = []


def run(server: serving.Server, label: str, path: str, key: str | None, args: argparse.Namespace) -> dict:
    holders.clear()
    pid = server.proc.pid
    before = rss_mb(pid)
    answers: list[str] = []
    sent: list[int] = []
    threads = [threading.Thread(target=hold, args=(server.url, path, key, args.mb * 2**20, answers, sent))
               for _ in range(args.connections)]
    for t in threads:
        t.start()
    peak, end = before, time.monotonic() + args.hold
    while time.monotonic() < end:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.05)
    for t in threads:
        t.join()
    for sock in holders:
        sock.close()
    time.sleep(2)
    after = rss_mb(pid)
    counts: dict[str, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return {"run": label, "connections": args.connections, "mb_each": args.mb, "rss_before_mb": round(before),
            "rss_peak_mb": round(peak), "rss_after_mb": round(after), "accepted_mb": round(sum(sent) / 2**20),
            "answers": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=60)
    parser.add_argument("--mb", type=int, default=30)
    parser.add_argument("--hold", type=float, default=15.0)
    args = parser.parse_args()
    import subprocess

    folder = Path(tempfile.mkdtemp(prefix="holders-"))
    try:
        shutil.copytree(FACES / "celeb" / "face_recognition" / "joe_biden", folder / "c" / "joe_biden")
        db = folder / "lib.db"
        lookalike = [sys.executable, "-m", "lookalike.cli"]
        subprocess.run([*lookalike, "ingest", str(folder / "c"), "--db", str(db), "-q"], check=True)
        made = subprocess.run([*lookalike, "keys", "create", "--scope", "search", "--db", str(db), "--json"],
                              check=True, capture_output=True, text=True)
        key = json.loads(made.stdout)["key"]
        server = serving.start(db, "--rate", "0")
        try:
            rows = [run(server, "keyless (admin route)", "/v1/people/joe_biden/photos", None, args),
                    run(server, "search key (/v1/search)", "/v1/search", key, args)]
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    table(f"{args.connections} connections of {args.mb} MB each, last byte held; 1 server process",
          ["run", "RSS before MB", "peak MB", "after MB", "sent MB", "answers"],
          [[r["run"], r["rss_before_mb"], r["rss_peak_mb"], r["rss_after_mb"], r["accepted_mb"],
            ", ".join(f"{k}: {v}" for k, v in sorted(r["answers"].items()))] for r in rows])
    print(write("serve_holders", {"machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
