"""Configuration: the schema every file is validated against once, at load
(`vigie.config_file`). Secrets never live in YAML: they come from environment variables
(see `secret`)."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONFIG_ENV = "VIGIE_CONFIG"
DATA_DIR_ENV = "VIGIE_DATA_DIR"
_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_HTTP_URL = re.compile(r"^https?://[^/\s]+(/[^\s]*)?$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def channel_name(value: str) -> str:
    name = value.strip().removeprefix("@")
    for prefix in ("https://t.me/s/", "https://t.me/", "t.me/s/", "t.me/"):
        name = name.removeprefix(prefix)
    name = name.strip("/").lower()
    if not _CHANNEL.match(name):
        raise ValueError(
            "a Telegram channel username: 4-32 letters, digits or underscores, starting "
            "with a letter (optionally as @name or a t.me link)"
        )
    return name


def http_url(value: str, example: str) -> str:
    """`value` if it is an http(s) URL with a host and a usable port, without a trailing /."""
    expected = f"an http(s) URL such as {example}"
    if not _HTTP_URL.match(value):
        raise ValueError(expected)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:  # a port out of range or not a number, a broken [IPv6] host
        raise ValueError(f"{expected}, with a host and a port from 1 to 65535") from None
    if not parts.hostname or (port is not None and not 1 <= port <= 65535):
        raise ValueError(f"{expected}, with a host and a port from 1 to 65535")
    return value.rstrip("/")


ChannelName = Annotated[str, Field(description="Telegram channel username")]


STORE_URL_ENV = "VIGIE_STORE_URL"
_STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+psycopg://")


class StoreConfig(_Section):
    path: str = Field("vigie.db", description="SQLite file; relative paths are under data_dir")
    url: str = Field(
        "",
        description="Database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB (a team's "
        "shared store); empty: the SQLite file `path`. $VIGIE_STORE_URL overrides it",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(_STORE_SCHEMES):
            raise ValueError(f"a URL starting with {', '.join(_STORE_SCHEMES)}")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError:
            raise ValueError("a database URL with a port from 1 to 65535") from None
        if parts.password:
            raise ValueError(
                f"a URL without a password (secrets are not read from files: put the URL in "
                f"${STORE_URL_ENV}, or the password in $PGPASSWORD or ~/.pgpass)"
            )
        return value


class CrawlConfig(_Section):
    user_agent: str = Field(
        "Vigie/0.1 (public-post monitoring for takedown referrals)",
        min_length=8,
        description="Honest User-Agent sent with every request",
    )
    download_delay: float = Field(2.0, ge=0, le=600, description="Seconds between requests to one domain")
    autothrottle: bool = Field(True, description="Adapt the delay to the server's latency")
    obey_robots_txt: bool = Field(True, description="Respect robots.txt")
    max_pages: int = Field(
        50, ge=1, le=100_000, description="Older pages fetched per channel per run at most"
    )
    lookback_posts: int = Field(
        20, ge=0, le=10_000, description="Posts below the cursor re-read to catch edits"
    )
    retry_times: int = Field(5, ge=0, le=50, description="Retries on 429/5xx/network errors")
    backoff_base: float = Field(
        2.0, ge=0, le=300, description="First retry delay in seconds; doubles each time"
    )
    max_retry_after: float = Field(
        900.0, ge=0, le=86_400, description="Cap on a server's Retry-After, seconds"
    )
    timeout: float = Field(30.0, gt=0, le=600, description="Download timeout, seconds")


class TelegramConfig(_Section):
    base_url: str = Field("https://t.me", description="Preview host; change only for mirrors and tests")
    export_timezone: str = Field(
        "",
        description="IANA time zone of Telegram Desktop exports without date_unixtime (older exports "
        "hold local wall-clock time); empty: kept with an unknown offset, with a warning",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value, "https://t.me")


class ClassifierConfig(_Section):
    model_dir: str = Field(
        "", description="Trained classifier directory; empty: the cache's classifiers/default"
    )
    base_model: str = Field(
        "packaged", min_length=1, description="'packaged', a local model directory, or a hub id"
    )
    runtime: Literal["torch", "torch-int8", "onnx", "onnx-int8"] = Field(
        "onnx", description="Inference runtime"
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=1024,
        description="Posts per encoder batch (small batches of similar length pad less: 8 ran 22% faster than 32)",
    )


class MediaConfig(_Section):
    fetch: bool = Field(
        True, description="Download posts' photos, video thumbnails, sticker previews and documents"
    )
    max_bytes: int = Field(
        10_000_000,
        ge=1_000,
        le=2_000_000_000,
        description="Larger files are not downloaded (recorded as too big)",
    )
    keep_unflagged: bool = Field(
        False, description="Keep the media of posts not flagged (by default deleted, like their text)"
    )
    retention_days: int = Field(
        365,
        ge=0,
        le=36_500,
        description="Media files older than this are deleted, unless under referral; 0 keeps them",
    )
    ocr: bool = Field(True, description="Read text in images with Tesseract")
    ocr_fallback: str = Field(
        "eng+ara", description="Tesseract models when a post's language and script say nothing better"
    )
    pdq_distance: int = Field(
        22, ge=0, le=128, description="Images whose PDQ hashes differ in at most this many bits are one flyer"
    )


class PipelineConfig(_Section):
    keep_text_below_threshold: bool = Field(
        False, description="Keep the text of posts that are not flagged (default: only key, score and times)"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Posts classified per batch")


class ElasticsearchConfig(_Section):
    url: str = Field("", description="Cluster URL; empty disables indexing. $VIGIE_ES_URL overrides it")
    index_prefix: str = Field(
        "vigie-posts", pattern=r"^[a-z][a-z0-9_-]{0,60}$", description="Indices and alias name"
    )
    shards: int = Field(1, ge=1, le=64, description="Primary shards per monthly index")
    replicas: int = Field(0, ge=0, le=8, description="Replicas per index")
    chunk_size: int = Field(500, ge=1, le=10_000, description="Documents per bulk request")
    max_retries: int = Field(
        5, ge=0, le=20, description="Retries of a rejected (429) bulk item, with backoff"
    )
    timeout: float = Field(30.0, gt=0, le=600, description="Request timeout, seconds")
    verify_certs: bool = Field(True, description="Verify TLS certificates (CA file from $VIGIE_ES_CA_FILE)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value, "https://es.example.org:9200") if value else value


class KibanaConfig(_Section):
    url: str = Field("", description="Kibana URL for `vigie kibana install`; $VIGIE_KIBANA_URL overrides it")
    space: str = Field("", description="Kibana space id; empty for the default space")


class ReferralsConfig(_Section):
    notifier_name: str = Field("", description="Who sends notices (DSA Art. 16(2)(c)); required to export")
    notifier_email: str = Field("", description="Where platforms answer; required to export")
    organisation: str = Field("", description="The notifier's organisation")
    trusted_flagger: bool = Field(
        False, description="Notices say the notifier is a DSA Art. 22 trusted flagger"
    )
    jurisdiction: str = Field("EU", description="Law the explanation cites: EU, UK")
    out_dir: str = Field("referrals", description="Where exports go; relative paths are under data_dir")
    recheck_hours: float = Field(
        24.0, gt=0, le=24 * 90, description="Hours between removal checks of an item"
    )
    independence: str = Field(
        "",
        description="How the notifier keeps its independence from platforms (DSA Art. 22(2)(b)), for the "
        "Art. 22 report",
    )

    @field_validator("notifier_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("an email address")
        return value

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str) -> str:
        if value not in ("EU", "UK"):
            raise ValueError("EU or UK")
        return value


class DaemonConfig(_Section):
    timezone: str = Field("UTC", description="Timezone for cron schedules")
    crawl_every_minutes: float = Field(
        60.0, gt=0, le=7 * 24 * 60, description="Default crawl interval per source"
    )
    removal_check_every_minutes: float = Field(
        60.0, gt=0, le=7 * 24 * 60, description="How often removal checks run"
    )
    replay_every_minutes: float = Field(
        10.0, gt=0, le=24 * 60, description="How often the Elasticsearch spool is replayed"
    )
    alerts_every_minutes: float = Field(
        10.0, gt=0, le=24 * 60, description="How often alert rules are checked and due deliveries sent"
    )
    misfire_grace_seconds: int = Field(
        300, ge=1, le=86_400, description="A job late by more than this is skipped"
    )
    job_timeout_seconds: int = Field(3600, ge=10, le=86_400, description="A job running longer is stopped")


class DiscoveryConfig(_Section):
    follow: bool = Field(
        False, description="Approve candidate sources automatically (else an analyst approves each)"
    )
    max_hops: int = Field(1, ge=1, le=5, description="How far from a configured source a followed one may be")
    min_score: float = Field(3.0, ge=0, description="The score a candidate needs to be followed")
    daily_cap: int = Field(5, ge=0, le=1000, description="Sources followed automatically per day, at most")


class NetworksConfig(_Section):
    hotlines: list[str] = Field(
        default_factory=list,
        description="Contacts that never link two sources (NGO hotlines, emergency numbers): phones in "
        "E.164, @handles, messenger links",
    )
    max_sources_per_contact: int = Field(
        8,
        ge=2,
        le=10_000,
        description="A contact seen in more sources than this is too common to link them (a hotline "
        "nobody listed)",
    )
    min_weight: float = Field(
        0.5,
        gt=0,
        le=100,
        description="Two sources are one network when what they share weighs at least this; a member "
        "(contact, payment office, wallet, repost or image cluster) shared by n sources weighs 1/(n-1): "
        "at 0.5, one used by up to three sources links them alone, a commoner one needs more shared",
    )


class EurRate(_Section):
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    since: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="First day the rate applies (YYYY-MM-DD)")
    eur: float = Field(gt=0, description="Euros for one unit of the currency")

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: object) -> object:
        # YAML reads an unquoted 2026-01-01 as a date.
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError("a day written YYYY-MM-DD") from None
        return value


# Reference rates (EUR per unit), for prices in the trends; replace with your unit's own.
DEFAULT_EUR_RATES = (
    ("GBP", "2026-01-01", 1.17),
    ("USD", "2026-01-01", 0.86),
    ("TRY", "2026-01-01", 0.021),
    ("IQD", "2026-01-01", 0.00066),
    ("IRR", "2026-01-01", 0.00002),
    ("AFN", "2026-01-01", 0.0124),
    ("PKR", "2026-01-01", 0.0031),
    ("ETB", "2026-01-01", 0.0066),
    ("ERN", "2026-01-01", 0.057),
    ("SAR", "2026-01-01", 0.23),
    ("AED", "2026-01-01", 0.234),
    ("ALL", "2026-01-01", 0.0104),
    ("VND", "2026-01-01", 0.000033),
)


class TrendsConfig(_Section):
    eur_rates: list[EurRate] = Field(
        default_factory=lambda: [EurRate(currency=c, since=s, eur=r) for c, s, r in DEFAULT_EUR_RATES],
        description="Exchange rates to EUR, each from a date on; a price is converted at the latest "
        "rate dated on or before its post",
    )
    baseline_months: int = Field(
        3, ge=1, le=36, description="Months before the period that new terms and routes are measured against"
    )
    min_term_posts: int = Field(
        3, ge=1, le=1000, description="Flagged posts a term needs in the period to be offered as a new term"
    )
    min_route_posts: int = Field(
        2, ge=1, le=1000, description="Flagged posts a route needs in the period to be listed as a new route"
    )
    min_price_eur: float = Field(
        50.0,
        ge=0,
        le=100_000,
        description="Prices worth less (in EUR) are not prices of a crossing (a misread number, a deposit "
        "per child…) and are left out of medians",
    )


class SharingConfig(_Section):
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = Field(
        "amber", description="Traffic Light Protocol marking of MISP events and STIX bundles"
    )
    pap: Literal["clear", "green", "amber", "red"] = Field(
        "amber", description="Permissible Actions Protocol marking"
    )
    organisation: str = Field("", description="Who shares (the MISP event's creator, the STIX identity)")
    include_text: bool = Field(
        True, description="Flagged posts' text goes into the exports (never the text of unflagged posts)"
    )


class WebhookConfig(_Section):
    url: str = Field("", description="Where alerts are POSTed as JSON; empty: no webhook")
    max_attempts: int = Field(
        5, ge=1, le=50, description="Tries per alert before it is kept as a dead letter"
    )
    backoff_base: float = Field(
        2.0, ge=0, le=600, description="Seconds before the second try; doubles each time"
    )
    timeout: float = Field(10.0, gt=0, le=300, description="Seconds per request")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        url = http_url(value, "https://alerts.example.org/vigie")
        # Alerts carry TLP-marked intelligence: plain HTTP only to this machine.
        if url.startswith("http://") and urlsplit(url).hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError(
                "an https:// URL (alerts are not sent in clear beyond this machine; http:// is only for localhost)"
            )
        return url


class EmailConfig(_Section):
    host: str = Field(
        "", description="SMTP server; empty: no email ($VIGIE_SMTP_USER/$VIGIE_SMTP_PASSWORD log in)"
    )
    port: int = Field(587, ge=1, le=65535, description="SMTP port")
    starttls: bool = Field(
        True, description="Upgrade the connection with STARTTLS before logging in or sending"
    )
    sender: str = Field("", description="From address")
    recipients: list[str] = Field(default_factory=list, description="Who receives alerts")
    timeout: float = Field(30.0, gt=0, le=300, description="Seconds per connection")
    max_attempts: int = Field(
        5, ge=1, le=50, description="Tries per alert before it is kept as a dead letter"
    )
    backoff_base: float = Field(
        30.0, ge=0, le=3600, description="Seconds before the second try; doubles each time"
    )


class AlertRules(_Section):
    new_network: bool = Field(True, description="A network not seen before")
    new_contact: bool = Field(True, description="A new contact joins a known network")
    cluster_score: float | None = Field(
        0.95, ge=0, le=1, description="A repost cluster whose best score reaches this; empty: off"
    )
    cluster_min_posts: int = Field(3, ge=2, le=10_000, description="Posts a cluster needs for that alert")
    route_weekly_factor: float | None = Field(
        2.0,
        gt=1,
        le=100,
        description="A route's flagged posts this week above this many times its weekly baseline; empty: off",
    )
    route_min_posts: int = Field(
        5, ge=1, le=10_000, description="Posts in the week a route needs for that alert"
    )
    still_online_hours: float | None = Field(
        72.0,
        gt=0,
        le=24 * 365,
        description="A referred item still online this many hours after referral; empty: off",
    )


class AlertsConfig(_Section):
    give_up_hours: float = Field(
        48.0,
        gt=0,
        le=24 * 90,
        description="A failed delivery is retried (its backoff capped at max_backoff_seconds) until it has "
        "been tried max_attempts times and is this old; then it is kept as a dead letter",
    )
    max_backoff_seconds: float = Field(
        3600.0, gt=0, le=86_400, description="The longest wait between two tries of a delivery"
    )
    rules: AlertRules = AlertRules()
    webhook: WebhookConfig = WebhookConfig()
    email: EmailConfig = EmailConfig()


# The post fields a CSV or JSON Lines file's columns may fill (`vigie import csv`).
CSV_FIELDS = (
    "platform",
    "channel",
    "post_id",
    "url",
    "text",
    "published_at",
    "author_name",
    "views",
    "likes",
    "shares",
    "comments",
    "hashtags",
    "mentions",
    "links",
    "media",
)


class CsvImportConfig(_Section):
    platform: str = Field("", description="The platform of every row, when no column names it")
    timezone: str = Field("", description="IANA time zone of times written without an offset")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Post field -> the file's column (text, post_id, channel…)"
    )

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CSV_FIELDS))
        if unknown:
            raise ValueError(f"unknown post field(s) {', '.join(unknown)}: expected {', '.join(CSV_FIELDS)}")
        return value


class ImportsConfig(_Section):
    csv: CsvImportConfig = CsvImportConfig()


class EgressConfig(_Section):
    proxy: str = Field(
        "",
        description="HTTP(S) proxy the crawls of this egress go through; empty: the worker's own "
        "address. Credentials never here: $VIGIE_PROXY_USER/$VIGIE_PROXY_PASSWORD",
    )
    download_delay: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="Seconds between requests from this egress; default crawl.download_delay",
    )

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str) -> str:
        if not value:
            return value
        url = http_url(value, "http://proxy.example.org:3128")
        if urlsplit(url).username is not None:
            raise ValueError(
                "a proxy URL without a user or password (secrets are not read from files: "
                "set $VIGIE_PROXY_USER and $VIGIE_PROXY_PASSWORD)"
            )
        return url


class ClusterConfig(_Section):
    """`vigie daemon --cluster` and `vigie worker`: several machines over the PostgreSQL store."""

    egresses: dict[str, EgressConfig] = Field(
        default_factory=lambda: {"default": EgressConfig()},
        description="Egress name -> its proxy and politeness; a source's crawls use its `egress`, "
        "else one chosen by a hash of its name; each egress runs one crawl at a time",
    )
    lease_seconds: float = Field(
        60.0, ge=5, le=3600, description="A worker silent this long is dead: its jobs are retried"
    )
    heartbeat_seconds: float = Field(
        10.0, gt=0, le=600, description="How often workers and daemons say they are alive"
    )
    leader_poll_seconds: float = Field(
        5.0, gt=0, le=600, description="How often a standby daemon tries to become the leader"
    )
    plan_every_seconds: float = Field(
        30.0, gt=0, le=3600, description="How often the leader gives pending posts to classification batches"
    )
    classify_batch: int = Field(256, ge=1, le=100_000, description="Posts per classification job")
    job_attempts: int = Field(5, ge=1, le=100, description="Tries of a failed job before it is left failed")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus metrics on this HTTP port; 0: off (--metrics-port)"
    )


class SourceConfig(_Section):
    platform: Literal["telegram"] = Field(description="Only telegram is crawled for now")
    channel: str = Field(description="Channel username, @name or t.me link")
    max_pages: int | None = Field(None, ge=1, le=100_000, description="Overrides crawl.max_pages")
    every_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60, description="Crawl interval (daemon)")
    cron: str | None = Field(
        None, description="Crawl schedule as a cron expression (daemon); wins over every_minutes"
    )
    egress: str | None = Field(
        None, description="Cluster mode: the egress its crawls leave by (a key of cluster.egresses)"
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return channel_name(value)


class VigieConfig(_Section):
    data_dir: str = Field(
        "",
        description="Where the store and caches live; default $VIGIE_DATA_DIR or ~/.local/share/vigie",
    )
    store: StoreConfig = StoreConfig()
    crawl: CrawlConfig = CrawlConfig()
    telegram: TelegramConfig = TelegramConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    pipeline: PipelineConfig = PipelineConfig()
    media: MediaConfig = MediaConfig()
    elasticsearch: ElasticsearchConfig = ElasticsearchConfig()
    kibana: KibanaConfig = KibanaConfig()
    referrals: ReferralsConfig = ReferralsConfig()
    daemon: DaemonConfig = DaemonConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    imports: ImportsConfig = ImportsConfig()
    networks: NetworksConfig = NetworksConfig()
    trends: TrendsConfig = TrendsConfig()
    sharing: SharingConfig = SharingConfig()
    alerts: AlertsConfig = AlertsConfig()
    cluster: ClusterConfig = ClusterConfig()
    sources: list[SourceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _egresses(self) -> VigieConfig:
        if not self.cluster.egresses:
            raise ValueError("cluster.egresses: at least one egress is needed (e.g. default: {})")
        for i, source in enumerate(self.sources):
            if source.egress is not None and source.egress not in self.cluster.egresses:
                known = ", ".join(sorted(self.cluster.egresses))
                raise ValueError(
                    f"sources[{i}].egress = {source.egress!r}: not in cluster.egresses ({known})"
                )
        return self

    def data_path(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        env = os.environ.get(DATA_DIR_ENV)
        return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "vigie"

    def store_path(self) -> Path:
        path = Path(self.store.path).expanduser()
        return path if path.is_absolute() else self.data_path() / path

    def media_path(self) -> Path:
        """Where media files are kept, by content: media/ab/cdef…"""
        return self.data_path() / "media"

    def store_url(self) -> str:
        """The store's database: $VIGIE_STORE_URL, else store.url, else the SQLite file."""
        return os.environ.get(STORE_URL_ENV) or self.store.url or f"sqlite:///{self.store_path()}"


def secret(name: str) -> str | None:
    """Read a secret from the environment; the only place secrets come from."""
    value = os.environ.get(name)
    return value if value else None
