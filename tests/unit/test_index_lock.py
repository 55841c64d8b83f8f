"""The index lock beside a SQLite store: another process holding it makes a sync wait and
then give up with one line; within one thread it is re-entrant; it is released at the end."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from vigie.store import Store, outbox
from vigie.store.cluster import LockWaitTimeout

HOLD = textwrap.dedent(
    """
    import fcntl, sys, time
    with open(sys.argv[1], "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def test_another_process_holding_the_lock_makes_the_wait_give_up(tmp_path):
    with Store(tmp_path / "vigie.db") as store:
        lock = tmp_path / "vigie.db.index-lock"
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            start = time.monotonic()
            with (
                pytest.raises(LockWaitTimeout, match=r"index lock .*index-lock is still held .* after 0.5 s"),
                outbox.index_lock(store, timeout_seconds=0.5),
            ):
                pass
            assert 0.5 <= time.monotonic() - start < 5
        finally:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait(timeout=10)
        # Free again, and re-entrant in one thread.
        with outbox.index_lock(store, timeout_seconds=0.5), outbox.index_lock(store, timeout_seconds=0.5):
            pass


def test_another_thread_waits_until_the_lock_is_released(tmp_path):
    with Store(tmp_path / "vigie.db") as store:
        order: list[str] = []

        def other() -> None:
            with outbox.index_lock(store, timeout_seconds=10):
                order.append("other")

        with outbox.index_lock(store, timeout_seconds=1):
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.5)
            order.append("first")
        thread.join(timeout=10)
        assert order == ["first", "other"]
