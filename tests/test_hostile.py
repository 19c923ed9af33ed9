"""Hostile and bad input, property-based (hypothesis): whatever the bytes, text or path,
the answer is a valid result or a clear, typed error naming the input — never a crash,
never a hang, never a file outside the corpus."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lookalike.errors import BadImage, ConfigError, ManifestError
from lookalike.faces.images import decode
from lookalike.ingest.corpus import read_manifest, resolve_inside
from lookalike.query.search import Filter

MAX_PIXELS = 100_000_000
# no wall-clock deadline: on a loaded machine it failed examples that took 2.3 s of waiting;
# a hang is caught by the CPU time of the decode itself (_decode_is_total)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _small_images() -> list[bytes]:
    from PIL import Image

    out = []
    for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        Image.new("RGB", (48, 32), (200, 120, 40)).save(buf, fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _small_images()


def _decode_is_total(data: bytes) -> None:
    started = time.thread_time()  # this thread's CPU seconds: the decoder's work, not the machine's load
    try:
        decoded = decode(data, "fuzz.jpg", MAX_PIXELS)
    except BadImage as err:
        assert err.status in ("decode_error", "too_large")
        assert "fuzz.jpg" in str(err) and err.reason
    else:
        h, w, c = decoded.rgb.shape
        assert c == 3 and h * w <= MAX_PIXELS and decoded.rgb.dtype.name == "uint8"
    # a hang is a failure too: CPU time of this thread (not the machine's load), far above a decode's
    assert time.thread_time() - started < 10.0


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_refuse(data):
    _decode_is_total(data)


@FAST
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       st.integers(0, 10_000))
# found by this test on 2026-12-01: a TIFF whose dimensions tag is gone fails lazily, in n_frames
@example(seed=SEEDS[4], flips=[(130, 1)], cut=0)
def test_mutated_images_decode_or_refuse(seed, flips, cut):
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    _decode_is_total(bytes(data[: max(1, len(data) - cut % len(data))]))


def _tiff_chain(links: list[int]) -> bytes:
    """A little-endian TIFF of one-pixel pages whose IFD ``i`` points to IFD ``links[i]``
    (an index; out-of-range indexes become offsets past the end, 0 ends the chain)."""
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, 0), (278, 3, 1, 1),
            (279, 4, 1, 1)]
    size = 2 + len(tags) * 12 + 4
    data_at = 8 + len(links) * size
    out = bytearray(b"II*\0" + struct.pack("<I", 8))
    for link in links:
        out += struct.pack("<H", len(tags))
        for tag, kind, count, value in tags:
            value = data_at if tag == 273 else value
            out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else \
                struct.pack("<HHII", tag, kind, count, value)
        out += struct.pack("<I", 0 if link == 0 else 8 + (link - 1) * size)
    return bytes(out + b"\x80")


@FAST
@given(st.lists(st.integers(0, 80), min_size=1, max_size=60))
def test_any_tiff_page_chain_is_read_one_page_deep(links):
    """Chains that end, loop anywhere, or point past the file: the first page decodes (or is
    refused) and the page count stops at the loop, the end or the cap."""
    from lookalike.faces.pixels import tiff_pages

    data = _tiff_chain(links)
    assert 1 <= tiff_pages(data) <= len(links)
    assert tiff_pages(data, cap=3) <= 4
    _decode_is_total(data)


def _blank_png(width: int, height: int) -> bytes:
    """A complete, valid black greyscale PNG, compressed row by row: Pillow's save of a
    30000 x 30000 image first fills 900 MB and spends ~8 s of CPU compressing it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    deflate, row = zlib.compressobj(1), bytes(width + 1)  # each row: filter 0, then its pixels
    idat = b"".join([*(deflate.compress(row) for _ in range(height)), deflate.flush()])
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("size", "fmt"), [((1, 1), "PNG"), ((30000, 30000), "PNG"), ((30000, 1), "JPEG")])
def test_extreme_sizes_are_handled_within_bounds(size, fmt):
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "PNG":
        buf.write(_blank_png(*size))
    else:
        Image.new("L", size).save(buf, fmt)
    started = time.thread_time()  # this thread's CPU seconds, not the machine's load
    try:
        decoded = decode(buf.getvalue(), f"x.{fmt.lower()}", MAX_PIXELS)
        assert decoded.rgb.shape[:2] == (size[1], size[0])
    except BadImage as err:
        assert size == (30000, 30000) and err.status == "too_large"
        assert "900,000,000 pixels, over the 100 MP limit" in err.reason and "DOS" not in err.reason
    assert time.thread_time() - started < 60.0  # only a hang (a full 900 MP decode) is caught


# -- manifests and paths --------------------------------------------------------------
_cells = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@FAST
@given(st.lists(st.tuples(_cells, _cells, _cells), max_size=6), st.sampled_from(["csv", "tsv"]))
def test_any_csv_manifest_parses_or_refuses_and_never_leaves_its_folder(tmp_path, rows, kind):
    import csv

    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    manifest = folder / f"manifest.{kind}"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t" if kind == "tsv" else ",")
        writer.writerow(["path", "person", "consent_display"])
        writer.writerows(rows)
    _manifest_is_safe(manifest)


@FAST
@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(["path", "person", "tags", "consent_display", "story"]),
                                          st.one_of(_cells, st.integers(), st.booleans(), st.none(),
                                                    st.lists(_cells, max_size=3))),
                          st.text(max_size=40)), max_size=6))
def test_any_jsonl_manifest_parses_or_refuses_and_never_leaves_its_folder(tmp_path, rows):
    folder = tmp_path / "j"
    folder.mkdir(exist_ok=True)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r.replace("\n", " ") for r in rows),
                        encoding="utf-8")
    _manifest_is_safe(manifest)


def _manifest_is_safe(manifest: Path) -> None:
    try:
        items = read_manifest(manifest)
    except ManifestError as err:
        assert str(manifest) in str(err)
        return
    base = manifest.parent.resolve()
    for item in items:
        if item.rejected is None:
            real = Path(item.path).resolve()
            assert real == base or base in real.parents, (item.path, "escaped the manifest's folder")
            assert item.person
        else:
            assert item.rejected


@FAST
@given(st.lists(st.sampled_from(["..", ".", "a", "b", "/", "~", "//", "\\..", "%2e%2e", "link"]), max_size=8))
def test_paths_never_resolve_outside_the_corpus(tmp_path, parts):
    base = tmp_path / "corpus"
    (base / "a").mkdir(parents=True, exist_ok=True)
    link = base / "link"
    if not link.is_symlink():
        os.symlink("/etc", link)  # a symlink out of the corpus
    target, problem = resolve_inside(base, "/".join(parts) or ".")
    if problem is None:
        real = Path(target).resolve()
        assert real == base.resolve() or base.resolve() in real.parents
    else:
        assert "leaves the manifest's folder" in problem


@FAST
@given(st.text(max_size=60))
def test_any_filter_text_parses_or_is_refused_clearly(text):
    try:
        parsed = Filter.parse(text)
    except ConfigError as err:
        assert "filter" in str(err)
    else:
        assert parsed.value.strip() and "=" in text


def test_like_wildcards_in_a_tag_filter_match_literally(kiosk_db):
    """A tag filter is a value, not a pattern: '%' or '_' must not widen it to everyone."""
    import lookalike
    from lookalike.query.search import FilterKey

    with lookalike.open(kiosk_db) as lib:
        assert len(lib.view.facts.allowed_face_ids((Filter(FilterKey.tag, "women-in-science"),))) > 0
        for pattern in ("%", "_%", "women%"):
            assert len(lib.view.facts.allowed_face_ids((Filter(FilterKey.tag, pattern),))) == 0, pattern
        assert len(lib.view.facts.allowed_face_ids((Filter(FilterKey.person, "x' OR '1'='1"),))) == 0
        assert len(lib.view.facts.allowed_face_ids((Filter(FilterKey.organisation, "naval medical research"),))) > 0
        assert len(lib.view.facts.allowed_face_ids((Filter(FilterKey.organisation, "%"),))) == 0
        assert len(lib.view.facts.allowed_face_ids((Filter(FilterKey.role, "_%"),))) == 0
