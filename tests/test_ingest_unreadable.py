"""A photo whose file cannot be read on a later run (moved away, never there, an unmounted
share): what an earlier run stored from it stays, and a failure stored before is written
again, not inserted twice — on every store (PostgreSQL's path is the work queue's)."""

from __future__ import annotations

import shutil

import pytest
from conftest import cli

from lookalike.errors import NothingIngested

pytestmark = pytest.mark.e2e


def test_a_file_gone_since_keeps_its_faces_and_a_missing_one_is_retried(faces, tmp_path, backend):
    folder = tmp_path / "c"
    folder.mkdir()
    kept = folder / "a.jpg"
    shutil.copyfile(faces / "lfw-dev/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg", kept)
    manifest = folder / "m.csv"
    manifest.write_text("path,person\na.jpg,Aaron_Peirsol\nnever.jpg,Nobody\n")
    first = backend.open().ingest([str(manifest)])
    assert (first.statuses["ok"], first.statuses["decode_error"]) == (1, 1)
    kept.unlink()
    again = backend.open().ingest([str(manifest)])  # an IntegrityError before: the failure inserted twice
    said = {o.path.rsplit("/", 1)[-1]: o for o in again.outcomes}
    assert said["a.jpg"].status == "unchanged"
    assert "cannot be read now" in said["a.jpg"].reason and "kept" in said["a.jpg"].reason
    assert said["never.jpg"].status == "decode_error"
    assert sorted(backend.sql("select status from photos")) == [("decode_error",), ("ok",)]
    assert backend.sql("select count(*) from faces") == [(1,)]
    lib = backend.open()
    assert lib.stats()["faces"] == 1 and lib.doctor()[0].ok


def test_a_failure_stored_before_is_a_clean_message_on_the_second_run(tmp_path):
    """The CLI, twice, on a manifest whose only photo is missing: the same one-line error
    both times (the second run printed SQLAlchemy's traceback, its SQL and parameters)."""
    (tmp_path / "m.csv").write_text("path,person\nnope.jpg,someone\n")
    for _ in range(2):
        done = cli("ingest", str(tmp_path / "m.csv"), "--db", str(tmp_path / "lib.db"), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            "error: not one photo could be ingested (1 tried: 1 decode_error)"), done.stderr
        assert "Traceback" not in done.stderr
    with pytest.raises(NothingIngested):
        import lookalike

        lookalike.open(tmp_path / "lib.db").ingest([str(tmp_path / "m.csv")])
