"""The Explore page (lookalike/ui/explore.py) run headless with Streamlit's AppTest on real libraries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from lookalike.measure import explore

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "lookalike" / "ui" / "explore.py")


def db_path(lib) -> str:
    return lib.settings.db_url.removeprefix("sqlite:///")


def page(monkeypatch, db: str, view: str | None = None) -> AppTest:
    """The page as an operator sees it once past the gate (tests/test_ui_admin.py tests the gate)."""
    monkeypatch.setenv("LOOKALIKE_DB", db)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["lk_operator"] = True
    if view is not None:
        at.session_state["view"] = view  # what a click on the tab does (st.tabs key="view")
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def face_ids(crops) -> list[int]:
    """The face ids of an image grid, in order (from the alt texts), and its crops are distinct."""
    assert len(set(crops.value)) == len(crops.value)  # a real crop each, not one placeholder
    return [int(img.alt.split(":")[0].removeprefix("Face ")) for img in crops.proto.imgs]


def paths(table) -> list[str]:
    return [str(Path(folder) / name) for folder, name in zip(table["Folder"], table["File"])]


def tab(at: AppTest, label: str):
    (found,) = [t for t in at.tabs if t.label == label]
    return found


@pytest.fixture(scope="module")
def troubled(faces: Path, tmp_path_factory):
    """Two good photos of two people and three photos that give no face: problem photos to list,
    and too few faces for PCA (a library error the page must show as a message)."""
    import lookalike

    root = tmp_path_factory.mktemp("troubled")
    good = sorted((faces / "lfw-dev" / "images").iterdir())[:2]
    for person in good:
        (root / "photos" / person.name).mkdir(parents=True)
        first = sorted(person.glob("*.jpg"))[0]
        (root / "photos" / person.name / first.name).symlink_to(first)
    (root / "photos" / "unlucky").mkdir()
    for name in ("generated/corrupt__truncated.jpg", "generated/noise__noise_512.png",
                 "collected/non_face_scene__skimage_coffee.png"):
        (root / "photos" / "unlucky" / Path(name).name).symlink_to(faces / "bad-inputs" / name)
    lib = lookalike.open(root / "t.db")
    lib.ingest([str(root / "photos")])
    yield lib
    lib.close()


def test_overview_shows_the_library_counts(library, monkeypatch):
    at = page(monkeypatch, db_path(library))
    stats = library.stats()
    shown = metrics(at)
    assert shown["People"] == f"{stats['people']:,}" and shown["Photos"] == f"{stats['photos']:,}"
    assert shown["Faces"] == f"{stats['faces']:,}" and stats["faces"] > 100
    assert shown["Search index"] == stats["index"]["index_key"] and shown["Face model"] == "SFace"
    assert shown["Used (face stored)"] == f"{stats['statuses']['ok']:,}"
    assert [t.label for t in at.tabs][:2] == ["Overview", "Problem photos"]
    assert not at.error and not tab(at, "Look-alike groups").children  # only the open tab ran


def test_overview_counts_every_photo_outcome(troubled, monkeypatch):
    stats = troubled.stats()
    assert (stats["photos"], stats["faces"], stats["people"]) == (5, 2, 2)
    shown = metrics(page(monkeypatch, db_path(troubled)))
    assert (shown["Photos"], shown["Faces"], shown["People"]) == ("5", "2", "2")
    assert (shown["Used (face stored)"], shown["No face found"], shown["Could not be opened"]) == ("2", "2", "1")
    assert "Duplicate of another photo" not in shown  # outcomes that did not happen are not shown


def test_problem_photos_are_listed_and_filtered(troubled, monkeypatch):
    problems = troubled.problems()
    assert Counter(s for _, s, _ in problems) == {"decode_error": 1, "no_face": 2}
    at = page(monkeypatch, db_path(troubled), "Problem photos")
    (table,) = at.dataframe
    assert list(table.value.columns) == ["File", "What happened", "Details", "Folder"]
    assert paths(table.value) == [p for p, _, _ in problems]
    assert set(table.value["What happened"]) == {"no face found", "could not be opened"}
    assert table.value["Details"][0] == problems[0][2] and "truncated" in problems[0][2]  # the decoder's reason

    at.pills(key="problem_status").set_value(["no_face"]).run()
    assert not at.exception
    assert paths(at.dataframe[0].value) == [p for p, s, _ in problems if s == "no_face"]


def test_a_clean_library_says_there_are_no_problem_photos(small_db, monkeypatch):
    import lookalike

    with lookalike.open(small_db) as lib:
        assert lib.problems() == []  # celeb/face_recognition: every photo has its face
    at = page(monkeypatch, str(small_db), "Problem photos")
    assert "No problem photos" in at.success[0].value and not at.dataframe


def test_library_errors_become_messages_not_tracebacks(troubled, monkeypatch):
    at = page(monkeypatch, db_path(troubled), "Main directions")
    assert len(at.error) == 1 and "the main directions (PCA) need at least 3 faces" in at.error[0].value


def test_choosing_a_person_shows_their_faces_in_centroid_order(library, monkeypatch):
    at = page(monkeypatch, db_path(library), "One person")
    counts = Counter(f.person for f in explore.corpus(library.view).faces)
    ranked = [name for name, _ in counts.most_common()]
    assert at.selectbox(key="person").value == ranked[0]  # the person with the most photos first
    name = next(n for n in ranked[1:] if counts[n] >= 3)
    at.selectbox(key="person").set_value(name).run()
    assert not at.exception
    report = library.person(name)
    (crops,) = tab(at, "One person").get("image")
    assert len(crops.value) == len(report.faces) == counts[name]
    shown = [float(c.split(" ")[0]) for c in crops.captions]
    assert shown == [round(f.similarity, 3) for f in report.faces] and shown == sorted(shown, reverse=True)
    assert face_ids(crops) == [f.face_id for f in report.faces]
    assert any(name.replace("_", " ") in m.value for m in at.markdown)


def test_a_vanished_photo_file_shows_a_placeholder(faces, tmp_path, monkeypatch):
    import shutil

    import lookalike

    person = next(p for p in sorted((faces / "lfw-dev" / "images").iterdir()) if len(list(p.glob("*.jpg"))) >= 3)
    (tmp_path / "photos" / person.name).mkdir(parents=True)
    for photo in sorted(person.glob("*.jpg"))[:3]:
        shutil.copy(photo, tmp_path / "photos" / person.name / photo.name)
    with lookalike.open(tmp_path / "v.db") as lib:
        lib.ingest([str(tmp_path / "photos")])
        report = lib.person(person.name)
    Path(report.faces[1].photo).unlink()
    at = page(monkeypatch, str(tmp_path / "v.db"), "One person")
    (crops,) = tab(at, "One person").get("image")
    assert face_ids(crops) == [f.face_id for f in report.faces] and not at.error
    assert [img.alt.endswith("(photo file not found)") for img in crops.proto.imgs] == [False, True, False]


def test_planted_photo_is_marked_in_the_montage_and_tops_the_odd_ones(planted_db, monkeypatch):
    import lookalike

    with lookalike.open(planted_db) as lib:
        report = lib.person("deepface_id01")
    at = page(monkeypatch, str(planted_db), "One person")
    at.selectbox(key="person").set_value("deepface_id01").run()
    (crops,) = tab(at, "One person").get("image")
    marked = [i for i, c in enumerate(crops.captions) if "odd one out" in c]
    assert marked == [i for i, f in enumerate(report.faces) if f.outlier] and marked
    assert report.faces[marked[0]].photo.endswith("planted.jpg")

    at = page(monkeypatch, str(planted_db), "Odd ones out")
    (crops,) = tab(at, "Odd ones out").get("image")
    assert crops.captions[0].startswith("deepface id01") and face_ids(crops)[0] == report.faces[marked[0]].face_id
    (table,) = at.dataframe
    assert table.value["Photo"][0].endswith("planted.jpg") and table.value["Robust z"][0] < -3.5
    assert list(table.value["Robust z"]) == sorted(table.value["Robust z"])  # worst first


def test_pca_tab_shows_the_real_spectrum_and_the_extreme_faces(library, monkeypatch):
    at = page(monkeypatch, db_path(library), "Main directions")
    report, data = explore.pca(library.view, 5)
    bars = tab(at, "Main directions").get("vega_lite_chart")[0].proto
    plotted = dataframe_util.convert_arrow_bytes_to_pandas_df(bars.datasets[0].data.data)
    assert np.allclose(plotted["share"], report.spectrum, atol=1e-6) and len(plotted) == len(report.spectrum)
    assert np.allclose(plotted["together"], np.cumsum(report.spectrum), atol=1e-6)
    assert metrics(at)["Share of the differences held by the first 20 directions"] == f"{report.share_top20:.0%}"
    grids = tab(at, "Main directions").get("image")
    assert len(grids) == 2 * len(report.components) == 10
    person = {f.face_id: f.person.replace("_", " ") for f in data.faces}
    first = report.components[0]
    assert face_ids(grids[0]) == first.low and face_ids(grids[1]) == first.high
    assert grids[0].captions == [person[i] for i in first.low] and grids[1].captions == [person[i] for i in first.high]

    at.slider(key="pca_components").set_value(2).run()
    assert not at.exception and len(tab(at, "Main directions").get("image")) == 4
    assert face_ids(tab(at, "Main directions").get("image")[3]) == report.components[1].high


def test_groups_tab_shows_the_clusters(library, monkeypatch):
    at = page(monkeypatch, db_path(library), "Look-alike groups")
    report, data = explore.clusters(library.view, 2)
    assert metrics(at)["Groups"] == f"{len(report.clusters):,}"
    assert metrics(at)["Groups that mix people"] == str(report.clusters_merged)
    grids = tab(at, "Look-alike groups").get("image")
    assert len(grids) == min(20, len(report.clusters))
    person = {f.face_id: f.person.replace("_", " ") for f in data.faces}
    assert face_ids(grids[0]) == report.clusters[0][:12]
    assert grids[0].captions == [person[i] for i in report.clusters[0][:12]]

    at.toggle(key="group_mixed").set_value(True).run()
    assert not at.exception
    shown = len(tab(at, "Look-alike groups").get("image"))
    # this library has groups that mix people (look-alikes): the toggle's filter is shown working
    assert report.clusters_merged > 0 and shown == min(20, report.clusters_merged)


def test_odd_ones_out_tab_renders(library, monkeypatch):
    at = page(monkeypatch, db_path(library), "Odd ones out")
    found = explore.outliers(library.view, 20)
    assert found  # celeb + the LFW slice: some photo always sits apart from its person's others
    assert face_ids(tab(at, "Odd ones out").get("image")[0]) == [o.face_id for o in found]
    assert not at.error


def test_a_library_without_odd_ones_out_says_so(small_db, monkeypatch):
    import lookalike

    with lookalike.open(small_db) as lib:
        assert explore.outliers(lib.view, 20) == []
    at = page(monkeypatch, str(small_db), "Odd ones out")
    assert "No odd ones out" in at.success[0].value and not at.error


def test_an_empty_library_shows_how_to_ingest(tmp_path, monkeypatch):
    import lookalike

    lookalike.open(tmp_path / "empty.db").close()
    at = page(monkeypatch, str(tmp_path / "empty.db"))
    assert len(at.warning) == 1 and "lookalike ingest" in at.warning[0].value
    assert not at.tabs and not at.metric


def test_a_missing_library_is_reported_not_created(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "lib.db"
    at = page(monkeypatch, str(missing))
    assert len(at.warning) == 1 and str(missing) in at.warning[0].value
    assert "lookalike ingest" in at.warning[0].value
    assert not missing.exists() and not missing.parent.exists() and not at.tabs
