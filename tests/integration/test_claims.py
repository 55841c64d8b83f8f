"""Classification claims: pending posts go into batches, never one post into two batches,
even with callers claiming at once; released batches give their posts back."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from vigie.records import Post
from vigie.store import Store, analysis, claims

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vigie.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


def _posts(n: int) -> list[Post]:
    return [
        Post("telegram", "chan", i, f"https://t.me/chan/{i}", f"post {i}", "2026-10-01T00:00:00+00:00")
        for i in range(1, n + 1)
    ]


def _analysed(store: Store, key: str, model: str) -> None:
    analysis.save_analysis(
        store,
        {
            "post_key": key,
            "content_sha256": next(p["content_sha256"] for p in store.posts() if p["key"] == key),
            "model_id": model,
            "lang": "en",
            "lang_confidence": 0.9,
            "score": 0.1,
            "is_advert": 0,
            "needs_review": 0,
            "cues": "[]",
            "entities": "{}",
            "cluster_id": None,
            "processed_at": "2026-10-01T00:00:00+00:00",
        },
    )


def test_pending_posts_go_into_batches_in_id_order_once(store_url):
    with Store(store_url) as store:
        store.upsert_posts(_posts(12))
        _analysed(store, "telegram:chan:3", "m")  # analysed by this model: not pending
        first = claims.claim_pending(store, "m", batch_size=4, max_batches=2)
        assert len(first) == 2
        assert claims.batch_keys(store, first[0]) == sorted(
            ["telegram:chan:1", "telegram:chan:2", "telegram:chan:4", "telegram:chan:5"]
        )
        # 10 and 11 come after 9 (number order), and a second claim skips what is held.
        rest = claims.claim_pending(store, "m", batch_size=4, max_batches=5)
        assert [claims.batch_keys(store, b) for b in rest] == [
            ["telegram:chan:10", "telegram:chan:11", "telegram:chan:12"]
        ]
        assert claims.claim_pending(store, "m", batch_size=4, max_batches=5) == []

        claims.release_batch(store, first[1])
        again = claims.claim_pending(store, "m", batch_size=10, max_batches=1)
        assert claims.batch_keys(store, again[0]) == sorted(
            ["telegram:chan:6", "telegram:chan:7", "telegram:chan:8", "telegram:chan:9"]
        )


def test_release_finished_keeps_only_the_active_batches(store_url):
    with Store(store_url) as store:
        store.upsert_posts(_posts(6))
        a, b, c = claims.claim_pending(store, "m", batch_size=2, max_batches=3)
        assert claims.release_finished(store, {b}) == 4
        assert claims.batch_keys(store, a) == claims.batch_keys(store, c) == []
        assert len(claims.batch_keys(store, b)) == 2
        assert claims.active_batches(store) == {b: 2}
        assert claims.release_finished(store, set()) == 2
        assert claims.active_batches(store) == {}


def test_release_finished_spares_claims_younger_than_the_cutoff(store_url):
    with Store(store_url) as store:
        store.upsert_posts(_posts(3))
        (batch,) = claims.claim_pending(store, "m", batch_size=3, max_batches=1)
        assert claims.release_finished(store, set(), claimed_before="2000-01-01T00:00:00+00:00") == 0
        assert claims.active_batches(store) == {batch: 3}
        assert claims.release_finished(store, set(), claimed_before="2999-01-01T00:00:00+00:00") == 3


@pytest.mark.postgres
def test_callers_claiming_at_once_never_share_a_post(fresh_pg_url):
    with Store(fresh_pg_url) as store:
        store.upsert_posts(_posts(400))
    got: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claim() -> None:
        try:
            with Store(fresh_pg_url) as mine:
                start.wait()
                for _ in range(10):
                    got.extend(claims.batch_keys(mine, b) for b in claims.claim_pending(mine, "m", 7, 3))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with Store(fresh_pg_url) as store:  # what the racing callers left
        got.extend(claims.batch_keys(store, b) for b in claims.claim_pending(store, "m", 400, 1))
    keys = [k for batch in got for k in batch]
    assert len(keys) == len(set(keys)) == 400
    with Store(fresh_pg_url) as store:
        assert sum(claims.active_batches(store).values()) == 400


ADVERT = "Yacht Izmir to Italy 2500€ this week, WhatsApp +90 536 741 22 90, safe captain"
OTHER = "Happy Eid to all our followers"


class Scripted:
    """Scores the advert sure and the rest clear; `hold` makes predict wait for an event (a
    worker still classifying while another saves)."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.meta = {"fingerprint": "m"}
        self.hold = hold

    def predict(self, texts: Any) -> list[Any]:
        from classifier.model import Prediction

        if self.hold is not None:
            assert self.hold.wait(30)
        return [
            Prediction(
                "en",
                1.0,
                0.97 if t == ADVERT else 0.02,
                t == ADVERT,
                [],
                "advert" if t == ADVERT else "not_advert",
            )
            for t in texts
        ]


def test_batches_saved_at_once_still_group_their_reposts(store_url):
    from pipeline.enrich.process import process

    posts = [
        Post("telegram", "one", 1, "https://t.me/one/1", ADVERT, "2026-10-01T00:00:00+00:00"),
        Post("telegram", "one", 2, "https://t.me/one/2", OTHER, "2026-10-01T00:00:00+00:00"),
        Post("telegram", "two", 1, "https://t.me/two/1", ADVERT, "2026-10-02T00:00:00+00:00"),
    ]
    with Store(store_url) as store:
        store.upsert_posts(posts)
    first, second = ["telegram:one:1", "telegram:one:2"], ["telegram:two:1"]
    saved, reports = threading.Event(), {}

    def slow() -> None:  # loads its repost index, then classifies while the other batch saves
        with Store(store_url) as mine:
            reports["first"] = process(mine, Scripted(hold=saved), keys=first)  # type: ignore[arg-type]

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    with Store(store_url) as store:
        reports["second"] = process(store, Scripted(), keys=second)  # type: ignore[arg-type]
    saved.set()
    thread.join()
    assert reports["first"].processed == 2 and reports["second"].processed == 1
    with Store(store_url) as store:
        clusters = analysis.signature_clusters(store)
        assert clusters["telegram:one:1"] == clusters["telegram:two:1"]  # one advert, reposted
        # A batch run again (a retried job) finds nothing left to classify.
        assert process(store, Scripted(), keys=first + second).processed == 0  # type: ignore[arg-type]


@pytest.mark.postgres
def test_the_repost_lock_is_waited_for_with_a_bound(fresh_pg_url):
    from sqlalchemy import text

    from vigie.store.cluster import LockWaitTimeout, advisory_key

    with Store(fresh_pg_url) as holder, Store(fresh_pg_url) as store:
        with holder.transaction() as c:  # a stuck process holds the lock
            c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(analysis.REPOST_LOCK)})
            began = time.monotonic()
            with pytest.raises(LockWaitTimeout, match="vigie:reposts"), store.transaction():
                analysis.hold_repost_lock(store, timeout_seconds=0.5)
            assert time.monotonic() - began < 5
        # Free again: taken at once, and the wait bound stays on that lock only.
        with store.transaction() as c:
            analysis.hold_repost_lock(store, timeout_seconds=0.5)
            assert c.execute(text("SELECT current_setting('lock_timeout')")).scalar_one() == "0"
