"""The index path's JSON: orjson where it can, the standard library where orjson refuses, and
the same bytes for the same document wherever it is built."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import threading
from decimal import Decimal

import numpy as np
import pytest

from classifier.cues import gazetteer
from pipeline.enrich.entities import prices_in
from pipeline.index import documents
from pipeline.index.client_json import FastJsonSerializer
from pipeline.index.json_codec import canonical, loads
from pipeline.index.template import connect
from vigie.config import ElasticsearchConfig
from vigie.records import Post
from vigie.store import Store, analysis, outbox


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1, 2.5, None, True], "a": "سلام 🚤 \u202e", "c": {"z": 1, "y": []}},
        {"text": "lone \ud800 surrogate"},
        {"big": 2**70, "small": -(2**63)},
        {"nan": float("nan"), "inf": float("inf")},
    ],
)
def test_canonical_bytes_do_not_depend_on_key_order_and_survive_what_orjson_refuses(value):
    reordered = dict(reversed(list(value.items())))
    assert canonical(value) == canonical(reordered)
    text = canonical(value).decode("utf-8", "surrogatepass")
    assert set(json.loads(text)) == set(value)


def test_canonical_digest_changes_with_any_field():
    doc = {"key": "telegram:x:1", "score": 0.97, "cues": ["price"]}
    digests = {hashlib.sha256(canonical(doc)).hexdigest()}
    for change in ({"score": 0.96}, {"cues": ["price", "phone"]}, {"new": None}):
        digests.add(hashlib.sha256(canonical(doc | change)).hexdigest())
    assert len(digests) == 4


@pytest.mark.parametrize(
    ("stored", "empty", "expected"),
    [
        (None, [], []),
        ("", {}, {}),
        ('["#game", "🇬🇧"]', [], ["#game", "🇬🇧"]),
        ('{"amount": NaN}', {}, "nan"),
        # Longs as Elasticsearch holds them stay exact.
        ('{"id": 9223372036854775807, "min": -9223372036854775808}', {}, {"id": 2**63 - 1, "min": -(2**63)}),
    ],
)
def test_stored_columns_read_as_the_standard_library_reads_them(stored, empty, expected):
    value = loads(stored, empty)
    if expected == "nan":
        assert value["amount"] != value["amount"]
    else:
        assert value == expected


@pytest.mark.parametrize("fallback", [False, True], ids=["orjson", "standard library"])
def test_the_client_serializer_handles_what_documents_and_queries_hold(fallback):
    serializer = FastJsonSerializer()
    body = {
        "when": dt.datetime(2026, 12, 3, 18, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 12, 3),
        "price": Decimal("6500.50"),
        "vector": np.array([0.5, 1.0], dtype=np.float32),
        "count": np.int64(3),
        "text": "سلام 🚤",
    }
    if fallback:  # what orjson refuses sends the whole body through the standard library
        body |= {"bad": "half \udc80 surrogate", "huge": 2**70}
    back = json.loads(serializer.dumps(body).decode("utf-8", "surrogatepass"))
    assert back["when"] == "2026-12-03T18:00:00+00:00" and back["day"] == "2026-12-03"
    assert back["price"] == 6500.5 and back["vector"] == [0.5, 1.0] and back["count"] == 3
    assert back["text"] == "سلام 🚤"
    if fallback:
        assert back["bad"] == "half \udc80 surrogate" and back["huge"] == 2**70
    assert serializer.dumps('{"already": "json"}') == b'{"already": "json"}'
    assert serializer.loads(b"") is None
    nan = serializer.loads(b'{"a": NaN}')["a"]
    assert nan != nan


def test_connect_gives_every_json_mimetype_the_fast_serializer(monkeypatch):
    for name in ("VIGIE_ES_URL", "VIGIE_ES_API_KEY", "VIGIE_ES_USERNAME", "VIGIE_ES_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    es = connect(ElasticsearchConfig(url="http://127.0.0.1:9"))
    serializers = es.transport.serializers
    for mimetype in (
        "application/json",
        "application/vnd.elasticsearch+json; compatible-with=9",
    ):
        assert isinstance(serializers.get_serializer(mimetype), FastJsonSerializer), mimetype


def test_the_collector_pause_ends_with_the_last_sync_and_keeps_a_disabled_collector_off():
    gc.enable()
    entered, leave = threading.Event(), threading.Event()

    def inner() -> None:
        with documents._cyclic_gc_paused():
            entered.set()
            leave.wait(10)

    with documents._cyclic_gc_paused():
        worker = threading.Thread(target=inner)
        worker.start()
        assert entered.wait(10)
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other sync is still running
    leave.set()
    worker.join(10)
    assert gc.isenabled()

    with pytest.raises(RuntimeError), documents._cyclic_gc_paused():
        raise RuntimeError("a sync that fails")
    assert gc.isenabled()

    gc.disable()
    try:
        with documents._cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _flagged(store: Store, entities: dict) -> None:
    store.upsert_posts(
        [Post("telegram", "chan", 7, "https://t.me/chan/7", "UK game 🚤", "2026-10-02T06:15:09+00:00")]
    )
    analysis.save_analysis(
        store,
        {
            "post_key": "telegram:chan:7",
            "content_sha256": "",
            "model_id": "m",
            "lang": "en",
            "lang_confidence": 0.9,
            "score": 0.97,
            "is_advert": 1,
            "needs_review": 0,
            "cues": "[]",
            "entities": json.dumps(entities),
            "cluster_id": "cl-1",
            "processed_at": "now",
        },
    )


def _stored_digest(store: Store) -> str | None:
    (row,) = outbox.index_candidates(store)
    return row["indexed_sha256"]


def test_a_document_indexed_under_the_older_digest_is_not_sent_again(tmp_path):
    config = ElasticsearchConfig()
    with Store(tmp_path / "v.db") as store:
        _flagged(store, {"prices": [{"amount": 1800.0, "currency": "GBP", "text": "£1800"}]})
        (row,) = outbox.index_candidates(store)
        doc = documents.build_doc(row, gazetteer())
        older = hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        assert older != documents.doc_hash(doc)
        outbox.mark_indexed(store, [("telegram:chan:7", older)])

        assert list(documents._actions_to_send(store, config)) == []
        assert _stored_digest(store) == documents.doc_hash(doc)  # rewritten, nothing sent

        # A document that changed since goes, whichever way its digest was written.
        outbox.mark_indexed(store, [("telegram:chan:7", "digest-of-an-older-copy")])
        (sent,) = documents._actions_to_send(store, config)
        assert sent[0] == documents.doc_hash(doc) and sent[1]["_op_type"] == "update"


def test_an_amount_too_long_for_a_float_is_no_price(tmp_path):
    assert prices_in("9" * 400 + " €") == []
    with Store(tmp_path / "v.db") as store:
        # A store written before that check holds it as Infinity.
        _flagged(store, {"prices": [{"amount": float("inf"), "currency": "EUR", "text": "999…€"}]})
        (row,) = outbox.index_candidates(store)
    doc = documents.build_doc(row, gazetteer())
    assert doc["price_amount"] is None and doc["price_eur"] is None and doc["prices_text"] == []
