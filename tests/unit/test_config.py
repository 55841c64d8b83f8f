"""Configuration: one clear message per bad field, secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vigie.config import VigieConfig, secret
from vigie.config_file import _safe_load, load_config, parse_config
from vigie.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]

BAD = [
    ({"crawl": {"download_delay": -1}}, "cfg.yaml: crawl.download_delay = -1: expected a value >= 0"),
    (
        {"crawl": {"max_pages": "lots"}},
        "cfg.yaml: crawl.max_pages = 'lots': expected a valid integer, unable to parse string as an integer",
    ),
    (
        {"crawl": {"dowload_delay": 1}},
        "cfg.yaml: crawl.dowload_delay: no such field (check the spelling against config/example.yaml)",
    ),
    (
        {"crawl": {"user_agent": "x"}},
        "cfg.yaml: crawl.user_agent = 'x': expected a string with at least 8 characters",
    ),
    (
        {"telegram": {"base_url": "ftp://mirror"}},
        "cfg.yaml: telegram.base_url = 'ftp://mirror': expected an http(s) URL such as https://t.me",
    ),
    (
        {
            "sources": [
                {"platform": "telegram", "channel": "ok_channel"},
                {"platform": "myspace", "channel": "abcd"},
            ]
        },
        "cfg.yaml: sources[1].platform = 'myspace': expected 'telegram'",
    ),
    (
        {"sources": [{"platform": "telegram", "channel": "no spaces"}]},
        "cfg.yaml: sources[0].channel = 'no spaces': expected a Telegram channel username: 4-32 letters, "
        "digits or underscores, starting with a letter (optionally as @name or a t.me link)",
    ),
    ({"sources": [{"channel": "abcd"}]}, "cfg.yaml: sources[0].platform: this field is required"),
    (
        {"sources": {"platform": "telegram"}},
        "cfg.yaml: sources (a mapping): expected a valid list",
    ),
    ({"store": {"path": 5}}, "cfg.yaml: store.path = 5: expected a valid string"),
    ([1, 2], "cfg.yaml: (top level): expected a mapping of sections, got list"),
    (
        {"elasticsearch": {"api_key": "abc"}},
        "cfg.yaml: elasticsearch.api_key: secrets are not read from files; set them in the environment "
        "(for example VIGIE_ES_API_KEY) and remove this field",
    ),
    ({"notify": {"smtp_password": "abc"}}, "cfg.yaml: notify.smtp_password: secrets are not read from files"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_config_names_file_field_value_and_expectation(data, message):
    with pytest.raises(ConfigurationError) as info:
        parse_config(data, "cfg.yaml")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_secret_values_never_appear_in_the_message():
    with pytest.raises(ConfigurationError) as info:
        parse_config({"elasticsearch": {"password": "hunter2-very-secret"}}, "cfg.yaml")
    assert "hunter2" not in str(info.value)


def test_each_bad_field_gets_its_own_line():
    with pytest.raises(ConfigurationError) as info:
        parse_config({"crawl": {"download_delay": -1, "max_pages": 0}}, "cfg.yaml")
    assert str(info.value).splitlines() == [
        "cfg.yaml: crawl.download_delay = -1: expected a value >= 0",
        "cfg.yaml: crawl.max_pages = 0: expected a value >= 1",
    ]


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("crawl:\n  download_delay: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"broken.yaml: YAML syntax error at line \d+, column \d+"):
        load_config(path)


def test_a_key_written_twice_is_refused_where_it_repeats(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(
        "store:\n  url: sqlite:///a.db\ncrawl:\n  download_delay: 2\nstore:\n  url: sqlite:///b.db\n"
    )
    with pytest.raises(
        ConfigurationError, match=r"twice.yaml: line 5, column 1: key 'store' is already set at line 1"
    ):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("crawl:\n  download_delay: 2\n  download_delay: 3\n")
    with pytest.raises(ConfigurationError, match=r"line 3, column 3: key 'download_delay'"):
        load_config(nested)
    # The same key in two different mappings, and a merge key beside its own keys, are fine.
    text = "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\nd:\n  x: 3\n"
    assert _safe_load(text, tmp_path / "merge.yaml") == {
        "base": {"x": 1},
        "c": {"x": 1, "y": 2},
        "d": {"x": 3},
    }


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigurationError, match=r"nope\.yaml: cannot read configuration"):
        load_config(tmp_path / "nope.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigurationError, match="not valid UTF-8"):
        load_config(binary)


def test_channel_forms_are_normalised():
    config = parse_config(
        {
            "sources": [
                {"platform": "telegram", "channel": c}
                for c in ("@Some_Channel", "https://t.me/s/other_one/", "t.me/third_one")
            ]
        }
    )
    assert [s.channel for s in config.sources] == ["some_channel", "other_one", "third_one"]


def test_shipped_default_file_equals_the_built_in_defaults():
    data = yaml.safe_load((ROOT / "config" / "default.yaml").read_text(encoding="utf-8"))
    assert parse_config(data, "default.yaml") == VigieConfig()


def test_commented_example_is_valid():
    config = load_config(ROOT / "config" / "example.yaml")
    assert config.sources and config.crawl.obey_robots_txt


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIGIE_DATA_DIR", str(tmp_path / "d"))
    assert VigieConfig().store_path() == tmp_path / "d" / "vigie.db"
    assert VigieConfig(data_dir=str(tmp_path / "x")).store_path() == tmp_path / "x" / "vigie.db"


def test_secret_reads_only_the_environment(monkeypatch):
    monkeypatch.delenv("VIGIE_TEST_SECRET", raising=False)
    assert secret("VIGIE_TEST_SECRET") is None
    monkeypatch.setenv("VIGIE_TEST_SECRET", "s3")
    assert secret("VIGIE_TEST_SECRET") == "s3"


def test_exchange_rates_take_dates_as_yaml_writes_them(tmp_path):
    path = tmp_path / "vigie.yaml"
    path.write_text(
        "trends:\n  eur_rates:\n    - {currency: GBP, since: 2026-07-01, eur: 1.16}\n"
        "    - {currency: USD, since: '2026-07-01', eur: 0.85}\n",
        encoding="utf-8",
    )
    rates = load_config(path).trends.eur_rates
    assert [(r.currency, r.since) for r in rates] == [("GBP", "2026-07-01"), ("USD", "2026-07-01")]
    path.write_text(
        "trends:\n  eur_rates:\n    - {currency: GBP, since: '2026-02-30', eur: 1.1}\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigurationError,
        match=r"trends\.eur_rates\[0\]\.since = .2026-02-30.: expected a day written YYYY-MM-DD",
    ):
        load_config(path)


def test_alert_webhooks_are_https_beyond_this_machine():
    assert parse_config({"alerts": {"webhook": {"url": "http://127.0.0.1:9000/hook"}}}).alerts.webhook.url
    assert parse_config(
        {"alerts": {"webhook": {"url": "https://alerts.example.org/vigie"}}}
    ).alerts.webhook.url
    with pytest.raises(ConfigurationError, match=r"alerts\.webhook\.url = .*: expected an https:// URL"):
        parse_config({"alerts": {"webhook": {"url": "http://alerts.example.org/vigie"}}}, "vigie.yaml")


def test_cluster_egresses_keep_credentials_out_of_the_file():
    ok = parse_config({"cluster": {"egresses": {"eu": {"proxy": "http://proxy.example.org:3128"}}}})
    assert ok.cluster.egresses["eu"].proxy == "http://proxy.example.org:3128"
    with pytest.raises(ConfigurationError) as err:
        parse_config(
            {"cluster": {"egresses": {"eu": {"proxy": "http://bob:hunter2@proxy.example.org:3128"}}}}
        )
    assert "VIGIE_PROXY_PASSWORD" in str(err.value) and "hunter2" not in str(err.value)


def test_a_source_names_a_configured_egress():
    source: dict[str, str] = {"platform": "telegram", "channel": "somechannel"}
    data = {"cluster": {"egresses": {"eu": {}}}, "sources": [source]}
    assert parse_config(data).cluster.egresses.keys() == {"eu"}
    source["egress"] = "us"
    with pytest.raises(
        ConfigurationError, match=r"sources\[0\]\.egress = 'us': not in cluster\.egresses \(eu\)"
    ):
        parse_config(data)
    with pytest.raises(ConfigurationError, match="at least one egress"):
        parse_config({"cluster": {"egresses": {}}})
