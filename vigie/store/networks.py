"""Smuggling networks: the flagged posts they are computed from, and the networks as last
refreshed (their profiles, and their members with when each joined)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from vigie.store.analysis import ANALYSED_POSTS, flagged_clause
from vigie.store.core import json_object
from vigie.store.media import MIN_PDQ_QUALITY
from vigie.store.portable import upsert
from vigie.store.schema import analysis, media_files, network_members, networks, post_media, posts, referrals

if TYPE_CHECKING:
    from vigie.store.core import Store


def flagged_posts(store: Store, decided: Sequence[str]) -> list[dict[str, Any]]:
    """Every flagged post with what networks are made of: sure adverts an analyst has not
    rejected, and posts an analyst confirmed (`decided` referral states) whatever they
    scored. Each with its text, the text read in its images, its language, entities
    (decoded), repost cluster, referral status and platform outcome; oldest first by
    `seen_at`: when it was published, else (no date given) when it was first stored."""
    p, a, r = posts.c, analysis.c, referrals.c
    query = (
        select(
            p.key,
            p.platform,
            p.channel,
            p.url,
            p.text,
            p.ocr_text,
            p.published_at,
            func.coalesce(p.published_at, p.first_seen).label("seen_at"),
            a.lang,
            a.entities,
            a.cluster_id,
            r.status.label("referral_status"),
            r.outcome.label("referral_outcome"),
        )
        .select_from(ANALYSED_POSTS)
        .where(flagged_clause(decided))
        .order_by(func.coalesce(p.published_at, p.first_seen), p.key)
    )
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["entities"] = json_object(row["entities"])
    return rows


def flagged_images(store: Store, decided: Sequence[str]) -> list[dict[str, Any]]:
    """(post key, file SHA-256, PDQ hex) of every image worth matching of a flagged post."""
    p, m = posts.c, media_files.c
    query = (
        select(post_media.c.post_key, m.sha256, m.pdq)
        .select_from(
            ANALYSED_POSTS.join(post_media, post_media.c.post_key == p.key).join(
                media_files, m.sha256 == post_media.c.sha256
            )
        )
        .where(flagged_clause(decided), m.pdq.is_not(None), m.pdq_quality >= MIN_PDQ_QUALITY)
        .order_by(post_media.c.post_key, post_media.c.position)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def stored_networks(store: Store, include_merged: bool = False) -> list[dict[str, Any]]:
    """The networks as last refreshed (those merged into another too, with
    `include_merged`), oldest first; each with its profile (decoded) and its members as
    {(kind, value): joined_at}."""
    n, m = networks.c, network_members.c
    query = select(networks).order_by(n.first_seen, n.network_id)
    if not include_merged:
        query = query.where(n.merged_into.is_(None))
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
        members: dict[str, dict[tuple[str, str], str]] = {}
        for member in connection.execute(select(m.network_id, m.kind, m.value, m.joined_at)):
            members.setdefault(member.network_id, {})[(member.kind, member.value)] = member.joined_at
    for row in rows:
        row["profile"] = json_object(row["profile"])
        row["members"] = members.get(row["network_id"], {})
    return rows


def merged_map(store: Store) -> dict[str, str]:
    """Stored networks absorbed by another: {absorbed id: the id it was merged into}."""
    n = networks.c
    query = select(n.network_id, n.merged_into).where(n.merged_into.is_not(None))
    with store.reading() as connection:
        return {row.network_id: row.merged_into for row in connection.execute(query)}


def count_networks(store: Store) -> int:
    """How many networks are stored, those merged into another included."""
    with store.reading() as connection:
        return int(connection.scalar(select(func.count()).select_from(networks)) or 0)


def save_networks(
    store: Store,
    rows: Sequence[Mapping[str, Any]],
    merged: Mapping[str, str],
    dissolved: Sequence[str],
    now: str,
) -> None:
    """Store one refresh, all of it or nothing: each network of `rows` (network_id,
    first_seen, profile, members as {(kind, value): joined_at}) replaces its stored row and
    members; each id of `merged` points to the network that absorbed it and loses its
    members; the `dissolved` ones (no longer two sources) are deleted with those they absorbed."""
    n, m = networks.c, network_members.c
    with store.transaction() as connection:
        gone = [*merged, *dissolved]
        if gone:
            connection.execute(delete(network_members).where(m.network_id.in_(gone)))
        for row in rows:
            upsert(
                connection,
                networks,
                {
                    "network_id": row["network_id"],
                    "first_seen": row["first_seen"],
                    "updated_at": now,
                    "merged_into": None,
                    "profile": json.dumps(row["profile"], ensure_ascii=False),
                },
                ["network_id"],
            )
            connection.execute(delete(network_members).where(m.network_id == row["network_id"]))
            values = [
                {"network_id": row["network_id"], "kind": kind, "value": value, "joined_at": joined}
                for (kind, value), joined in sorted(row["members"].items())
            ]
            if values:
                connection.execute(network_members.insert(), values)
        for absorbed, into in merged.items():
            connection.execute(
                update(networks).where(n.network_id == absorbed).values(merged_into=into, updated_at=now)
            )
        if dissolved:
            # What they had absorbed goes with them: nothing is left to point to.
            connection.execute(delete(networks).where(n.merged_into.in_(list(dissolved))))
            connection.execute(delete(networks).where(n.network_id.in_(list(dissolved))))
