"""Index backends are handed values, never the view (architecture review 50, H1): the open
index, its vector source, a Milvus collection's outbox and the backend itself reach no
:class:`lookalike.verbs.space.SpaceView` through any reference, on every store; the view makes a
fresh :class:`SpaceStore` of values for each operation and keeps the open index in an
:class:`IndexSlot` that opens only when asked."""

from __future__ import annotations

import gc
import types
from dataclasses import FrozenInstanceError

import pytest

from lookalike.index.space_store import IndexSlot, SpaceStore
from lookalike.index.space_vectors import SpaceVectors
from lookalike.verbs.space import SpaceView

pytestmark = pytest.mark.e2e

VIEWS = (SpaceView, SpaceVectors)
SKIPPED = (type, types.ModuleType, types.FrameType, types.CodeType)


def _path_to(start: object, kind: type | tuple[type, ...], limit: int = 300_000) -> list[str] | None:
    """The chain of types from ``start`` to an instance of ``kind`` through the objects each
    one refers to, or ``None``. A function is followed through its closure and defaults, not
    its module's globals (every function reaches every module that way); classes and
    modules are not followed."""
    seen: set[int] = set()
    frontier: list[tuple[object, list[str]]] = [(start, [])]
    while frontier and len(seen) < limit:
        later: list[tuple[object, list[str]]] = []
        for obj, path in frontier:
            if id(obj) in seen or isinstance(obj, SKIPPED):
                continue
            seen.add(id(obj))
            here = [*path, type(obj).__name__]
            if isinstance(obj, kind):
                return here
            if isinstance(obj, types.FunctionType):
                inner = [c.cell_contents for c in obj.__closure__ or () if _filled(c)] + list(obj.__defaults__ or ())
            elif isinstance(obj, types.MethodType):
                inner = [obj.__self__, obj.__func__]
            else:
                inner = gc.get_referents(obj)
            later.extend((o, here) for o in inner)
        frontier = later
    assert not frontier, f"more than {limit:,} objects reachable: the search stopped before it was done"
    return None


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def test_the_path_finder_finds_a_view_held_through_a_bound_method(small_db):
    """The check below can fail: an index whose vector source is a bound method of the view
    (as it was before) is found holding it."""
    import lookalike

    with lookalike.open(small_db) as lib:
        index = lib.view.vectors.index
        index.vector_source = lib.view.session
        assert _path_to(index, SpaceView) is not None


def test_no_backend_index_or_outbox_holds_the_view_on_any_store(small_backend, faces):
    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    with small_backend.open() as lib:
        assert lib.search(query, k=3).faces[0].matches  # the index opened and searched
        index = lib.view.vectors.index
        assert isinstance(lib.view.vectors.index_slot(), IndexSlot) and lib.view.vectors.index_slot().opened is index
        source = index.vector_source
        assert isinstance(source, types.MethodType) and isinstance(source.__self__, SpaceStore)
        for held, name in ((index, "the open index"), (lib.backend, "the backend"),
                           (getattr(lib.backend.own(index), "outbox", None) if small_backend.name == "milvus"
                            else None, "the outbox")):
            # nor the view's part that keeps the open index and the PCA (index/space_vectors.py)
            assert _path_to(held, VIEWS) is None, f"{small_backend.name}: {name} holds the view: " \
                f"{' -> '.join(_path_to(held, VIEWS) or [])}"
        assert lib.doctor()[0].ok  # the maintenance service hands the backend the store and the slot


def test_a_store_is_made_of_values_and_the_slot_follows_a_new_space_row(tmp_path, faces):
    """A view over a library with no faces makes a store without a space id (reading the
    index says the library is empty); after the first ingest the slot is made again with the
    space's id, without reopening the library."""
    import lookalike
    from lookalike.errors import EmptyLibrary

    with lookalike.open(tmp_path / "lib.db") as lib:
        store = lib.view.vectors.store()
        assert store.space_id is None and store.reduction is None
        with pytest.raises(EmptyLibrary):
            lib.view.vectors.index  # noqa: B018 - the read raises
        with pytest.raises(FrozenInstanceError):
            store.space_id = 1  # type: ignore[misc]  # frozen: a store is a value
        lib.ingest([str(faces / "celeb" / "face_recognition" / "barack_obama")])
        assert lib.view.vectors.store().space_id == lib.view.row.space_id
        held = lib.view.vectors
        assert held.index.ntotal > 0 and held.index_slot().store.space_id == lib.view.row.space_id


def test_a_reader_that_saw_an_empty_library_finds_faces_another_process_ingested(tmp_path, faces):
    """A server or the web app opened on an empty library (its start-up warm-up found no
    faces) and the operator's ``lookalike ingest`` beside it: the next search answers. A
    slot kept from before the space's row existed answered "holds faces made with K, not K"
    (review 51, H1)."""
    import lookalike
    from lookalike.errors import EmptyLibrary

    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    with lookalike.open(tmp_path / "lib.db") as reader:
        with pytest.raises(EmptyLibrary):
            reader.search(query)
        with lookalike.open(tmp_path / "lib.db") as writer:
            writer.ingest([str(faces / "celeb" / "face_recognition" / "barack_obama")])
        assert reader.search(query).faces[0].matches[0].person == "barack_obama"



def test_a_reader_follows_a_pca_another_process_trained(small_db, faces):
    """A server keeps its library open while ``index rebuild --reduce`` (or an ingest's
    upkeep) in another process trains a PCA and saves the index at its width: the server's
    next search reads the new file with its PCA. It reopened the file with the PCA it had
    kept, and every search failed with IndexCorrupt until a restart (review 51, M1)."""
    import lookalike

    query = str(faces / "celeb" / "face_recognition" / "barack_obama" / "obama.jpg")
    with lookalike.open(small_db) as reader:
        before = [m.face_id for m in reader.search(query, k=3).faces[0].matches]
        for width in (8, 6):
            with lookalike.open(small_db) as writer:
                assert writer.maintenance.rebuild(reduce=width)["dim"] == width
            after = reader.search(query, k=3).faces[0].matches
            assert reader.view.vectors.index_slot().store.reduction.dim_out == width
            assert [m.face_id for m in after] == before  # re-ranked on the full vectors: the same answer
