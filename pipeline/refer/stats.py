"""Referral statistics: notices, outcomes and time to removal, per platform."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from vigie.store import Store, cases


def hours_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600, 2)


def stats(store: Store, period: str | None = None) -> dict[str, Any]:
    """Notices by platform, content type and outcome, and median time to removal: what a
    trusted flagger publishes each year. `period`: YYYY or YYYY-MM of the referral date."""
    rows = cases.referred_in(store, period)
    out: dict[str, Any] = {"period": period or "all", "notices": 0, "items": len(rows), "by_platform": {}}
    notices: set[str] = set()
    for r in rows:
        p = out["by_platform"].setdefault(
            r["platform"],
            {
                "notices": set(),
                "items": 0,
                "by_content_type": {},
                "outcomes": {"removed": 0, "online": 0, "pending": 0},
                "hours_to_removal": [],
            },
        )
        p["notices"].add(r["notice_id"])
        notices.add(r["notice_id"])
        p["items"] += 1
        p["by_content_type"][r["content_type"] or "crossing"] = (
            p["by_content_type"].get(r["content_type"] or "crossing", 0) + 1
        )
        outcome = r["status"] if r["status"] in ("removed", "online") else "pending"
        p["outcomes"][outcome] += 1
        if (h := hours_between(r["referred_at"], r["removed_at"])) is not None:
            p["hours_to_removal"].append(h)
    for p in out["by_platform"].values():
        hours = p.pop("hours_to_removal")
        p["notices"] = len(p["notices"])
        p["median_hours_to_removal"] = round(statistics.median(hours), 2) if hours else None
        decided = p["outcomes"]["removed"] + p["outcomes"]["online"]
        p["removal_rate"] = round(p["outcomes"]["removed"] / decided, 4) if decided else None
    out["notices"] = len(notices)
    all_hours = [h for r in rows if (h := hours_between(r["referred_at"], r["removed_at"])) is not None]
    out["median_hours_to_removal"] = round(statistics.median(all_hours), 2) if all_hours else None
    return out
