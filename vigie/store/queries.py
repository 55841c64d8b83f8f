"""Read-only questions across aggregates, for status lines, link analysis and the report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, true

from vigie.store.analysis import flagged_clause, flagged_posts_query
from vigie.store.schema import analysis, contacts, posts, referrals

if TYPE_CHECKING:
    from vigie.store.core import Store


def count_flagged(store: Store, decided: Sequence[str]) -> int:
    """Flagged posts (`flagged_clause`)."""
    query = (
        select(func.count())
        .select_from(analysis.outerjoin(referrals, referrals.c.post_key == analysis.c.post_key))
        .where(flagged_clause(decided))
    )
    with store.reading() as connection:
        return int(connection.scalar(query) or 0)


def count_unindexed_adverts(store: Store) -> int:
    """Sure adverts the search index has never acknowledged."""
    query = (
        select(func.count())
        .select_from(analysis)
        .where(analysis.c.is_advert == 1, analysis.c.indexed_sha256.is_(None))
    )
    with store.reading() as connection:
        return int(connection.scalar(query) or 0)


def channels_sharing_contacts(
    store: Store, min_shared: int = 1, ignore: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Pairs of channels whose posts give the same phone number, handle or link (other than
    those in `ignore`: hotlines), those sharing the most first."""
    a, b = contacts.alias("a"), contacts.alias("b")
    left = a.c.platform + ":" + a.c.channel
    right = b.c.platform + ":" + b.c.channel
    query = (
        select(left.label("left"), right.label("right"), a.c.contact)
        .select_from(a.join(b, a.c.contact == b.c.contact))
        .where(left != right)
        .distinct()
    )
    shared: dict[tuple[str, str], set[str]] = defaultdict(set)
    with store.reading() as connection:
        for row in connection.execute(query):
            if row.left < row.right and row.contact not in ignore:  # each pair once, in code-point order
                shared[(row.left, row.right)].add(row.contact)
    pairs = [
        {"channels": [pair[0], pair[1]], "contacts": sorted(found), "shared": len(found)}
        for pair, found in shared.items()
        if len(found) >= min_shared
    ]
    return sorted(pairs, key=lambda p: (-p["shared"], p["channels"][0], p["channels"][1]))


def report_rows(store: Store, period: str | None, decided: Sequence[str]) -> dict[str, Any]:
    """What the HTML report reads, for posts published in `period` (a year, month or day
    prefix of the ISO date) or all: post and analysis counts, the flagged posts (sure adverts
    an analyst has not rejected, and posts an analyst's decision keeps flagged: `flagged_clause`)
    in publication order, and the referrals of those posts."""
    in_period = posts.c.published_at.startswith(period, autoescape=True) if period else true()
    with store.reading() as connection:
        post_count = connection.scalar(select(func.count()).select_from(posts).where(in_period))
        analysed = connection.scalar(
            select(func.count())
            .select_from(analysis.join(posts, posts.c.key == analysis.c.post_key))
            .where(in_period)
        )
        flagged_rows = connection.execute(
            flagged_posts_query(decided, analysis.c.score, analysis.c.entities, analysis.c.cluster_id).where(
                in_period
            )
        ).mappings()
        flagged_list = [dict(row) for row in flagged_rows]
        referral_rows = connection.execute(
            select(referrals.c.status, referrals.c.platform, referrals.c.referred_at, referrals.c.removed_at)
            .select_from(referrals.join(posts, posts.c.key == referrals.c.post_key))
            .where(in_period)
        ).mappings()
        referral_list = [dict(row) for row in referral_rows]
    return {
        "posts": int(post_count or 0),
        "analysed": int(analysed or 0),
        "flagged": flagged_list,
        "referrals": referral_list,
    }
