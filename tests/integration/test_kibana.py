"""Kibana saved objects: the NDJSON is consistent with itself and with the index mapping,
`install` speaks Kibana's import API (against a real local HTTP server), and every
visualization's aggregations run on a real Elasticsearch node and give the right buckets."""

from __future__ import annotations

import email.parser
import email.policy
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.index.kibana import (
    BUCKET_SCHEMAS,
    install,
    load_saved_objects,
    saved_objects_path,
    vis_state,
    visualization_aggs,
)
from pipeline.index.template import mapping
from vigie.cli.main import cli
from vigie.config import CrawlConfig
from vigie.errors import VigieError

AGGREGATABLE = {
    "keyword",
    "date",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "boolean",
    "geo_point",
}
REQUIRED = {
    "vigie-vis-adverts-over-time",
    "vigie-vis-adverts-by-language",
    "vigie-vis-top-channels",
    "vigie-vis-top-contacts",
    "vigie-vis-routes",
    "vigie-vis-prices-by-route",
    "vigie-vis-repost-clusters",
    "vigie-vis-referral-status",
}
OBJECTS = load_saved_objects()
VISUALIZATIONS = [o for o in OBJECTS if o["type"] == "visualization"]


def by_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["type"] == kind]


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    return source


# --- the file itself -------------------------------------------------------------------


def test_every_line_is_one_json_object() -> None:
    lines = saved_objects_path().read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(OBJECTS) > 3
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict) and obj["type"] and obj["id"] and isinstance(obj["attributes"], dict)
        assert isinstance(obj["references"], list)


def test_ids_unique_and_required_objects_present() -> None:
    keys = [(o["type"], o["id"]) for o in OBJECTS]
    assert len(keys) == len(set(keys))
    assert len({o["id"] for o in OBJECTS}) == len(OBJECTS)
    views = {v["id"]: v for v in by_type("index-pattern")}
    assert set(views) == {"vigie-posts", "vigie-networks"}
    for view_id, time_field in (("vigie-posts", "published_at"), ("vigie-networks", "last_seen")):
        assert views[view_id]["attributes"]["title"] == view_id
        assert views[view_id]["attributes"]["timeFieldName"] == time_field
    assert {v["id"] for v in VISUALIZATIONS} >= REQUIRED
    (dashboard,) = by_type("dashboard")
    assert dashboard["attributes"]["timeRestore"] is False


def test_references_resolve() -> None:
    present = {(o["type"], o["id"]) for o in OBJECTS}
    for obj in OBJECTS:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, f"{obj['id']}: dangling reference {ref}"


def test_visualizations_use_the_data_view_and_the_advert_filter() -> None:
    for vis in VISUALIZATIONS:
        source = search_source(vis)
        ref_name = source["indexRefName"]
        assert {"id": "vigie-posts", "name": ref_name, "type": "index-pattern"} in vis["references"]
        assert source["query"]["language"] == "kuery"
        assert "is_advert:true" in source["query"]["query"]
        state = vis_state(vis)
        assert state["type"] and state["title"] == vis["attributes"]["title"]
        for agg in state["aggs"]:
            assert {"id", "enabled", "type", "schema", "params"} <= agg.keys()
            assert agg["schema"] in ("metric", *BUCKET_SCHEMAS)


def test_visualization_fields_exist_and_are_aggregatable() -> None:
    properties = mapping()["properties"]
    for vis in VISUALIZATIONS:
        body, fields = visualization_aggs(vis)
        assert body and fields, vis["id"]
        for field in fields:
            assert field in properties, f"{vis['id']}: {field} is not mapped"
            assert properties[field]["type"] in AGGREGATABLE, f"{vis['id']}: {field} is not aggregatable"
    assert vis_fields("vigie-vis-adverts-over-time") == ["published_at", "platform"]
    assert vis_fields("vigie-vis-routes") == ["origin_name", "destination_name"]


def vis_fields(vis_id: str) -> list[str]:
    return visualization_aggs(vis(vis_id))[1]


def vis(vis_id: str) -> dict[str, Any]:
    return next(v for v in VISUALIZATIONS if v["id"] == vis_id)


def test_dashboard_shows_every_visualization() -> None:
    (dashboard,) = by_type("dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    shown = set()
    for panel in panels:
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"] in ("visualization", "search")
        assert panel["gridData"]["x"] >= 0 and panel["gridData"]["x"] + panel["gridData"]["w"] <= 48
        shown.add(ref["id"])
    assert shown == {v["id"] for v in VISUALIZATIONS} | {s["id"] for s in by_type("search")}
    assert len(panels) == len({p["panelIndex"] for p in panels})


def test_the_networks_search_shows_mapped_fields_of_the_networks_index() -> None:
    from pipeline.index.networks import networks_mapping

    (search,) = by_type("search")
    assert search["references"] == [
        {
            "id": "vigie-networks",
            "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            "type": "index-pattern",
        }
    ]
    assert search_source(search)["indexRefName"] == search["references"][0]["name"]
    properties = networks_mapping()["properties"]
    columns = search["attributes"]["columns"]
    assert "network_id" in columns and "sources" in columns
    assert [c for c in columns if c not in properties] == []
    ((field, order),) = search["attributes"]["sort"]
    assert properties[field]["type"] == "date" and order == "desc"


def test_translation_nests_buckets_and_metrics() -> None:
    body, _ = visualization_aggs(vis("vigie-vis-adverts-over-time"))
    assert body == {
        "2": {
            "date_histogram": {"field": "published_at", "calendar_interval": "1w", "min_doc_count": 1},
            "aggs": {"3": {"terms": {"field": "platform", "size": 10, "order": {"_count": "desc"}}}},
        }
    }
    body, _ = visualization_aggs(vis("vigie-vis-prices-by-route"))
    metrics = body["2"]["aggs"]
    assert body["2"]["terms"]["field"] == "route"
    assert metrics["3"] == {"avg": {"field": "price_eur"}}
    assert metrics["4"] == {"percentiles": {"field": "price_eur", "percents": [50]}}


def test_translation_intervals_and_metric_ordering() -> None:
    def one(aggs: list[dict[str, Any]]) -> dict[str, Any]:
        obj = {"id": "x", "attributes": {"visState": json.dumps({"type": "table", "aggs": aggs})}}
        return visualization_aggs(obj)[0]

    def hist(interval: str) -> dict[str, Any]:
        agg: dict[str, Any] = {"id": "2", "type": "date_histogram", "schema": "segment"}
        agg["params"] = {"field": "published_at", "interval": interval}
        return one([agg])["2"]["date_histogram"]

    assert hist("d")["calendar_interval"] == "1d"
    assert hist("M")["calendar_interval"] == "1M"
    assert hist("12h")["fixed_interval"] == "12h"
    assert hist("2w")["fixed_interval"] == "14d"
    assert hist("auto")["calendar_interval"] == "1d"
    with pytest.raises(VigieError, match="interval"):
        hist("fortnight")
    aggs = [
        {"id": "1", "type": "avg", "schema": "metric", "params": {"field": "price_eur"}},
        {
            "id": "2",
            "type": "terms",
            "schema": "bucket",
            "params": {"field": "route", "orderBy": "1", "size": 3},
        },
        {"id": "3", "type": "terms", "schema": "bucket", "params": {"field": "lang", "orderBy": "_key"}},
    ]
    body = one(aggs)
    assert body["2"]["terms"]["order"] == {"1": "desc"}
    assert body["2"]["aggs"]["1"] == {"avg": {"field": "price_eur"}}  # the order needs it at that level
    assert body["2"]["aggs"]["3"]["terms"]["order"] == {"_key": "desc"}
    with pytest.raises(VigieError, match="unsupported metric"):
        one([{"id": "1", "type": "top_hits", "schema": "metric", "params": {"field": "url"}}])


def test_invalid_ndjson_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    good = json.dumps(OBJECTS[0])
    path.write_text(f"{good}\n\n{{'type': 'visualization'}}\n", encoding="utf-8")
    with pytest.raises(VigieError, match=r"bad\.ndjson, line 3: invalid JSON"):
        load_saved_objects(path)
    path.write_text(f'{good}\n[1, 2]\n{{"exportedCount": 1}}\n', encoding="utf-8")
    with pytest.raises(VigieError, match="line 2: not a saved object"):
        load_saved_objects(path)
    path.write_text(f'{good}\n{{"exportedCount": 1, "missingRefCount": 0}}\n', encoding="utf-8")
    assert load_saved_objects(path) == [OBJECTS[0]]


# --- install against a stand-in for Kibana's import endpoint ----------------------------


class FakeKibana:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"
        self.busy = 0  # requests answered 503 with Retry-After first
        handler = type("Handler", (_Handler,), {"kibana": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    kibana: FakeKibana

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        record: dict[str, Any] = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "at": time.monotonic(),
        }
        self.kibana.requests.append(record)
        if self.kibana.busy > 0:
            self.kibana.busy -= 1
            self.reply(
                503, {"statusCode": 503, "message": "Kibana server is not ready yet"}, {"Retry-After": "1"}
            )
            return
        if self.headers.get("kbn-xsrf") != "true":
            self.reply(
                400,
                {
                    "statusCode": 400,
                    "error": "Bad Request",
                    "message": "Request must contain a kbn-xsrf header.",
                },
            )
            return
        if self.kibana.mode == "echo":  # a proxy that repeats what it refused
            message = f"bad credentials: {self.headers.get('Authorization')}"
            self.reply(401, {"statusCode": 401, "error": "Unauthorized", "message": message})
            return
        if self.kibana.mode == "unauthorized":
            message = "[security_exception]: missing authentication credentials for REST request"
            self.reply(401, {"statusCode": 401, "error": "Unauthorized", "message": message})
            return
        form: Any = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        parts = list(form.iter_parts())
        assert len(parts) == 1
        part = parts[0]
        assert part.get_param("name", header="content-disposition") == "file"
        record["filename"] = part.get_filename()
        raw = part.get_payload(decode=True)
        record["objects"] = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        objects = record["objects"]
        if self.kibana.mode == "fail":
            bad = objects[1]
            error = {
                "id": bad["id"],
                "type": bad["type"],
                "meta": {"title": bad["attributes"]["title"]},
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "index-pattern", "id": "gone"}],
                },
            }
            self.reply(200, {"success": False, "successCount": len(objects) - 1, "errors": [error]})
            return
        results = [
            {"type": o["type"], "id": o["id"], "meta": {"title": o["attributes"]["title"]}, "overwrite": True}
            for o in objects
        ]
        self.reply(
            200, {"success": True, "successCount": len(objects), "successResults": results, "warnings": []}
        )


@pytest.fixture
def kibana(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKibana]:
    for name in (
        "VIGIE_KIBANA_API_KEY",
        "VIGIE_KIBANA_USERNAME",
        "VIGIE_KIBANA_PASSWORD",
        "VIGIE_KIBANA_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    server = FakeKibana()
    yield server
    server.stop()


def test_install_posts_the_ndjson_as_multipart(kibana: FakeKibana) -> None:
    lines = install(kibana.url + "/", OBJECTS)
    (request,) = kibana.requests
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    assert request["headers"]["kbn-xsrf"] == "true"
    assert request["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert "authorization" not in request["headers"]
    assert request["filename"].endswith(".ndjson")
    assert request["objects"] == OBJECTS
    assert f"imported dashboard vigie-dashboard ({by_type('dashboard')[0]['attributes']['title']})" in lines
    assert sum(line.startswith("imported ") for line in lines) == len(OBJECTS)
    assert lines[-1].startswith(f"{len(OBJECTS)} saved objects imported")


def test_install_into_a_space_with_api_key(kibana: FakeKibana, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_KIBANA_API_KEY", "c2VjcmV0OmtleQ==")
    install(kibana.url, OBJECTS[:2], space="analysts")
    (request,) = kibana.requests
    assert request["path"] == "/s/analysts/api/saved_objects/_import?overwrite=true"
    assert request["headers"]["authorization"] == "ApiKey c2VjcmV0OmtleQ=="
    assert len(request["objects"]) == 2


def test_install_with_basic_auth(kibana: FakeKibana, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_KIBANA_USERNAME", "analyst")
    monkeypatch.setenv("VIGIE_KIBANA_PASSWORD", "pw")
    install(kibana.url, OBJECTS)
    assert kibana.requests[0]["headers"]["authorization"] == "Basic YW5hbHlzdDpwdw=="


def test_install_reports_import_errors(kibana: FakeKibana) -> None:
    kibana.mode = "fail"
    bad = OBJECTS[1]
    with pytest.raises(VigieError) as caught:
        install(kibana.url, OBJECTS)
    message = str(caught.value)
    assert f"{len(OBJECTS) - 1} of {len(OBJECTS)} imported" in message
    assert f"{bad['type']} {bad['id']} ({bad['attributes']['title']}): missing_references" in message
    assert "missing index-pattern gone" in message


def test_install_reports_http_errors(kibana: FakeKibana) -> None:
    kibana.mode = "unauthorized"
    with pytest.raises(VigieError, match=r"HTTP 401: .*missing authentication credentials"):
        install(kibana.url, OBJECTS)


def test_install_reports_connection_errors() -> None:
    server = FakeKibana()
    url = server.url
    server.stop()
    quick = CrawlConfig(retry_times=1, backoff_base=0.1)
    with pytest.raises(VigieError, match=f"^cannot reach Kibana at {url}: connection refused$"):
        install(url, OBJECTS, crawl=quick)


def test_install_waits_for_a_busy_kibana_with_the_configured_user_agent(kibana: FakeKibana) -> None:
    kibana.busy = 1
    crawl = CrawlConfig(user_agent="VigieOps/2.0 (dashboards)", backoff_base=0)
    lines = install(kibana.url, OBJECTS, crawl=crawl)
    first, second = kibana.requests
    assert second["at"] - first["at"] >= 0.95  # Retry-After: 1
    assert first["body"] == second["body"] and second["objects"] == OBJECTS
    assert {r["headers"]["user-agent"] for r in kibana.requests} == {"VigieOps/2.0 (dashboards)"}
    assert lines[-1].startswith(f"{len(OBJECTS)} saved objects imported")
    kibana.busy = 10
    with pytest.raises(VigieError, match=r"^Kibana import at .* failed: HTTP 503 after 1 retries$"):
        install(kibana.url, OBJECTS, crawl=CrawlConfig(retry_times=1, backoff_base=0, max_retry_after=0.1))


def test_install_never_shows_credentials(kibana: FakeKibana, monkeypatch: pytest.MonkeyPatch) -> None:
    kibana.mode = "echo"
    monkeypatch.setenv("VIGIE_KIBANA_API_KEY", "c2VjcmV0OmtleQ==")
    with pytest.raises(VigieError) as caught:
        install(kibana.url, OBJECTS)
    assert str(caught.value).endswith("HTTP 401: bad credentials: ***")
    monkeypatch.delenv("VIGIE_KIBANA_API_KEY")
    monkeypatch.setenv("VIGIE_KIBANA_USERNAME", "analyst")
    monkeypatch.setenv("VIGIE_KIBANA_PASSWORD", "hunter2pass")
    with pytest.raises(VigieError) as caught:
        install(kibana.url, OBJECTS)
    assert "YW5hbHlzdDpodW50ZXIycGFzcw==" not in str(caught.value) and "hunter2pass" not in str(caught.value)
    monkeypatch.delenv("VIGIE_KIBANA_USERNAME")
    with_userinfo = kibana.url.replace("http://", "http://analyst:hunter2pass@")
    kibana.stop()
    with pytest.raises(VigieError) as caught:
        install(with_userinfo, OBJECTS, crawl=CrawlConfig(retry_times=0))
    assert (
        str(caught.value)
        == f"cannot reach Kibana at {kibana.url.replace('http://', 'http://***@')}: connection refused"
    )
    lines = install(with_userinfo, OBJECTS, dry_run=True)
    assert "hunter2pass" not in lines[-1] and lines[-1].startswith("into http://***@127.0.0.1:")


def test_dry_run_sends_nothing(kibana: FakeKibana) -> None:
    lines = install(kibana.url, OBJECTS, dry_run=True, space="analysts")
    assert kibana.requests == []
    assert sum(line.startswith("would import ") for line in lines) == len(OBJECTS)
    assert lines[-1] == f"into {kibana.url}/s/analysts/api/saved_objects/_import"
    assert install("", OBJECTS, dry_run=True)[-1] == "into Kibana (no URL set)"
    with pytest.raises(VigieError, match="no Kibana URL"):
        install("", OBJECTS)


def test_cli_install_uses_config(kibana: FakeKibana, config_file: Any) -> None:
    config = config_file(kibana={"url": kibana.url, "space": "ops"})
    result = CliRunner().invoke(cli, ["--config", str(config), "kibana", "install", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert kibana.requests == [] and "would import dashboard vigie-dashboard" in result.output
    result = CliRunner().invoke(cli, ["--config", str(config), "kibana", "install"])
    assert result.exit_code == 0, result.output
    assert kibana.requests[0]["path"] == "/s/ops/api/saved_objects/_import?overwrite=true"
    assert "saved objects imported" in result.output


# --- each visualization's aggregations on a real Elasticsearch node ----------------------

CHANNELS = ["boats_izmir", "boats_izmir", "road_to_uk", "europe_fast", "boats_izmir", "calais_help"]
PLATFORMS = ["telegram", "telegram", "facebook", "telegram", "tiktok"]
LANGS = ["ar", "fa", "ckb", "ar", "en", "tr"]
ROUTES = [
    ("Izmir", "Lesbos"),
    ("Calais", "Dover"),
    ("Izmir", "Lesbos"),
    ("Tripoli", "Lampedusa"),
    (None, None),
]
STATUSES = ["new", "new", "referred", "removed"]
SHARED = "+905551112233"


def synthetic_docs() -> list[dict[str, Any]]:
    """30 posts over October and November 2026; every seventh is not an advert."""
    start = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
    docs = []
    for n in range(30):
        origin, destination = ROUTES[n % len(ROUTES)]
        channel = CHANNELS[n % len(CHANNELS)]
        contacts = [f"@{channel}_admin"] + ([SHARED] if n % 3 != 2 else [])
        doc: dict[str, Any] = {
            "key": f"telegram:{channel}:{n}",
            "platform": PLATFORMS[n % len(PLATFORMS)],
            "channel": channel,
            "post_id": n,
            "text": f"Crossing {origin} to {destination}, call {contacts[-1]}",
            "lang": LANGS[n % len(LANGS)],
            "score": 0.5 + n / 100,
            "is_advert": n % 7 != 6,
            "published_at": (start + timedelta(days=2 * n, hours=n)).isoformat(),
            "contacts": contacts,
            "phones": [SHARED] if n % 3 != 2 else [],
            "handles": [f"@{channel}_admin"],
            "cluster_id": f"c{n % 4}" if n % 5 else f"solo{n}",
            "referral_status": STATUSES[n % len(STATUSES)],
        }
        if origin:
            doc |= {
                "origin_name": origin,
                "destination_name": destination,
                "route": f"{origin} → {destination}",
            }
        if n % 4 != 3:
            doc |= {"price_eur": float(500 + 250 * (n % 6)), "price_currency": "EUR", "price_amount": 500.0}
        docs.append(doc)
    return docs


def kql_filter(query: str) -> tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]:
    """The `field:value [and field:value]` KQL the visualizations use, as an Elasticsearch
    query and as a Python predicate ('*' means the field exists)."""
    terms: list[tuple[str, Any]] = []
    for term in [t.strip() for t in query.split(" and ") if t.strip()]:
        field, value = (s.strip() for s in term.split(":", 1))
        terms.append((field, {"true": True, "false": False}.get(value, value)))
    clauses = [{"exists": {"field": f}} if v == "*" else {"term": {f: v}} for f, v in terms]

    def matches(doc: dict[str, Any]) -> bool:
        return all(doc.get(f) is not None if v == "*" else doc.get(f) == v for f, v in terms)

    return {"bool": {"filter": clauses}}, matches


def week_start(iso: str) -> int:
    when = datetime.fromisoformat(iso)
    monday = (when - timedelta(days=when.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(monday.timestamp() * 1000)


def epoch_ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def values(doc: dict[str, Any], field: str) -> list[Any]:
    value = doc.get(field)
    return [] if value is None else value if isinstance(value, list) else [value]


def walk(
    request: dict[str, Any], result: dict[str, Any], path: tuple[tuple[str, Any], ...] = ()
) -> Iterator[tuple[tuple[tuple[str, Any], ...], dict[str, Any]]]:
    """(bucket path, leaf bucket) for every innermost bucket of a nested response."""
    name = next((n for n, body in request.items() if {"terms", "date_histogram"} & body.keys()), None)
    if name is None:
        yield path, result
        return
    body = request[name]
    kind = "terms" if "terms" in body else "date_histogram"
    for bucket in result[name]["buckets"]:
        yield from walk(
            body.get("aggs", {}), bucket, (*path, (f"{kind}:{body[kind]['field']}", bucket["key"]))
        )


@pytest.fixture
def es(es_url: str) -> Any:
    from elasticsearch import Elasticsearch
    from elasticsearch.helpers import bulk

    from pipeline.index.template import index_for, setup
    from vigie.config import ElasticsearchConfig

    client = Elasticsearch(es_url, request_timeout=60)
    config = ElasticsearchConfig()
    setup(client, config)
    docs = synthetic_docs()
    actions = [{"_index": index_for(config, d["published_at"]), "_id": d["key"], "_source": d} for d in docs]
    assert {a["_index"] for a in actions} == {"vigie-posts-2026.10", "vigie-posts-2026.11"}
    ok, errors = bulk(client, actions, raise_on_error=False)
    assert ok == len(docs) and not errors
    client.indices.refresh(index="vigie-posts")
    yield client
    client.close()


@pytest.mark.elasticsearch
@pytest.mark.parametrize("vis_id", sorted(v["id"] for v in VISUALIZATIONS))
def test_visualization_aggregations_on_elasticsearch(es: Any, vis_id: str) -> None:
    obj = vis(vis_id)
    aggs, _ = visualization_aggs(obj)
    query, matches = kql_filter(search_source(obj)["query"]["query"])
    docs = [d for d in synthetic_docs() if matches(d)]
    flagged = [d for d in synthetic_docs() if d["is_advert"]]
    assert 0 < len(docs) <= len(flagged) < 30
    response = es.search(index="vigie-posts", size=0, query=query, aggs=aggs, track_total_hits=True).body
    assert response["hits"]["total"]["value"] == len(docs)
    metrics = [a for a in vis_state(obj)["aggs"] if a["schema"] == "metric"]
    rows = list(walk(aggs, {**response["aggregations"], "doc_count": len(docs)}))
    assert rows and all(bucket["doc_count"] > 0 for _, bucket in rows)

    for path, bucket in rows:  # every bucket holds exactly the documents it should
        inside = docs
        for key, value in path:
            kind, field = key.split(":")
            if kind == "date_histogram":
                inside = [d for d in inside if week_start(d[field]) == value]
            else:
                inside = [d for d in inside if value in values(d, field)]
        assert bucket["doc_count"] == len(inside), (path, bucket)
        for metric in metrics:
            field = metric["params"].get("field")
            seen = [v for d in inside for v in values(d, field)] if field else []
            got = bucket.get(metric["id"], {})
            if metric["type"] == "cardinality":
                assert got["value"] == len(set(seen))
            elif metric["type"] in ("avg", "min", "max") and seen:
                numbers = [epoch_ms(v) if isinstance(v, str) else v for v in seen]
                kind = metric["type"]
                expected = (
                    statistics.fmean(numbers)
                    if kind == "avg"
                    else min(numbers)
                    if kind == "min"
                    else max(numbers)
                )
                assert got["value"] == pytest.approx(expected)
            elif metric["type"] == "median" and seen:
                assert got["values"]["50.0"] == pytest.approx(statistics.median(seen))
            elif metric["type"] == "percentiles" and seen:
                found = [got["values"][f"{float(p)}"] for p in metric["params"]["percents"]]
                assert min(seen) <= found[0] <= found[-1] <= max(seen)

    # What each panel is for.
    by_level1: Counter[Any] = Counter()
    for path, bucket in rows:
        if path:
            by_level1[path[0][1]] += bucket["doc_count"]
    if vis_id in (
        "vigie-vis-adverts-over-time",
        "vigie-vis-adverts-by-language",
        "vigie-vis-referral-status",
    ):
        assert sum(bucket["doc_count"] for _, bucket in rows) == len(flagged)
    if vis_id == "vigie-vis-adverts-over-time":
        assert {path[1][1] for path, _ in rows} == {d["platform"] for d in flagged}
        assert len(by_level1) >= 8  # weeks across two months
    if vis_id == "vigie-vis-adverts-by-language":
        assert {path[1][1] for path, _ in rows} == {d["lang"] for d in flagged}
    if vis_id == "vigie-vis-top-channels":
        top_channel, top_count = Counter(d["channel"] for d in flagged).most_common(1)[0]
        assert rows[0][0][0][1] == top_channel == "boats_izmir"
        assert rows[0][1]["doc_count"] == top_count
        assert [b["doc_count"] for _, b in rows] == sorted((b["doc_count"] for _, b in rows), reverse=True)
    if vis_id == "vigie-vis-top-contacts":
        assert rows[0][0][0][1] == SHARED
        assert rows[0][1]["3"]["value"] == len({d["channel"] for d in flagged if SHARED in d["contacts"]}) > 1
    if vis_id == "vigie-vis-routes":
        pairs = {(p[0][1], p[1][1]) for p, _ in rows}
        assert pairs == {(d["origin_name"], d["destination_name"]) for d in flagged if "origin_name" in d}
        assert rows[0][0] == (("terms:origin_name", "Izmir"), ("terms:destination_name", "Lesbos"))
    if vis_id == "vigie-vis-prices-by-route":
        assert {p[0][1] for p, _ in rows} == {
            d["route"] for d in flagged if "route" in d and "price_eur" in d
        }
    if vis_id == "vigie-vis-repost-clusters":
        top = rows[0]
        assert top[1]["doc_count"] == max(Counter(d["cluster_id"] for d in flagged).values()) > 1
        assert top[1]["3"]["value"] > 1  # reposted across channels
    if vis_id == "vigie-vis-referral-status":
        assert dict(by_level1) == dict(Counter(d["referral_status"] for d in flagged))
    if vis_id == "vigie-vis-flagged-total":
        assert rows == [((), {**response["aggregations"], "doc_count": len(flagged)})]
