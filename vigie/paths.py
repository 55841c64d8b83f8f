"""Where Vigie keeps rebuildable files (models, embeddings): $VIGIE_CACHE_DIR or ~/.cache/vigie."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("VIGIE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vigie"


def default_classifier_dir() -> Path:
    return cache_root() / "classifiers" / "default"


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, so a reader never sees half a
    file and a failed write leaves the old one in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
