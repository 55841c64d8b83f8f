"""`vigie daemon`: crawl, classify, check removals, replay the spool and deliver alerts on a schedule.

jobs: what is scheduled, on which executor; runner: what each job does, step by step;
children: the supervision of child processes; worker: the long-lived classifier worker;
outcomes: each step's result, from the run its child recorded in the store; status: the
status file; scheduler: the daemon itself; view: what `vigie daemon status` shows.
"""

from pipeline.daemon.children import process_alive
from pipeline.daemon.jobs import (  # job functions: the job store refers to them by these names too
    alerts_job,
    classify_job,
    crawl_job,
    es_replay_job,
    job_specs,
    removal_checks_job,
)
from pipeline.daemon.scheduler import Daemon, TerminalSafeFormatter
from pipeline.daemon.status import DaemonPaths
from pipeline.daemon.view import read_status

__all__ = [
    "Daemon",
    "DaemonPaths",
    "TerminalSafeFormatter",
    "alerts_job",
    "classify_job",
    "crawl_job",
    "es_replay_job",
    "job_specs",
    "process_alive",
    "read_status",
    "removal_checks_job",
]
