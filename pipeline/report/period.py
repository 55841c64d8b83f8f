"""The period a report covers: a year, a month or a day."""

from __future__ import annotations

import re
from datetime import date

_PERIOD = re.compile(r"\d{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)?")


def check_period(period: str | None) -> str | None:
    """ "2026", "2026-11" or "2026-11-05"; raises ValueError on anything else."""
    if period is None or period == "":
        return None
    if not _PERIOD.fullmatch(period):
        raise ValueError(f"period must look like 2026, 2026-11 or 2026-11-05, not {period!r}")
    if len(period) == 10:
        try:
            date.fromisoformat(period)
        except ValueError:
            raise ValueError(f"period {period!r}: no such day") from None
    return period
