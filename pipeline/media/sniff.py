"""A file's content type from its first bytes (its magic number), never from a server's
Content-Type header or a file name: a server may lie, and evidence must say what it is."""

from __future__ import annotations

# (offset, magic bytes, content type), checked in order; the containers that need a
# second look (RIFF, ISO BMFF, EBML, Ogg, ZIP) are handled in `sniff` below.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
)
# ISO base media brands (ftyp box) → type. HEIF/AVIF stills and the video brands.
_FTYP_BRANDS = {
    b"qt  ": "video/quicktime",
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
}
_MP3_SYNC_LAYERS = (0xFA, 0xFB, 0xF2, 0xF3, 0xE2, 0xE3)  # MPEG-1/2/2.5 layer III frame headers


def sniff(data: bytes) -> str | None:
    """The MIME type `data` starts like, or None when it looks like nothing known.

    Telegram's animated stickers (.tgs) are gzipped Lottie JSON: they sniff as
    application/gzip; video stickers are WebM."""
    head = data[:64]
    for offset, magic, kind in _MAGIC:
        if head.startswith(magic, offset):
            return kind
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or its WebM profile
        # The header's DocType element (id 0x4282, 4 bytes long) names the profile.
        return "video/webm" if b"\x42\x82\x84webm" in data[:64] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "audio/ogg" if b"OpusHead" in data[:512] or b"\x01vorbis" in data[:512] else "application/ogg"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    if len(head) >= 2 and head[0] == 0xFF and head[1] in _MP3_SYNC_LAYERS:
        return "audio/mpeg"
    return None
