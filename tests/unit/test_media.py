"""The media library without servers: content types from bytes, content-addressed files,
safe image decoding, PDQ hashes of the test flyers and their reposted variants."""

from __future__ import annotations

import gzip
import io
import itertools
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipeline.media import files, images, pdq, sniff
from pipeline.media.files import BadDigest, MediaFiles
from pipeline.media.images import ImageError, open_image
from pipeline.media.pdq import DEFAULT_DISTANCE, PdqError, hamming, pdq_hash, segments
from tests.support.flyers import LANGS, render_flyer, unrelated_images, variants


def _encoded(fmt: str, mode: str = "RGB", size: tuple[int, int] = (40, 30), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode != "1" else 1).save(out, fmt, **options)
    return out.getvalue()


# --- sniff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("PDF", "application/pdf"),
        ("ICO", "image/vnd.microsoft.icon"),
    ],
)
def test_sniff_knows_what_pillow_writes(fmt: str, expected: str) -> None:
    assert sniff.sniff(_encoded(fmt)) == expected


def test_sniff_reads_containers_by_their_inner_marks() -> None:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isommp41"
    assert sniff.sniff(ftyp + b"\x00" * 32) == "video/mp4"
    assert sniff.sniff(struct.pack(">I", 20) + b"ftypqt  " + b"\x00" * 40) == "video/quicktime"
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82"
    assert sniff.sniff(ebml + b"\x84webm" + b"\x00" * 8) == "video/webm"
    assert sniff.sniff(ebml + b"\x88matroska" + b"\x00" * 8) == "video/x-matroska"
    assert sniff.sniff(b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead\x01\x02") == "audio/ogg"
    assert sniff.sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00") == "audio/mpeg"
    assert sniff.sniff(b"\xff\xfb\x90\x64" + b"\x00" * 100) == "audio/mpeg"
    # Telegram's animated stickers (.tgs) are gzipped Lottie JSON.
    assert sniff.sniff(gzip.compress(b'{"v":"5.5.2","fr":60}')) == "application/gzip"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x")
    assert sniff.sniff(archive.getvalue()) == "application/zip"


def test_sniff_ignores_what_the_bytes_do_not_say() -> None:
    assert sniff.sniff(b"") is None
    assert sniff.sniff(b"<html><body>not an image</body></html>") is None
    assert sniff.sniff(os.urandom(0) + b"\x00\x01\x02garbage" * 10) is None
    assert sniff.sniff(b"RIFF\x00\x00") is None  # a RIFF header cut before its form type
    assert sniff.sniff(b"\xff\xd8") is None  # two bytes of a JPEG marker are not a JPEG
    # A truncated file still starts like its type: sniffing names it, decoding refuses it.
    assert sniff.sniff(_encoded("PNG")[:20]) == "image/png"


# --- MediaFiles -------------------------------------------------------------------------------


def test_put_is_content_addressed_atomic_and_idempotent(tmp_path: Path) -> None:
    store = MediaFiles(tmp_path / "media")
    data = _encoded("PNG")
    sha = store.put(data)
    assert sha == files.sha256_hex(data) and len(sha) == 64
    path = store.path(sha)
    assert path == tmp_path / "media" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data and store.has(sha) and store.read(sha) == data
    before = path.stat().st_mtime_ns
    assert store.put(data) == sha
    assert path.stat().st_mtime_ns == before  # not rewritten
    assert [p.name for p in path.parent.iterdir()] == [sha]  # no temporary file left behind
    other = store.put(b"other bytes")
    assert other != sha and store.has(other)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "a" * 63,
        "A" * 64,
        "g" * 64,
        "ab/" + "c" * 61,
        "",
        "a" * 64 + "\n",
        "0" * 64 + "/..",
    ],
)
def test_a_name_that_is_not_a_sha256_is_refused(tmp_path: Path, bad: str) -> None:
    store = MediaFiles(tmp_path)
    for call in (store.path, store.has, store.delete):
        with pytest.raises(BadDigest, match="not a SHA-256 digest"):
            call(bad)


def test_delete_removes_the_file_and_its_empty_folders(tmp_path: Path) -> None:
    store = MediaFiles(tmp_path)
    sha = store.put(b"evidence")
    assert store.delete(sha) is True
    assert not store.has(sha) and list(tmp_path.iterdir()) == []
    assert store.delete(sha) is False


def test_older_than_lists_files_past_retention(tmp_path: Path) -> None:
    store = MediaFiles(tmp_path)
    old, new = store.put(b"old flyer"), store.put(b"new flyer")
    long_ago = time.time() - 10 * 86400
    os.utime(store.path(old), (long_ago, long_ago))
    (tmp_path / "stray.txt").write_text("not media")  # ignored: not a stored file
    assert store.older_than(5 * 86400) == [old]
    assert store.older_than(0) == sorted([old, new])
    assert MediaFiles(tmp_path / "missing").older_than(0) == []


# --- open_image -------------------------------------------------------------------------------


def test_open_image_gives_upright_rgb() -> None:
    image = Image.new("RGB", (60, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to show
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    opened = open_image(out.getvalue())
    assert opened.mode == "RGB" and opened.size == (20, 60)
    transparent = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(transparent, "PNG")
    assert open_image(transparent.getvalue()).getpixel((5, 5)) == (255, 255, 255)
    for mode in ("L", "P", "CMYK", "I;16", "1"):
        fmt = "TIFF" if mode == "CMYK" else "PNG"
        assert open_image(_encoded(fmt, mode)).mode == "RGB"


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height, with one tiny compressed row."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None
    side = int((limit * 1.5) ** 0.5)  # in Pillow's warning zone
    for data in (_png_declaring(side, side), _png_declaring(100_000, 100_000)):
        start = time.perf_counter()
        with pytest.raises(ImageError, match="decompression bomb") as caught:
            open_image(data)
        assert time.perf_counter() - start < 2
        assert "\n" not in str(caught.value)
    assert limit == Image.MAX_IMAGE_PIXELS  # the limit is kept


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage" * 100,
        _encoded("PNG")[:60],
        _encoded("JPEG")[:200],
        b"GIF89a" + b"\x00" * 30,
        os.urandom(2048),
    ],
)
def test_undecodable_data_raises_a_one_line_image_error(data: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        open_image(data)
    assert "\n" not in str(caught.value) and str(caught.value)
    assert isinstance(caught.value, images.MediaError)


# --- PDQ --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flyer_hashes() -> dict[str, tuple[pdq.PdqHash, dict[str, pdq.PdqHash]]]:
    """Each test flyer's hash and the hashes of its variants, decoded as a repost would be."""
    pictures = {f"{lang}/{seed}": render_flyer(lang, seed=seed) for lang in LANGS for seed in range(4)}
    pictures.update(unrelated_images())
    return {
        name: (pdq_hash(image), {v: pdq_hash(open_image(data)) for v, data in variants(image).items()})
        for name, image in pictures.items()
    }


def test_pdq_hash_is_256_bits_with_a_quality() -> None:
    hashed = pdq_hash(render_flyer("en"))
    assert len(hashed.hex) == 64 and int(hashed.hex, 16) > 0 and 0 <= hashed.quality <= 100
    assert hashed.quality >= pdq.MIN_QUALITY
    assert pdq_hash(Image.new("RGB", (300, 300), "white")).quality < pdq.MIN_QUALITY
    # PDQ hashes luminance: the grey copy of a flyer is the same flyer.
    assert hamming(pdq_hash(render_flyer("en").convert("L")).hex, hashed.hex) <= DEFAULT_DISTANCE


def test_reposted_variants_stay_within_the_default_distance(flyer_hashes: dict) -> None:
    for name, (original, hashed_variants) in flyer_hashes.items():
        for variant, hashed in hashed_variants.items():
            if "crop" in variant:
                continue  # PDQ does not survive crops of text flyers: see pdq.DEFAULT_DISTANCE
            assert hamming(original.hex, hashed.hex) <= DEFAULT_DISTANCE, (name, variant)


def test_different_flyers_are_beyond_the_default_distance(flyer_hashes: dict) -> None:
    for (a, (hash_a, variants_a)), (b, (hash_b, _)) in itertools.combinations(flyer_hashes.items(), 2):
        assert hamming(hash_a.hex, hash_b.hex) > DEFAULT_DISTANCE, (a, b)
        for variant, hashed in variants_a.items():
            assert hamming(hashed.hex, hash_b.hex) > DEFAULT_DISTANCE, (a, variant, b)


def test_hamming_checks_its_input() -> None:
    a = "0" * 64
    assert hamming(a, a) == 0 and hamming(a, "f" * 64) == 256 and hamming(a, "8" + "0" * 63) == 1
    assert hamming("AB" * 32, "ab" * 32) == 0
    for bad in ("0" * 63, "z" * 64, "", "0" * 65):
        with pytest.raises(PdqError, match="not a PDQ hash"):
            hamming(a, bad)


_hashes = st.integers(min_value=0, max_value=2**256 - 1).map(lambda n: f"{n:064x}")


@given(_hashes, st.sets(st.integers(min_value=0, max_value=255), max_size=pdq.SEGMENT_COUNT - 1))
def test_hashes_within_segment_count_minus_one_bits_share_a_segment(hex_: str, flipped: set[int]) -> None:
    other = f"{int(hex_, 16) ^ sum(1 << bit for bit in flipped):064x}"
    assert hamming(hex_, other) == len(flipped)
    assert set(segments(hex_)) & set(segments(other))


@given(_hashes)
def test_segments_are_positioned_pieces_of_the_hash(hex_: str) -> None:
    pieces = segments(hex_)
    assert len(pieces) == pdq.SEGMENT_COUNT
    assert [p.split(":")[0] for p in pieces] == [str(n) for n in range(pdq.SEGMENT_COUNT)]
    assert "".join(p.split(":")[1] for p in pieces) == hex_
    assert len(segments(hex_, 32)) == 32
    with pytest.raises(PdqError):
        segments(hex_, 10)


def test_a_file_is_written_whole_or_the_old_one_stays(tmp_path, monkeypatch):
    from vigie.paths import write_atomically

    target = tmp_path / "deep" / "export.json"
    write_atomically(target, "première\n")
    assert target.read_bytes() == "première\n".encode()
    write_atomically(target, b"\x00\xffbytes")
    assert target.read_bytes() == b"\x00\xffbytes"

    def refuse(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, "new")
    assert target.read_bytes() == b"\x00\xffbytes"
    assert sorted(p.name for p in target.parent.iterdir()) == ["export.json"]  # no temporary left
