"""The query's hot path holds nothing but the model (issue 26): one database round trip
per query face once the library is warm, and kept centroids re-read only when another
writer moved them."""

from __future__ import annotations

import pytest
from conftest import cli, copy_library
from sqlalchemy import event
from sqlalchemy.engine import Engine

import lookalike

pytestmark = pytest.mark.e2e


class Statements:
    """Every SQL statement any engine of this process sends while counting."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append(statement)

    def __enter__(self) -> "Statements":
        event.listen(Engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self)


def test_a_warm_search_is_one_statement_and_centroids_follow_a_writer(small_golden, faces, tmp_path):
    db = copy_library(small_golden[0], tmp_path / "lib.db")
    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    with lookalike.open(db) as lib:
        first = lib.search(query, k=3)  # warm: models, index, calibration, centroids
        with Statements() as sql:
            again = lib.search(query, k=3)
        assert [s.split()[0].upper() for s in sql.seen] == ["SELECT"], sql.seen
        assert again.to_dict() == first.to_dict()
        before = again.faces[0].matches[0].person_centroid_similarity

        # another process adds a photo of the matched person: the generation moves, the
        # next search reads the centroids again and its figures change
        person = again.faces[0].matches[0].person
        extra = tmp_path / "more" / person
        extra.mkdir(parents=True)
        (extra / "extra.jpg").symlink_to(faces / "bad-inputs" / "collected" / "resolution_ladder__obama-720p.jpg")
        added = cli("ingest", str(tmp_path / "more"), "--db", str(db), "--json")
        assert added.returncode == 0, added.stderr
        with Statements() as sql:
            moved = lib.search(query, k=3)
        assert len(sql.seen) > 1  # the answer's rows, then the centroids read again
        assert moved.faces[0].matches[0].person_centroid_similarity != before
