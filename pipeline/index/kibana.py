"""Kibana: the analysts' data view, visualizations and dashboard as saved objects
(`pipeline/index/kibana.ndjson`), their installation through Kibana's saved-objects
import API, and the translation of a legacy visualization's aggregations into the
Elasticsearch request Kibana would send (used by the tests to run each one for real).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from vigie.config import CrawlConfig
from vigie.errors import VigieError
from vigie.http_client import HttpClient, HttpError, ServerUnreachable, redact
from vigie.sanitize import web_url

BUCKET_SCHEMAS = ("segment", "split", "bucket", "group")
SINGLE_VALUE_METRICS = ("avg", "sum", "max", "min", "cardinality")
DEFAULT_PERCENTS = [1, 5, 25, 50, 75, 95, 99]
_INTERVAL = re.compile(r"^(\d*)(ms|s|m|h|d|w|M|q|y)$")
# An import of a few dozen saved objects; Kibana can be slow to answer while it migrates.
IMPORT_TIMEOUT = 60.0


def saved_objects_path() -> Path:
    return Path(__file__).parent / "kibana.ndjson"


def load_saved_objects(path: Path | None = None) -> list[dict[str, Any]]:
    """The saved objects of an NDJSON export, one per line (blank lines and the export
    summary line are skipped)."""
    path = path or saved_objects_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VigieError(f"cannot read Kibana saved objects {path}: {exc.strerror or exc}") from exc
    objects = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise VigieError(f"{path}, line {number}: invalid JSON ({exc.msg}, column {exc.colno})") from exc
        if isinstance(obj, dict) and "exportedCount" in obj and "type" not in obj:
            continue
        if not isinstance(obj, dict) or not obj.get("type") or not obj.get("id"):
            raise VigieError(f"{path}, line {number}: not a saved object (an object with 'type' and 'id')")
        objects.append(obj)
    return objects


def vis_state(obj: dict[str, Any]) -> dict[str, Any]:
    try:
        state = json.loads(obj["attributes"]["visState"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise VigieError(f"visualization {obj.get('id')}: missing or invalid visState ({exc})") from exc
    if not isinstance(state, dict):
        raise VigieError(f"visualization {obj.get('id')}: visState is not an object")
    return state


def visualization_aggs(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The `aggs` body of the search a legacy (aggregation-based) visualization runs, and
    the fields it uses. Bucket aggregations nest in their order in visState; the metrics
    go inside the innermost bucket. Aggregations are named by their visState id."""
    where = f"visualization {obj.get('id')}"
    aggs = [a for a in vis_state(obj).get("aggs", []) if a.get("enabled", True)]
    metrics = {a["id"]: a for a in aggs if a.get("schema") == "metric"}
    buckets = [a for a in aggs if a.get("schema") in BUCKET_SCHEMAS]
    if unknown := [a.get("schema") for a in aggs if a["id"] not in metrics and a not in buckets]:
        raise VigieError(f"{where}: unsupported aggregation schema {unknown[0]!r}")
    fields: list[str] = []
    inner: dict[str, Any] = {}
    for agg in metrics.values():
        if (body := _metric(agg, where)) is not None:
            inner[agg["id"]] = body
    for agg in reversed(buckets):
        bucket = _bucket(agg, metrics, where)
        order_metric = bucket.pop("_order_metric", None)
        if order_metric and order_metric not in inner:  # ordered by a metric that lives deeper
            inner = {order_metric: _metric(metrics[order_metric], where), **inner}
        if inner:
            bucket["aggs"] = inner
        inner = {agg["id"]: bucket}
    for agg in [*buckets, *metrics.values()]:
        field = agg.get("params", {}).get("field")
        if field and field not in fields:
            fields.append(field)
    return inner, fields


def _field(agg: dict[str, Any], where: str) -> str:
    field = agg.get("params", {}).get("field")
    if not field:
        raise VigieError(f"{where}: aggregation {agg['id']} ({agg['type']}) has no field")
    return str(field)


def _metric(agg: dict[str, Any], where: str) -> dict[str, Any] | None:
    kind, params = agg["type"], agg.get("params", {})
    if kind == "count":
        return None
    if kind in SINGLE_VALUE_METRICS:
        return {kind: {"field": _field(agg, where)}}
    if kind == "median":
        return {"percentiles": {"field": _field(agg, where), "percents": [50]}}
    if kind == "percentiles":
        return {
            "percentiles": {
                "field": _field(agg, where),
                "percents": params.get("percents") or DEFAULT_PERCENTS,
            }
        }
    raise VigieError(f"{where}: unsupported metric aggregation {kind!r}")


def _bucket(agg: dict[str, Any], metrics: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    kind, params = agg["type"], agg.get("params", {})
    if kind == "date_histogram":
        return {
            "date_histogram": {
                "field": _field(agg, where),
                **_interval(params, where),
                "min_doc_count": params.get("min_doc_count", 1),
            }
        }
    if kind != "terms":
        raise VigieError(f"{where}: unsupported bucket aggregation {kind!r}")
    direction = params.get("order", "desc")
    order_by = str(params.get("orderBy", "_count"))
    body: dict[str, Any] = {"field": _field(agg, where), "size": int(params.get("size", 5))}
    if params.get("missingBucket"):
        body["missing"] = "__missing__"
    if order_by in ("_key", "_term", "alphabetical"):
        body["order"] = {"_key": direction}
        return {"terms": body}
    metric = metrics.get(order_by)
    if order_by == "_count" or (metric and metric["type"] == "count"):
        body["order"] = {"_count": direction}
        return {"terms": body}
    if metric and metric["type"] in SINGLE_VALUE_METRICS:
        body["order"] = {order_by: direction}
        return {"terms": body, "_order_metric": order_by}
    raise VigieError(f"{where}: terms aggregation {agg['id']} cannot be ordered by {order_by!r}")


def _interval(params: dict[str, Any], where: str) -> dict[str, str]:
    """Kibana's interval names as Elasticsearch wants them: one calendar unit is a
    calendar interval, several units a fixed one; 'auto' (which Kibana derives from the
    time range) becomes one day."""
    value = str(params.get("interval") or "auto")
    if value == "custom":
        value = str(params.get("customInterval") or "")
    if value == "auto":
        return {"calendar_interval": "1d"}
    match = _INTERVAL.match(value)
    if not match:
        raise VigieError(f"{where}: unsupported date_histogram interval {value!r}")
    count, unit = int(match[1] or 1), match[2]
    if count == 1 and unit not in ("ms", "s"):
        return {"calendar_interval": f"1{unit}"}
    if unit == "w":
        return {"fixed_interval": f"{7 * count}d"}
    if unit in ("M", "q", "y"):
        raise VigieError(f"{where}: interval {value!r}: months, quarters and years must be single units")
    return {"fixed_interval": f"{count}{unit}"}


def _describe(obj: dict[str, Any]) -> str:
    title = obj.get("attributes", {}).get("title") or obj.get("meta", {}).get("title")
    return f"{obj.get('type')} {obj.get('id')}" + (f" ({title})" if title else "")


def _auth_headers() -> dict[str, str]:
    import base64

    from vigie.config import secret

    if api_key := secret("VIGIE_KIBANA_API_KEY"):
        return {"Authorization": f"ApiKey {api_key}"}
    if (user := secret("VIGIE_KIBANA_USERNAME")) and (password := secret("VIGIE_KIBANA_PASSWORD")):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def import_url(kibana_url: str, space: str | None = None) -> str:
    base = kibana_url.rstrip("/")
    if space and space != "default":
        base += f"/s/{urllib.parse.quote(space, safe='')}"
    return f"{base}/api/saved_objects/_import?overwrite=true"


def _error_text(error: dict[str, Any]) -> str:
    detail = error.get("error") or {}
    text = f"{_describe(error)}: {detail.get('type', 'error')}"
    if message := detail.get("message"):
        text += f": {message}"
    if refs := detail.get("references"):
        text += " (missing " + ", ".join(f"{r.get('type')} {r.get('id')}" for r in refs) + ")"
    return text


def install(
    kibana_url: str,
    objects: list[dict[str, Any]],
    dry_run: bool = False,
    space: str | None = None,
    crawl: CrawlConfig | None = None,
) -> list[str]:
    """Import (overwriting) the saved objects into Kibana; lines saying what was imported,
    or with `dry_run` what would be, without any request. The request goes through Vigie's
    HTTP client with `crawl`'s User-Agent and retries; robots.txt and the crawl delay are
    manners towards platforms, not towards the operator's own Kibana, and are left out."""
    if kibana_url and web_url(kibana_url.rstrip("/")) is None:
        raise VigieError(f"Kibana URL {redact(kibana_url)!r}: expected http(s)://host[:port][/path]")
    if dry_run:
        target = redact(import_url(kibana_url, space).split("?")[0]) if kibana_url else "Kibana (no URL set)"
        return [f"would import {_describe(obj)}" for obj in objects] + [f"into {target}"]
    if not kibana_url:
        raise VigieError(
            "no Kibana URL: pass --url, set kibana.url in the configuration or $VIGIE_KIBANA_URL"
        )
    url = import_url(kibana_url, space)
    shown = redact(url)
    boundary = f"vigie-{uuid.uuid4().hex}"
    ndjson = "".join(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n" for obj in objects)
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="vigie.ndjson"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
        f"{ndjson}\r\n--{boundary}--\r\n"
    ).encode()
    crawl = crawl or CrawlConfig()
    headers = {"kbn-xsrf": "true", "Accept": "application/json", **_auth_headers()}
    with HttpClient(
        crawl, obey_robots=False, delay=0, timeout=max(crawl.timeout, IMPORT_TIMEOUT), headers=headers
    ) as client:
        try:
            response = client.post(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        except ServerUnreachable as exc:
            raise VigieError(f"cannot reach Kibana at {redact(kibana_url)}: {exc.reason}") from None
        except HttpError as exc:
            raise VigieError(f"Kibana import at {shown} failed: {exc.reason}") from None
        if response.status >= 300:
            text = response.text()
            try:
                payload = json.loads(text)
                text = payload.get("message") or payload.get("error") or text
            except (json.JSONDecodeError, AttributeError):
                pass
            detail = " ".join(client.mask(str(text)).split())[:500]
            raise VigieError(f"Kibana import at {shown} failed: HTTP {response.status}: {detail}")
    try:
        result = json.loads(response.body)
    except json.JSONDecodeError:
        raise VigieError(f"Kibana import at {shown}: unexpected answer {response.body[:200]!r}") from None
    if not isinstance(result, dict):
        raise VigieError(f"Kibana import at {shown}: unexpected answer {response.body[:200]!r}")
    if not result.get("success"):
        errors = result.get("errors") or []
        details = "; ".join(_error_text(e) for e in errors) or json.dumps(result)[:500]
        raise VigieError(
            f"Kibana import failed ({result.get('successCount', 0)} of {len(objects)} imported): {details}"
        )
    done = result.get("successResults") or objects
    lines = [f"imported {_describe(obj)}" for obj in done]
    lines += [f"warning: {w.get('message', w)}" for w in result.get("warnings") or []]
    return [
        *lines,
        f"{result.get('successCount', len(done))} saved objects imported into {shown.split('?')[0]}",
    ]
