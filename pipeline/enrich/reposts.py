"""Reposts: the same advert posted across channels, exactly or lightly edited.

Texts (a post's own, with the text read in its images) become MinHash signatures of
character 5-grams; an LSH index finds candidates. Images match by PDQ hash: within
`media.pdq_distance` bits, the same flyer re-encoded or resized (a crop moves the hash as
far as another image; a cropped repost matches by the text read in it). A post joins the
cluster of the posts it resembles either way. Cluster ids are stable: a cluster keeps the id
it was born with, and when two clusters meet, the older id wins.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from classifier.normalize import normalize
from pipeline.media.pdq import DEFAULT_DISTANCE
from vigie.store import analysis
from vigie.store import media as stored_media
from vigie.store.queries import channels_sharing_contacts

__all__ = ["RepostIndex", "channels_sharing_contacts", "new_cluster_id", "shingles", "signature"]

if TYPE_CHECKING:
    from datasketch import MinHash, MinHashLSH

    from vigie.store import Store

NUM_PERM = 128
THRESHOLD = 0.5  # estimated Jaccard similarity of 5-gram sets that makes two posts copies
_SEED = 7
_SCHEME = "affine32"  # pinned: stored signatures must be comparable across datasketch versions


def shingles(text: str, n: int = 5) -> set[bytes]:
    flat = re.sub(r"\s+", " ", normalize(text).lower()).strip()
    if len(flat) <= n:
        return {flat.encode("utf-8")} if flat else set()
    return {flat[i : i + n].encode("utf-8") for i in range(len(flat) - n + 1)}


def signature(text: str) -> MinHash:
    from datasketch import MinHash

    mh = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME)
    mh.update_batch(list(shingles(text)))
    return mh


def _from_bytes(blob: bytes) -> MinHash:
    import numpy as np
    from datasketch import MinHash

    values = np.frombuffer(blob, dtype=np.uint64).copy()
    return MinHash(num_perm=NUM_PERM, seed=_SEED, hashvalues=values, scheme=_SCHEME)


def new_cluster_id(post_key: str) -> str:
    return "cl-" + hashlib.sha256(post_key.encode("utf-8")).hexdigest()[:16]


class RepostIndex:
    """The LSH index over stored signatures, kept in the store's `signatures` table."""

    def __init__(self, store: Store, pdq_distance: int = DEFAULT_DISTANCE) -> None:
        from datasketch import MinHashLSH

        self.store = store
        self.images = ImageIndex(pdq_distance)
        for post_key, _cluster, pdq in stored_media.clustered_hashes(store):
            self.images.add(post_key, pdq)
        self.lsh: MinHashLSH = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        self.signatures: dict[str, MinHash] = {}
        self.cluster_of: dict[str, str] = {}
        for post_key, cluster_id, minhash in analysis.all_signatures(store):
            mh = _from_bytes(minhash)
            self.signatures[post_key] = mh
            self.cluster_of[post_key] = cluster_id
            self.lsh.insert(post_key, mh)

    def assign(self, post_key: str, text: str, pdqs: list[str] | None = None) -> str:
        """Put a post in its cluster (or a new one) and return the cluster id; call inside
        the caller's transaction."""
        mh = signature(text)
        if post_key in self.signatures:
            self.lsh.remove(post_key)
        matches = [
            k for k in self.lsh.query(mh) if k != post_key and self.signatures[k].jaccard(mh) >= THRESHOLD
        ]
        matches += [k for k in self.images.near(pdqs or []) if k != post_key and k in self.cluster_of]
        clusters = sorted({self.cluster_of[k] for k in matches}, key=self._age)
        cluster = clusters[0] if clusters else self.cluster_of.get(post_key) or new_cluster_id(post_key)
        for other in clusters[1:]:  # this post bridges clusters: they become one
            for key, cid in list(self.cluster_of.items()):
                if cid == other:
                    self.cluster_of[key] = cluster
            analysis.merge_clusters(self.store, cluster, other)
        self.signatures[post_key] = mh
        self.cluster_of[post_key] = cluster
        self.lsh.insert(post_key, mh)
        for pdq in pdqs or []:
            self.images.add(post_key, pdq)
        analysis.save_signature(self.store, post_key, cluster, mh.hashvalues.astype("uint64").tobytes())
        return cluster

    def catch_up(self, store: Store) -> None:
        """Bring the index in line with the signatures other processes stored since it loaded
        (new ones, forgotten ones, and clusters merged); call inside the saving transaction,
        under the store's repost lock."""
        stored = analysis.signature_clusters(store)
        for key in [k for k in self.signatures if k not in stored]:
            self.lsh.remove(key)
            del self.signatures[key]
            self.cluster_of.pop(key, None)
        new = [k for k in stored if k not in self.signatures]
        for key, cluster in stored.items():
            if key in self.cluster_of:
                self.cluster_of[key] = cluster
        for key, cluster, blob in analysis.signatures_of(store, new):
            minhash = _from_bytes(blob)
            self.signatures[key] = minhash
            self.cluster_of[key] = cluster
            self.lsh.insert(key, minhash)
        for key, pdqs in stored_media.image_hashes(store, new).items():
            for pdq in pdqs:
                self.images.add(key, pdq)

    def _age(self, cluster_id: str) -> tuple[str, str]:
        # The cluster whose first post was stored earliest is the older one.
        return (analysis.cluster_first_seen(self.store, cluster_id) or "9999", cluster_id)


class ImageIndex:
    """PDQ hashes of clustered posts' images, compared all at once (256-bit XOR and popcount
    over a numpy matrix: a million images take a fraction of a second)."""

    def __init__(self, distance: int) -> None:
        self.distance = distance
        self.keys: list[str] = []
        self._rows: list[bytes] = []
        self._matrix: Any = None

    def add(self, post_key: str, pdq_hex: str) -> None:
        self.keys.append(post_key)
        self._rows.append(bytes.fromhex(pdq_hex))
        self._matrix = None

    def near(self, pdqs: list[str]) -> list[str]:
        """Posts with an image within `distance` bits of any of `pdqs`."""
        import numpy as np

        if not pdqs or not self.keys:
            return []
        if self._matrix is None:
            self._matrix = np.frombuffer(b"".join(self._rows), dtype=np.uint8).reshape(-1, 32)
        found: set[str] = set()
        for pdq in pdqs:
            query = np.frombuffer(bytes.fromhex(pdq), dtype=np.uint8)
            bits = np.unpackbits(np.bitwise_xor(self._matrix, query), axis=1).sum(axis=1)
            found.update(self.keys[i] for i in np.flatnonzero(bits <= self.distance))
        return sorted(found)
