"""Where Vigie keeps rebuildable files (models, embeddings): $VIGIE_CACHE_DIR or ~/.cache/vigie;
and how files are written whole."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("VIGIE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vigie"


def default_classifier_dir() -> Path:
    return cache_root() / "classifiers" / "default"


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write `content` (text as UTF-8) to `path` through a temporary file beside it, flushed
    to disk then renamed over: a reader never sees half a file, a crash or failed write leaves
    the old one (or none) in place, and concurrent writers each succeed whole."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
