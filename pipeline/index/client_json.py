"""The Elasticsearch client's JSON through orjson (requests, bulk lines, responses; the
compatibility-mode mimetypes take it too), with the standard serializer's handling of dates,
decimals and numpy, and the standard library for what orjson refuses."""

from __future__ import annotations

from typing import Any

import orjson
from elasticsearch.serializer import JsonSerializer


class FastJsonSerializer(JsonSerializer):
    def json_dumps(self, data: Any) -> bytes:
        try:
            return orjson.dumps(data, default=self.default, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # orjson's JSONEncodeError is one
            return super().json_dumps(data)

    def json_loads(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().json_loads(data)


SERIALIZERS = {JsonSerializer.mimetype: FastJsonSerializer()}
