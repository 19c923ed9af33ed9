"""Evaluation: pairs formats, metrics, and verdicts from a calibration."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli

import lookalike
from lookalike.measure.evaluate import cv_accuracy, eer, read_pairs, roc_auc, verify


def test_lfw_pairs_txt_is_parsed(faces):
    pairs = read_pairs(faces / "lfw-dev" / "pairsDevTrain.txt", root=faces / "lfw-dev" / "images")
    assert len(pairs) == 2200 and sum(p.same for p in pairs) == 1100
    assert pairs[0].a.endswith("images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
    assert all(__import__("os").path.isfile(p.a) for p in pairs[:50])
    tsv = read_pairs(faces / "lfw-dev" / "pairs.tsv")
    assert [(p.a, p.b, p.same) for p in tsv[:5]] == [(p.a, p.b, p.same) for p in pairs[:5]]


def test_metrics_on_known_scores():
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.75])
    same = np.array([True, True, True, False, False, False])
    assert roc_auc(scores, same) == pytest.approx(8 / 9)
    assert 0 < eer(scores, same) < 0.5
    perfect = np.array([0.9, 0.8, 0.1, 0.2] * 5)
    assert cv_accuracy(perfect, np.array([True, True, False, False] * 5)) == 1.0
    # fewer pairs than folds: a fold a pair, never an empty fold's NaN (which --json printed)
    assert cv_accuracy(np.array([0.9, 0.1]), np.array([True, False])) == 1.0
    assert 0 <= cv_accuracy(np.array([0.9, 0.1, 0.5]), np.array([True, False, True])) <= 1


@pytest.mark.e2e
def test_verify_small_pairs_and_calibrated_verdicts(faces, tmp_path):
    pairs = read_pairs(faces / "lfw-dev" / "pairs.tsv")
    small = pairs[:40] + pairs[1100:1140]  # 40 same, 40 different
    lib = lookalike.open(tmp_path / "e.db")  # no faces: evaluated all the same, nothing written
    report, scores, same = lib.measure.verify(small, workers=2)
    assert report.pairs == 80 and report.photos == 135 and report.no_face == 0
    from lookalike.store import space_rows

    with lib.session() as session:
        assert space_rows.list_spaces(session) == []  # a read-only evaluation made no space row
    # the figures this slice gives with the default space (SFace + YuNet, measured
    # 2026-12-01): every pair on the right side of the shipped threshold 0.3537, the
    # closest same-person pair at 0.3626, the closest strangers at 0.317
    assert report.auc == pytest.approx(1.0, abs=1e-6)
    assert report.accuracy == pytest.approx(1.0) and report.cv_accuracy == pytest.approx(0.9875, abs=0.013)
    assert report.threshold == pytest.approx(0.3626, abs=0.002)
    assert report.floor == pytest.approx(0.0994, abs=0.002)
    assert np.median(scores[same]) > report.threshold > report.floor > np.min(scores[~same])
    lib.measure.calibrate(report, tmp_path / "pairs.tsv")  # kept by a library with no faces too
    cal = lookalike.open(tmp_path / "e.db").view.facts.calibration()
    assert cal.threshold == pytest.approx(report.threshold) and cal.source == "eval verify pairs.tsv"


@pytest.mark.e2e
def test_verdicts_on_known_pairs(library, faces):
    from lookalike.query.search import Verdict

    cal = library.view.facts.calibration()
    pairs = read_pairs(faces / "lfw-dev" / "pairs.tsv")
    same = [p for p in pairs if p.same][200:210]
    diff = [p for p in pairs if not p.same][200:210]
    from lookalike.faces.images import decode_file

    def sim(p):
        a, b = (library.view.models.pipeline.faces(decode_file(x, 10**8).rgb)[0].embedding for x in (p.a, p.b))
        return float(a @ b)

    same_verdicts = [cal.verdict(sim(p)) for p in same]
    diff_verdicts = [cal.verdict(sim(p)) for p in diff]
    assert same_verdicts.count(Verdict.same_person) >= 9
    assert diff_verdicts.count(Verdict.same_person) <= 1


@pytest.mark.e2e
def test_eval_retrieval_small_manifest(faces, tmp_path):
    import json
    import subprocess
    import sys

    lines = (faces / "lfw-dev" / "retrieval.tsv").read_text().splitlines()
    rows = [line for line in lines[1:] if line.split("\t")[1] < "Al"]  # identities A..Ak: a small, fixed slice
    manifest = tmp_path / "r.tsv"
    manifest.write_text(lines[0] + "\n" + "\n".join(rows) + "\n")
    here = tmp_path / "here"  # the current folder: the scratch library's folders are not left in it
    here.mkdir()
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", "eval", "retrieval", str(manifest),
                          "--root", str(faces / "lfw-dev"), "--json"], capture_output=True, text=True, timeout=600,
                         cwd=here)
    assert out.returncode == 0, out.stderr
    assert not list(here.iterdir())
    data = json.loads(out.stdout)
    roles = [r.split("\t")[2] for r in rows]
    assert data["queries"] == roles.count("query") > 5
    assert data["gallery"] == roles.count("gallery") and data["distractors"] == roles.count("distractor")
    assert data["top1"] >= 0.8 and data["top5"] >= data["top1"] and 0 < data["map"] <= 1
    assert set(data) >= {"top1", "top5", "map", "no_face", "top1_centroid", "top5_centroid"}
    assert 0.8 <= data["top1_centroid"] <= data["top5_centroid"] <= 1


@pytest.mark.e2e
def test_eval_verify_without_a_library_measures_in_a_scratch_one(faces, tmp_path):
    """Verification needs the models alone: without a library (and without --calibrate, which
    makes one) it was refused with "`lookalike ingest PHOTOS` makes one"; nothing is left."""
    import json

    lines = (faces / "lfw-dev" / "pairs.tsv").read_text().splitlines()
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join([lines[0], *lines[1:7], *lines[-6:]]) + "\n")
    here = tmp_path / "here"
    here.mkdir()
    out = cli("eval", "verify", str(pairs), "--root", str(faces / "lfw-dev"), "--json", cwd=here,
              env={"LOOKALIKE_DB": ""})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pairs"] == 12
    assert not list(here.iterdir())
    # a library named and not there is a typo, not a scratch library of the default model
    typo = cli("eval", "verify", str(pairs), "--root", str(faces / "lfw-dev"), "--db", str(here / "typo.db"))
    assert typo.returncode == 1 and "no library there" in typo.stderr, typo.stderr
    assert not list(here.iterdir())


def test_retrieval_manifest_roles_are_checked(tmp_path):
    from lookalike.errors import ManifestError
    from lookalike.measure.evaluate import read_retrieval

    bad = tmp_path / "r.tsv"
    bad.write_text("path\tidentity\trole\na.jpg\tx\tprobe\n")
    with pytest.raises(ManifestError, match="unknown role"):
        read_retrieval(bad, None)


BAD_MANIFESTS = [
    # (command, file name, its bytes, what the one line says)
    ("verify", "missing.tsv", None, "missing.tsv: no such file"),
    ("verify", "pairs.tsv", b"path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\nc.jpg\td.jpg\n", "pairs.tsv:3: no same"),
    ("verify", "pairs.tsv", b"path_a\tpath_b\tsame\na.jpg\tb.jpg\tmaybe\n",
     "pairs.tsv:2: same 'maybe' is neither 1 nor 0"),
    ("verify", "pairs.tsv", b"path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\na.jpg\tc.jpg\t0\n",
     "a.jpg: no such file (and 2 more); the paths are read under"),  # photos, not places named
    ("verify", "pairs.tsv", b"path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\n",
     "pairs.tsv: needs both same-person and different-person pairs (it holds all same-person)"),
    ("verify", "pairs.txt", b"10\nAaron_Peirsol 1 2\nAaron_Peirsol one 2\n",
     "pairs.txt:3: photo number 'one' is not a whole number"),
    ("verify", "pairs.txt", b"\xff\xfe\x00b\x00a\x00d", "pairs.txt: not UTF-8 text"),
    ("retrieval", "r.tsv", b"path\tidentity\trole\na.jpg\tx\tquery\nb.jpg\tx\n", "r.tsv:3: no role"),
    ("retrieval", "r.tsv", b"path\tidentity\trole\na.jpg\tx\tprobe\n", "r.tsv:2: unknown role 'probe'"),
    ("retrieval", "r.tsv", b"file\twho\na.jpg\tx\n", "r.tsv: needs the columns path, identity, role"),
    # scores of nothing: a ZeroDivisionError without queries, a silent 0 % without a gallery
    ("retrieval", "r.tsv", b"path\tidentity\trole\na.jpg\tx\tgallery\n", "r.tsv: no query rows"),
    ("retrieval", "r.tsv", b"path\tidentity\trole\na.jpg\tx\tquery\nb.jpg\ty\tdistractor\n",
     "r.tsv: no gallery rows"),
    ("attributes", "labels.tsv", b"path\tage\tgender\na.jpg\t30\tmale\nb.jpg\t40\tunknown\n",
     "labels.tsv:3: gender 'unknown' is not one of"),
    ("attributes", "labels.tsv", b"path\tage\na.jpg\tthirty\n", "labels.tsv:2: age 'thirty' is not a number"),
    ("attributes", "folder", "dir", "folder: a folder, not a file"),
]


@pytest.mark.parametrize(("command", "name", "content", "said"), BAD_MANIFESTS,
                         ids=[f"{c}-{s.split(': ', 1)[-1][:24]}" for c, _, _, s in BAD_MANIFESTS])
def test_a_bad_evaluation_file_is_one_line_naming_the_file_line_and_reason(command, name, content, said, tmp_path):
    """Whatever is wrong with a pairs, retrieval or labels file (missing, a folder, not UTF-8,
    a short row, a value its column cannot hold), ``lookalike eval`` says so in one line that
    names the file, the line and the reason, exits 2, and opens no library."""
    from conftest import cli

    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    db = tmp_path / "lib.db"
    done = cli("eval", command, str(path), *(["--db", str(db)] if command == "verify" else []))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert said in done.stderr and str(path) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert not db.exists()


@pytest.mark.e2e
def test_a_pair_without_a_face_is_wrong_and_a_senseless_calibration_is_refused(faces, tmp_path):
    """docs/cli.md: a pair with a photo without a face counts as wrong. Its -1 read as "two
    people" counted a different-person pair right, and a same-person one made the best
    threshold -1, which `--calibrate` stored: every match became `same_person`."""
    from conftest import cli

    known = faces / "celeb" / "face_recognition"
    obama, obama1, biden = (known / "barack_obama" / "obama.jpg", known / "barack_obama" / "obama1.jpg",
                            known / "joe_biden" / "biden.jpg")
    no_face = faces / "bad-inputs" / "collected" / "non_face_object__insightface_mask_blue.jpg"
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"path_a\tpath_b\tsame\n{obama}\t{obama1}\t1\n{obama}\t{biden}\t0\n{obama}\t{no_face}\t0\n"
                     f"{no_face}\t{obama1}\t1\n")
    lib = lookalike.open(tmp_path / "e.db")
    lib.view.row.ensure_space()
    report, _, _ = verify(lib.view, read_pairs(pairs))
    assert (report.pairs, report.no_face) == (4, 1)
    assert report.accuracy == pytest.approx(0.5)  # the two pairs with both faces right, the other two wrong
    assert report.floor < report.threshold < 1  # fitted on the pairs with both faces: never -1
    lib.close()
    swapped = tmp_path / "swapped.tsv"  # labels the other way round: no threshold tells these people apart
    swapped.write_text(f"path_a\tpath_b\tsame\n{obama}\t{obama1}\t0\n{obama}\t{biden}\t1\n")
    done = cli("eval", "verify", str(swapped), "--calibrate", "--db", str(tmp_path / "e.db"))
    assert done.returncode == 2 and "these pairs cannot tell people apart; nothing stored" in done.stderr, done.stderr
    assert lookalike.open(tmp_path / "e.db").view.facts.calibration().source != "eval verify swapped.tsv"
