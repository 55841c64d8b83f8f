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

from pipeline.index import documents
from pipeline.index.client_json import FastJsonSerializer
from pipeline.index.json_codec import canonical, loads
from pipeline.index.template import connect
from vigie.config import ElasticsearchConfig


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1, 2.5, None, True], "a": "سلام 🚤 \u202e", "c": {"z": 1, "y": []}},
        {"text": "lone \ud800 surrogate"},
        {"big": 2**70, "small": -(2**63)},
        {"nan": float("nan")},
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


def test_the_client_serializer_handles_what_documents_and_queries_hold():
    serializer = FastJsonSerializer()
    body = {
        "when": dt.datetime(2026, 12, 3, 18, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 12, 3),
        "price": Decimal("6500.50"),
        "vector": np.array([0.5, 1.0], dtype=np.float32),
        "count": np.int64(3),
        "text": "bad \udc80 half",
        "huge": 2**70,
    }
    back = json.loads(serializer.dumps(body).decode("utf-8", "surrogatepass"))
    assert back["when"] == "2026-12-03T18:00:00+00:00" and back["day"] == "2026-12-03"
    assert back["price"] == 6500.5 and back["vector"] == [0.5, 1.0] and back["count"] == 3
    assert back["text"] == "bad \udc80 half" and back["huge"] == 2**70
    assert serializer.dumps('{"already": "json"}') == b'{"already": "json"}'
    assert serializer.loads(b"") is None
    nan = serializer.loads(b'{"a": NaN}')["a"]
    assert nan != nan


def test_connect_gives_every_json_mimetype_the_fast_serializer():
    es = connect(ElasticsearchConfig(url="http://127.0.0.1:9"))
    serializers = es.transport.serializers
    for mimetype in (
        "application/json",
        "application/vnd.elasticsearch+json; compatible-with=9",
    ):
        assert isinstance(serializers.get_serializer(mimetype), FastJsonSerializer), mimetype


def test_the_collector_pause_ends_with_the_last_sync_and_keeps_a_disabled_collector_off():
    assert gc.isenabled()
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
