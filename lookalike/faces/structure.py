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
    return None


def parts_cap(size: int) -> int:
    """How many chunks a file of ``size`` bytes may hold."""
    return SEGMENTS + size // BYTES_PER_PART


# a TIFF's strips or tiles: one per this many pixels at most (a strip is a row or more, a
# tile 16 x 16 or more), whatever its compression makes of the bytes
PIXELS_PER_PART = 64


def too_many(what: str, cap: int) -> str:
    return (f"holds over {cap:,} {what} (a photo of its size has far fewer): a file made to be slow "
            "to read, not a photo this program reads")


def _jpeg(data: bytes) -> str | None:
    pos, segments = 2, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not a marker: the decoder says what is wrong
        marker = data[pos + 1]
        segments += 1
        if segments > SEGMENTS:
            return too_many("JPEG header segments before its image", SEGMENTS)
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
        elif marker == 0xDA:  # start of scan: the image data follows, read by libjpeg
            return None
        elif marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
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
    blocks = 0
    while pos < len(data) and data[pos] == 0x21:  # an extension: label, then data sub-blocks
        pos += 2
        while pos < len(data):
            blocks += 1
            if blocks > SEGMENTS * 8:
                return too_many("GIF extension blocks before its image", SEGMENTS * 8)
            if not data[pos]:
                pos += 1
                break
            pos += data[pos] + 1
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
    for i in range(entries):
        tag, kind, count = struct.unpack_from(f"{order}HHI", data, offset + 2 + 12 * i)
        if tag in (256, 257) and count == 1 and kind in (3, 4):  # width, height (SHORT or LONG)
            found[tag] = struct.unpack_from(f"{order}{'H' if kind == 3 else 'I'}", data, offset + 10 + 12 * i)[0]
        elif tag in (273, 324):  # StripOffsets, TileOffsets
            found[tag] = count
    parts = max(found.get(273, 0), found.get(324, 0))
    cap = SEGMENTS + found.get(256, 0) * found.get(257, 0) // PIXELS_PER_PART
    return too_many("TIFF strips or tiles", cap) if parts > cap else None


def sub_blocks_budget(size: int) -> int:
    """How many GIF data sub-blocks a walk of a file of ``size`` bytes may step through."""
    return SEGMENTS * 8 + size // BYTES_PER_SUB_BLOCK
