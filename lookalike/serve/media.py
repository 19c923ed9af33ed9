"""What ``GET /v1/photos/{id}`` says it serves: a photo's content type from its bytes."""

from __future__ import annotations

# what /v1/photos answers with, by the file's first bytes (a photo of an ingested format)
PHOTO_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/tiff", "image/webp", "image/heic",
               "image/x-portable-anymap", "application/octet-stream")


def media_type(data: bytes) -> str:
    """The content type of a photo's bytes, from its signature (never from the file name)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:2] == b"BM":
        return "image/bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
        return "image/heic"
    if data[:1] == b"P" and data[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6"):
        return "image/x-portable-anymap"
    return "application/octet-stream"
