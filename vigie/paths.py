"""Where Vigie keeps rebuildable files (models, embeddings): $VIGIE_CACHE_DIR or ~/.cache/vigie."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("VIGIE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vigie"


def default_classifier_dir() -> Path:
    return cache_root() / "classifiers" / "default"
