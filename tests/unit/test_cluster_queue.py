"""The job queue's contract: which egress a source leaves by, the connection string of the
store, and the error a store that is not PostgreSQL gets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from pipeline.cluster import queue
from pipeline.cluster.queue import conninfo, crawl_queue, egress_of
from vigie.config import VigieConfig
from vigie.config_file import parse_config
from vigie.errors import ConfigurationError
from vigie.store.cluster import advisory_key


def config_with(egresses: list[str], sources: list[dict[str, str]] | None = None) -> VigieConfig:
    return parse_config(
        {
            "cluster": {"egresses": {name: {} for name in egresses}},
            "sources": sources or [],
        }
    )


def test_egress_of_is_stable_and_spreads_sources() -> None:
    config = config_with(["eu", "uk", "us"])
    channels = [f"channel_{i}" for i in range(60)]
    first = [egress_of(config, "telegram", c) for c in channels]
    # The same answer in another process's config object (the hash is not Python's hash()).
    again = [egress_of(config_with(["us", "eu", "uk"]), "telegram", c) for c in channels]
    assert first == again
    spread = Counter(first)
    assert set(spread) == {"eu", "uk", "us"}
    assert min(spread.values()) >= 10
    # Case does not move a channel (Telegram usernames are case-insensitive).
    assert egress_of(config, "telegram", "Channel_7") == egress_of(config, "telegram", "channel_7")


def test_egress_of_uses_the_source_egress() -> None:
    config = config_with(
        ["eu", "uk"],
        sources=[
            {"platform": "telegram", "channel": "pinned_a", "egress": "uk"},
            {"platform": "telegram", "channel": "pinned_b", "egress": "eu"},
        ],
    )
    assert egress_of(config, "telegram", "pinned_a") == "uk"
    assert egress_of(config, "telegram", "pinned_b") == "eu"
    assert crawl_queue("uk") == "crawl.uk"


def test_egress_of_with_a_single_egress() -> None:
    config = config_with(["default"])
    assert {egress_of(config, "telegram", f"c{i}") for i in range(20)} == {"default"}


def test_conninfo_from_store_urls() -> None:
    parsed = conninfo_to_dict(conninfo("postgresql+psycopg://vigie:s3cr%40t@db.example:5433/store"))
    assert parsed == {
        "host": "db.example",
        "port": "5433",
        "user": "vigie",
        "password": "s3cr@t",
        "dbname": "store",
    }
    parsed = conninfo_to_dict(conninfo("postgresql://analyst@127.0.0.1/vigie?sslmode=require"))
    assert parsed == {"host": "127.0.0.1", "user": "analyst", "dbname": "vigie", "sslmode": "require"}


@pytest.mark.parametrize("url", ["sqlite:////tmp/vigie.sqlite", "/tmp/vigie.sqlite", "mysql://x@h/db"])
def test_a_store_that_is_not_postgresql_is_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="cluster mode needs a PostgreSQL store"):
        conninfo(url)


def test_make_app_and_ensure_schema_refuse_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIE_STORE_URL", raising=False)
    config = parse_config({"data_dir": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        queue.make_app(config)
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        queue.ensure_schema(config)
    assert not any(tmp_path.iterdir())  # nothing was created


def test_control_tasks_only() -> None:
    with pytest.raises(ValueError, match="not a control task"):
        queue.defer_control(None, None, queue.CRAWL)  # type: ignore[arg-type]


def test_advisory_keys_are_signed_64_bit_and_distinct() -> None:
    keys = {advisory_key(n) for n in ("vigie:leader", "egress:default", "egress:uk", "vigie:queue-schema")}
    assert len(keys) == 4
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert advisory_key("vigie:leader") == advisory_key("vigie:leader")


def test_the_leader_reads_the_model_fingerprint_without_the_model(tmp_path: Path) -> None:
    from pipeline.cluster.leader import classifier_model_id

    model_dir = tmp_path / "clf"
    config = parse_config({"classifier": {"model_dir": str(model_dir)}})
    assert classifier_model_id(config) is None  # no classifier on this node
    model_dir.mkdir()
    meta = model_dir / "vigie_classifier.json"
    meta.write_text(json.dumps({"trained_at": "2026-11-30T10:00:00Z"}))
    assert classifier_model_id(config) == "2026-11-30T10:00:00Z"
    meta.write_text(json.dumps({"fingerprint": "f00d", "trained_at": "2026-11-30T10:00:00Z"}))
    assert classifier_model_id(config) == "f00d"
    meta.write_text("{not json")
    assert classifier_model_id(config) is None


def test_the_leader_does_not_import_the_classifier_runtime() -> None:
    code = (
        "import sys\n"
        "from pipeline.cluster import leader, queue\n"
        "import pipeline.discovery, pipeline.daemon.jobs, vigie.store.claims, vigie.store.cluster\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("HEAVY=")
