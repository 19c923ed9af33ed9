"""What a photo file's structure would cost to read, counted from its bytes before Pillow
reads a byte of it.

Pillow parses a JPEG's header segments, a PNG's chunks and a GIF's blocks before the first
image one by one in Python, and decodes a TIFF strip by strip, so a file that is small by
its pixels can hold millions of them: a 14 MB JPEG of 3.5 M empty APP5 segments before a
320 x 240 photo took 8.5 s of CPU to open, a 12 MB TIFF of 1 x 2,000,000 pixels in 2 M
strips 12.8 s (security re-probe, 2026-12-07), while an honest file of that size costs
milliseconds. Cameras and editors write a few dozen segments, and chunks, strips and
sub-blocks of kilobytes, so each count is bounded here by a cap far above theirs, and a
file over it is refused with what it holds too much of. The walks themselves stop at the
cap: they cost microseconds whatever the file.
"""

from __future__ import annotations

import struct

# header segments (JPEG) or blocks (GIF) before the first image: a camera writes under 30
# (APPn, quantisation and Huffman tables, a frame header; an ICC profile split in 64 kB parts)
SEGMENTS = 512
# chunks (PNG) or strips and tiles (TIFF) beyond that: one per this many bytes of the file
# (libpng writes 8 kB IDAT chunks, TIFF writers 8 kB strips or 64 kB tiles)
BYTES_PER_PART = 4096
# a GIF's data sub-blocks hold up to 255 bytes; hostile ones hold one
BYTES_PER_SUB_BLOCK = 64

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def problem(data: bytes) -> str | None:
    """Why ``data`` holds more structure than a photo of its size has, or None (also for
    a format not walked here, or bytes that are not what they claim: the decoder says why)."""
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    if data[:8] == PNG_SIGNATURE:
        return _png(data)
    if data[:4] == b"GIF8":
        return _gif(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    if data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2:
        return _pnm(data)
    if data[:2] == b"BM" and len(data) >= 34 and int.from_bytes(data[30:34], "little") in (1, 2):
        return "a run-length coded BMP (decoded a byte at a time): save it as PNG or JPEG"
    return None


def _pnm(data: bytes) -> str | None:
    """A PNM header read token by token, comments and all, within :data:`PNM_HEADER` bytes."""
    pos, tokens = 2, 1
    wanted = 3 if data[1:2] in b"14" else 4  # bitmaps have no maximum
    while pos < min(len(data), PNM_HEADER) and tokens < wanted:
        if data[pos] == 0x23:  # "#": a comment to the end of the line
            end = data.find(b"\n", pos, PNM_HEADER)
            pos = PNM_HEADER if end < 0 else end + 1
        elif data[pos] in b" \t\r\n":
            pos += 1
        else:
            while pos < len(data) and data[pos] not in b" \t\r\n#":
                pos += 1
            tokens += 1
    return None if tokens >= wanted else f"a PNM header over {PNM_HEADER} bytes: not a photo this program reads"


def parts_cap(size: int) -> int:
    """How many chunks a file of ``size`` bytes may hold."""
    return SEGMENTS + size // BYTES_PER_PART


# a TIFF's strips or tiles: one per this many pixels at most (a strip is a row or more, a
# tile 16 x 16 or more), whatever its compression makes of the bytes
PIXELS_PER_PART = 64
COLOUR_MAP = 3 * 65536  # the longest tag a photo has beside its strips: a 16-bit palette
# a PNM's header (magic, width, height, maximum and the comments between them)
PNM_HEADER = 4096


def too_many(what: str, cap: int) -> str:
    return (f"holds over {cap:,} {what} (a photo of its size has far fewer): a file made to be slow "
            "to read, not a photo this program reads")


# markers a JPEG holds before its first scan: APPn, COM, quantisation and Huffman tables,
# frame headers (SOF0-15 but DHT, JPG, DAC), DRI, DAC, DNL, EXP
_HEADER_MARKERS = frozenset(range(0xE0, 0xF0)) | {0xFE, 0xDB, 0xC4, 0xDD, 0xCC, 0xDC, 0xDF} | (
    frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC})
# scans (SOS markers) after the first: a progressive JPEG has about ten, an MPO's second
# image as many again; each one is a pass of libjpeg over the whole picture
SCANS = 64
# bytes of header before the first scan (EXIF is at most 64 kB, an ICC profile rarely over
# 1 MB), and tables (quantisation, Huffman) before it: Pillow reads both in Python
HEADER_BYTES = 2 << 20
TABLES = 32
# a photo's long side over its short one (a panorama is 4-10): a 64 x 625,000 TIFF of 625 k
# one-row strips took 2.7 s to decode
ASPECT = 100


def _jpeg(data: bytes) -> str | None:
    pos, segments, tables = 2, 0, 0
    while pos + 4 <= len(data):
        if pos > HEADER_BYTES:
            return f"a JPEG header over {HEADER_BYTES >> 20} MB before its image: not a photo this program reads"
        if data[pos] != 0xFF:
            return "bytes between a JPEG's header segments that are no segment: not a photo this program reads"
        marker = data[pos + 1]
        segments += 1
        if segments > SEGMENTS:
            return too_many("JPEG header segments before its image", SEGMENTS)
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
        elif marker == 0xDA:  # start of scan: the image data follows, read by libjpeg
            # an FF DA in the coded data is always a marker (an FF there is followed by 00 or RSTn)
            if data.count(b"\xff\xda", pos + 2) > SCANS:
                return too_many("JPEG scans", SCANS)
            return None
        elif marker in _HEADER_MARKERS:
            tables += marker in (0xDB, 0xC4)
            if tables > TABLES:
                return too_many("JPEG quantisation and Huffman tables before its image", TABLES)
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        else:  # FF 00, a restart or end marker where a header segment must be
            return f"a JPEG marker FF {marker:02X} among its header segments: not a photo this program reads"
    return None


def _png(data: bytes) -> str | None:
    pos, chunks, cap = 8, 0, parts_cap(len(data))
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > cap:
            return too_many("PNG chunks", cap)
        if data[pos + 4:pos + 8] == b"IEND":
            return None
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")  # length, type, data, CRC
    return None


def _gif(data: bytes) -> str | None:
    """The blocks and sub-blocks before the first image (Pillow reads them in Python)."""
    if len(data) < 13:
        return None
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    budget = [SEGMENTS * 8]
    while pos < len(data) and data[pos] == 0x21:  # an extension: label, then data sub-blocks
        pos = skip_sub_blocks(data, pos + 2, budget)
        if budget[0] <= 0:
            return too_many("GIF extension blocks before its image", SEGMENTS * 8)
    if pos < len(data) and data[pos] not in (0x2C, 0x3B):  # Pillow would step over junk a byte at a time
        return "bytes after a GIF's extensions that are no image: not a photo this program reads"
    return None


def _tiff(data: bytes) -> str | None:
    """The first IFD's strip or tile count against the pixels it declares, read from the
    IFD entries themselves (Pillow reads the offset arrays whole: 2 M of them took 4 s)."""
    if len(data) < 8:
        return None
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack_from(f"{order}I", data, 4)[0]
    if offset + 2 > len(data):
        return None
    entries = struct.unpack_from(f"{order}H", data, offset)[0]
    if entries > SEGMENTS:
        return too_many("TIFF tags in its first directory", SEGMENTS)
    if offset + 2 + 12 * entries > len(data):
        return None
    found: dict[int, int] = {}
    longest = 0  # the most values a numeric tag holds (Pillow reads each one, rationals in Python)
    for i in range(entries):
        tag, kind, count = struct.unpack_from(f"{order}HHI", data, offset + 2 + 12 * i)
        if tag in (256, 257) and count == 1 and kind in (3, 4):  # width, height (SHORT or LONG)
            found[tag] = struct.unpack_from(f"{order}{'H' if kind == 3 else 'I'}", data, offset + 10 + 12 * i)[0]
        elif tag in (273, 324):  # StripOffsets, TileOffsets
            found[tag] = count
        if kind not in (1, 2, 6, 7):  # not bytes or text
            longest = max(longest, count)
    width, height = found.get(256, 0), found.get(257, 0)
    if min(width, height) and max(width, height) > ASPECT * min(width, height):
        return f"a {width} x {height} picture: no photo is {ASPECT} times as long as it is wide"
    parts = max(found.get(273, 0), found.get(324, 0))
    cap = SEGMENTS + width * height // PIXELS_PER_PART
    if parts > cap:
        return too_many("TIFF strips or tiles", cap)
    if longest > cap + COLOUR_MAP:
        return too_many("values in one TIFF tag", cap + COLOUR_MAP)
    return None


def skip_sub_blocks(data: bytes, pos: int, budget: list[int]) -> int:
    """Past a GIF's data sub-blocks at ``pos``, each one taken from ``budget[0]`` (a walk
    stops where the budget runs out: the caller looks at what is left of it)."""
    while pos < len(data) and data[pos] and budget[0] > 0:
        pos += data[pos] + 1
        budget[0] -= 1
    return pos + 1


def sub_blocks_budget(size: int) -> int:
    """How many GIF data sub-blocks a walk of a file of ``size`` bytes may step through."""
    return SEGMENTS * 8 + size // BYTES_PER_SUB_BLOCK
