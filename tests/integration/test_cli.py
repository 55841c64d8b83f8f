"""The command line: every --help works, light commands stay light, errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.conftest import run_vigie
from vigie.cli.main import COMMANDS, cli


def all_commands():
    import click

    out: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        out.append((name,))
        if isinstance(command, click.Group):
            out.extend((name, sub) for sub in command.commands)
    return out


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p))
def test_every_subcommand_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_top_level_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize(
    "args", [["--help"], ["crawl", "--help"], ["crawl", "telegram", "--help"], ["status", "--help"]]
)
def test_light_commands_do_not_import_torch_or_transformers(args):
    code = (
        "import sys\nfrom vigie.cli.main import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("HEAVY=")


def test_bad_config_is_one_clean_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("crawl:\n  download_delay: -3\n", encoding="utf-8")
    result = run_vigie("status", config=path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"vigie: {path}: crawl.download_delay = -3: expected a value >= 0"


def test_config_check(tmp_path, config_file):
    path = config_file()
    result = run_vigie("config", "check", str(path))
    assert result.returncode == 0 and "valid" in result.stdout


def test_status_after_a_crawl(tmp_path, mirror_factory, config_file):
    from tests.conftest import make_channel

    mirror = mirror_factory({"stat_chan": make_channel("stat_chan", list(range(1, 6)))})
    config = config_file()
    run_vigie("crawl", "telegram", "stat_chan", "--base-url", mirror.url, config=config, check=True)
    data = json.loads(run_vigie("status", "--json", config=config, check=True).stdout)
    assert data["sources"][0]["channel"] == "stat_chan" and data["sources"][0]["posts"] == 5
    assert data["sources"][0]["cursor"] == 5
    assert data["runs"][0]["status"] == "ok"


def test_crawl_configured_sources(tmp_path, mirror_factory, config_file):
    from tests.conftest import make_channel

    mirror = mirror_factory({"conf_chan": make_channel("conf_chan", [1, 2, 3])})
    config = config_file(
        telegram={"base_url": mirror.url}, sources=[{"platform": "telegram", "channel": "@conf_chan"}]
    )
    result = run_vigie("crawl", "telegram", "--json", config=config, check=True)
    assert json.loads(result.stdout)["totals"]["new"] == 3
    result = run_vigie("crawl", config=config, check=True)
    assert "conf_chan" in result.stdout
