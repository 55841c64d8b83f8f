"""A SQLite file of vectors by key: the encoder's embedding cache. Not the store: nothing
in it needs keeping, so it has no migrations; a lost or stale file is just recomputed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import select

from vigie.store import engine as engines
from vigie.store.portable import upsert_many
from vigie.store.schema import cache_metadata, embeddings

_CHUNK = 500  # keys per lookup: SQLite caps the number of parameters of a statement


class VectorCache:
    def __init__(self, path: Path) -> None:
        self.engine = engines.connect(engines.locate(path), read_only=False)
        cache_metadata.create_all(self.engine)

    def find(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors of those `keys` that have one."""
        found: dict[str, bytes] = {}
        with self.engine.connect().execution_options(**{engines.READ_ONLY_OPTION: True}) as connection:
            for start in range(0, len(keys), _CHUNK):
                query = select(embeddings.c.key, embeddings.c.vec).where(
                    embeddings.c.key.in_(keys[start : start + _CHUNK])
                )
                found.update((row.key, bytes(row.vec)) for row in connection.execute(query))
        return found

    def keep(self, vectors: Iterable[tuple[str, bytes]]) -> None:
        rows = [{"key": key, "vec": vec} for key, vec in vectors]
        with self.engine.begin() as connection:
            upsert_many(connection, embeddings, rows, keys=["key"])

    def close(self) -> None:
        self.engine.dispose()
