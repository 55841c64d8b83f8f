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


_QUARTER = re.compile(r"(?P<year>\d{4})-Q(?P<quarter>[1-4])", re.IGNORECASE)


def check_span(period: str) -> str:
    """A period trends cover: "2026", "2026-Q3", "2026-09" or "2026-09-05"; raises
    ValueError on anything else."""
    if _QUARTER.fullmatch(period or ""):
        return period.upper()
    if not period:
        raise ValueError("a period is needed: 2026, 2026-Q3, 2026-09 or 2026-09-05")
    if not _PERIOD.fullmatch(period):
        raise ValueError(f"period must look like 2026, 2026-Q3, 2026-09 or 2026-09-05, not {period!r}")
    return str(check_period(period))


def _month_start(year: int, month: int) -> date:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, 1)


def bounds(period: str) -> tuple[date, date]:
    """The first day of `period` and the day after its last (see `check_span`)."""
    period = check_span(period)
    if quarter := _QUARTER.fullmatch(period):
        year, first = int(quarter["year"]), 3 * int(quarter["quarter"]) - 2
        return date(year, first, 1), _month_start(year, first + 3)
    if len(period) == 4:
        return date(int(period), 1, 1), date(int(period) + 1, 1, 1)
    if len(period) == 7:
        year, month = int(period[:4]), int(period[5:])
        return date(year, month, 1), _month_start(year, month + 1)
    day = date.fromisoformat(period)
    return day, date.fromordinal(day.toordinal() + 1)


def months_before(start: date, months: int) -> date:
    """The first day of the month `months` months before the month of `start`."""
    return _month_start(start.year, start.month - months)
