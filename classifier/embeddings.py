"""Embedding cache: an encoder's vectors for a text are computed once per machine.

Keyed by the encoder's weights file hash, the max length and the text, in SQLite."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from classifier.encoder import Encoder


def weights_id(model_dir: Path) -> str:
    weights = Path(model_dir) / "model.safetensors"
    stat = weights.stat()
    # Size and mtime identify a file we wrote ourselves well enough and cost nothing; they
    # survive the rename that publishes a freshly trained model.
    config = (Path(model_dir) / "config.json").read_bytes()
    return hashlib.sha256(config + f":{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def embed(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        prefix = f"{weights_id(encoder.model_dir)}:{encoder.max_length}:"
        keys = [hashlib.sha256((prefix + t).encode("utf-8")).hexdigest() for t in texts]
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self.db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk).fetchall()
            )
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            vectors = encoder.embed([texts[i] for i in missing])
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                    [(keys[i], vectors[j].astype(np.float32).tobytes()) for j, i in enumerate(missing)],
                )
            for j, i in enumerate(missing):
                found[keys[i]] = vectors[j].astype(np.float32).tobytes()
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def close(self) -> None:
        self.db.close()
