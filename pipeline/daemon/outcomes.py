"""Job outcomes: each step's child records its run in the store's `runs` table; the daemon
reads it back through the Store, adds what only it knows (a timeout, a shutdown, a kill)
and sums the steps up into the job's outcome."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pipeline.daemon.children import Exit
from vigie.errors import VigieError
from vigie.store import Store, runs
from vigie.store.engine import is_database_error, one_line

log = logging.getLogger("vigie.daemon")

ERROR_MAX_CHARS = 500


@dataclass
class StepResult:
    step: str
    outcome: str
    exit_code: int | None = None
    duration_s: float = 0.0
    error: str | None = None
    note: str | None = None
    run_id: int | None = None  # its row in the store's `runs` table

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class RecordedRun:
    id: int
    command: str
    status: str
    stats: dict[str, Any]


def _recorded(row: dict[str, Any]) -> RecordedRun:
    try:
        stats = json.loads(row["stats"] or "{}")
    except ValueError:
        stats = {}
    return RecordedRun(int(row["id"]), str(row["command"]), str(row["status"]), stats)


def latest_run_id(store: str) -> int:
    """The newest run's id: a step's own run comes after it."""
    try:
        with Store(store, read_only=True) as opened:
            return runs.latest_run_id(opened)
    except Exception as exc:
        if not isinstance(exc, VigieError) and not is_database_error(exc):
            raise
        log.warning("cannot read the store's runs: %s", one_line(exc))
        return 0


def run_after(store: str, command: str, after_id: int) -> RecordedRun | None:
    """The newest run of `command` recorded after run `after_id`."""
    try:
        with Store(store, read_only=True) as opened:
            found = runs.runs_after(opened, after_id, command)
    except Exception as exc:
        if not isinstance(exc, VigieError) and not is_database_error(exc):
            raise
        log.warning("cannot read the store's runs: %s", one_line(exc))
        return None
    return _recorded(found[0]) if found else None


def close_abandoned(store: str, run: RecordedRun, reason: str) -> None:
    """A child killed mid-run left its run `running`: it is over, and failed."""
    try:
        with Store(store) as opened:
            opened.finish_run(run.id, "failed", {**run.stats, "error": reason})
    except Exception as exc:
        if not isinstance(exc, VigieError) and not is_database_error(exc):
            raise
        log.warning("cannot close run %d: %s", run.id, one_line(exc))


def run_error(run: RecordedRun) -> str | None:
    """Why a recorded run failed, from what it recorded."""
    stats = run.stats
    if stats.get("error"):
        return str(stats["error"])[:ERROR_MAX_CHARS]
    for source in stats.get("sources") or []:  # a crawl: the first source that failed
        if isinstance(source, dict) and source.get("error"):
            return f"@{source.get('channel')}: {source['error']}"[:ERROR_MAX_CHARS]
    errors = stats.get("errors") or []
    return str(errors[0])[:ERROR_MAX_CHARS] if errors else None


def step_result(step: str, ended: Exit, run: RecordedRun | None, store: str) -> StepResult:
    """A step's result from how its child ended and the run it recorded."""
    result = StepResult(step, ended.outcome, ended.code, ended.duration_s, run_id=run.id if run else None)
    if run is not None and run.status == "running":
        close_abandoned(store, run, ended.reason or f"exit status {ended.code}")
    if ended.reason:
        result.error = ended.reason
    elif ended.outcome == "failed":
        why = run_error(run) if run is not None else None
        result.error = why or f"exit status {ended.code}" + ("" if run else " (no run recorded)")
    elif run is not None and run.status == "partial":
        result.note = f"{step}: partial: {run_error(run)}"
    return result


def job_outcome(steps: list[StepResult]) -> tuple[str, str | None, str | None]:
    """The job's outcome, its error (the first step that went wrong) and its notes."""
    outcomes = {s.outcome for s in steps}
    if "timeout" in outcomes:
        outcome = "timeout"
    elif "failed" in outcomes:
        outcome = "failed"
    elif "interrupted" in outcomes:
        outcome = "interrupted"
    elif outcomes == {"skipped"}:
        outcome = "skipped"
    else:
        outcome = "ok"
    bad = next((s for s in steps if s.outcome in ("timeout", "failed", "interrupted")), None)
    error = f"{bad.step}: {bad.error}" if bad else None
    notes = "; ".join(s.note for s in steps if s.note) or None
    return outcome, error, notes
