"""Read-only commands pointed at a store that does not exist say so, and create nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vigie.cli.main import cli
from vigie.store import Store


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["review"], ["review", "--json"]])
def test_a_store_that_does_not_exist_is_named_and_not_created(tmp_path, args):
    path = tmp_path / "vigie.yaml"
    path.write_text(json.dumps({"data_dir": str(tmp_path / "data")}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    assert result.exit_code == 0, result.output
    assert f"no store at {tmp_path / 'data' / 'vigie.db'}" in result.stderr
    assert "no store" not in result.stdout
    if "--json" in args:
        json.loads(result.stdout)  # the note stays off the JSON document
    assert not (tmp_path / "data" / "vigie.db").exists()


def test_an_existing_empty_store_gets_no_note(tmp_path):
    Store(tmp_path / "data" / "vigie.db").close()  # created, with its schema
    path = tmp_path / "vigie.yaml"
    path.write_text(json.dumps({"data_dir": str(tmp_path / "data")}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 0, result.output
    assert "no store" not in result.stderr
