"""Media of posts as evidence: downloaded through Vigie's HTTP client (`fetch`), typed from
their bytes (`sniff`), kept by SHA-256 (`files`), decoded safely (`images`), hashed with PDQ
to find reposted flyers (`pdq`) and read with Tesseract (`ocr`).

Pillow, numpy, pdqhash and tesserocr are imported inside the functions that need them, so
importing the package stays cheap.
"""

from vigie.errors import VigieError


class MediaError(VigieError):
    """Base class of the media library's errors; each subclass says who raises it."""
