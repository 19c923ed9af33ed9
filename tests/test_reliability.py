"""Crash consistency, deterministically: the real CLI dies at each named crash point
(:mod:`lookalike.faults`: ``LOOKALIKE_CRASH_AT``, ``os._exit`` there) — after an ingest's
SQL commit and before its index save, between the two stores of Milvus, in the outbox
drain, mid FAISS save, mid-batch in a worker, after a removal's commit, in a reembed. Each
test checks the process died *at that point* (its exit code), that the crash left
something for the resume to repair, that the library is consistent meanwhile, and that
after the resume nothing is lost or doubled and ``doctor`` is clean. No timing: every
point is hit on every run, on any machine. (The randomised SIGKILL soak is a benchmark:
bench/reliability.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lookalike.faults import ENV, EXIT_CODE, POINTS

pytestmark = [pytest.mark.e2e]

# the benchmark's invariants (bench/reliability.py): one copy of each
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import reliability as bench  # noqa: E402

_sql = bench.sql
PEOPLE, PER_PERSON = 20, 2  # 40 photos: two ingest batches (32 + 8)


@dataclass(frozen=True)
class Library:
    db: Path
    index_dir: Path
    vectors: str | None  # milvus-lite:PATH, or None for FAISS files

    @property
    def where(self) -> list[str]:
        return ["--db", str(self.db), "--index-dir", str(self.index_dir),
                *(["--vectors", self.vectors] if self.vectors else [])]

    def held(self) -> set[int]:
        """Face ids the vector store holds (FAISS files, or Milvus read in a process of its own)."""
        if self.vectors:
            return bench.milvus_ids(self.vectors) if Path(self.vectors.split(":", 1)[1]).exists() else set()
        return bench.index_ids(self.index_dir)

    def faces(self) -> set[int]:
        return {r[0] for r in _sql(self.db, "select id from faces")}


def make_library(folder: Path, store: str) -> Library:
    folder.mkdir(parents=True, exist_ok=True)
    vectors = f"milvus-lite:{folder / 'vectors.db'}" if store == "milvus" else None
    return Library(folder / "lib.db", folder / "indexes", vectors)


def run(*args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a process of its own (``crash``: the point it must die at). Whatever
    it started and left behind when it died (a Milvus Lite server, pool workers) is killed
    with it afterwards, as a machine that lost the process would."""
    env = {k: v for k, v in os.environ.items() if k != ENV} | ({ENV: crash} if crash else {})
    proc = subprocess.Popen(bench.cli(*args), env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=900)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def died_at(result: subprocess.CompletedProcess, point: str) -> None:
    assert result.returncode == EXIT_CODE, (f"did not die at {point} (exit {result.returncode}): "
                                            f"{result.stderr[-2000:]}")


def consistent(lib: Library, leaving: frozenset[int] | set[int] = frozenset()) -> None:
    assert bench.invariants(lib.db, lib.index_dir, set(leaving), lib.vectors) == []


def whole(lib: Library, photos: int) -> None:
    """After the resume: every photo once, each with a final status and its face, the
    vector store holding exactly the database's faces, doctor clean."""
    assert _sql(lib.db, "select count(*), count(distinct path) from photos") == [(photos, photos)]
    assert _sql(lib.db, "select status, count(*) from photos group by status") == [("ok", photos)]
    assert lib.held() == lib.faces() and len(lib.faces()) == photos
    doctor = run("doctor", *lib.where, "--json")
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["ok"], doctor.stdout + doctor.stderr


@pytest.fixture(scope="module")
def corpus(faces, tmp_path_factory) -> tuple[Path, int]:
    from _libraries import lfw_people, link_people

    folder = tmp_path_factory.mktemp("crash-corpus") / "corpus"
    return folder, link_people(folder, lfw_people(faces, PEOPLE).items(), PER_PERSON)


@pytest.fixture(scope="module")
def stored(corpus, tmp_path_factory) -> dict[str, Library]:
    """The corpus ingested once per store, copied by each removal test."""
    out = {}
    for store in ("faiss", "milvus"):
        lib = make_library(tmp_path_factory.mktemp(f"stored-{store}"), store)
        done = run("ingest", str(corpus[0]), *lib.where, "-q")
        assert done.returncode == 0, done.stderr
        out[store] = lib
    return out


# (store, point[:n], what the crash must have left for the resume to repair)
INGEST_CASES = [
    ("faiss", "ingest.committed", "the first batch committed, not in the index file"),
    ("faiss", "ingest.before_save", "photos committed, the index file never saved"),
    ("faiss", "index.save.torn", "a new index file beside the previous run's manifest"),
    ("milvus", "ingest.committed", "the first batch in SQL and its outbox, not in Milvus"),
    ("milvus", "outbox.sent", "Milvus holds the batch, its outbox rows still there"),
]


@pytest.mark.parametrize(("store", "point", "left"), INGEST_CASES, ids=[f"{s}-{p}" for s, p, _ in INGEST_CASES])
def test_an_ingest_dying_at_a_crash_point_resumes_losing_and_doubling_nothing(corpus, tmp_path, store, point, left):
    folder, n = corpus
    lib = make_library(tmp_path, store)
    if point == "index.save.torn":  # a saved pair first (one person's photos), for the crash to tear
        first = run("ingest", str(sorted(folder.iterdir())[0]), *lib.where, "-q")
        assert first.returncode == 0, first.stderr
    died_at(run("ingest", str(folder), *lib.where, "-q", crash=point), point)
    consistent(lib)
    committed = lib.faces()
    assert committed, f"{point}: nothing committed before the crash"
    if point == "outbox.sent":
        assert _sql(lib.db, "select count(*) from vector_outbox")[0][0] > 0, left
    elif point == "index.save.torn":
        manifest = json.loads(next(lib.index_dir.glob("*.json")).read_text())
        assert manifest["generation"] == 1 and manifest["ntotal"] == PER_PERSON < len(lib.held()), left
    else:
        assert lib.held() < committed, left
    resumed = run("ingest", str(folder), *lib.where, "--json")
    assert resumed.returncode == 0, resumed.stderr
    statuses = json.loads(resumed.stdout)["statuses"]
    assert statuses["unchanged"] >= len(committed) and statuses["ok"] + statuses["unchanged"] == n, statuses
    whole(lib, n)


def test_a_worker_dying_mid_call_costs_the_run_nothing(corpus, tmp_path):
    """Each pool worker dies after mapping its 12th photo (before handing its call back):
    the run goes on with a new pool, and every photo is stored, each either mapped or, if
    a worker died while mapping it alone, as an error that the next run retries."""
    folder, n = corpus
    lib = make_library(tmp_path, "faiss")
    first = run("-v", "ingest", str(folder), *lib.where, "--workers", "2", "--json", crash="ingest.worker:12")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("mapping photos in 2 worker processes") >= 2, first.stderr[-3000:]  # a pool died
    statuses = json.loads(first.stdout)["statuses"]
    assert statuses["ok"] > 0 and statuses["ok"] + statuses["error"] == n, statuses
    reasons = {r[0] for r in _sql(lib.db, "select reason from photos where status = 'error'")}
    assert all("worker process died while mapping this photo" in r for r in reasons), reasons
    consistent(lib)
    again = run("ingest", str(folder), *lib.where, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["statuses"]["ok"] == statuses["error"]
    whole(lib, n)


def test_a_photo_that_kills_its_worker_costs_itself_not_its_neighbours(corpus, tmp_path):
    """One photo kills whichever worker maps it, every time (a decoder crash): the photos sent
    with it, and those in flight on the other worker, are mapped again one at a time, and
    only that photo is stored as an error, with the reason; the next run retries it."""
    folder, n = corpus
    poison = sorted(folder.rglob("*.jpg"))[5]
    lib = make_library(tmp_path, "faiss")
    first = run("ingest", str(folder), *lib.where, "--workers", "2", "--json", crash=f"ingest.photo:{poison.name}")
    assert first.returncode == 0, first.stderr
    statuses = json.loads(first.stdout)["statuses"]
    assert statuses == dict.fromkeys(statuses, 0) | {"ok": n - 1, "error": 1}, statuses
    errors = _sql(lib.db, "select path, reason from photos where status = 'error'")
    assert [Path(p).name for p, _ in errors] == [poison.name], errors
    assert "worker process died while mapping this photo" in errors[0][1] and poison.name in first.stderr
    consistent(lib)
    again = run("ingest", str(folder), *lib.where, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["statuses"]["ok"] == 1
    whole(lib, n)


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_a_removal_dying_after_its_commit_is_finished_by_the_next_run(stored, corpus, tmp_path, store):
    base = stored[store]
    shutil.copytree(base.db.parent, tmp_path / "lib")
    lib = make_library(tmp_path / "lib", store)
    name = _sql(lib.db, "select name from people order by name")[3][0]
    leaving = {r[0] for r in _sql(lib.db, "select f.id from faces f join people p on p.id = f.person_id "
                                          "where p.name = ?", name)}
    assert len(leaving) == PER_PERSON
    remove = ["remove", "--person", name, *lib.where]
    died_at(run(*remove, crash="remove.committed"), "remove.committed")
    consistent(lib, leaving)
    assert not leaving & lib.faces() and leaving <= lib.held()  # the rows went, the vectors not yet
    # the next run finds the person gone (and says so), but first settles the index
    again = run(*remove)
    assert again.returncode != 0 and "no person named" in again.stderr, again.stderr
    whole(lib, corpus[1] - PER_PERSON)
    assert not leaving & lib.held()


@pytest.fixture(scope="module")
def dlib_library(faces, tmp_path_factory) -> Path:
    """celeb/face_recognition (16 photos) ingested in the former default space (Dlib)."""
    folder = tmp_path_factory.mktemp("dlib")
    corpus = folder / "corpus"
    shutil.copytree(faces / "celeb" / "face_recognition", corpus)
    made = run("ingest", str(corpus), "--db", str(folder / "lib.db"), "-q",
               "--model", "Dlib", "--detector", "dlib", "--aligner", "chip")
    assert made.returncode == 0, made.stderr
    return folder


@pytest.mark.parametrize("point", ["ingest.committed", "reembed.moved"])
def test_a_reembed_dying_midway_is_finished_by_the_next_run(dlib_library, tmp_path, point):
    shutil.copytree(dlib_library, tmp_path / "lib", symlinks=True)
    db = tmp_path / "lib" / "lib.db"
    where = ["--db", str(db), "--index-dir", str(tmp_path / "lib" / "indexes")]
    target = "SFace__yunet__arcface"
    in_target = ("select count(*), count(distinct p.path) from photos p join indexes s on s.id = p.space_id "
                 "where s.key = ?")
    died_at(run("reembed", *where, crash=point), point)
    assert _sql(db, in_target, target) == [(16, 16)]  # committed before it died
    resumed = run("reembed", *where, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["reembedded"] == 0  # nothing done twice
    assert _sql(db, in_target, target) == [(16, 16)]
    doctor = run("doctor", *where, "--json")
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["ok"], doctor.stdout + doctor.stderr
    spaces = {s["space"]: s for s in json.loads(doctor.stdout)["spaces"]}
    assert spaces[target]["index_faces"] == spaces[target]["db_faces"] == 16


def test_a_crash_point_fires_on_its_nth_arrival_and_a_wrong_name_is_refused():
    code = ("from lookalike.faults import crash_point\n"
            "for i in range(1, 5):\n    print(i, flush=True)\n    crash_point('remove.committed')\n")

    def arrive(value: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], env=os.environ | {ENV: value},
                              capture_output=True, text=True, timeout=60)

    third = arrive("remove.committed:3")
    assert third.returncode == EXIT_CODE and third.stdout.split() == ["1", "2", "3"]
    other = arrive("ingest.committed")  # another point: never fires here
    assert other.returncode == 0 and other.stdout.split() == ["1", "2", "3", "4"]
    wrong = arrive("remove.comitted")
    assert wrong.returncode == 1 and "no crash point 'remove.comitted'" in wrong.stderr


def test_every_crash_point_is_in_the_code_and_in_a_test():
    """A point no code reaches, or no test crashes at, is a promise nobody checks."""
    import re

    root = Path(__file__).resolve().parents[1]
    placed = set()
    for path in root.glob("lookalike/**/*.py"):
        placed |= set(re.findall(r'crash_point\("([\w.]+)"[,)]', path.read_text()))
    assert placed == set(POINTS)
    # live.match: tests/test_live.py crashes the matching worker there and holds it there;
    # schema.created: tests/test_store.py crashes a new library's first open there and holds it there;
    # queue.claimed: tests/test_queue.py kills a worker held there
    tested = {p for _, p, _ in INGEST_CASES} | {"ingest.worker", "ingest.photo", "remove.committed", "reembed.moved",
                                                "live.match", "schema.created", "queue.claimed"}
    assert tested == set(POINTS)


def test_no_code_executing_format_is_ever_loaded():
    """Model, index and data files are read by formats that cannot run code: no pickle,
    joblib, torch.load, numpy object arrays or yaml.load anywhere in lookalike or the UI."""
    import re

    root = Path(__file__).resolve().parents[1]
    forbidden = [r"\bimport pickle\b", r"\bpickle\.loads?\(", r"\bjoblib\b", r"\btorch\.load\(",
                 r"allow_pickle\s*=\s*True", r"\byaml\.load\(", r"\bdill\b", r"\bcloudpickle\b",
                 r"\bmarshal\.loads?\(", r"(?<![\w.])eval\(", r"(?<![\w.])exec\("]
    found = []
    for path in [*root.glob("lookalike/**/*.py"), *root.glob("bench/**/*.py")]:
        text = path.read_text()
        found += [f"{path.relative_to(root)}: {word}" for word in forbidden if re.search(word, text)]
    assert found == []
    for path in root.glob("lookalike/**/*.py"):  # numpy files only ever without pickles
        for line in path.read_text().splitlines():
            assert "np.load(" not in line or "allow_pickle=False" in line, f"{path}: {line.strip()}"
