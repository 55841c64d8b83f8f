"""PDQ perceptual hashes (Meta's 256-bit image hash, through the `pdqhash` bindings): a
flyer re-encoded, resized or cropped by a repost keeps a hash within a few dozen bits of
the original, so reposts are found by Hamming distance.

The hex form is the reference implementation's (Hash256::format: the sixteen 16-bit words
w[15] ... w[0], so bit 255 first); `pdqhash.compute` returns the bits in that order too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.media import MediaError

if TYPE_CHECKING:
    from PIL import Image

# Set on the test flyers (tests/support/flyers.py: 40 flyers, 10 languages x 4 designs, and
# 3 unrelated images; `python -m bench.media_throughput` measures it again):
#   same flyer re-encoded at JPEG quality 40, resized to 50%, or both: at most 8 bits apart;
#   different flyers: at least 38 bits apart (34 from a re-encoded copy of another flyer),
#   the closest being one Sorani text in two colour schemes.
# 22 leaves a margin of 14 bits above the one and 12 below the other. A 5% crop is NOT
# covered: PDQ moves 90-96 bits on these text flyers (as far as unrelated images), so a
# cropped repost is matched by its OCR text (phone numbers), not by its hash.
DEFAULT_DISTANCE = 22
# Below this PDQ quality (0-100) the image is too flat (a solid colour, mostly blank) for
# its hash to mean much: Meta's guidance is to ignore matches of such hashes.
MIN_QUALITY = 50
# Hashes within SEGMENT_COUNT - 1 bits of each other share at least one segment (for
# DEFAULT_DISTANCE = 22 bits flipped at random, 16 segments miss about 0.35% of pairs;
# 32 would miss none but make about 12% of all hashes candidates instead of 0.02%).
SEGMENT_COUNT = 16
HASH_BITS = 256
_HEX = re.compile(r"[0-9a-f]{64}")
# Every image is resized to this square before hashing. PDQ reduces to 64x64 itself, but
# its reduction of a 400-px and an 800-px copy of one flyer differ by up to 44 bits; from
# one fixed size (Lanczos) they differ by at most 8, and hashing a 4000x3000 photo is fast.
_HASH_SIDE = 512


class PdqError(MediaError):
    """Raised by `hamming` and `segments` for a string that is not 64 hex characters (a
    PDQ hash), and by `pdq_hash` for an empty image."""


@dataclass(frozen=True, slots=True)
class PdqHash:
    hex: str  # 64 lower-case hex characters
    quality: int  # 0-100: how much structure the image has (see MIN_QUALITY)


def pdq_hash(image: Image.Image) -> PdqHash:
    """The PDQ hash of `image` (any mode), computed on a 512x512 resize of it."""
    import numpy as np
    import pdqhash
    from PIL import Image

    if image.width < 1 or image.height < 1:
        raise PdqError(f"cannot hash an empty image ({image.width}x{image.height})")
    rgb = image.convert("RGB").resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS)
    bits, quality = pdqhash.compute(np.asarray(rgb, dtype=np.uint8))
    return PdqHash(np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality))


def _checked(hex_: str) -> str:
    lowered = hex_.lower() if isinstance(hex_, str) else ""
    if not _HEX.fullmatch(lowered):
        raise PdqError(f"not a PDQ hash (64 hex characters): {repr(hex_)[:80]}")
    return lowered


def hamming(a_hex: str, b_hex: str) -> int:
    """How many of the 256 bits differ between two PDQ hashes."""
    return (int(_checked(a_hex), 16) ^ int(_checked(b_hex), 16)).bit_count()


def segments(hex_: str, count: int = SEGMENT_COUNT) -> list[str]:
    """The hash cut into `count` equal pieces, each tagged with its position ("0:ab12",
    "1:..."): two hashes within `count` - 1 bits share at least one piece (pigeonhole),
    so an exact-term search on the pieces finds every candidate, and Hamming distance on
    the candidates decides. `count` is 8, 16, 32 or 64."""
    if count not in (8, 16, 32, 64):
        raise PdqError(f"segment count must be 8, 16, 32 or 64, not {count}")
    checked = _checked(hex_)
    width = 64 // count
    return [f"{n}:{checked[n * width : (n + 1) * width]}" for n in range(count)]
