"""How numbers, durations and text from posts read in the report, in the tables and the
charts alike."""

from __future__ import annotations

from vigie.sanitize import for_terminal

DASH = "–"


def number(value: float | None) -> str:
    """12,345; one decimal for a fraction; a dash for no value."""
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def hours(value: float | None) -> str:
    """Hours up to two days, days beyond."""
    if value is None:
        return DASH
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else DASH


def rate(value: float | None) -> str:
    """A share in [0, 1] as a percentage."""
    return DASH if value is None else f"{value * 100:.0f}%"


def shown(text: str | None) -> str:
    """Text from a post as the page shows it: no control characters, and bidi overrides
    written out (`\\u202e`) so that "gnp.exe" cannot pass for "exe.png"."""
    return for_terminal(text)
