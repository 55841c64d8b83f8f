"""Supervision of the `vigie` child processes the jobs run.

A child runs in its own process group: a timeout or a shutdown sends it SIGTERM, then
SIGKILL after a grace period. On Linux a child also dies with the daemon (PR_SET_PDEATHSIG),
so a daemon killed with SIGKILL leaves no crawl behind to race the next one; children
recorded by a daemon that died anyway are killed when the next one starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.daemon.status import StatusBook, utcnow

log = logging.getLogger("vigie.daemon")

STOP_GRACE_SECONDS = 10.0  # SIGTERM to SIGKILL, for a child being stopped
POLL_SECONDS = 0.25
JOB_LOG_MAX_BYTES = 5_000_000


def process_alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def parent_death_signal() -> Callable[[], None] | None:
    """A preexec function making the child get SIGKILL when the daemon dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != parent:  # the daemon died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


@dataclass(frozen=True)
class Exit:
    """How a child ended, as the daemon saw it. `outcome` is ok, failed, timeout or
    interrupted; `reason` says why when the daemon (or a signal) ended it."""

    code: int
    outcome: str
    duration_s: float
    reason: str | None = None


def killed_by(code: int) -> str:
    with contextlib.suppress(ValueError):
        return f"killed by {signal.Signals(-code).name}"
    return f"killed by signal {-code}"


class Supervisor:
    """Starts children, stops them on timeout or shutdown, and lists them in the status
    file so that a daemon started after this one died can kill what it left."""

    def __init__(
        self,
        status: StatusBook,
        env: Mapping[str, str],
        stopping: threading.Event,
        hurry: threading.Event,
    ) -> None:
        self.status = status
        self.env = dict(env)
        self.stopping = stopping  # stop children, with grace
        self.hurry = hurry  # stop children now
        self.preexec = parent_death_signal()

    def run(self, job_id: str, step: str, argv: list[str], log_path: Path, timeout: float) -> Exit:
        """Run `argv` for a job's step; its output is appended to `log_path`."""
        if log_path.exists() and log_path.stat().st_size > JOB_LOG_MAX_BYTES:
            os.replace(log_path, log_path.with_suffix(".log.1"))
        started_at = utcnow()
        with open(log_path, "ab") as out:
            out.write(f"\n=== {started_at} {job_id} {step}: {shlex.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=self.preexec,  # one prctl call: safe enough after fork
            )
        key = str(proc.pid)
        info = {"job": job_id, "step": step, "pid": proc.pid, "pgid": proc.pid, "started_at": started_at}
        with self.status.change() as data:
            data["children"][key] = {**info, "argv": argv}
        began = time.monotonic()
        try:
            code, outcome = self._wait(proc, job_id, step, began, timeout)
        finally:
            with self.status.change() as data:
                data["children"].pop(key, None)
        duration = round(time.monotonic() - began, 3)
        if outcome is None:
            outcome = "ok" if code == 0 else "failed"
        with open(log_path, "ab") as out:
            out.write(f"=== exit {code} after {duration:.1f} s: {outcome}\n".encode())
        return Exit(code, outcome, duration, stopped_reason(outcome, timeout, code))

    def _wait(
        self, proc: subprocess.Popen[bytes], job_id: str, step: str, began: float, timeout: float
    ) -> tuple[int, str | None]:
        stopper = Stopper(proc.pid, f"{job_id} {step}", began, timeout, self.stopping, self.hurry)
        while True:
            try:
                return proc.wait(timeout=POLL_SECONDS), stopper.outcome
            except subprocess.TimeoutExpired:
                stopper.check()

    def reap_orphans(self) -> None:
        """Kill children a previous daemon left running (it died without stopping them)."""
        for info in list(self.status.data.get("children", {}).values()):
            pid, argv = info.get("pid"), info.get("argv")
            if not isinstance(pid, int) or not process_alive(pid) or _cmdline(pid) != argv:
                continue
            log.warning("killing %s (pid %d) left running by a previous daemon", info.get("job"), pid)
            signal_group(int(info.get("pgid", pid)), signal.SIGKILL)
            deadline = time.monotonic() + 5
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


class Stopper:
    """Stops a child's process group when it runs past its timeout or the daemon stops:
    SIGTERM once (Scrapy stops gracefully on the first, abruptly on the second), SIGKILL
    after the grace period or at once on a second signal to the daemon."""

    def __init__(
        self,
        pgid: int,
        what: str,
        began: float,
        timeout: float,
        stopping: threading.Event,
        hurry: threading.Event,
    ) -> None:
        self.pgid, self.what, self.began, self.timeout = pgid, what, began, timeout
        self.stopping, self.hurry = stopping, hurry
        self.outcome: str | None = None  # timeout or interrupted, once stopping it
        self.term_at: float | None = None
        self.killed = False

    def check(self) -> None:
        now = time.monotonic()
        if self.term_at is None:
            if now - self.began >= self.timeout:
                self.outcome = "timeout"
                log.warning("%s: timed out after %g s, stopping it", self.what, self.timeout)
            elif self.stopping.is_set():
                self.outcome = "interrupted"
            if self.outcome is not None:
                self.term_at = now
                signal_group(self.pgid, signal.SIGTERM)
        elif not self.killed and (self.hurry.is_set() or now - self.term_at >= STOP_GRACE_SECONDS):
            self.killed = True
            signal_group(self.pgid, signal.SIGKILL)


def stopped_reason(outcome: str, timeout: float, code: int) -> str | None:
    """Why a child ended, when the daemon or a signal ended it."""
    if outcome == "timeout":
        return f"timed out after {timeout:g} s"
    if outcome == "interrupted":
        return "stopped by the daemon's shutdown"
    return killed_by(code) if code < 0 else None


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def describe_children(children: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The running children as `vigie daemon status` lists them."""
    listed = [dict(info) for info in children.values() if isinstance(info, dict)]
    return sorted(listed, key=lambda c: (str(c.get("job")), str(c.get("started_at"))))
