"""Referral statistics: notices, what became of each item, and the time it took, per platform."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from vigie.store import Store, cases

# What became of a referred item: the platform's answer (removed, account suspended,
# restricted, rejected), Telegram's re-check (removed, online), or nothing yet (pending).
KINDS = ("removed", "account_suspended", "restricted", "rejected", "online", "pending")
ALWAYS = ("removed", "online", "pending")  # shown even at zero; the others once they occur
ANSWERED = ("removed", "account_suspended", "restricted", "rejected")  # with a time to outcome
GONE = ("removed", "account_suspended")


def hours_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600, 2)


def kind_of(row: dict[str, Any]) -> str:
    """A referral's outcome kind from its state and the platform's latest answer."""
    status = row["status"]
    if status == "removed":
        return "account_suspended" if row.get("outcome") == "account_suspended" else "removed"
    return {"restricted": "restricted", "declined": "rejected", "online": "online"}.get(status, "pending")


def hours_to_outcome(row: dict[str, Any], kind: str) -> float | None:
    """Hours from referral to the answer: to the removal for content that is gone, to the
    platform's answer otherwise."""
    if kind in GONE:
        return hours_between(row["referred_at"], row["removed_at"])
    if kind in ANSWERED:
        return hours_between(row["referred_at"], row.get("outcome_at"))
    return None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = dict.fromkeys(KINDS, 0)
    hours: dict[str, list[float]] = {k: [] for k in ANSWERED}
    for r in rows:
        kind = kind_of(r)
        counts[kind] += 1
        if (h := hours_to_outcome(r, kind)) is not None:
            hours[kind].append(h)
    decided = sum(counts[k] for k in KINDS if k != "pending")
    gone = sum(counts[k] for k in GONE)
    return {
        "outcomes": {k: n for k, n in counts.items() if n or k in ALWAYS},
        "median_hours": {k: _median(v) for k, v in hours.items() if v},
        "median_hours_to_removal": _median([h for k in GONE for h in hours[k]]),
        "removal_rate": round(gone / decided, 4) if decided else None,
    }


def stats(store: Store, period: str | None = None) -> dict[str, Any]:
    """Notices by platform, content type and outcome, and the median time to each kind of
    outcome: what a trusted flagger publishes each year. `period`: YYYY or YYYY-MM of the
    referral date."""
    rows = cases.referred_in(store, period)
    by_platform: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_platform.setdefault(r["platform"], []).append(r)
    out: dict[str, Any] = {
        "period": period or "all",
        "notices": len({r["notice_id"] for r in rows}),
        "items": len(rows),
        "by_platform": {},
    }
    for platform, items in by_platform.items():
        types: dict[str, int] = {}
        for r in items:
            types[r["content_type"] or "crossing"] = types.get(r["content_type"] or "crossing", 0) + 1
        out["by_platform"][platform] = {
            "notices": len({r["notice_id"] for r in items}),
            "items": len(items),
            "by_content_type": types,
            **_figures(items),
        }
    total = _figures(rows)
    out["outcomes"] = total["outcomes"]
    out["median_hours"] = total["median_hours"]
    out["median_hours_to_removal"] = total["median_hours_to_removal"]
    return out
