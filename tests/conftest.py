from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crawlers.telegram.mirror import Faults, Mirror, load_channels

pytest_plugins = ["tests.support.es_fixtures", "tests.support.pg_fixtures"]


DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def shipped() -> Any:
    """The classifier `make test` trains (`vigie train --if-stale`) before the tests run."""
    from classifier.model import META_FILE, AdvertClassifier
    from vigie.paths import default_classifier_dir

    directory = default_classifier_dir()
    if not (directory / META_FILE).is_file():
        pytest.fail(f"no trained classifier at {directory}: run `make test` (it trains one) or `vigie train`")
    return AdvertClassifier.load(directory)


def make_channel(name: str, ids: list[int], lang: str = "en") -> dict[str, Any]:
    """A synthetic channel whose posts carry every field the crawler reads."""
    posts = []
    for n, i in enumerate(ids):
        posts.append(
            {
                "id": i,
                "date": f"2026-09-{1 + n % 28:02d}T{n % 24:02d}:{i % 60:02d}:00+00:00",
                "lang": lang,
                "label": 0,
                "kind": "other",
                "text": f"Post {i} of @{name} 🚤\nprice 2500€ & <more> https://example.com/{name}/{i}",
                "views": 37 * i + 5,
                "edited": i % 10 == 0,
                "forwarded_from": f"https://t.me/elsewhere/{i}" if i % 7 == 0 else None,
                "reply_to": ids[n - 1] if n and i % 9 == 0 else None,
                "photos": i % 3,
                "video": i % 5 == 0,
                "link_preview": None,
            }
        )
    return {"username": name, "title": name.title(), "description": "test", "subscribers": 10, "posts": posts}


@pytest.fixture
def sample_channels() -> dict[str, dict[str, Any]]:
    return load_channels()


@pytest.fixture
def mirror_factory() -> Iterator[Callable[..., Mirror]]:
    started: list[Mirror] = []

    def start(channels: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> Mirror:
        mirror = Mirror(copy.deepcopy(channels) if channels is not None else None, **kwargs).start()
        started.append(mirror)
        return mirror

    yield start
    for mirror in started:
        mirror.stop()


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    def write(**overrides: Any) -> Path:
        data: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "crawl": {"download_delay": 0, "autothrottle": False, "backoff_base": 0.2, "lookback_posts": 5},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        path = tmp_path / "vigie.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


def run_vigie(
    *args: str,
    config: Path | None = None,
    timeout: float = 120,
    check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process: Scrapy's reactor runs once per process."""
    cmd = [sys.executable, "-m", "vigie"]
    if config:
        cmd += ["--config", str(config)]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"vigie {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


__all__ = ["DATA", "Faults", "make_channel", "read_jsonl", "run_vigie"]
