"""The review band: posts the classifier is unsure of keep their text, wait for an analyst
after the sure adverts, and can be confirmed like them; they link no channels, and point to
other sources only once confirmed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from classifier.metrics import choose_review_threshold, decide, three_way
from classifier.model import Prediction
from pipeline.discovery import find_candidates
from pipeline.enrich.process import process
from pipeline.refer.review import decide as review
from pipeline.refer.review import review_queue
from pipeline.stages import referral_candidates
from tests.support.hostile import hostile_post
from vigie.config import SourceConfig, StoreConfig, VigieConfig
from vigie.store import DECIDED, Store, analysis, outbox, queries

SURE = "Yacht Izmir to Italy 2500€, WhatsApp +90 536 741 22 90"
UNSURE = "Kids go free this week, ask the captain +44 7700 900123"
CLEAR = "Happy Eid to all our followers"


class Bands:
    """Scores each text by what it is, so each band gets one post."""

    def __init__(self) -> None:
        self.meta = {"fingerprint": "bands"}
        self.scores = {SURE: 0.97, UNSURE: 0.4, CLEAR: 0.02}

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        out = []
        for text in texts:
            score = self.scores[text]
            band = decide(score, 0.8, 0.3)
            out.append(Prediction("en", 1.0, score, band == "advert", [], band))
        return out


def test_bands_from_scores():
    assert [decide(s, 0.8, 0.3) for s in (0.9, 0.8, 0.5, 0.3, 0.1)] == [
        "advert",
        "advert",
        "review",
        "review",
        "not_advert",
    ]
    labels = [1, 1, 1, 1, 0, 0, 1, 0]
    scores = [0.99, 0.9, 0.7, 0.4, 0.35, 0.2, 0.1, 0.05]
    # 5 adverts: finding 4 of 5 (0.8) needs the band down to the 4th advert's score, 0.4.
    assert choose_review_threshold(labels, scores, 0.8, ceiling=0.95) == 0.4
    assert choose_review_threshold(labels, scores, 0.8, ceiling=0.3) == 0.3  # never above the advert band
    band = three_way([{"label": y, "score": s} for y, s in zip(labels, scores, strict=True)], 0.8, 0.3)
    assert band["advert_band_precision"] == 1.0 and band["recall_with_review"] == 0.8
    assert band["review_adverts"] == 2 and band["review_others"] == 1


def test_review_band_posts_wait_after_the_adverts_and_can_be_confirmed(tmp_path: Path):
    with Store(tmp_path / "vigie.db") as store:
        store.upsert_posts([hostile_post(n, text) for n, text in enumerate((CLEAR, UNSURE, SURE), 1)])
        report = process(store, Bands(), keep_text=False)  # type: ignore[arg-type]
        assert (report.processed, report.flagged, report.for_review, report.minimised) == (3, 1, 1, 1)
        texts = {r["post_id"]: r["text"] for r in store.posts()}
        assert texts == {"1": "", "2": UNSURE, "3": SURE}  # the review band keeps its text
        contacts = {c for n in (1, 2, 3) for c in analysis.contacts_of(store, f"telegram:hostile_chan:{n}")}
        assert contacts == {"+905367412290"}  # only sure adverts link channels

        queue = review_queue(store)
        assert [(g["band"], g["example"]) for g in queue] == [("advert", SURE), ("review", UNSURE)]
        keys = review(store, queue[1]["target"], "confirmed", "captain's number, price on request", "ana")
        assert keys == ["telegram:hostile_chan:2"]
        assert [g["band"] for g in review_queue(store)] == ["advert"]


def test_a_new_model_never_wipes_what_an_analyst_confirmed(tmp_path: Path):
    with Store(tmp_path / "vigie.db") as store:
        store.upsert_posts([hostile_post(n, text) for n, text in enumerate((CLEAR, UNSURE, SURE), 1)])
        process(store, Bands(), keep_text=False)  # type: ignore[arg-type]
        review(store, "telegram:hostile_chan:2", "confirmed", "captain's number", "ana")
        harsher = Bands()
        harsher.meta = {"fingerprint": "harsher"}
        harsher.scores[UNSURE] = 0.01  # the next model thinks it is nothing
        # The minimised post is not redone; the two whose text was kept are.
        assert process(store, harsher, keep_text=False).processed == 2  # type: ignore[arg-type]
        post = next(p for p in store.posts() if p["post_id"] == "2")
        (row,) = [r for r in outbox.index_candidates(store) if r["key"] == "telegram:hostile_chan:2"]
        assert (post["text"], post["minimised"]) == (UNSURE, 0)
        assert (row["is_advert"], row["needs_review"], row["model_id"]) == (0, 1, "harsher")


def test_discovery_counts_what_the_analyst_decided_over_the_score(tmp_path: Path):
    """A review-band post's pointers count once an analyst confirms it; a rejected advert's stop."""
    unsure, sure = (
        "Kids go free this week, ask @boat_captain_uk",
        "Yacht Izmir to Italy 2500€, book @yacht_izmir_tr",
    )
    bands = Bands()
    bands.scores |= {unsure: 0.4, sure: 0.97}
    config = VigieConfig(sources=[SourceConfig(platform="telegram", channel="hostile_chan")])
    with Store(tmp_path / "vigie.db") as store:
        store.upsert_posts([hostile_post(n, text) for n, text in enumerate((CLEAR, unsure, sure), 1)])
        process(store, bands, keep_text=False)  # type: ignore[arg-type]

        def found() -> dict[str, float]:
            return {c.key: c.score for c in find_candidates(config, store)}

        assert found() == {"telegram:yacht_izmir_tr": 3}
        review(store, "telegram:hostile_chan:2", "confirmed", "captain's contact, a crossing", "ana")
        assert found() == {"telegram:yacht_izmir_tr": 3, "telegram:boat_captain_uk": 3}
        review(store, "telegram:hostile_chan:3", "rejected", "a tour operator's yacht charter", "bo")
        assert found() == {"telegram:boat_captain_uk": 3}


def test_referral_candidates_leave_out_what_an_analyst_rejected(tmp_path: Path):
    config = VigieConfig(store=StoreConfig(path=str(tmp_path / "vigie.db")))
    out = tmp_path / "referral-candidates.json"

    def candidates() -> list[list[str]]:
        referral_candidates(config, out)
        clusters = [c["urls"] for c in json.loads(out.read_text("utf-8"))["clusters"]]
        # The rule in Python (`is_flagged`) and the one in SQL (`flagged_clause`) agree.
        with Store(config.store_url()) as store:
            assert queries.count_flagged(store, DECIDED) == sum(map(len, clusters))
        return clusters

    with Store(config.store_url()) as store:
        store.upsert_posts([hostile_post(n, text) for n, text in enumerate((CLEAR, UNSURE, SURE), 1)])
        process(store, Bands(), keep_text=False)  # type: ignore[arg-type]
    assert candidates() == [["https://t.me/hostile_chan/3"]]  # the review band waits
    with Store(config.store_url()) as store:
        review(store, "telegram:hostile_chan:2", "confirmed", "captain's number", "ana")
        review(store, "telegram:hostile_chan:3", "rejected", "a tour operator's yacht charter", "bo")
    assert candidates() == [["https://t.me/hostile_chan/2"]]
