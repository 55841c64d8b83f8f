"""Prices in euros, at the rates the configuration gives (`trends.eur_rates`): each rate
applies from its date on, and a price is converted at the latest rate dated on or before
the day it was offered."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vigie.config import VigieConfig


def to_eur(amount: float, currency: str, on: date, config: VigieConfig) -> float | None:
    """`amount` of `currency` in euros on the day `on`; None when no rate for the currency
    is dated on or before that day."""
    code = currency.upper()
    if code == "EUR":
        return float(amount)
    day = on.isoformat()
    rates = sorted((r.since, r.eur) for r in config.trends.eur_rates if r.currency == code and r.since <= day)
    return float(amount) * rates[-1][1] if rates else None
