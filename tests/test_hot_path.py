"""The query's hot path holds nothing but the model (issue 26): one database round trip
per query face once the library is warm, and kept centroids re-read only when another
writer moved them."""

from __future__ import annotations

import pytest
from _libraries import copy_library
from conftest import cli
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


def test_a_visitors_warm_search_is_one_statement_and_a_withdrawal_shows_at_once(small_golden, faces, tmp_path):
    """A visitor's and a kiosk's searches keep the faces their audience may see and the
    average of those faces (one statement, the answer's, once warm); consent withdrawn or
    given by another writer moves the space's generation, so the very next search of the
    same open library reads them again and answers without (or with) that person."""
    from lookalike.store.values import Audience

    db = copy_library(small_golden[0], tmp_path / "lib.db")
    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    with lookalike.open(db) as lib, lookalike.open(db) as other:
        first = lib.search(query, k=3, audience=Audience.visitor)
        top = first.faces[0].matches[0].person
        other.people.set_consent(top, False)  # withheld: the visitor's list is no longer "everyone"
        lib.search(query, k=3, audience=Audience.visitor)  # warm again, on the new list
        with Statements() as sql:
            withheld = lib.search(query, k=3, audience=Audience.visitor)
        assert [s.split()[0].upper() for s in sql.seen] == ["SELECT"], sql.seen
        assert len(withheld.faces[0].matches) == 3 and top not in [m.person for f in withheld.faces for m in f.matches]

        other.people.set_consent(top, True)
        with Statements() as sql:
            given = lib.search(query, k=3, audience=Audience.visitor)
        assert len(sql.seen) > 1  # the answer told of the new generation: read again, searched again
        assert given.faces[0].matches[0].person == top
        assert given.faces[0].corpus_centroid_similarity != withheld.faces[0].corpus_centroid_similarity

        kiosk = lib.search(query, k=3, audience=Audience.consented)  # only people who said yes
        assert {m.person for f in kiosk.faces for m in f.matches} == {top}
        with Statements() as sql:
            assert lib.search(query, k=3, audience=Audience.consented).to_dict() == kiosk.to_dict()
        assert [s.split()[0].upper() for s in sql.seen] == ["SELECT"], sql.seen
        other.people.set_consent(top, False)
        assert lib.search(query, k=3, audience=Audience.consented).faces[0].matches == []


def test_a_visitors_whole_search_leaves_out_the_withheld_faces_on_every_store(small_backend, faces):
    """A visitor's search without filters is the whole search less the faces of the people
    who withhold consent, handed to the index as those few ids (at 1 M faces a list of all
    the others took 0.37 s a search): on FAISS, pgvector and Milvus the answer is the
    operator's with that person taken out, in the same order."""
    from lookalike.store.values import Audience

    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    with small_backend.open() as lib:
        everyone = [(m.person, m.face_id) for m in lib.search(query, k=12).faces[0].matches]
        top = everyone[0][0]
        lib.people.set_consent(top, False)
        shown = lib.view.facts.shown((), Audience.visitor)
        assert shown.allowed is None and shown.excluded is not None and len(shown.excluded) > 0
        visitor = [(m.person, m.face_id) for m in lib.search(query, k=5, audience=Audience.visitor).faces[0].matches]
        assert visitor == [hit for hit in everyone if hit[0] != top][:5], small_backend.name


def _iou(a, b) -> float:
    from lookalike.faces.detect import iou

    return iou(tuple(a), tuple(b))


def test_a_large_jpeg_query_is_drafted_and_a_small_face_taken_from_the_whole_photo(small_db, faces, tmp_path):
    """A query JPEG over twice the detector's side is decoded at that side (DCT scaling);
    its faces, found and embedded there, agree with the whole photo's, and their boxes come
    back in the photo's own pixels. A face too small in the draft is aligned from the whole
    photo."""
    from PIL import Image

    from lookalike.faces.images import decode_file, open_query
    from lookalike.faces.pipeline import FacesMode

    portrait = str(faces / "celeb" / "deepface" / "deepface_id03" / "img49.jpg")  # 4352 px, one large face
    group = tmp_path / "group-3000px.jpg"  # many faces, each small beside the photo
    with Image.open(faces / "bad-inputs" / "collected" / "group_many_faces__faces.jpg") as img:
        grown = img.convert("RGB").resize((3000, round(3000 * img.height / img.width)), Image.LANCZOS)
        grown.save(group, quality=92)

    with lookalike.open(small_db) as lib:
        pipeline, settings = lib.view.models.pipeline, lib.settings
        for path, drafted in ((portrait, True), (str(group), False)):
            whole = decode_file(path, settings.max_pixels).rgb
            query = open_query(path, settings.max_pixels, settings.detect_max_side)
            assert query.scale <= 0.5 and max(query.rgb.shape[:2]) >= settings.detect_max_side, path
            found = pipeline.query_faces(query, FacesMode.all)
            assert (found.scale < 1.0) is drafted and found.rgb.shape == (query.rgb if drafted else whole).shape
            reference = pipeline.faces(whole, FacesMode.all)
            assert len(found.faces) == len(reference) > 0, path
            for face, ref in zip(found.faces, reference):
                assert _iou(found.in_photo(face.bbox), ref.bbox) > 0.85, path
                assert float(face.embedding @ ref.embedding) > 0.95, path

        # through search: the path (drafted) and the whole photo's pixels name the same people,
        # with boxes in the same (the photo's) pixels
        by_path = lib.search(portrait, k=3)
        by_pixels = lib.search(decode_file(portrait, settings.max_pixels).rgb, k=3)
        assert [m.person for m in by_path.faces[0].matches] == [m.person for m in by_pixels.faces[0].matches]
        assert _iou(by_path.faces[0].bbox, by_pixels.faces[0].bbox) > 0.85


def test_a_photo_of_many_faces_is_searched_for_its_twenty_largest(small_db, faces, tmp_path):
    """A grid of 30 LFW portraits, the first six larger: the 20 largest faces are searched
    (the six large ones among them), the answer says how many were not, and so does
    ``search --json`` (a grid of 734 faces took a request 6 s and 12.5 MB: re-probe, M4)."""
    import json

    from PIL import Image

    from lookalike.config import MAX_QUERY_FACES

    portraits = sorted((faces / "lfw-dev").rglob("*.jpg"))[:30]
    grid = Image.new("RGB", (6 * 250, 6 * 250), "white")
    for i, path in enumerate(portraits):
        with Image.open(path) as img:
            face = img.convert("RGB").crop((50, 50, 200, 200))  # the face, as LFW centres it
        size = 250 if i < 6 else 200
        grid.paste(face.resize((size, size)), ((i % 6) * 250, (i // 6) * 250))
    photo = tmp_path / "grid.jpg"
    grid.save(photo, quality=92)
    with lookalike.open(small_db) as lib:
        result = lib.search(str(photo), k=1)
    assert len(result.faces) == MAX_QUERY_FACES and result.faces_not_searched > 0
    sides = [f.bbox[2] * f.bbox[3] for f in result.faces]
    assert sides == sorted(sides, reverse=True)  # the largest first
    said = json.loads(cli("search", str(photo), "--db", str(small_db), "-k", "1", "--json").stdout)
    assert len(said["faces"]) == MAX_QUERY_FACES and said["faces_not_searched"] == result.faces_not_searched
