"""The classifier worker: one long-lived child process loads the classifier once and runs
a classification pass (classify, entities, reposts, index, then networks and alerts:
`pipeline.stages.after_run`) per request, so the pass after
each crawl does not load the model again. Each pass records its run in the store.

The daemon writes one line to the worker's stdin per request; the worker answers one JSON
line on stdout when the pass is over, and logs to stderr (the `classify` job's log). A pass
that runs past the job timeout, or a daemon that stops, ends the worker like any child (its
process group gets SIGTERM, then SIGKILL); the next request starts a new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from pipeline.daemon.children import (
    POLL_SECONDS,
    STOP_GRACE_SECONDS,
    Exit,
    Stopper,
    Supervisor,
    signal_group,
    stopped_reason,
)
from pipeline.daemon.jobs import CLASSIFY, CLASSIFY_COMMAND, recorded_run_name
from pipeline.daemon.status import utcnow
from vigie.config import VigieConfig

log = logging.getLogger("vigie.daemon")

WORKER_COMMAND = ("daemon", "classify-worker")
REQUEST = b"classify\n"


# -- in the worker process -------------------------------------------------------------


def serve(config: VigieConfig, requests: IO[str], replies: IO[str]) -> None:
    """Load the classifier, then run one recorded pass per request line until stdin closes."""
    from pipeline.stages import load_classifier

    began = time.monotonic()
    clf = load_classifier(config)
    log.warning("classifier worker %d: model loaded in %.1f s", os.getpid(), time.monotonic() - began)
    for _ in requests:
        status = _classification_pass(config, clf)
        replies.write(json.dumps({"status": status}) + "\n")
        replies.flush()


def _classification_pass(config: VigieConfig, clf: Any) -> str:
    """What `vigie run --no-crawl` does, with the classifier already loaded."""
    from pipeline.stages import RunReport, after_run, classify_and_index
    from vigie.store import Store
    from vigie.store.engine import is_database_error, one_line

    report = RunReport()
    began = time.monotonic()
    try:
        with Store(config.store_url()) as store, store.run(recorded_run_name(CLASSIFY_COMMAND)) as run:
            classify_and_index(config, report, clf=clf, store=store)
            # Networks, then alerts raised (stored); the `alerts` job delivers them, so that
            # a slow or unreachable receiver never holds up a classification.
            after_run(config, store, report, deliver_alerts=False)
            run.status, run.stats = ("partial" if report.errors else "ok"), report.to_json()
    except Exception as exc:  # recorded as a failed run; the worker serves the next request
        detail = one_line(exc) if is_database_error(exc) else str(exc)  # never the statement's post text
        log.error("classification failed: %s: %s", type(exc).__name__, detail)
        return "failed"
    for error in report.errors:
        log.warning("%s", error)
    for c in report.followed:
        log.warning(
            "following %s automatically: score %g (%d flagged posts from %s), hop %d",
            c.key,
            c.score,
            c.flagged_posts,
            ", ".join(c.sources),
            c.hops,
        )
    p = report.process
    log.warning(
        "classified %d posts (%d flagged) in %.1f s", p.processed, p.flagged, time.monotonic() - began
    )
    if report.networks is not None or report.alerts_raised or report.alerts_waiting:
        log.warning(
            "networks: %s (%d new); alerts: %d raised, %d waiting for the alerts job, %d dead letters",
            report.networks, report.new_networks, report.alerts_raised, report.alerts_waiting,
            report.alerts_dead_total,
        )  # fmt: skip
    return run.status


# -- in the daemon ---------------------------------------------------------------------


class ClassifierWorker:
    """The daemon's handle on the worker: starts it when needed, sends a request, waits
    for the answer within the timeout, stops it."""

    def __init__(self, argv: list[str], supervisor: Supervisor, log_path: Path) -> None:
        self.argv, self.log_path = argv, log_path
        self.status, self.env = supervisor.status, supervisor.env
        self.stopping, self.hurry, self.preexec = supervisor.stopping, supervisor.hurry, supervisor.preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self._pending = b""

    def _start(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as out:
            out.write(f"\n=== {utcnow()} classifier worker: {shlex.join(self.argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=out,
                env=self.env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=self.preexec,
            )
        self.proc, self._pending = proc, b""
        self._label(CLASSIFY, "idle")
        return proc

    def _label(self, job_id: str, step: str) -> None:
        """List the worker among the children, with the job it works for."""
        assert self.proc is not None
        info = {"job": job_id, "step": step, "pid": self.proc.pid, "pgid": self.proc.pid}
        with self.status.change() as data:
            data["children"][str(self.proc.pid)] = {**info, "started_at": utcnow(), "argv": self.argv}

    def _forget(self) -> None:
        if self.proc is not None:
            with self.status.change() as data:
                data["children"].pop(str(self.proc.pid), None)
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.proc = None

    def classify(self, requested_by: str, timeout: float) -> Exit:
        """One classification pass, for the crawl job `requested_by`."""
        began = time.monotonic()
        proc = self.proc if self.proc is not None and self.proc.poll() is None else None
        if proc is None:
            self._forget()
            proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        with open(self.log_path, "ab") as out:
            out.write(f"=== {utcnow()} {requested_by} classify\n".encode())
        self._label(requested_by, "classify")
        with contextlib.suppress(OSError):  # it died: its exit status says how
            proc.stdin.write(REQUEST)
            proc.stdin.flush()
        stopper = Stopper(proc.pid, f"{requested_by} classify", began, timeout, self.stopping, self.hurry)
        reply = self._await_reply(proc, stopper)
        duration = round(time.monotonic() - began, 3)
        if reply is not None:
            self._label(CLASSIFY, "idle")
            outcome = "failed" if reply.get("status") == "failed" else "ok"
            return Exit(0 if outcome == "ok" else 1, outcome, duration)
        code = proc.wait()
        self._forget()
        outcome = stopper.outcome or ("ok" if code == 0 else "failed")
        with open(self.log_path, "ab") as out:
            out.write(f"=== classifier worker exit {code} after {duration:.1f} s: {outcome}\n".encode())
        return Exit(
            code, outcome, duration, stopped_reason(outcome, timeout, code) or f"worker exit status {code}"
        )

    def _await_reply(self, proc: subprocess.Popen[bytes], stopper: Stopper) -> dict[str, Any] | None:
        """The worker's answer, or None when it ended first (stopped, killed, crashed)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            if b"\n" in self._pending and stopper.outcome is None:
                line, _, self._pending = self._pending.partition(b"\n")
                try:
                    reply = json.loads(line)
                except ValueError:
                    reply = None
                return reply if isinstance(reply, dict) else {"status": "failed"}
            ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
            if ready:
                chunk = os.read(fd, 65_536)
                if not chunk:
                    return None  # end of file: the worker is gone
                self._pending += chunk
            stopper.check()

    def stop(self) -> None:
        """End the worker: it exits when its stdin closes; SIGTERM, then SIGKILL, if not."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        for sig, grace in ((None, 2.0), (signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            if sig is not None:
                signal_group(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self._forget()
