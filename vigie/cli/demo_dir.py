"""The demo's own data directory, kept apart from real data.

`vigie demo` writes everything under one directory (default `demo/` in the data directory):
its configuration `vigie.yaml`, its store `vigie.db`, the referral candidates, and later the
exports of the commands run with that configuration. The configuration names the sample
channels as sources, a sample notifier, the local mirror as the preview host and its own
Elasticsearch indices, so every other command works on what the demo produced once
`VIGIE_CONFIG` points at it, and nothing of it reaches a real store or index.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from vigie.config import VigieConfig
from vigie.config_file import parse_config
from vigie.errors import VigieError

CONFIG_NAME = "vigie.yaml"
STORE_NAME = "vigie.db"
CANDIDATES_NAME = "referral-candidates.json"
INDEX_PREFIX = "vigie-demo"
MIRROR_PORT = 8080
HOTLINES = ("+33 4 86 51 71 61",)
MARKER = "# Written by `vigie demo`"
_HEADER = f"""{MARKER}, and rewritten by each run: the configuration of the
# demo's sample data, kept apart from your own. Use it with
#   export VIGIE_CONFIG={{path}}
# and `unset VIGIE_CONFIG` to go back to your own configuration and store.
"""
# What a printed reason may hold: no quote, backslash, dollar or backtick for the shell.
_UNSAFE = re.compile(r"[\"'`$\\\x00-\x1f\x7f]")


def default_dir() -> Path:
    """`demo/` in the data directory ($VIGIE_DATA_DIR, default ~/.local/share/vigie),
    whatever the configuration says: a demo run never lands in a configured store."""
    return VigieConfig().data_path() / "demo"


def check_dir(directory: Path) -> None:
    """Refuse a directory holding a store or a configuration the demo did not write."""
    config = directory / CONFIG_NAME
    ours = config.is_file() and config.read_text(encoding="utf-8", errors="replace").startswith(MARKER)
    if ours:
        return
    found = [p.name for p in (config, directory / STORE_NAME) if p.exists()]
    if found:
        raise VigieError(
            f"{directory} holds {' and '.join(found)} not written by `vigie demo`; the demo writes "
            "sample data only into a directory of its own: choose another --data-dir"
        )


def demo_config(base: VigieConfig, directory: Path, channels: list[str], mirror_port: int) -> dict[str, Any]:
    """The demo's configuration: the loaded one's classifier and Elasticsearch connection,
    everything else the demo's own."""
    elasticsearch = base.elasticsearch.model_dump(exclude_defaults=True)
    elasticsearch["index_prefix"] = INDEX_PREFIX
    data = {
        "data_dir": str(directory.resolve()),
        "store": {"path": STORE_NAME},
        "crawl": {"download_delay": 0.0, "autothrottle": False},
        "telegram": {"base_url": f"http://127.0.0.1:{mirror_port}"},
        "classifier": base.classifier.model_dump(exclude_defaults=True),
        "elasticsearch": elasticsearch,
        "referrals": {
            "notifier_name": "Vigie demo (sample data)",
            "notifier_email": "demo@example.org",
            "organisation": "Vigie demo",
            "independence": "Sample text: the demo has no funding, owners or staff in common with any provider, "
            "and its analysts alone decide what is notified.",
        },
        # An NGO hotline the sample channels quote (Alarm Phone): it links no two of them.
        "networks": {"hotlines": list(HOTLINES)},
        "sources": [{"platform": "telegram", "channel": name} for name in channels],
    }
    return {key: value for key, value in data.items() if value != {}}


def write_config(directory: Path, data: dict[str, Any]) -> tuple[Path, VigieConfig]:
    """Validate and write the demo's configuration atomically; return its path and value."""
    path = directory / CONFIG_NAME
    config = parse_config(data, str(path))
    directory.mkdir(parents=True, exist_ok=True)
    text = _HEADER.format(path=path.resolve()) + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path, config


@dataclass
class Step:
    command: str
    comment: str = ""

    def line(self, width: int) -> str:
        return f"  {self.command:<{width}}  # {self.comment}" if self.comment else f"  {self.command}"


def _activate() -> str | None:
    """`source …/bin/activate` when this `vigie` runs from a virtualenv that is not on the
    PATH yet (`make demo` calls .venv/bin/vigie)."""
    here = Path(sys.prefix) / "bin"
    found = shutil.which("vigie")
    if sys.prefix == sys.base_prefix or (found and Path(found).resolve() == (here / "vigie").resolve()):
        return None
    activate = here / "activate"
    try:
        shown = activate.relative_to(Path.cwd())
    except ValueError:
        shown = activate
    return f"source {shlex.quote(str(shown))}"


def _reason(cluster: dict[str, Any]) -> str:
    cues = [cue.replace("_", " ") for cue in cluster["cues"][:4]]
    return _UNSAFE.sub("", "sample advert: " + (", ".join(cues) if cues else "smuggling service offered"))


def next_steps(
    config_path: Path, config: VigieConfig, cluster: dict[str, Any] | None, year: int
) -> list[tuple[str, list[Step]]]:
    """The commands that go on from the demo, in order, grouped by where they run."""
    port = urlsplit(config.telegram.base_url).port
    here = [
        Step(f"export VIGIE_CONFIG={shlex.quote(str(config_path.resolve()))}", "the demo's configuration")
    ]
    if activate := _activate():
        here.append(Step(activate, "puts `vigie` on the PATH"))
    here += [
        Step("vigie status", "the sample channels: posts, cursors, last run"),
        Step("vigie review", "flagged clusters awaiting a decision"),
    ]
    mirror = f"vigie mirror --port {port}"
    if cluster is not None:
        here.append(
            Step(f'vigie review confirm {cluster["target"]} --reason "{_reason(cluster)}"', "a sample advert")
        )
        mirror += f" --remove {cluster['posts'][0]['url']}"
    here.append(Step("vigie referrals export --platform telegram --format dsa", "one notice per cluster"))
    other = [Step(mirror, "the sample channels again, one referred post taken down")]
    then = [
        Step("vigie referrals check", "removed or still online, from the mirror"),
        Step(f"vigie referrals stats --period {year}", "notices, outcomes, time to removal"),
        Step(
            f"vigie referrals stats --format art22 --period {year}",
            "the trusted flagger's DSA Art. 22 report",
        ),
        Step("vigie networks", "smuggling networks: sources linked by what they share"),
        Step(f"vigie trends --period {year}-Q4", "prices per route and month, new code words, new routes"),
        Step("vigie share misp", "a MISP event for partners (TLP:AMBER)"),
        Step("vigie report --out report.html", "a self-contained HTML report"),
        Step("vigie es replay", "with VIGIE_ES_URL set: what waits in the spool"),
        Step("unset VIGIE_CONFIG", "back to your own configuration and store"),
    ]
    return [
        ("Next, in this shell:", here),
        ("In a second terminal (with `vigie` on its PATH too), and leave it running:", other),
        ("Back in the first one:", then),
    ]


def format_steps(groups: list[tuple[str, list[Step]]]) -> str:
    width = max(len(s.command) for _, steps in groups for s in steps)
    width = min(width, 60)
    lines: list[str] = []
    for title, steps in groups:
        lines.append(title)
        lines.extend(s.line(width) for s in steps)
    return "\n".join(lines)
