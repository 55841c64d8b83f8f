"""Media files kept by content: the SHA-256 of the bytes is the name, so a flyer reposted
by a hundred channels is stored once, and a file's name proves its content. One local
directory today (root/ab/cd/abcd…); the interface would fit an object store later."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from pipeline.media import MediaError
from vigie.paths import write_atomically

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BadDigest(MediaError):
    """Raised by `MediaFiles` for a name that is not 64 lower-case hex characters: it is
    refused before any path is built from it (no traversal out of the media root)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MediaFiles:
    """Content-addressed files under `root`. Writes are atomic (a temporary file in the
    same directory, flushed, then renamed over), so a crash leaves either the whole file
    or nothing, and concurrent writers of the same content both succeed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put(self, data: bytes) -> str:
        """Store `data`; its SHA-256 in hex. Storing the same bytes again does nothing."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if target.is_file():
            return sha
        write_atomically(target, data)
        return sha

    def path(self, sha: str) -> Path:
        """Where the file of `sha` is (or would be): root/ab/cd/abcd…"""
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            shown = repr(sha)[:80]
            raise BadDigest(f"not a SHA-256 digest (64 lower-case hex characters): {shown}")
        return self.root / sha[:2] / sha[2:4] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def read(self, sha: str) -> bytes:
        """The bytes of `sha`; FileNotFoundError when it is not stored."""
        return self.path(sha).read_bytes()

    def delete(self, sha: str) -> bool:
        """Remove the file of `sha`; whether there was one. Emptied fan-out folders go too."""
        target = self.path(sha)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        for folder in (target.parent, target.parent.parent):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone)
                break
        return True

    def older_than(self, seconds: float) -> list[str]:
        """The digests of files last written more than `seconds` ago (for retention), sorted."""
        cutoff = time.time() - seconds
        found = []
        for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            if _SHA256.fullmatch(path.name) and path.name.startswith(
                path.parent.parent.name + path.parent.name
            ):
                try:
                    if path.stat().st_mtime < cutoff:
                        found.append(path.name)
                except FileNotFoundError:  # deleted meanwhile
                    continue
        return sorted(found)
