"""Network computation at scale: synthetic flagged posts (sources in small groups sharing
phones, handles and flyers, and a few contacts shared far and wide) and their images, PDQ
hashes near one another within each flyer. Prints the time to compute the networks from
those rows (the store's reads are replaced by the rows, so this is the computation alone)
and the image grouping against every pair compared, in the same run.

Run from the repository root: .venv/bin/python -m bench.networks [--posts 20000 --images 5000]"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any
from unittest import mock

import numpy as np

from pipeline.intel import networks as intel
from vigie.config_file import parse_config


def _near(rng: random.Random, value: int, bits: int) -> int:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value


def synthetic(posts: int, images: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    sources = max(posts // 5, 2)
    rows = []
    for n in range(posts):
        source = rng.randrange(sources)
        group = source // 4  # four sources to a group share its contacts
        phones = [f"+4477009{group:05d}"[:13]] if rng.random() < 0.6 else []
        if rng.random() < 0.01:
            phones.append("+33486517161")  # a number in far too many sources to link any
        rows.append(
            {
                "key": f"telegram:s{source}:{n}",
                "platform": "telegram",
                "channel": f"s{source}",
                "url": f"https://t.me/s{source}/{n}",
                "text": "Boat from Dunkirk to UK £1,500",
                "ocr_text": None,
                "published_at": f"2026-{7 + n * 5 // posts:02d}-{1 + n % 28:02d}T10:00:00+00:00",
                "seen_at": f"2026-{7 + n * 5 // posts:02d}-{1 + n % 28:02d}T10:00:00+00:00",
                "lang": "en",
                "entities": {
                    "phones": phones,
                    "handles": [f"group_{group}"] if rng.random() < 0.3 else [],
                    "legs": [
                        {
                            "origin": "fr-dunkirk",
                            "destination": "gb",
                            "prices": [{"amount": 1500.0, "currency": "GBP"}],
                        }
                    ],
                    "payments": [],
                    "wallets": [],
                },
                "cluster_id": None,
                "referral_status": None,
                "referral_outcome": None,
            }
        )
    flyers = [rng.getrandbits(256) for _ in range(max(images // 5, 1))]
    found = []
    for n in range(images):
        row = rows[rng.randrange(len(rows))]
        value = _near(rng, rng.choice(flyers), rng.randrange(12))
        found.append({"post_key": row["key"], "sha256": f"{n:064x}", "pdq": f"{value:064x}"})
    return rows, found


def pairwise_groups(images: list[dict[str, Any]], distance: int) -> dict[str, set[str]]:
    """Every pair compared (numpy, one row against the rest): the grouping before."""
    from networkx.utils import UnionFind

    matrix = np.frombuffer(b"".join(bytes.fromhex(i["pdq"]) for i in images), dtype=np.uint8).reshape(-1, 32)
    sets = UnionFind(range(len(images)))
    for i in range(len(images)):
        bits = np.unpackbits(np.bitwise_xor(matrix[i + 1 :], matrix[i]), axis=1).sum(axis=1)
        for j in np.flatnonzero(bits <= distance):
            sets.union(i, i + 1 + int(j))
    return {
        images[min(members)]["sha256"]: {images[i]["post_key"] for i in members} for members in sets.to_sets()
    }


def _timed(work: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--images", type=int, default=5_000)
    args = parser.parse_args()
    config = parse_config({"data_dir": "/nonexistent", "networks": {"hotlines": ["+33 4 86 51 71 61"]}})
    distance = config.media.pdq_distance
    rows, images = synthetic(args.posts, args.images)
    images.sort(key=lambda i: (i["post_key"], i["sha256"]))
    with (
        mock.patch.object(intel.stored, "flagged_posts", return_value=rows),
        mock.patch.object(intel.stored, "flagged_images", return_value=images),
        mock.patch.object(intel.stored, "stored_networks", return_value=[]),
    ):
        computed, networks = _timed(lambda: intel.find_networks(None, config))  # type: ignore[arg-type]
    grouped, groups = _timed(lambda: intel.image_groups(images, distance))
    naive, expected = _timed(lambda: pairwise_groups(images, distance))
    assert groups == expected, "multi-index grouping disagrees with the pairwise one"
    print(f"{args.posts} flagged posts, {args.images} images, PDQ distance {distance}")
    print(f"networks computed: {len(networks)} in {computed:.2f} s")
    print(f"image groups: {len(groups)}; multi-index {grouped:.2f} s, pairwise {naive:.2f} s")
    print(f"pairwise / multi-index: {naive / grouped:.1f}x")


if __name__ == "__main__":
    main()
