"""Flagged adverts over time, in buckets of a day, a week or a month by the span covered."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from pipeline.report.model import Series, Timeline


def _bucket(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())  # the Monday
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next(bucket: date, granularity: str) -> date:
    if granularity == "week":
        return bucket + timedelta(days=7)
    if granularity == "month":
        return (bucket.replace(day=28) + timedelta(days=4)).replace(day=1)
    return bucket + timedelta(days=1)


def timeline(days: list[tuple[date, str]]) -> Timeline:
    """Per (publication day, platform) of each advert: counts per day (spans up to about two
    months), week (two years) or month, one series per platform, the busiest first."""
    if not days:
        return Timeline(granularity="day", buckets=[], series=[], total=[])
    first = min(d for d, _ in days)
    last = max(d for d, _ in days)
    span = (last - first).days
    granularity = "day" if span <= 62 else "week" if span <= 730 else "month"
    buckets: list[date] = []
    cursor = _bucket(first, granularity)
    while cursor <= last:
        buckets.append(cursor)
        cursor = _next(cursor, granularity)
    index = {b: i for i, b in enumerate(buckets)}
    per_platform: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    for day, platform in days:
        per_platform[platform][index[_bucket(day, granularity)]] += 1
    series = sorted(per_platform.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return Timeline(
        granularity=granularity,
        buckets=[b.isoformat() for b in buckets],
        series=[Series(platform=p, counts=counts) for p, counts in series],
        total=[sum(counts[i] for _, counts in series) for i in range(len(buckets))],
    )
