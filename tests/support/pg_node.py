"""A real, throwaway PostgreSQL server for the tests.

The binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<N>/bin,
newest N first). Each server is a fresh `initdb` cluster in its own temp dir, reached
over TCP on 127.0.0.1 only (password auth, superuser `vigie`) and over a unix socket
inside that dir; durability is off since the data is thrown away. PostgreSQL refuses
to run as root, so as root it runs as the `postgres` system user (created if missing).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.support.server_process import ServerProcess, free_port, port_in_use, stop_group
from vigie.errors import VigieError

PG_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
SUPERUSER = "vigie"
LOG_NAME = "postgres.log"
# Test settings: nothing here must survive a crash, and start-up should be quick.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "50",
    "logging_collector": "off",
}


class PostgresServerError(VigieError):
    """Raised when the test PostgreSQL server cannot be provided: its port is taken, no
    unprivileged user can run it, `initdb` fails (with its output), or the server exits
    or does not accept connections in time (the message ends with the last lines of its log)."""


class PostgresMissingError(PostgresServerError):
    """Raised when no PostgreSQL server binaries are installed; the fixtures turn it
    into a skip, or a failure when the CI variable is set."""


def bindir(root: Path | None = None) -> Path:
    """The newest /usr/lib/postgresql/<N>/bin holding `initdb` and `postgres`."""
    root = root if root is not None else PG_ROOT
    found = []
    if root.is_dir():
        for sub in root.iterdir():
            bin_dir = sub / "bin"
            if sub.name.isdigit() and (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
                found.append((int(sub.name), bin_dir))
    if not found:
        raise PostgresMissingError(
            f"no PostgreSQL server binaries under {root}/<version>/bin: run `make system-deps`"
        )
    return max(found)[1]


def _server_account() -> pwd.struct_passwd | None:
    """Whom the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresServerError(
            f"PostgreSQL refuses to run as root, and `useradd` is missing to create {SERVER_USER}"
        )
    # A concurrent run may create it first: only the lookup afterwards decides.
    subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER,
        ],
        capture_output=True,
        check=False,
    )
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresServerError(
            f"could not create the system user {SERVER_USER} to run PostgreSQL"
        ) from None


class PostgresServer(ServerProcess):
    """One throwaway cluster in its own temp dir; `stop()` shuts it down and deletes it."""

    def __init__(self, port: int | None = None, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(18)
        self.base_dir: Path | None = None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of `database`: postgresql+psycopg://vigie:PASSWORD@127.0.0.1:PORT/DATABASE."""
        return f"postgresql+psycopg://{self._netloc()}/{urllib.parse.quote(database, safe='')}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq URI of `database`, for `psycopg.connect`."""
        return f"postgresql://{self._netloc()}/{urllib.parse.quote(database, safe='')}"

    def _netloc(self) -> str:
        return f"{SUPERUSER}:{urllib.parse.quote(self.password, safe='')}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """initdb a fresh cluster, launch it, and return once it accepts connections."""
        if self.running:
            return
        bin_dir = self.bin_dir or bindir()
        account = _server_account()
        if port_in_use(self.port):  # else another server there would pass for this one
            raise PostgresServerError(f"port {self.port} is already in use: stop what listens there")
        # Our own dir under the system temp dir: pytest's are root-only when we are root,
        # and a unix socket path must stay under ~100 bytes.
        self.base_dir = base = Path(tempfile.mkdtemp(prefix="vigie-pg-"))
        self._track()
        try:
            if account is not None:
                os.chown(base, account.pw_uid, account.pw_gid)
            self._initdb(bin_dir, base, account)
            self._launch(bin_dir, base, account)
            self._wait_ready(base, timeout)
        except BaseException:
            self.stop()
            raise

    def _initdb(self, bin_dir: Path, base: Path, account: pwd.struct_passwd | None) -> None:
        pwfile = base / "password"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self.password)
        if account is not None:
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        cmd = [
            str(bin_dir / "initdb"),
            f"--pgdata={base / 'data'}",
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",  # the socket lives in a dir only the server's user can enter
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]
        done = subprocess.run(cmd, capture_output=True, check=False, **_run_as(account, base))
        pwfile.unlink()
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise PostgresServerError(f"initdb failed (exit {done.returncode}):\n{output[-2000:]}")

    def _launch(self, bin_dir: Path, base: Path, account: pwd.struct_passwd | None) -> None:
        settings = {**_SETTINGS, "port": str(self.port), "unix_socket_directories": str(base)}
        cmd = [str(bin_dir / "postgres"), "-D", str(base / "data")]
        cmd += [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with (base / LOG_NAME).open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=log, start_new_session=True, **_run_as(account, base)
            )

    def _wait_ready(self, base: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise PostgresServerError(f"PostgreSQL exited during start-up:\n{_log_tail(base)}")
            try:
                psycopg.connect(self.conninfo(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:  # refused, or "the database system is starting up"
                time.sleep(0.1)
        raise PostgresServerError(
            f"PostgreSQL not accepting connections after {timeout:g}s:\n{_log_tail(base)}"
        )

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the sessions a test left open on it."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(statement)

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT: sessions end, nothing is waited for), SIGKILL to the
        group after `timeout`, then delete the cluster's directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc, signal.SIGINT, timeout)
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
        self._untrack()


def _run_as(account: pwd.struct_passwd | None, base: Path) -> dict[str, Any]:
    """subprocess options running a server binary as `account` (None: ourselves) from `base`."""
    options: dict[str, Any] = {
        "cwd": base,
        "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(base)},
        "stdin": subprocess.DEVNULL,
    }
    if account is not None:
        options.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    return options


def _log_tail(base: Path, lines: int = 40) -> str:
    try:
        return "\n".join((base / LOG_NAME).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {base / LOG_NAME})"
