"""What the test servers (Elasticsearch, PostgreSQL) share: a free local port, and
stopping a server together with every process it forked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time


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
