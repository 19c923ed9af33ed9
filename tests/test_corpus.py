"""Corpus input: folder layout, manifests (CSV/TSV/JSONL), path escapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.errors import ManifestError
from lookalike.ingest.corpus import read_manifest, scan
from lookalike.store.profiles import parse_bool, parse_tags


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_per_person_at_any_depth(tmp_path):
    _touch(tmp_path / "set" / "Ada Lovelace" / "1.jpg")
    _touch(tmp_path / "set" / "Ada Lovelace" / "2.PNG")
    _touch(tmp_path / "Grace" / "a.webp")
    _touch(tmp_path / "README.txt")
    _touch(tmp_path / "Grace" / ".hidden.jpg")
    result = scan([tmp_path])
    assert [(i.person, i.path.split("/")[-1]) for i in result.items] == [
        ("Grace", "a.webp"), ("Ada Lovelace", "1.jpg"), ("Ada Lovelace", "2.PNG")]
    assert result.skipped_files == 1
    assert all(i.path.startswith("/") for i in result.items)


def test_a_folder_that_cannot_be_listed_stops_the_scan_naming_it(tmp_path, monkeypatch):
    """The listing of one folder fails as a folder without read permission does (the suite
    may run as root, whom permissions do not stop: the fault is put where os.walk lists)."""
    import errno
    import os

    _touch(tmp_path / "Ada" / "1.jpg")
    locked = _touch(tmp_path / "Grace" / "1.jpg").parent
    listing = os.scandir

    def scandir(path):
        if Path(path).resolve() == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ManifestError, match=rf"^{locked}: the folder cannot be listed \(Permission denied\)"):
        scan([tmp_path])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match=rf"^{locked}: "):  # named whole, however it was given
        scan(["."])


def test_person_override_and_missing_path(tmp_path):
    _touch(tmp_path / "x" / "1.jpg")
    assert scan([tmp_path], person="Someone").items[0].person == "Someone"
    with pytest.raises(ManifestError, match="no such file"):
        scan([tmp_path / "nope"])


def test_csv_manifest_keeps_profile_and_rejects_escapes(tmp_path):
    _touch(tmp_path / "m" / "photos" / "a.jpg")
    _touch(tmp_path / "outside.jpg")
    manifest = tmp_path / "m" / "people.csv"
    manifest.write_text(
        "path,person,display_name,role,organisation,story,tags,consent_display\n"
        "photos/a.jpg,ada,Ada L.,Engineer,Navy,\"Joined in 2010, loves maths\","
        "Women in Engineering;first generation,yes\n"
        "../outside.jpg,bob,,,,,,\n"
        f"{tmp_path / 'outside.jpg'},bob,,,,,,\n"
        "photos/a.jpg,,,,,,,\n"
    )
    items = read_manifest(manifest)
    ok = items[0]
    assert ok.rejected is None and ok.person == "ada"
    assert ok.profile.role == "Engineer" and ok.profile.organisation == "Navy"
    assert ok.profile.story == "Joined in 2010, loves maths"
    assert ok.profile.tags == ("women-in-engineering", "first-generation")
    assert ok.profile.consent_display is True
    assert "leaves the manifest's folder" in str(items[1].rejected)
    assert "leaves the manifest's folder" in str(items[2].rejected)
    assert "no person" in str(items[3].rejected)
    assert "people.csv:5" in str(items[3].rejected)  # the line is named


def test_symlink_out_of_manifest_folder_is_rejected(tmp_path):
    secret = _touch(tmp_path / "secret.jpg")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "link.jpg").symlink_to(secret)
    manifest = tmp_path / "m" / "list.tsv"
    manifest.write_text("path\tperson\nlink.jpg\tx\n")
    assert "leaves" in str(read_manifest(manifest)[0].rejected)


def test_jsonl_manifest(tmp_path):
    _touch(tmp_path / "a.jpg")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "a.jpg", "person": "p", "tags": ["STEM Mentor"],
                                    "consent_display": True}) + "\n\n")
    (item,) = read_manifest(manifest)
    assert item.profile.tags == ("stem-mentor",) and item.profile.consent_display is True


def test_bad_manifests_say_where(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.jpg"}\nnot json\n')
    with pytest.raises(ManifestError, match="bad.jsonl:2"):
        read_manifest(bad)
    headerless = tmp_path / "h.csv"
    headerless.write_text("file,who\na.jpg,x\n")
    with pytest.raises(ManifestError, match="'path' column"):
        read_manifest(headerless)


def test_a_manifest_profile_is_checked_as_the_api_checks_it(tmp_path):
    """Control characters, an over-long field, too many tags: the row is refused naming its
    line and the field, and nothing of it is stored (the API's 422 invalid_profile)."""
    from lookalike.store.profiles import MAX_TAGS, PROFILE_LIMITS

    _touch(tmp_path / "a.jpg")
    manifest = tmp_path / "m.jsonl"
    rows = [{"path": "a.jpg", "person": "p", "role": "a\x07b"},
            {"path": "a.jpg", "person": "p", "display_name": "x" * (PROFILE_LIMITS["display_name"] + 1)},
            {"path": "a.jpg", "person": "p", "tags": [f"t{i}" for i in range(MAX_TAGS + 1)]},
            {"path": "a.jpg", "person": "p", "story": "line one\n\tline two"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = read_manifest(manifest)
    assert "m.jsonl:1" in str(items[0].rejected) and "role holds the control character U+0007" in str(items[0].rejected)
    assert "m.jsonl:2" in str(items[1].rejected) and "display_name is" in str(items[1].rejected)
    assert "m.jsonl:3" in str(items[2].rejected) and f"at most {MAX_TAGS} tags" in str(items[2].rejected)
    assert items[3].rejected is None and items[3].profile.story == "line one\n\tline two"  # a story keeps them


def test_a_manifest_that_cannot_be_read_is_a_clear_error(tmp_path):
    folder = tmp_path / "people.csv"
    folder.mkdir()  # a folder named like a manifest: open() fails with an OSError
    with pytest.raises(ManifestError, match=r"people\.csv: a folder, not a file"):
        read_manifest(folder)


def test_consent_must_be_a_boolean(tmp_path):
    _touch(tmp_path / "a.jpg")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,person,consent_display\na.jpg,p,maybe\n")
    assert "consent_display must be true or false" in str(read_manifest(manifest)[0].rejected)


@pytest.mark.parametrize("value,expected", [("yes", True), ("0", False), ("", False), (True, True)])
def test_parse_bool(value, expected):
    assert parse_bool(value) is expected


def test_parse_tags():
    assert parse_tags("a b | C;a b") == ("a-b", "c")
    assert parse_tags(None) == ()


def test_linked_folders_are_followed_once_named_by_the_link(tmp_path, caplog):
    """A corpus made of links to people's folders elsewhere is read through them (os.walk
    alone passed them over: "no image files found"); a link back up and a second link to one
    folder end the walk there instead of looping or reading the photos twice."""
    _touch(tmp_path / "elsewhere" / "barack" / "1.jpg")
    corpus = tmp_path / "corpus"
    _touch(corpus / "Grace" / "a.jpg")
    (corpus / "Barack Obama").symlink_to(tmp_path / "elsewhere" / "barack")
    (corpus / "Grace" / "up").symlink_to(corpus)  # a loop
    (corpus / "Obama again").symlink_to(tmp_path / "elsewhere" / "barack")
    result = scan([corpus])
    assert [(i.person, Path(i.path).name) for i in result.items] == [("Barack Obama", "1.jpg"), ("Grace", "a.jpg")]
    assert result.items[0].path == str(corpus / "Barack Obama" / "1.jpg")
    assert "already walked" in caplog.text and "Obama again" in caplog.text


def test_hidden_folders_holding_photos_are_said_to_be_left_out(tmp_path, caplog):
    """A folder whose name starts with a dot is hidden and left out, but not in silence when
    it holds photos: a person's folder named ``...`` or ``.alice`` vanished from the run with no
    report row and ``skipped_files: 0`` (ua-cli L8). A ``.git`` without photos says nothing."""
    corpus = tmp_path / "corpus"
    _touch(corpus / "Grace" / "a.jpg")
    _touch(corpus / "..." / "b.jpg")
    _touch(corpus / "Grace" / ".thumbs" / "c.png")
    _touch(corpus / ".git" / "HEAD")
    result = scan([corpus])
    assert [(i.person, Path(i.path).name) for i in result.items] == [("Grace", "a.jpg")]
    warned = [r.getMessage() for r in caplog.records if "hidden folder" in r.getMessage()]
    assert len(warned) == 1 and "2 hidden folder(s) holding photos left out" in warned[0]
    assert str(corpus / "...") in warned[0] and str(corpus / "Grace" / ".thumbs") in warned[0]
    assert ".git" not in warned[0]


def test_a_manifests_columns_are_read_as_spreadsheets_write_them(tmp_path, caplog):
    """``Consent_Display`` or `` consent_display`` (a space after the comma) was dropped, and a
    person's "no" was stored as never stated: shown to every visitor (kiosk user test, F3).
    Case, spaces and hyphens do not count; a consent column by another name refuses the
    manifest; any other unknown column is said once."""
    _touch(tmp_path / "a.jpg")
    for header in ("path,person,Consent_Display", "Path, Person, consent_display", "path,person,Consent-Display"):
        (tmp_path / "m.csv").write_text(f"{header}\na.jpg,Kit,no\n")
        (item,) = read_manifest(tmp_path / "m.csv")
        assert item.profile is not None and item.profile.consent_display is False, header
    (tmp_path / "j.jsonl").write_text('{"path": "a.jpg", "Person": "Kit", "Display Name": "Kit H", "notes": "x"}\n'
                                      '{"path": "a.jpg", "person": "Kit", "notes": "y"}\n')
    first, _ = read_manifest(tmp_path / "j.jsonl")
    assert first.person == "Kit" and first.profile is not None and first.profile.display_name == "Kit H"
    assert caplog.text.count("column(s) 'notes' left out") == 1
    (tmp_path / "m.csv").write_text("path,person,consent_display,,\na.jpg,Kit,no,,\n")  # trailing commas
    (item,) = read_manifest(tmp_path / "m.csv")
    assert item.profile is not None and item.profile.consent_display is False and "''" not in caplog.text
    for header in ("path,person,consent_display,Consent Display", "path,person,consent_display,consent_display"):
        (tmp_path / "m.csv").write_text(f"{header}\na.jpg,Kit,false,\n")
        with pytest.raises(ManifestError, match="names the column 'consent_display' twice"):
            read_manifest(tmp_path / "m.csv")  # the later, empty one won: "no" became never stated
    (tmp_path / "j.jsonl").write_text('{"path": "a.jpg", "person": "Kit", "consent_display": false, '
                                      '"Consent Display": ""}\n')
    with pytest.raises(ManifestError, match="columns 'consent_display' and 'Consent Display' are one column"):
        read_manifest(tmp_path / "j.jsonl")
    for header in ("path,person,consent", "path,person,consented_to_display"):
        (tmp_path / "m.csv").write_text(f"{header}\na.jpg,Kit,no\n")
        with pytest.raises(ManifestError, match="unknown column .*'consent_display' .*nothing was ingested"):
            read_manifest(tmp_path / "m.csv")


def test_a_manifest_names_its_photos_one_way_from_any_folder(tmp_path, monkeypatch):
    """`../kiosk.csv` stored `/here/../photos/a.png`: the same manifest run from another folder
    named every photo anew, and each became a duplicate row (move user test, F1)."""
    _touch(tmp_path / "photos" / "a.jpg")
    (tmp_path / "kiosk.csv").write_text("path,person\nphotos/a.jpg,Kit\n")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    (relative,) = read_manifest(Path("../kiosk.csv"))
    (absolute,) = read_manifest(tmp_path / "kiosk.csv")
    assert relative.path == absolute.path == str(tmp_path / "photos" / "a.jpg")
    # a folder named through `..` too; but not one named `alice/..`, whose loose photo is refused
    _touch(tmp_path / "people" / "Kit" / "k.jpg")
    _touch(tmp_path / "people" / "loose.jpg")
    assert [i.path for i in scan([Path("../people")]).items] == [str(tmp_path / "people" / "loose.jpg"),
                                                                 str(tmp_path / "people" / "Kit" / "k.jpg")]
    through = scan([tmp_path / "people" / "Kit" / ".."]).items
    assert [i.person for i in through] == [None, "Kit"] and through[0].rejected is not None
    (tmp_path / "j.jsonl").write_text('{"path": "photos/a.jpg", "person": "Kit", "consent_display": false, '
                                      '"consent_display": ""}\n')  # json keeps the last: "no" lost
    with pytest.raises(ManifestError, match="the key 'consent_display' is named twice"):
        read_manifest(tmp_path / "j.jsonl")
