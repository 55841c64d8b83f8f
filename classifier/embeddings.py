"""Embedding cache: an encoder's vectors for a text are computed once per machine.

Keyed by the encoder's weights file hash, the max length and the text, in a SQLite file
(`vigie.store.vector_cache`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from classifier.encoding import weights_id

if TYPE_CHECKING:
    import numpy as np

    from classifier.encoding import TextEncoder


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        from vigie.store.vector_cache import VectorCache

        self.vectors = VectorCache(path)

    def embed(self, encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        prefix = f"{weights_id(encoder.model_dir)}:{encoder.max_length}:"
        keys = [hashlib.sha256((prefix + t).encode("utf-8")).hexdigest() for t in texts]
        found = self.vectors.find(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            vectors = encoder.embed([texts[i] for i in missing])
            computed = {keys[i]: vectors[j].astype(np.float32).tobytes() for j, i in enumerate(missing)}
            self.vectors.keep(computed.items())
            found.update(computed)
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def close(self) -> None:
        self.vectors.close()
