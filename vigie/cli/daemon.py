"""`vigie daemon`: run the scheduler in the foreground, or show what it is doing."""

from __future__ import annotations

from typing import Any

import click

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json, markup

_CLUSTER_OPTIONS = (
    click.option(
        "--cluster",
        is_flag=True,
        help="Cluster mode (PostgreSQL store): lead the cluster's schedule when this daemon holds "
        "the leader lock, else stand by; jobs go to the queue for `vigie worker`.",
    ),
    click.option("--name", "node_name", metavar="NODE", help="This node's name in `vigie cluster status`."),
    click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        metavar="PORT",
        help="With --cluster: Prometheus metrics on this port (default cluster.metrics_port; 0: off).",
    ),
)


def _cluster_options(func: Any) -> Any:
    for option in reversed(_CLUSTER_OPTIONS):
        func = option(func)
    return func


@click.group("daemon", invoke_without_command=True)
@_cluster_options
@click.pass_context
def daemon_group(ctx: click.Context, cluster: bool, node_name: str | None, metrics_port: int | None) -> None:
    """Crawl every source on its schedule, classify and index what comes in, check
    removals, replay the Elasticsearch spool and deliver alerts. Without a subcommand:
    `vigie daemon run`."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(run, cluster=cluster, node_name=node_name, metrics_port=metrics_port)
    elif cluster or node_name or metrics_port is not None:
        raise click.UsageError(
            f"--cluster, --name and --metrics-port run the daemon: not with `vigie daemon {ctx.invoked_subcommand}`"
        )


@daemon_group.command("run")
@click.option(
    "--no-classify",
    is_flag=True,
    help="Only crawl: do not classify and index after each crawl (`vigie run --no-crawl` does it).",
)
@_cluster_options
@click.pass_context
def run(
    ctx: click.Context,
    no_classify: bool = False,
    cluster: bool = False,
    node_name: str | None = None,
    metrics_port: int | None = None,
) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C.

    Jobs: `crawl:<platform>:<channel>` per source (every `every_minutes`, or `cron`, else
    daemon.crawl_every_minutes), `removal-checks`, `es-replay` when Elasticsearch is
    configured (every daemon.replay_every_minutes) and `alerts` when a webhook or an email
    server is (every daemon.alerts_every_minutes: it evaluates the rules and sends what is
    due); after each crawl, `classify` classifies and indexes what came in, refreshes the
    networks and raises the alerts (without sending them), in one long-lived worker process
    that loads the classifier once. Schedules are kept in <data_dir>/jobs.sqlite across
    restarts; each job runs `vigie` in a child process, its output in
    <data_dir>/logs/jobs/, and records its run in the store (`vigie status`). One daemon
    per data directory; configuration changes apply at the next start, sources approved
    with `vigie sources add` (or followed automatically) within a minute.

    With --cluster (a PostgreSQL store): the daemons of a cluster elect one leader (a
    PostgreSQL advisory lock; a standby takes over within cluster.leader_poll_seconds of
    the leader's end), which enqueues the same jobs for `vigie worker` processes instead of
    running them, gives pending posts to classification batches and retries the jobs of
    workers silent for cluster.lease_seconds."""
    config = load(ctx)
    obj = ctx.obj or {}
    if cluster:
        _run_cluster(ctx, config, no_classify, node_name, metrics_port)
        return
    if node_name or metrics_port is not None:
        raise click.UsageError("--name and --metrics-port need --cluster")
    from pipeline.daemon import Daemon

    daemon = Daemon(
        config,
        obj.get("config_path"),
        classify=not no_classify,
        verbose=bool(obj.get("verbose")),
        debug=bool(obj.get("debug")),
    )
    code = daemon.run(announce=lambda message: echo(message, err=True))
    ctx.exit(code)


def _run_cluster(
    ctx: click.Context, config: Any, no_classify: bool, node_name: str | None, metrics_port: int | None
) -> None:
    from pipeline.cluster.leader import Leader

    if no_classify:
        raise click.UsageError("--no-classify does not apply with --cluster (workers classify)")
    leader = Leader(
        config,
        (ctx.obj or {}).get("config_path"),
        node_name=node_name,
        metrics_port=metrics_port,
        announce=lambda message: echo(message, err=True),
    )
    ctx.exit(leader.run())


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _print(status: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=180)
    daemon = status["daemon"]
    if not daemon:
        console.print(
            f"daemon: never started with this data directory ({markup(status['status_file'])} is absent)"
        )
    else:
        line = (
            f"daemon: [b]{markup(daemon['state'])}[/b], pid {markup(daemon.get('pid'))}, "
            f"started {markup(daemon.get('started_at'))}, heartbeat {_ago(daemon.get('heartbeat_age_s'))}"
        )
        if daemon.get("stopped_at"):
            line += f", stopped {markup(daemon['stopped_at'])}"
        console.print(line)
        for child in daemon.get("children", []):
            console.print(
                cell(
                    f"  running: {child['job']} {child.get('step')} (pid {child.get('pid')}, "
                    f"since {child.get('started_at')})"
                )
            )
    jobs = Table(title=cell(f"Jobs in {status['jobs_store']}"))
    for column in (
        "job",
        "schedule",
        "next run",
        "last outcome",
        "finished",
        "duration",
        "runs",
        "last error",
    ):
        jobs.add_column(column, justify="right" if column in ("duration", "runs") else "left")
    for job in status["jobs"]:
        outcome = job["last_outcome"] or "-"
        if job.get("running_since"):
            outcome += " (running)"
        colour = {"ok": "green", "failed": "red", "timeout": "red"}.get(job["last_outcome"] or "")
        jobs.add_row(
            cell(job["id"]),
            cell(job["schedule"] or ""),
            cell(job["next_run_time"] or "-"),
            f"[{colour}]{markup(outcome)}[/{colour}]" if colour else cell(outcome),
            cell(job["last_finished_at"] or "-"),
            f"{job['last_duration_s']:.1f} s" if job["last_duration_s"] is not None else "-",
            f"{job['runs']} ({job['failures']} failed)",
            cell(job["last_error"] or job["last_note"] or ""),
        )
    console.print(jobs)
    sources = Table(title="Sources")
    for column in ("source", "cursor", "resume below", "last success", "last error"):
        sources.add_column(column)
    for s in status["sources"]:
        name = f"{s['platform']}:{s['channel']}" + (
            " (approved)" if s.get("approved") else ("" if s["configured"] else " (not configured)")
        )
        sources.add_row(
            cell(name),
            str(s["cursor"] if s["cursor"] is not None else "-"),
            str(s["pending_before"] or "-"),
            cell(s["last_success_at"] or "-"),
            cell(s["last_error"] or ""),
        )
    console.print(sources)
    backlog = status.get("alerts")
    if backlog:
        console.print(cell(alert_backlog_line(backlog)))


def alert_backlog_line(backlog: dict[str, int]) -> str:
    """One line on the alert deliveries waiting and the dead letters."""
    line = f"alerts: {backlog['pending']} deliveries waiting, {backlog['dead']} dead letters"
    if backlog["dead"]:
        line += " (`vigie alerts list --status dead`; `vigie alerts retry --dead` sends them again)"
    return line


@daemon_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the daemon (pid, heartbeat), each job's next run and last outcome, and each
    source's last success and last error."""
    from pipeline.daemon import read_status

    report = read_status(load(ctx))
    if as_json:
        echo_json(report, indent=2, default=str)
    else:
        _print(report)


def _leaf(group: click.Group, ctx: click.Context, args: tuple[str, ...]) -> bool:
    """Whether ARGS name a command that runs (not a group waiting for a subcommand)."""
    command: click.Command | None = group
    for arg in args:
        if not isinstance(command, click.Group):
            return True
        if not arg.startswith("-"):
            command = command.get_command(ctx, arg)
            if command is None:
                return False
    return command is not None and (not isinstance(command, click.Group) or command.invoke_without_command)


@daemon_group.command(
    "recorded",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def recorded(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Run `vigie COMMAND...` and record it in the store's runs table: how the daemon runs
    the steps whose commands record no run of their own. A failure is recorded with its
    one-line error, then ends this command as it would have ended the other."""
    from pipeline.daemon.jobs import recorded_run_name
    from vigie.cli.main import describe_error
    from vigie.store import Store

    root = ctx.find_root().command
    if not isinstance(root, click.Group) or command[0] == "daemon" or not _leaf(root, ctx, command):
        raise click.UsageError(f"{' '.join(command)!r}: not a vigie command the daemon can record")
    name, target, rest = root.resolve_command(ctx, list(command))
    assert target is not None and name is not None  # _leaf found it
    failure: BaseException | None = None
    with Store(load(ctx).store_url()) as store, store.run(recorded_run_name(command)) as run:
        try:
            with target.make_context(name, rest, parent=ctx.find_root()) as sub:
                target.invoke(sub)
        except (SystemExit, click.exceptions.Exit) as exc:
            code = exc.code if isinstance(exc, SystemExit) else exc.exit_code
            if code not in (0, None):
                run.status, run.stats, failure = "failed", {"error": f"exit status {code}"}, exc
        except click.ClickException as exc:
            run.status, run.stats, failure = "failed", {"error": exc.format_message()}, exc
        except Exception as exc:
            error = describe_error(exc) or f"unexpected error: {type(exc).__name__}: {exc}"
            run.status, run.stats, failure = "failed", {"error": " ".join(error.split())[:500]}, exc
    if failure is not None:
        raise failure


@daemon_group.command("classify-worker", hidden=True)
@click.pass_context
def classify_worker(ctx: click.Context) -> None:
    """Serve the daemon's classifications: load the classifier once, then run one recorded
    pass (classify, entities, reposts, index) per line read on stdin, and answer each with
    one JSON line on stdout. Ends when stdin closes."""
    import os
    import sys

    from pipeline.daemon.worker import serve

    config = load(ctx)
    # The answers get their own copy of stdout; anything else printed goes to the log.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with replies:
        serve(config, sys.stdin, replies)
