"""The daemon's status file, `<data_dir>/daemon-status.json`, rewritten atomically.

It holds the daemon (pid, heartbeat), what is scheduled (each job's next run, from the
scheduler), each job's last outcome, and the children running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigie.config import VigieConfig

log = logging.getLogger("vigie.daemon")

JOBS_FILE = "jobs.sqlite"
STATUS_FILE = "daemon-status.json"
LOCK_FILE = "daemon.lock"
LOG_DIR = "logs"
OUTCOMES = ("ok", "failed", "timeout", "interrupted", "skipped")


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DaemonPaths:
    data_dir: Path

    @classmethod
    def of(cls, config: VigieConfig) -> DaemonPaths:
        return cls(config.data_path())

    @property
    def jobs(self) -> Path:
        return self.data_dir / JOBS_FILE

    @property
    def status(self) -> Path:
        return self.data_dir / STATUS_FILE

    @property
    def lock(self) -> Path:
        return self.data_dir / LOCK_FILE

    @property
    def logs(self) -> Path:
        return self.data_dir / LOG_DIR

    @property
    def daemon_log(self) -> Path:
        return self.logs / "daemon.log"

    def job_log(self, job_id: str) -> Path:
        return self.logs / "jobs" / (job_id.replace(":", "_").replace("/", "_") + ".log")


def read_status_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class StatusBook:
    """The daemon's status, kept in memory and rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: dict[str, Any] = read_status_file(path)
        for section in ("jobs", "children", "scheduled"):
            if not isinstance(self.data.get(section), dict):
                self.data[section] = {}

    def save(self) -> None:
        """Best effort: a full disk must not stop the jobs, only what status shows."""
        with self.lock:
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(self.data, ensure_ascii=False, indent=1), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:
                log.warning("cannot write %s: %s", self.path, exc)

    @contextlib.contextmanager
    def change(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            yield self.data
            self.save()

    def job(self, job_id: str) -> dict[str, Any]:
        jobs: dict[str, Any] = self.data["jobs"]
        return jobs.setdefault(job_id, {"runs": 0, "failures": 0})

    def record_job(
        self,
        job_id: str,
        outcome: str,
        started_at: str,
        duration_s: float,
        error: str | None,
        note: str | None,
        steps: list[dict[str, Any]],
    ) -> None:
        finished_at = utcnow()
        with self.change():
            entry = self.job(job_id)
            entry.pop("running_since", None)
            entry.update(
                last_outcome=outcome,
                last_started_at=started_at,
                last_finished_at=finished_at,
                last_duration_s=duration_s,
                last_error=error,
                last_note=note,
                last_steps=steps,
                runs=int(entry.get("runs", 0)) + 1,
            )
            if outcome in ("failed", "timeout"):
                entry["failures"] = int(entry.get("failures", 0)) + 1
                entry["last_failure"] = {"at": finished_at, "outcome": outcome, "error": error}
