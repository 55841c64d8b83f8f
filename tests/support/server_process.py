"""What the test servers (Elasticsearch, PostgreSQL) share: a free local port, a process
group to stop together with everything it forked, and a stop at exit for any left running."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from types import TracebackType
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop_group(leader: subprocess.Popen[bytes], first: signal.Signals, timeout: float) -> None:
    """Send `first` to the process group `leader` heads (started with
    start_new_session=True), and SIGKILL whatever is left of it after `timeout`."""
    group = leader.pid  # start_new_session: pid == pgid
    for sig, wait in ((first, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while group_alive(leader) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_alive(leader):
            return


def group_alive(leader: subprocess.Popen[bytes]) -> bool:
    """Is any process of the leader's group still alive? (Polling reaps the leader.)"""
    if leader.poll() is None:
        return True
    try:
        os.killpg(leader.pid, 0)
        return True
    except ProcessLookupError:
        return False


class ServerProcess:
    """A server run as one process group in `_proc`: `start()` launches it and calls
    `_track()`, `stop()` ends it and calls `_untrack()`; usable as a context manager."""

    _proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 30) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's first process, also the process group of all it started."""
        return self._proc.pid if self.running and self._proc else None

    def _track(self) -> None:
        """From now on, stopped at exit if still running (or still holding files)."""
        _RUNNING.add(self)

    def _untrack(self) -> None:
        _RUNNING.discard(self)

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_RUNNING: set[ServerProcess] = set()


@atexit.register
def _stop_all() -> None:  # never leave an orphan server, its processes or its files behind
    for server in list(_RUNNING):
        server.stop()
