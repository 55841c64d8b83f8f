"""JSON for the index path, through orjson (several times faster than the standard library,
which was most of the Python time of a sync), falling back to the standard library for what
orjson refuses: lone surrogates and integers past 64 bits on writing, NaN on reading (orjson
writes NaN and infinities as null; documents hold none, see `build_doc`). The store's JSON columns read
into documents, and the digest of a document, go through here; the client's bodies through
`client_json`."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(value: str | bytes | None, empty: Any) -> Any:
    """A stored JSON column; `empty` when it holds nothing. Integers past 64 bits come back
    as floats (the store writes none: amounts are floats, ids are strings)."""
    if not value:
        return empty
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)  # NaN and the like, which the standard library wrote


def canonical(data: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same document in any process."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson's JSONEncodeError is one
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8", "surrogatepass")
