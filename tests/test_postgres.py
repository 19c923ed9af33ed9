"""The same library on PostgreSQL (a real server from the pgserver package)."""

from __future__ import annotations

import lookalike


def test_ingest_search_remove_doctor_on_postgresql(postgres, faces, tmp_path):
    url = postgres()
    bbt = faces / "celeb" / "faceapi_bbt"
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        report = lib.ingest([str(bbt)])
        assert report.statuses["ok"] == 40
        stats = lib.stats()
        assert (stats["people"], stats["photos"], stats["faces"]) == (8, 40, 40)
        best = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches[0]
        assert best.person == "amy" and best.verdict == "same_person"
        lib.remove(person="amy")
        after = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches
        assert "amy" not in {m.person for m in after}
        assert all(r.ok for r in lib.doctor())
    # a second ingest of the same folder changes nothing but amy's return
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        assert lib.ingest([str(bbt)]).statuses["unchanged"] == 35
