"""Decode an image from untrusted bytes: Pillow's decompression-bomb limit kept (and its
warning zone refused too), EXIF orientation applied, converted to RGB."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from pipeline.media import MediaError

if TYPE_CHECKING:
    from PIL import Image


class ImageError(MediaError):
    """Raised by `open_image` for bytes that are no image Pillow can decode, or one whose
    declared size is over Pillow's decompression-bomb limit. One line; the caller records
    the media as undecodable and goes on."""


def open_image(data: bytes) -> Image.Image:
    """The image in `data` (its first frame), upright and in RGB. Transparent pixels are
    laid on white, as a viewer shows them. Raises `ImageError`."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that: both are
            # refused here, the warning's zone by the check below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                limit = Image.MAX_IMAGE_PIXELS
                if limit is not None and opened.width * opened.height > limit:
                    raise ImageError(
                        f"image refused as a decompression bomb: {opened.width}x{opened.height} pixels"
                        f" is over the limit of {limit:,}"
                    )
                opened.seek(0)
                opened.load()
                image = ImageOps.exif_transpose(opened) or opened
                return _rgb(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image refused as a decompression bomb: {_one_line(exc)}") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"not an image Pillow can read ({len(data):,} bytes)") from None
    # Pillow's decoders signal hostile or truncated data with many exception types
    # (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, ...).
    except Exception as exc:
        raise ImageError(f"image could not be decoded: {type(exc).__name__}: {_one_line(exc)}") from None


def _rgb(image: Image.Image) -> Image.Image:
    from PIL import Image

    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale down to 8 bits
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L").convert("RGB")
    return image.convert("RGB")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or "no details"
