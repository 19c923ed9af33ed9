"""Exploring the face space on real photos: PCA spectrum, clusters, outliers."""

from __future__ import annotations

import json
import subprocess

import numpy as np
from conftest import cli

from lookalike.measure import explore


def run(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (:func:`conftest.cli`); the tests that need a process of
    their own start ``python -m lookalike.cli`` themselves."""
    return cli(*args)


def test_pca_spectrum_is_a_distribution_and_extremes_are_faces(library):
    report, data = explore.pca(library.view, components=3)
    spectrum = np.array(report.spectrum)
    assert np.all(np.diff(spectrum) <= 1e-9) and spectrum.sum() <= 1 + 1e-6
    assert 0.5 < report.share_top20 <= 1 and report.faces == len(data.faces)
    ids = {f.face_id for f in data.faces}
    assert len(report.components) == 3
    for c in report.components:
        assert len(c.low) == len(c.high) == 6 and set(c.low + c.high) <= ids and not set(c.low) & set(c.high)


def test_clusters_on_labelled_faces_are_pure(library):
    report, data = explore.clusters(library.view, min_size=2)
    # celeb + 40 LFW people, cut at the calibrated same-person threshold (measured 2026-11-23)
    assert report.purity is not None and report.purity >= 0.9
    assert len(report.clusters) >= 20
    clustered = [i for c in report.clusters for i in c]
    assert len(clustered) == len(set(clustered))  # a face is in one cluster


def test_planted_mislabelled_photo_is_the_top_outlier(planted_db, tmp_path):
    db = planted_db
    montage = tmp_path / "out.jpg"
    out = run("explore", "outliers", "--db", str(db), "--montage", str(montage), "--json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)["outliers"]
    assert found and found[0]["photo"].endswith("planted.jpg") and found[0]["person"] == "deepface_id01"
    assert found[0]["robust_z"] < -3.5 and montage.stat().st_size > 1000


def test_explore_cli_writes_plots_and_montages(faces, small_db, tmp_path):
    db = small_db
    pca = run("explore", "pca", "--db", str(db), "--components", "2", "--plot", str(tmp_path / "s.png"),
              "--montage-dir", str(tmp_path / "axes"), "--json")
    assert pca.returncode == 0, pca.stderr
    assert len(json.loads(pca.stdout)["components"]) == 2 and (tmp_path / "s.png").stat().st_size > 5000
    assert sorted(p.name for p in (tmp_path / "axes").iterdir()) == ["component-01.jpg", "component-02.jpg"]
    said = run("explore", "pca", "--db", str(db), "--components", "1").stdout  # not "the first 20 of 16"
    assert "16 faces; all 16 components hold 100.0% of the variance" in said, said
    cl = run("explore", "clusters", "--db", str(db), "--montage-dir", str(tmp_path / "cl"), "--json")
    data = json.loads(cl.stdout)
    # 16 photos of 6 people, all of them clean: every cluster is one person
    assert data["purity"] == 1.0 and data["clusters_merged"] == 0
    assert len(list((tmp_path / "cl").iterdir())) == len(data["clusters"]) >= 4


def test_a_persons_average_leaves_out_the_face_their_page_flags(planted_db):
    """The planted photo (Aaron Sorkin filed as deepface_id01) is the one face of that person
    ``lookalike person`` flags (test_cli.py): their average leaves it out, unless asked to
    keep outliers."""
    import lookalike
    from lookalike.query.facemath import Group

    with lookalike.open(planted_db) as lib:
        group = Group.parse("person:deepface_id01")
        made = lib.pictures.average(group)
        kept = lib.pictures.average(group, outliers=True)
    assert made.left_out["outliers"] == 1 and kept.left_out["outliers"] == 0
    assert kept.faces == made.faces + 1 and made.faces >= 4


def test_a_corpus_average_leaves_out_the_faces_each_persons_page_flags(planted_db, faces, monkeypatch):
    """Outliers are judged person by person, their vectors read many people at a time
    (here up to 13 faces a read: two people in most reads): the faces a corpus average is
    made of are every face but those each person's own page flags."""
    import lookalike
    from lookalike.query import drawn
    from lookalike.store.values import Audience

    monkeypatch.setattr(drawn, "OUTLIER_READ", 13)
    names = sorted(p.name for p in (faces / "celeb" / "deepface").iterdir() if p.is_dir())
    with lookalike.open(planted_db) as lib:
        pages = [lib.person(name).faces for name in names]
        chosen, left_out, _ = drawn.chosen_faces(lib.view, None, Audience.operator, None, outliers=False)
    flagged = {f.face_id for page in pages for f in page if f.outlier}
    everyone = {f.face_id for page in pages for f in page}
    assert len(names) >= 5 and len(flagged) >= 1 and left_out["outliers"] == len(flagged)
    assert {face_id for face_id, *_ in chosen} == everyone - flagged
