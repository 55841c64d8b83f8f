"""Waiting in tests for something other processes do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = 60,
    every: float = 0.1,
    state: Callable[[], str] | None = None,
) -> Any:
    """`check()`'s first true value, tried every `every` seconds; after `timeout` seconds an
    AssertionError naming `what`, with `state()` (what was seen) when given."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"\n{state()}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{seen}")
        time.sleep(every)
