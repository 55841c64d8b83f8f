"""A newcomer's path, the way the README tells it: `make demo` (that is, `vigie demo`), then
the commands it prints, run as written with the real `vigie` entry point on what the demo
produced — status, review, confirm, export, removal check against `vigie mirror`, stats,
report — while the user's own store stays untouched."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlers.telegram.mirror import load_channels
from vigie.store import Store

VIGIE = str(Path(sys.executable).with_name("vigie"))
README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDERS = {
    "<cluster>": r"\S+",
    "<why>": r'[^"]+',
    "<url>": r"https://t\.me/[a-z0-9_]+/\d+",
    "<year>": r"\d{4}",
    ".venv/bin/activate": r"\S*bin/activate",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def command_lines(text: str) -> list[str]:
    """Shell lines without their trailing comments."""
    return [re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines() if line.strip()]


def readme_path() -> list[str]:
    """The commands of the README's "Start here" block that goes on from the demo."""
    section = README.read_text(encoding="utf-8").split("## Start here", 1)[1].split("\n## ", 1)[0]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "VIGIE_CONFIG" in b)
    return command_lines(block)


def printed_path(stdout: str) -> list[str]:
    """The commands the demo printed last (indented lines after "Next, in this shell:")."""
    tail = stdout.split("Next, in this shell:", 1)[1]
    return command_lines("\n".join(line for line in tail.splitlines() if line.startswith("  ")))


def matches(readme_line: str, data_dir: Path, port: int) -> re.Pattern[str]:
    pattern = re.escape(readme_line.replace("~/.local/share/vigie", str(data_dir)).replace("8080", str(port)))
    for placeholder, regex in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(placeholder), regex)
    return re.compile(pattern)


class Shell:
    """Runs printed lines as a user's shell would: `export`/`unset` change the environment,
    `vigie …` runs the installed entry point in the user's working directory."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.background: list[subprocess.Popen[str]] = []

    def argv(self, line: str) -> list[str]:
        words = shlex.split(line, comments=True)
        assert words[0] == "vigie", line
        return [VIGIE, *words[1:]]

    def run(self, line: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            self.env[name] = value
            return subprocess.CompletedProcess(words, 0, "", "")
        if words[0] == "unset":
            self.env.pop(words[1], None)
            return subprocess.CompletedProcess(words, 0, "", "")
        if words[0] == "source":  # the entry point is called by its path instead
            assert (self.cwd / words[1]).is_file(), line
            return subprocess.CompletedProcess(words, 0, "", "")
        return subprocess.run(
            self.argv(line), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def ok(self, line: str, timeout: float = 300) -> str:
        result = self.run(line, timeout)
        assert result.returncode == 0, (
            f"{line} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    def start(self, line: str, ready: str, timeout: float = 60) -> list[str]:
        """Start a long-running command; return its output up to the line containing `ready`."""
        proc = subprocess.Popen(
            self.argv(line),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.background.append(proc)
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for out in proc.stdout or ():
                lines.put(out)

        threading.Thread(target=read, daemon=True).start()
        seen: list[str] = []
        while not seen or ready not in seen[-1]:
            try:
                seen.append(lines.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(
                    f"{line}: no {ready!r} in {timeout}s (exit {proc.poll()}): {seen}"
                ) from None
        return seen

    def stop(self) -> None:
        for proc in self.background:
            proc.terminate()
            proc.wait(timeout=30)


def user_shell(home: Path, reviewer: str, **env: str) -> tuple[Shell, Path]:
    """A shell in a user's working directory under `home`, with a data directory of its own
    (`home/data`, not made) and none of this process's Vigie settings but the model cache."""
    data = home / "data"
    work = home / "work"
    work.mkdir(parents=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIE_", "VIRTUAL_ENV"))}
    if "VIGIE_CACHE_DIR" in os.environ:  # where the trained classifier is
        clean["VIGIE_CACHE_DIR"] = os.environ["VIGIE_CACHE_DIR"]
    clean.update({"VIGIE_DATA_DIR": str(data), "VIGIE_REVIEWER": reviewer, "PYTHONUNBUFFERED": "1", **env})
    return Shell(work, clean), data


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[tuple[Shell, Path]]:
    """A user's working directory and data directory, holding a store of their own."""
    shell, data = user_shell(tmp_path, "newcomer")
    with Store(data / "vigie.db"):
        pass
    yield shell, data
    shell.stop()


def test_the_readme_path_from_the_demo_to_a_verified_removal(newcomer, shipped):
    shell, data = newcomer
    own_store = sha256(data / "vigie.db")
    port = free_port()
    demo = shell.ok(f"vigie demo --mirror-port {port}", timeout=900)
    demo_dir = data / "demo"
    candidates = json.loads((demo_dir / "referral-candidates.json").read_text(encoding="utf-8"))["clusters"]

    # The demo prints the README's commands, filled in; those are what the walk runs.
    printed = printed_path(demo)
    readme = readme_path()
    if not any(line.startswith("source ") for line in printed):  # `vigie` is on the PATH already
        readme = [line for line in readme if not line.startswith("source ")]
    assert len(printed) == len(readme), (printed, readme)
    for want, got in zip(readme, printed, strict=True):
        assert matches(want, data, port).fullmatch(got), (want, got)

    target = urls = taken_down = None
    awaiting: list[dict] = []
    for line in printed:
        if line.startswith("vigie mirror "):
            # First without the mirror: the check says what to start and records nothing.
            unreachable = shell.run("vigie referrals check")
            assert unreachable.returncode == 1, unreachable.stdout
            assert f"vigie mirror --port {port}" in unreachable.stderr
            assert len(unreachable.stderr.strip().splitlines()) == 1, unreachable.stderr
            pending = json.loads(shell.ok("vigie referrals stats --json"))["by_platform"]["telegram"]
            assert pending["outcomes"] == {"removed": 0, "online": 0, "pending": len(urls or [])}
            taken_down = shlex.split(line)[-1]
            assert urls and taken_down in urls
            assert f"taken down: {taken_down}\n" in shell.start(line, ready="serving sample channels")
            continue
        if line == "vigie es replay":  # no VIGIE_ES_URL here: one clear line
            replay = shell.run(line)
            assert replay.returncode == 1 and "no Elasticsearch URL" in replay.stderr
            continue
        out = shell.ok(line)
        if line.startswith("export VIGIE_CONFIG="):
            assert shell.env["VIGIE_CONFIG"] == str(demo_dir / "vigie.yaml")
        elif line == "vigie status":
            assert str(demo_dir / "vigie.db") in out.replace("\n", "")
            assert all(f"telegram:{channel}" in out for channel in load_channels())
        elif line == "vigie review":
            shown = re.search(r"Awaiting review \((\d+) shown\)", out)
            assert shown and int(shown.group(1)) == min(20, len(candidates)) > 0
            assert candidates[0]["target"] in out
            # The cluster the demo proposes to confirm is one of those shown.
            target = shlex.split(next(p for p in printed if p.startswith("vigie review confirm ")))[3]
            assert target in out
            awaiting = json.loads(shell.ok("vigie review --json --limit 1000"))
        elif line.startswith("vigie review confirm "):
            # Every flagged post of the cluster, the review band's too: the queue's view of it.
            cluster = next(g for g in awaiting if g["target"] == target)
            urls = [post["url"] for post in cluster["posts"]]
            assert any(c["target"] == target for c in candidates)
            assert len(urls) >= 2, "the demo proposes a cluster of reposts"
            assert f"confirmed {len(urls)} post(s) of {target}" in out
            waiting = json.loads(shell.ok("vigie review --json --limit 1000"))
            assert len(waiting) == len(awaiting) - 1 and target not in {g["target"] for g in waiting}
        elif line.startswith("vigie referrals export "):
            assert urls and f"exported 1 notice(s), {len(urls)} URL(s) for telegram" in out
            notices = list((demo_dir / "referrals").glob("VIGIE-TELEGRAM-*/*.txt"))
            assert len(notices) == 1
            notice = notices[0].read_text(encoding="utf-8")
            assert all(url in notice for url in urls) and "Vigie demo (sample data)" in notice
        elif line == "vigie referrals check":
            assert urls and f"checked {len(urls)}: 1 removed, {len(urls) - 1} still online, 0 errors" in out
        elif line.startswith("vigie referrals stats --format art22 "):
            # The notice just sent, counted; nothing in it names a channel or a post.
            assert urls and "Article 22(3)" in out and f"1 notice covering {len(urls)} items" in out
            assert "| Telegram (Telegram Messenger Inc.) | 1 | " in out
            assert not any(url in out or url.split("/")[3] in out for url in urls)
        elif line == "vigie networks":
            assert "telegram:kurd_game_dunkirk" in out and "telegram:uk_boat_express" in out
        elif line.startswith("vigie trends --period "):
            assert "taxi game" in out and "Belgium → Ireland" in out
        elif line == "vigie share misp":
            assert "(TLP:AMBER, PAP:AMBER)" in out and "2 networks" in out
        elif line.startswith("vigie referrals stats "):
            assert urls and f"1 notices, {len(urls)} URLs" in out
            figures = json.loads(shell.ok(line + " --json"))["by_platform"]["telegram"]
            assert figures["outcomes"] == {"removed": 1, "online": len(urls) - 1, "pending": 0}
            hours = figures["median_hours_to_removal"]
            assert hours is not None and f"│ {hours}" in out  # 0.0 h is a time, not "-"
        elif line == "vigie report --out report.html":
            assert urls and f"{len(urls)} referrals" in out
            report = (shell.cwd / "report.html").read_text(encoding="utf-8")
            assert target in report
            assert '<div class="kpi-label">Removed</div><div class="kpi-value">1</div>' in report
        elif line == "unset VIGIE_CONFIG":
            assert sha256(data / "vigie.db") == own_store
            assert "telegram:" not in shell.ok("vigie status")  # back on the user's own store
    assert taken_down is not None


def test_the_demo_keeps_to_its_own_directory(newcomer):
    shell, data = newcomer
    own_store = sha256(data / "vigie.db")
    crawled = shell.ok("vigie demo --crawl-only")
    demo_dir = data / "demo"
    assert f"export VIGIE_CONFIG={demo_dir / 'vigie.yaml'}" in crawled
    assert (demo_dir / "vigie.db").is_file() and sha256(data / "vigie.db") == own_store
    shell.run(f"export VIGIE_CONFIG={demo_dir / 'vigie.yaml'}")

    def counts() -> dict[str, tuple[int, int]]:
        sources = json.loads(shell.ok("vigie status --json"))["sources"]
        return {s["channel"]: (s["posts"], s["cursor"]) for s in sources}

    before = counts()
    assert set(before) == set(load_channels()) and all(n > 0 for n, _ in before.values())
    shell.ok("vigie demo --crawl-only")  # a second run adds nothing
    assert counts() == before and sha256(data / "vigie.db") == own_store
    refused = shell.run(f"vigie demo --crawl-only --data-dir {data}")
    assert refused.returncode == 1 and "not written by `vigie demo`" in refused.stderr
    assert sha256(data / "vigie.db") == own_store and not (data / "vigie.yaml").exists()
    bad = shell.run("vigie mirror --remove https://t.me/no_such_channel/1")
    assert bad.returncode == 2 and "no such post in the sample channels" in bad.stderr


@pytest.mark.elasticsearch
def test_what_the_demo_could_not_index_goes_with_es_replay(newcomer, shipped, es_url):
    from elasticsearch import Elasticsearch

    from pipeline.index.documents import count_indexed
    from vigie.config import ElasticsearchConfig

    shell, _ = newcomer
    shell.env["VIGIE_ES_URL"] = "http://127.0.0.1:9"  # the cluster is down during the demo
    demo = shell.ok("vigie demo", timeout=900)
    waiting = re.search(r"(\d+)\s+documents\s+wait\s+in\s+the\s+store", demo)
    assert waiting and "vigie es replay" in demo, demo
    shell.run(printed_path(demo)[0])  # export VIGIE_CONFIG=<demo>/vigie.yaml
    shell.env["VIGIE_ES_URL"] = es_url  # and back up
    replay = shell.ok("vigie es replay")
    assert f"{waiting.group(1)} documents in the index" in replay, replay
    es = Elasticsearch(es_url)
    assert count_indexed(es, ElasticsearchConfig(index_prefix="vigie-demo")) == int(waiting.group(1)) > 0
    assert not es.indices.exists_alias(name="vigie-posts")  # sample data stays out of real indices
