"""Bulk indexing into a local Elasticsearch node (docs/s), a generation migration's copy of
the same documents (docs/s, against the bulk rate), and the pipeline end to end
from stored pages to indexed documents (posts/s), with where the time goes.

Starts its own node from the Maven Central distribution (see tests/es_node.py).
Run from the repository root: .venv/bin/python -m bench.index_throughput"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from crawlers.telegram.mirror import load_channels
from crawlers.telegram.preview import parse_page
from pipeline.index.documents import count_indexed, sync
from pipeline.index.generations import migrate
from pipeline.index.template import setup
from tests.support.es_node import ElasticsearchNode
from vigie.config import ElasticsearchConfig
from vigie.records import Post
from vigie.store import Store, outbox


def synthetic_flagged(store: Store, n: int) -> None:
    """n stored, analysed, flagged posts shaped like real adverts."""
    samples = [p for ch in load_channels().values() for p in ch["posts"] if p["label"] == 1]
    posts = [
        Post(
            "telegram",
            f"bench_{i % 50}",
            i + 1,
            f"https://t.me/bench_{i % 50}/{i + 1}",
            samples[i % len(samples)]["text"] + f" #{i}",
            samples[i % len(samples)]["date"],
        )
        for i in range(n)
    ]
    store.upsert_posts(posts)
    entities = json.dumps(
        {
            "phones": ["+447700900412"],
            "contacts": ["+447700900412"],
            "places": ["tr-izmir", "it"],
            "origin": "tr-izmir",
            "destination": "it",
            "prices": [{"amount": 6500.0, "currency": "EUR", "text": "6500€"}],
        }
    )
    with store.transaction():
        store.db.executemany(
            "INSERT INTO analysis (post_key, content_sha256, model_id, lang, lang_confidence, score, is_advert, cues,"
            " entities, cluster_id, processed_at) SELECT key, content_sha256, 'bench', 'en', 0.9, 0.97, 1, '[]', ?,"
            " 'cl-bench', '2026-11-01T00:00:00+00:00' FROM posts WHERE key = ?",
            [(entities, p.key) for p in posts],
        )


def raw_bulk_rate(es: object, store: Store, config: ElasticsearchConfig) -> float:
    """docs/s of the cluster alone: the sync's documents built first, then indexed with
    nothing read or written in the store, into indices of their own (deleted after); the
    second of two runs, so that the sync after it meets a node as warm."""
    from elasticsearch.helpers import streaming_bulk

    from classifier.cues import gazetteer
    from pipeline.index.documents import build_doc
    from pipeline.index.template import index_for

    places = gazetteer()
    docs = [
        (row["published_at"], row["key"], build_doc(row, places)) for row in outbox.index_candidates(store)
    ]
    rate = 0.0
    for attempt in ("warm-up", "measured"):  # the node's JIT compiles its indexing path on the first
        raw = config.model_copy(update={"index_prefix": f"bench-raw-{attempt}"})
        setup(es, raw)  # type: ignore[arg-type]
        actions = (
            {"_op_type": "index", "_index": index_for(raw, published), "_id": key, "_source": doc}
            for published, key, doc in docs
        )
        start = time.perf_counter()
        for ok, item in streaming_bulk(es, actions, chunk_size=config.chunk_size):  # type: ignore[arg-type]
            assert ok, item
        rate = len(docs) / (time.perf_counter() - start)
        es.indices.delete(index=f"bench-raw-{attempt}-*")  # type: ignore[attr-defined]
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--e2e-posts", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = ElasticsearchNode(Path(tmp) / "es", heap="1g", fast_start=False)
        node.start()
        try:
            from elasticsearch import Elasticsearch

            from pipeline.index.client_json import SERIALIZERS

            # The serializers the CLI's client has; never the environment's cluster or credentials.
            es = Elasticsearch(node.url, serializers=SERIALIZERS, request_timeout=120)
            config = ElasticsearchConfig(chunk_size=1000)
            setup(es, config)
            with Store(Path(tmp) / "bulk.db") as store:
                synthetic_flagged(store, args.docs)
                print(
                    f"machine: {platform.machine()}; Elasticsearch {next(iter(es.nodes.info(node_id='_local')['nodes'].values()))['version']} (1 node, 1 shard)"
                )
                raw = raw_bulk_rate(es, store, config)
                start = time.perf_counter()
                report = sync(store, es, config)
                elapsed = time.perf_counter() - start
                assert count_indexed(es, config) == args.docs == report.indexed
                print(
                    f"bulk indexing: {args.docs} docs in {elapsed:.1f}s = {args.docs / elapsed:,.0f} docs/s "
                    f"(documents built from the store, sent, acknowledged in the store; chunks of "
                    f"{config.chunk_size}), {args.docs / elapsed / raw:.2f}x the baseline"
                )
                print(
                    f"baseline: the same documents, built beforehand, sent as plain index actions: {raw:,.0f} docs/s"
                )
                forgotten = outbox.forget_indexed(store)
                start = time.perf_counter()
                again = sync(store, es, config)
                resent = time.perf_counter() - start
                assert again.indexed == forgotten == args.docs and again.spooled == 0
                print(
                    f"re-sending after the store forgot what the index holds (each create refused, sent "
                    f"again as a partial update): {args.docs / resent:,.0f} docs/s, "
                    f"{args.docs / resent / raw:.2f}x the baseline"
                )
                resharded = config.model_copy(update={"shards": 2})
                start = time.perf_counter()
                migration = migrate(store, es, resharded)
                copying = time.perf_counter() - start
                assert count_indexed(es, resharded) == args.docs == sum(c.documents for c in migration.copies)
                print(
                    f"generation migration (1 -> 2 shards, {len(migration.copies)} months copied by scroll and bulk, "
                    f"indexing paused meanwhile): {args.docs} docs in {copying:.1f}s = "
                    f"{args.docs / copying:,.0f} docs/s, {elapsed / copying:.1f}x the bulk indexing rate"
                )
            if args.e2e_posts:
                e2e(args.e2e_posts, es, Path(tmp))
        finally:
            node.stop()


def e2e(n: int, es: object, tmp: Path) -> None:
    """Stored preview pages → parse → store → classify/entities/reposts → index."""
    from classifier.model import AdvertClassifier
    from crawlers.telegram.mirror import render_page
    from pipeline.enrich.process import process
    from vigie.paths import default_classifier_dir

    channels = load_channels()
    pages = []
    for name, ch in channels.items():
        ids = sorted(p["id"] for p in ch["posts"])
        for before in [None, *ids[::20][1:]]:
            pages.append((name, render_page(ch, before, 20)))
    clf = AdvertClassifier.load(default_classifier_dir())
    timings = {}
    with Store(tmp / "e2e.db") as store:
        start = time.perf_counter()
        posts: list[Post] = []
        rounds = 0
        while len(posts) < n:
            for name, html in pages:
                for post in parse_page(html, f"https://t.me/s/{name}").posts:
                    post.post_id = int(post.post_id) + rounds * 100_000  # distinct copies of the sample pages
                    post.channel = f"{name}_{rounds}"
                    posts.append(post)
            rounds += 1
        posts = posts[:n]
        store.upsert_posts(posts)
        timings["parse+store"] = time.perf_counter() - start
        start = time.perf_counter()
        report = process(store, clf)
        timings["classify+entities+reposts"] = time.perf_counter() - start
        start = time.perf_counter()
        indexed = sync(store, es, ElasticsearchConfig(index_prefix="bench-e2e"))  # type: ignore[arg-type]
        timings["index"] = time.perf_counter() - start
    total = sum(timings.values())
    print(
        f"end to end: {n} posts ({report.flagged} flagged, {indexed.indexed} indexed) in {total:.1f}s = "
        f"{n / total:,.0f} posts/s; "
        + ", ".join(f"{k} {v:.1f}s ({v / total:.0%})" for k, v in timings.items())
    )


if __name__ == "__main__":
    main()
