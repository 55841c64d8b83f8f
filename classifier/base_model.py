"""Where the transformer comes from: a local directory, a hub id when online, or the
packaged build rebuilt from PyPI packages (the default, and the only offline-safe one)."""

from __future__ import annotations

import os
from pathlib import Path

from vigie.errors import VigieError

PACKAGED = "packaged"


def resolve_base_model(spec: str = PACKAGED) -> Path:
    if spec == PACKAGED:
        from classifier.model_build import build_base_model, default_model_dir

        return build_base_model(default_model_dir())
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise VigieError(f"base model {path}: no config.json; expected a transformers model directory")
        return path
    if path.exists() or spec.startswith((".", "/", "~")):
        raise VigieError(f"base model {spec}: not a directory")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise VigieError(
            f"base model {spec!r} is a hub id but HF_HUB_OFFLINE=1; use 'packaged' or a local directory"
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec))
    except Exception as exc:  # network, auth, unknown repo: all mean "not available here"
        raise VigieError(
            f"base model {spec!r} could not be fetched from the hub ({type(exc).__name__}); offline machines "
            "use base_model: packaged"
        ) from None
