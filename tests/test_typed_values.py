"""Typed values where strings travelled: a rejection's kind and detail, a match's verdict, the
reader's task. Each reads, prints and is stored exactly as the string it replaced."""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict

from lookalike.ingest import formats
from lookalike.ingest.corpus import Item, Rejection
from lookalike.ingest.report import Task
from lookalike.query.search import Calibration, Match, Verdict


def test_a_rejection_is_stored_as_the_reason_it_replaced():
    assert str(Rejection("unknown class", "n009999 is not in meta.csv")) == "unknown class: n009999 is not in meta.csv"
    assert str(Rejection("manifest row has no path")) == "manifest row has no path"
    assert str(Rejection("manifest row has no person", where="people.csv:5")) == (
        "people.csv:5: manifest row has no person")
    # the kind is counted as it is, even when the detail has colons of its own
    items = [Item("/a.jpg", None, rejected=Rejection("no face", "face_score: -inf")),
             Item("/b.jpg", None, rejected=Rejection("no face", "x")),
             Item("/c.jpg", None, rejected=Rejection("bad path", "wiki.mat: ../x")), Item("/d.jpg", "ada")]
    assert formats.skipped(items) == {"no face": 2, "bad path": 1}


def test_a_verdict_prints_compares_and_serialises_as_its_value():
    cal = Calibration(threshold=0.5, floor=0.3, source="test")
    verdicts = [cal.verdict(s) for s in (0.9, 0.4, 0.1)]
    assert verdicts == [Verdict.same_person, Verdict.lookalike, Verdict.weak]
    assert verdicts == ["same_person", "lookalike", "weak"]  # as the strings it replaced
    match = Match(1, "ada", "/a.jpg", 7, 0.9, cal.verdict(0.9))
    assert json.dumps(asdict(match)) == json.dumps(asdict(match) | {"verdict": "same_person"})
    assert f"{match.verdict}" == str(match.verdict) == "same_person"
    assert match.verdict.replace("_", " ") == "same person"
    assert Verdict("lookalike") is Verdict.lookalike


def test_a_task_travels_to_a_worker_process_whole():
    task = Task(Item("/x/ada/a.jpg", "ada"), "ab" * 32, 3, b"abc", replaces=True)
    again = pickle.loads(pickle.dumps(task))
    assert again == task and (again.path, again.person, again.size) == ("/x/ada/a.jpg", "ada", 3)


def test_the_ingest_statuses_are_the_stored_ones_and_unchanged():
    from lookalike.ingest.report import IngestReport, IngestStatus, Outcome
    from lookalike.store.values import PhotoStatus

    assert [s.value for s in IngestStatus] == [s.value for s in PhotoStatus] + ["unchanged"]
    assert all(IngestStatus.of(s) is IngestStatus(s.value) for s in PhotoStatus)
    assert IngestStatus.of("no_face") is IngestStatus.no_face  # as read back from a queue row
    report = IngestReport([Outcome("/a.jpg", "ada", IngestStatus.ok, None, 2, "x"),
                           Outcome("/b.jpg", "ada", IngestStatus.unchanged, None, 0, "y"),
                           Outcome("/c.jpg", None, IngestStatus.of(PhotoStatus.rejected), "no face: z", 0, None)])
    # the summary's JSON: every status, in the stored order, then unchanged; plain strings
    text = json.dumps(report.to_dict()["statuses"])
    assert text == ('{"ok": 1, "no_face": 0, "decode_error": 0, "too_large": 0, "duplicate": 0, '
                    '"rejected": 1, "error": 0, "unchanged": 1}')
    assert (report.faces, report.processed) == (2, 2)
    assert [f"{o.status}" for o in report.outcomes] == ["ok", "unchanged", "rejected"]  # --report's column
