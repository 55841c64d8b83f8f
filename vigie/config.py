"""Configuration: YAML validated once, at load, against the schema below.

Secrets never live in YAML: they come from environment variables (see `secret`), and an
error message never repeats the value of a field Vigie does not know. The YAML itself is
bounded: a value that contains itself, or aliases that expand past `YAML_MAX_VALUES`
values, are refused before anything is built from them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vigie.errors import ConfigurationError

CONFIG_ENV = "VIGIE_CONFIG"
DATA_DIR_ENV = "VIGIE_DATA_DIR"
# Keys that look like credentials are refused in files: they belong in the environment.
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api_?key|credential)s?$", re.IGNORECASE)
_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_HTTP_URL = re.compile(r"^https?://[^/\s]+(/[^\s]*)?$")
# A configuration holds a few hundred values; aliases may not multiply them past this.
YAML_MAX_VALUES = 10_000


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


class StoreConfig(_Section):
    path: str = Field("vigie.db", description="SQLite file; relative paths are under data_dir")


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
    runtime: Literal["torch", "torch-int8", "onnx-int8"] = Field("torch", description="Inference runtime")
    batch_size: int = Field(32, ge=1, le=1024, description="Posts per encoder batch")


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
    misfire_grace_seconds: int = Field(
        300, ge=1, le=86_400, description="A job late by more than this is skipped"
    )
    job_timeout_seconds: int = Field(3600, ge=10, le=86_400, description="A job running longer is stopped")


class SourceConfig(_Section):
    platform: Literal["telegram"] = Field(description="Only telegram is crawled for now")
    channel: str = Field(description="Channel username, @name or t.me link")
    max_pages: int | None = Field(None, ge=1, le=100_000, description="Overrides crawl.max_pages")
    every_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60, description="Crawl interval (daemon)")
    cron: str | None = Field(
        None, description="Crawl schedule as a cron expression (daemon); wins over every_minutes"
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
    elasticsearch: ElasticsearchConfig = ElasticsearchConfig()
    kibana: KibanaConfig = KibanaConfig()
    referrals: ReferralsConfig = ReferralsConfig()
    daemon: DaemonConfig = DaemonConfig()
    sources: list[SourceConfig] = Field(default_factory=list)

    def data_path(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        env = os.environ.get(DATA_DIR_ENV)
        return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "vigie"

    def store_path(self) -> Path:
        path = Path(self.store.path).expanduser()
        return path if path.is_absolute() else self.data_path() / path


def secret(name: str) -> str | None:
    """Read a secret from the environment; the only place secrets come from."""
    value = os.environ.get(name)
    return value if value else None


def _find_secret_keys(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SECRET_KEY.search(key):
                found.append(where)
            found.extend(_find_secret_keys(value, where))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_find_secret_keys(value, f"{path}[{i}]"))
    return found


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expected(error: Any) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "no such field (check the spelling against config/example.yaml)"
    if error["type"] == "missing":
        return "this field is required"
    msg = msg.removeprefix("Value error, ")
    for words, sign in (
        ("greater than or equal to", ">="),
        ("less than or equal to", "<="),
        ("greater than", ">"),
        ("less than", "<"),
    ):
        msg = msg.replace(f"Input should be {words}", f"Input should be a value {sign}")
    if sized := re.match(r"^(String|List|Dictionary) should have (.*)$", msg):
        return f"expected a {sized.group(1).lower()} with {sized.group(2)}"
    return re.sub(r"^Input should be ", "expected ", msg) if msg.startswith("Input") else "expected " + msg


def _got(error: Any) -> str:
    """The bad value, as the message shows it. Never the value of a field Vigie does not know
    (it may be a secret under a name the secret check misses), nor what a section holds."""
    if error["type"] in ("missing", "extra_forbidden"):
        return ""
    value = error["input"]
    if isinstance(value, dict):
        return " (a mapping)"
    if isinstance(value, list):
        return " (a list)"
    return f" = {value!r}"


def describe_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = _field_path(tuple(error["loc"]))
        lines.append(f"{source}: {where}{_got(error)}: {_expected(error)}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> VigieConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{source}: (top level): expected a mapping of sections, got {type(data).__name__}"
        )
    secrets = _find_secret_keys(data)
    if secrets:
        raise ConfigurationError(
            f"{source}: {secrets[0]}: secrets are not read from files; set them in the "
            "environment (for example VIGIE_ES_API_KEY) and remove this field"
        )
    try:
        return VigieConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(source, exc)) from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_size(root: yaml.Node, file: Path) -> None:
    """Count the values the document expands to, aliases included, without expanding them:
    each node once, depth first. Refuse a node that contains itself and a document larger
    than YAML_MAX_VALUES (a "billion laughs" is a few lines of aliases)."""
    size: dict[int, int] = {}
    path: set[int] = set()  # nodes whose children are being counted
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        mark = node.start_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        if counted:
            path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in _children(node))
            if size[id(node)] > YAML_MAX_VALUES:
                raise ConfigurationError(
                    f"{file}: {where}: aliases expand this value to more than {YAML_MAX_VALUES} "
                    "values; write the values out instead"
                )
            continue
        if id(node) in size:
            continue
        if id(node) in path:
            raise ConfigurationError(
                f"{file}: {where}: an alias refers to a value that contains it; a configuration "
                "cannot be recursive"
            )
        path.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _safe_load(text: str, file: Path) -> Any:
    """yaml.safe_load, checking the size of the document before building it."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, file)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigurationError(f"{file}: values are nested too deeply") from None
    finally:
        loader.dispose()


def load_config(path: str | Path | None = None) -> VigieConfig:
    """Load FILE, else $VIGIE_CONFIG, else ./vigie.yaml if present, else the defaults."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        if env:
            path = env
        elif Path("vigie.yaml").is_file():
            path = "vigie.yaml"
        else:
            return VigieConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read configuration: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{file}: configuration is not valid UTF-8") from None
    try:
        data = _safe_load(text, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{file}: YAML syntax error at {where}: {problem}") from None
    return parse_config(data, str(file))
