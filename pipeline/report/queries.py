"""Everything the report reads from the store (`vigie.store.queries.report_rows`, and the
referrals with the platforms' answers from `vigie.store.outcomes`), as typed rows. The only
module of the report that asks the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pipeline.report.period import check_period
from vigie.store import DECIDED, json_object, stored_time
from vigie.store.outcomes import report_referrals
from vigie.store.queries import report_rows

if TYPE_CHECKING:
    from vigie.store import Store


@dataclass(frozen=True, slots=True)
class FlaggedPost:
    key: str
    platform: str
    channel: str
    url: str | None
    text: str | None
    lang: str | None
    entities: dict[str, Any]
    cluster_id: str | None
    published: datetime | None  # UTC; None when the stored date is missing or unreadable

    @property
    def day(self) -> date | None:
        return self.published.date() if self.published else None


@dataclass(frozen=True, slots=True)
class Referral:
    status: str
    platform: str
    referred_at: datetime | None
    removed_at: datetime | None
    outcome: str | None = None  # the platform's latest answer: removed, account_suspended, ...
    outcome_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReportRows:
    posts: int  # posts published in the period
    analysed: int  # of which the classifier has seen
    flagged: list[FlaggedPost]  # by publication date, then key
    referrals: list[Referral]  # of posts published in the period


def read_rows(store: Store, period: str | None = None) -> ReportRows:
    """The rows behind the report for posts published in `period` (a year, month or day), or all."""
    period = check_period(period)
    rows = report_rows(store, period, DECIDED)
    flagged = [
        FlaggedPost(
            key=row["key"],
            platform=row["platform"],
            channel=row["channel"],
            url=row["url"],
            text=row["text"],
            lang=row["lang"],
            entities=json_object(row["entities"]),
            cluster_id=row["cluster_id"],
            published=stored_time(row["published_at"]),
        )
        for row in rows["flagged"]
    ]
    referrals = [
        Referral(
            status=row["status"],
            platform=row["platform"],
            referred_at=stored_time(row["referred_at"]),
            removed_at=stored_time(row["removed_at"]),
            outcome=row["outcome"],
            outcome_at=stored_time(row["outcome_at"]),
        )
        for row in report_referrals(store, period)
    ]
    return ReportRows(posts=rows["posts"], analysed=rows["analysed"], flagged=flagged, referrals=referrals)
