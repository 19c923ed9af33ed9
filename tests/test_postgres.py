"""The same library on PostgreSQL (a real server from the pgserver package): vectors in
``faces.vec`` (pgvector), searched in SQL through an HNSW index, no FAISS file."""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

import lookalike


def test_ingest_search_remove_doctor_on_postgresql(postgres, faces, tmp_path):
    url = postgres()
    bbt = faces / "celeb" / "faceapi_bbt"
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        report = lib.ingest([str(bbt)])
        assert report.statuses["ok"] == 40
        stats = lib.stats()
        assert (stats["people"], stats["photos"], stats["faces"]) == (8, 40, 40)
        info = lib.index_info()
        assert info["index_key"].startswith("pgvector HNSW") and info["ntotal"] == 40 and info["bytes"] > 0
        assert not list((tmp_path / "idx").glob("*.faiss"))  # the database is the index
        best = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches[0]
        assert best.person == "amy" and best.verdict == "same_person" and best.similarity > 0.99
        # filters run inside the SQL search: k answers from the allowed people only
        only = lib.search(str(bbt / "amy" / "amy5.png"), k=3, filters=(_person("raj"),)).faces[0].matches
        assert [m.person for m in only] == ["raj"] * 3
        lib.remove(person="amy")
        after = lib.search(str(bbt / "amy" / "amy5.png"), k=3).faces[0].matches
        assert "amy" not in {m.person for m in after}
        assert all(r.ok for r in lib.doctor())
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:  # amy comes back, nothing else moves
        assert lib.ingest([str(bbt)]).statuses["unchanged"] == 35


def test_pgvector_search_agrees_with_exact_and_doctor_refills_vectors(postgres, faces, tmp_path):
    url = postgres()
    with lookalike.open(url, index_dir=tmp_path / "idx") as lib:
        lib.ingest([str(faces / "celeb")])
        ids = lib.index.ids()
        vectors = lib._vectors(ids)
        query = vectors[7]
        sims, found = lib.index.search(query[None], 10)
        exact = ids[np.argsort(-(vectors @ query))[:10]]
        assert list(found[0]) == list(exact) and abs(sims[0][0] - 1.0) < 1e-5
        with lib._engine.begin() as conn:  # a face stored before pgvector: no vector yet
            conn.execute(text("UPDATE faces SET vec = NULL WHERE id = :i"), {"i": int(ids[7])})
        (report,) = lib.doctor()
        assert report.missing == 1 and not report.ok
        (fixed,) = lib.doctor(fix=True)
        assert fixed.fixed and lib.index.search(query[None], 1)[1][0][0] == ids[7]


def _person(name: str):  # noqa: ANN202
    from lookalike.search import Filter, FilterKey

    return Filter(FilterKey.person, name)
