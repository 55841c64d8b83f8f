"""The pipeline's stages, defined once: crawl → media → classify → entities → reposts → store → index.

`vigie run` calls `run_once`; the daemon runs the crawl as `vigie crawl` and the rest with
`classify_and_index` in a worker that keeps its classifier loaded."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawlers.report import CrawlReport
from pipeline.enrich.media import MediaReport
from pipeline.enrich.process import ProcessReport
from vigie.config import VigieConfig
from vigie.store import DECIDED, Store, is_flagged, queries

if TYPE_CHECKING:
    from classifier.model import AdvertClassifier

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    crawl: CrawlReport | None = None
    process: ProcessReport = field(default_factory=ProcessReport)
    media: MediaReport = field(default_factory=MediaReport)
    indexed: int = 0
    deleted: int = 0
    spooled: int = 0
    errors: list[str] = field(default_factory=list)
    es_count: int | None = None
    es_unavailable: bool = False  # said once in `errors`: the networks wait for the next run too
    store_flagged: int = 0
    followed: list[Any] = field(default_factory=list)  # sources followed automatically (`discovery.follow`)
    # After the run (`after_run`): networks as refreshed, and alerts raised and delivered.
    networks: int | None = None
    new_networks: int = 0
    networks_indexed: int | None = None
    alerts_raised: int = 0
    alerts_baseline: int = 0
    alerts_sent: int = 0
    alerts_dead: int = 0
    alerts_waiting: int = 0
    alerts_dead_total: int = 0
    # Whether the store held classified posts before this pass classified anything (a new
    # model re-classifies them all: what counts is that they were there).
    held_before: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "crawl": self.crawl.to_json() if self.crawl else None,
            "process": self.process.to_json(),
            "media": self.media.to_json(),
            "index": {
                "indexed": self.indexed,
                "deleted": self.deleted,
                "spooled": self.spooled,
                "es_count": self.es_count,
                "store_flagged": self.store_flagged,
            },
            "errors": self.errors,
            "followed": [c.to_json(evidence_limit=5) for c in self.followed],
            "networks": {
                "networks": self.networks,
                "new": self.new_networks,
                "indexed": self.networks_indexed,
            },
            "alerts": {
                "raised": self.alerts_raised,
                "baseline": self.alerts_baseline,
                "sent": self.alerts_sent,
                "dead": self.alerts_dead,
                "waiting": self.alerts_waiting,
                "dead_letters": self.alerts_dead_total,
            },
        }


def load_classifier(config: VigieConfig) -> AdvertClassifier:
    from classifier.model import AdvertClassifier
    from vigie.paths import default_classifier_dir

    model_dir = (
        Path(config.classifier.model_dir).expanduser()
        if config.classifier.model_dir
        else default_classifier_dir()
    )
    return AdvertClassifier.load(
        model_dir, runtime=config.classifier.runtime, batch_size=config.classifier.batch_size
    )


def crawl(config: VigieConfig, report: RunReport) -> None:
    """Crawl the configured Telegram sources and the approved ones (`vigie sources add`,
    automatic following); what failed goes into the report's errors."""
    from crawlers.run import crawl_telegram
    from pipeline.discovery import telegram_channels

    with Store(config.store_url()) as store:
        channels = telegram_channels(config, store)
    if not channels:
        return
    report.crawl = crawl_telegram(config, channels)
    for failed in report.crawl.failed:
        report.errors.append(f"{failed.platform}:{failed.channel}: {failed.error}")
    report.errors.extend(report.crawl.errors)


def classify_and_index(
    config: VigieConfig,
    report: RunReport,
    progress: Any = None,
    clf: AdvertClassifier | None = None,
    store: Store | None = None,
) -> RunReport:
    """Classify what is stored and not yet classified by this model, extract entities, group
    reposts, and index into Elasticsearch when one is configured. `clf`: a classifier
    already loaded (the daemon's worker keeps one); `store`: a store already open, left open."""
    from pipeline.discovery import follow
    from pipeline.enrich.media import fetch_and_read, release
    from pipeline.enrich.process import model_id, process
    from pipeline.index.template import es_url
    from vigie.store.analysis import count_pending

    clf = clf or load_classifier(config)
    with nullcontext(store) if store is not None else Store(config.store_url()) as store:
        report.media = fetch_and_read(config, store)
        report.errors.extend(report.media.errors)
        from vigie.store.alerts import classified_posts

        report.held_before = classified_posts(store) > 0
        total = count_pending(store, model_id(clf))
        task = progress.add_task("classifying", total=total) if progress else None
        report.process = process(
            store,
            clf,
            batch_size=config.pipeline.batch_size,
            keep_text=config.pipeline.keep_text_below_threshold,
            progress=(lambda n: progress.advance(task, n)) if progress else None,
            pdq_distance=config.media.pdq_distance,
        )
        report.media.deleted = release(config, store)
        report.followed = follow(config, store)  # the sources new flags point to, when configured
        report.store_flagged = queries.count_flagged(store, DECIDED)
        if es_url(config.elasticsearch):
            index(config, store, report)
    return report


DELIVERY_BUDGET_SECONDS = 30.0


def after_run(
    config: VigieConfig,
    store: Store,
    report: RunReport,
    wait: float = 0.0,
    deliver_alerts: bool = True,
    budget: float = DELIVERY_BUDGET_SECONDS,
) -> None:
    """What follows a classification: refresh the networks (when it classified something)
    and index them when Elasticsearch is configured, raise the alerts their rules find, and,
    with `deliver_alerts`, deliver what is due within `budget` seconds in all (waiting up to
    `wait` seconds for retries); what is left waits in the store for the next pass (the
    daemon's classifier only raises: its `alerts` job delivers). Each step that fails adds
    one line to the report's errors and leaves the others to run: nothing stored is lost,
    and what was not done is done by the next run."""
    from pipeline.alerts.deliver import deliver
    from pipeline.alerts.rules import failure_line, raise_new
    from pipeline.index.template import es_url
    from pipeline.intel.networks import Network, refresh
    from vigie.store import alerts as stored_alerts

    networks: list[Network] | None = None  # as just refreshed, else the rules read them back
    if report.process.processed:
        try:
            refreshed = refresh(store, config)
        except Exception as exc:
            log.debug("network refresh failed", exc_info=True)
            report.errors.append(f"networks: not refreshed ({failure_line(exc)}); the next run tries again")
        else:
            networks = refreshed.networks
            report.networks, report.new_networks = len(refreshed.networks), len(refreshed.new)
            if es_url(config.elasticsearch) and not report.es_unavailable:
                try:
                    from pipeline.index.networks import index_networks

                    report.networks_indexed = index_networks(config, refreshed.networks)
                except Exception as exc:
                    log.debug("network indexing failed", exc_info=True)
                    report.errors.append(
                        f"networks: not indexed ({failure_line(exc)}); the next run tries again"
                    )
    try:
        raised = raise_new(store, config, held_before=report.held_before, networks=networks)
    except Exception as exc:
        log.debug("alert evaluation failed", exc_info=True)
        report.errors.append(f"alerts: rules not evaluated ({failure_line(exc)}); the next run tries again")
    else:
        report.alerts_raised, report.alerts_baseline = len(raised.new), raised.baseline
        report.errors.extend(raised.errors)
    if deliver_alerts:
        try:
            delivered = deliver(store, config, wait=min(wait, budget), budget=budget)
        except Exception as exc:
            log.debug("alert delivery failed", exc_info=True)
            report.errors.append(f"alerts: not delivered ({failure_line(exc)}); they wait in the store")
        else:
            report.alerts_sent, report.alerts_dead = delivered.sent, delivered.dead
            report.errors.extend(delivered.messages(config))
    try:
        waiting = stored_alerts.counts(store)
        report.alerts_waiting, report.alerts_dead_total = waiting["pending"], waiting["dead"]
    except Exception as exc:
        log.debug("alert counts failed", exc_info=True)
        report.errors.append(f"alerts: not counted ({failure_line(exc)})")


def index(config: VigieConfig, store: Store, report: RunReport, keys: Sequence[str] | None = None) -> None:
    """Send what the index lacks (with `keys`, only those posts' documents) into the report."""
    from elasticsearch import ApiError, TransportError

    from pipeline.index.documents import count_indexed, sync
    from pipeline.index.template import connect, describe_es_error, es_url, setup
    from vigie.store.cluster import LockWaitTimeout

    es = connect(config.elasticsearch)
    try:
        es.cluster.health(timeout="10s")
        setup(es, config.elasticsearch)
    except (TransportError, ApiError) as exc:
        waiting = queries.count_unindexed_adverts(store)
        report.es_unavailable = True
        report.errors.append(
            f"{describe_es_error(exc, es_url(config.elasticsearch))}; "
            f"{waiting} documents wait in the store and will be sent by the next run or `vigie es replay`"
        )
        return
    try:
        result = sync(store, es, config.elasticsearch, keys)
    except LockWaitTimeout as exc:  # a migration, or a sync stuck on a slow cluster
        waiting = queries.count_unindexed_adverts(store)
        report.errors.append(f"{exc}; {waiting} documents wait in the store for the next run")
        return
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
    """Flagged posts grouped by repost cluster, each with every URL, contacts, routes and
    cues: what an analyst reviews before referring. Only sure adverts not rejected and confirmed
    posts: the review band waits in `vigie review`. Returns the number of clusters written."""
    from pipeline.refer.review import review_queue

    with Store(config.store_url()) as store:
        clusters = []
        for cluster in review_queue(store, limit=None, include_decided=True):
            # A sure advert an analyst rejected is no candidate any more.
            cluster["posts"] = [
                p for p in cluster["posts"] if is_flagged(p["band"] == "advert", p["status"], DECIDED)
            ]
            if cluster["posts"]:
                clusters.append(cluster)
    for cluster in clusters:
        cluster["urls"] = [post["url"] for post in cluster["posts"]]
        cluster["channels"] = sorted({post["channel"] for post in cluster["posts"]})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"clusters": clusters}, ensure_ascii=False, indent=1), encoding="utf-8")
    return len(clusters)


def reindex_if_configured(config: VigieConfig) -> None:
    """Push changed review/referral state to Elasticsearch when one is configured."""
    from pipeline.index.template import es_url

    if not es_url(config.elasticsearch):
        return
    report = RunReport()
    with Store(config.store_url()) as store:
        index(config, store, report)
    for error in report.errors:
        log.warning("%s", error)
