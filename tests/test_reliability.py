"""Crash consistency: an ingest SIGKILLed at 20 random moments, resumed each time; removals
killed mid-way. After every kill the library is consistent; at the end nothing is lost or
doubled, ``doctor`` is clean and stored faces still find themselves. (bench/reliability.py
does the same at a larger scale and reports the figures.)"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lookalike

pytestmark = pytest.mark.e2e


# the benchmark's own fault injection and invariants (bench/reliability.py): one copy of each
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import reliability as bench  # noqa: E402

_cli, _sql = bench.cli, bench.sql


def _consistent(db: Path, index_dir: Path, leaving: set[int], vectors: str | None = None) -> None:
    assert bench.invariants(db, index_dir, leaving, vectors) == []


def _kill_at(args: list[str], seconds: float) -> bool:
    """Run, SIGKILL the whole process group after ``seconds``; True if the kill landed."""
    proc = subprocess.Popen(_cli(*args), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_twenty_kills_then_resume_lose_nothing_and_double_nothing(faces, tmp_path, store):
    """On FAISS files and on Milvus Lite (SQL first, then the outbox drained into Milvus)."""
    from conftest import lfw_people, link_people

    rng = random.Random(9)
    corpus = tmp_path / "corpus"
    n = link_people(corpus, lfw_people(faces, 250, min_photos=1).items(), 3)
    db, index_dir = tmp_path / "lib.db", tmp_path / "indexes"
    vectors = f"milvus-lite:{tmp_path / 'vectors.db'}" if store == "milvus" else None
    where = ["--db", str(db), "--index-dir", str(index_dir)] + (["--vectors", vectors] if vectors else [])
    args = ["ingest", str(corpus), *where, "-q", "--workers", "2"]
    assert n >= 300
    landed, mid_run, kills = 0, 0, 0
    # each run is killed a little after it committed something new (mid-batch, mid-commit);
    # once everything is stored, in the final index save and upkeep or at start-up. How many
    # kills fall mid-run depends on the machine's speed (photos stored during the delay), so
    # the loop goes on past 20 kills until 12 have (at most 30).
    while (kills < 20 or mid_run < 12) and kills < 30:
        stored = _sql(db, "select count(*) from photos")[0][0] if db.exists() else 0
        landed += bench.kill_when(_cli(*args), min(n, stored + rng.randint(1, 15)), rng.uniform(0.0, 0.5),
                                  lambda: bench.stored_photos(db))
        mid_run += stored < n
        kills += 1
        _consistent(db, index_dir, set(), vectors)
    assert landed >= kills - 2, f"only {landed} of {kills} kills landed before the run ended"
    assert mid_run >= 12, f"only {mid_run} of {kills} kills while photos were still being stored"
    done = subprocess.run(_cli(*args[:-3], "--json"), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert _sql(db, "select count(*), count(distinct path) from photos") == [(n, n)]  # every photo once
    assert _sql(db, "select count(*) from photos where status is null or status = ''") == [(0,)]
    # removals killed mid-way, each finished by a second run
    for name in rng.sample([r[0] for r in _sql(db, "select name from people")], 4):
        leaving = {r[0] for r in _sql(db, "select f.id from faces f join people p on p.id = f.person_id "
                                          "where p.name = ?", name)}
        remove = ["remove", "--person", name, *where]
        _kill_at(remove, rng.uniform(0.3, 2.5))
        _consistent(db, index_dir, leaving, vectors)
        subprocess.run(_cli(*remove), capture_output=True, timeout=300)
        assert _sql(db, "select count(*) from people where name = ?", name) == [(0,)]
    doctor = subprocess.run(_cli("doctor", *where, "--json"),
                            capture_output=True, text=True, timeout=300)
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["ok"], doctor.stdout
    with lookalike.open(db, index_dir=index_dir, vectors=vectors) as lib:
        ids = lib.index.ids()
        assert set(ids.tolist()) == {r[0] for r in _sql(db, "select id from faces")}
        sample = np.asarray(rng.sample(list(ids), 15))
        for fid, vec in zip(sample, lib.vectors(sample)):
            assert lib.index.search(vec[None], 1)[1][0][0] == fid


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
