"""One pass of the whole pipeline: crawl → classify → entities → reposts → store → index."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawlers.report import CrawlReport
from pipeline.process import ProcessReport
from vigie.config import VigieConfig
from vigie.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    crawl: CrawlReport | None = None
    process: ProcessReport = field(default_factory=ProcessReport)
    indexed: int = 0
    deleted: int = 0
    spooled: int = 0
    errors: list[str] = field(default_factory=list)
    es_count: int | None = None
    store_flagged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "crawl": self.crawl.to_json() if self.crawl else None,
            "process": self.process.to_json(),
            "index": {
                "indexed": self.indexed,
                "deleted": self.deleted,
                "spooled": self.spooled,
                "es_count": self.es_count,
                "store_flagged": self.store_flagged,
            },
            "errors": self.errors,
        }


def classify_and_index(config: VigieConfig, report: RunReport, progress: Any = None) -> RunReport:
    from classifier.model import AdvertClassifier
    from pipeline.es_index import es_url
    from pipeline.process import count_pending, model_id, process
    from vigie.paths import default_classifier_dir

    model_dir = (
        Path(config.classifier.model_dir).expanduser()
        if config.classifier.model_dir
        else default_classifier_dir()
    )
    clf = AdvertClassifier.load(
        model_dir, runtime=config.classifier.runtime, batch_size=config.classifier.batch_size
    )
    with Store(config.store_path()) as store:
        total = count_pending(store, model_id(clf))
        task = progress.add_task("classifying", total=total) if progress else None
        report.process = process(
            store,
            clf,
            batch_size=config.pipeline.batch_size,
            keep_text=config.pipeline.keep_text_below_threshold,
            progress=(lambda n: progress.advance(task, n)) if progress else None,
        )
        report.store_flagged = int(
            store.db.execute("SELECT COUNT(*) FROM analysis WHERE is_advert = 1").fetchone()[0]
        )
        if es_url(config.elasticsearch):
            index(config, store, report)
    return report


def index(config: VigieConfig, store: Store, report: RunReport) -> None:
    from elasticsearch import ApiError, TransportError

    from pipeline.es_index import connect, count_indexed, setup, sync

    es = connect(config.elasticsearch)
    try:
        es.cluster.health(timeout="10s")
        setup(es, config.elasticsearch)
    except (TransportError, ApiError) as exc:
        waiting = store.db.execute(
            "SELECT COUNT(*) FROM analysis WHERE is_advert = 1 AND indexed_sha256 IS NULL"
        ).fetchone()[0]
        report.errors.append(
            f"Elasticsearch at {config.elasticsearch.url or 'VIGIE_ES_URL'} unavailable ({type(exc).__name__}); "
            f"{waiting} documents wait in the store and will be sent by the next run or `vigie es replay`"
        )
        return
    result = sync(store, es, config.elasticsearch)
    report.indexed, report.deleted, report.spooled = (
        result.indexed + result.replayed,
        result.deleted,
        result.spooled,
    )
    report.errors.extend(result.errors)
    if result.spooled:
        report.errors.append(f"{result.spooled} documents were rejected or not sent; they wait in the spool")
    try:
        report.es_count = count_indexed(es, config.elasticsearch)
    except (TransportError, ApiError):
        report.es_count = None


def referral_candidates(config: VigieConfig, out: Path) -> int:
    """Flagged posts grouped by repost cluster, each with every URL, cues and contacts: what
    an analyst reviews before referring. Returns the number of clusters written."""
    with Store(config.store_path()) as store:
        rows = store.db.execute(
            "SELECT p.key, p.url, p.channel, p.published_at, p.text, a.score, a.lang, a.cues, a.entities,"
            " a.cluster_id FROM analysis a JOIN posts p ON p.key = a.post_key WHERE a.is_advert = 1"
            " ORDER BY a.cluster_id, p.published_at"
        ).fetchall()
    clusters: dict[str, dict[str, Any]] = {}
    for r in rows:
        entities = json.loads(r["entities"] or "{}")
        c = clusters.setdefault(
            r["cluster_id"] or r["key"],
            {
                "cluster_id": r["cluster_id"],
                "max_score": 0.0,
                "urls": [],
                "channels": [],
                "languages": Counter(),
                "contacts": [],
                "routes": [],
                "cues": Counter(),
                "first_seen": r["published_at"],
                "example": r["text"],
            },
        )
        c["max_score"] = max(c["max_score"], r["score"])
        c["urls"].append(r["url"])
        c["channels"] = sorted(set(c["channels"]) | {r["channel"]})
        c["languages"][r["lang"]] += 1
        c["contacts"] = sorted(set(c["contacts"]) | set(entities.get("contacts", [])))
        if entities.get("origin") or entities.get("destination"):
            route = f"{entities.get('origin') or '?'} → {entities.get('destination') or '?'}"
            c["routes"] = sorted(set(c["routes"]) | {route})
        for cue in json.loads(r["cues"] or "[]"):
            c["cues"][cue["cue"]] += 1
    ordered = sorted(clusters.values(), key=lambda c: -c["max_score"])
    for c in ordered:
        c["languages"] = dict(c["languages"])
        c["cues"] = [name for name, _ in c["cues"].most_common()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"clusters": ordered}, ensure_ascii=False, indent=1), encoding="utf-8")
    return len(ordered)


def reindex_if_configured(config: VigieConfig) -> None:
    """Push changed review/referral state to Elasticsearch when one is configured."""
    from pipeline.es_index import es_url

    if not es_url(config.elasticsearch):
        return
    report = RunReport()
    with Store(config.store_path()) as store:
        index(config, store, report)
    for error in report.errors:
        log.warning("%s", error)
