"""The alert rules as pure functions: what each one raises, and what it does not."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pipeline.alerts import webhook
from pipeline.alerts.deliver import backoff, configured_channels
from pipeline.alerts.rules import (
    cluster_alerts,
    iso_week,
    network_alerts,
    route_week_alerts,
    still_online_alerts,
)
from pipeline.intel.networks import Network
from vigie.config import AlertRules, VigieConfig

NOW = "2026-12-01T12:00:00.000000+00:00"


def network(nid: str, sources: list[str], **members: list[str]) -> Network:
    return Network(
        network_id=nid,
        first_seen="2026-07-01T00:00:00+00:00",
        last_seen="2026-11-20T00:00:00+00:00",
        sources=sources,
        members={"source": sources, **members},
        links=[],
        post_keys=["telegram:a/1", "telegram:b/2"],
        flagged_posts=7,
        languages={"ku": 5, "en": 2},
        routes=[
            {
                "origin": "fr",
                "destination": "gb",
                "origin_name": "France",
                "destination_name": "UK",
                "posts": 6,
            }
        ],
        prices=[{"month": "2026-11", "route": "fr → gb", "currency": "GBP", "min": 2500, "max": 2500}],
        transport={"boat": 4},
        guarantees={},
        payment_terms={},
        referral_outcomes={},
        platforms=["telegram"],
    )


PLANTED = network(
    "net-000000000001",
    ["telegram:kurd_game_dunkirk", "telegram:uk_boat_express"],
    phone=["+33758214693"],
    handle=["dunkirk_taxi_game"],
)


def test_an_unknown_network_raises_one_alert_carrying_its_members_and_no_post_text():
    alerts, silent = network_alerts([PLANTED], {}, AlertRules(), NOW)
    assert silent == []
    [alert] = alerts
    assert alert.key == "new_network:net-000000000001" and alert.rule == "new_network"
    assert "2 sources" in alert.summary and "7 flagged posts" in alert.summary
    details = alert.payload()["details"]
    assert details["members"] == [
        "source:telegram:kurd_game_dunkirk",
        "source:telegram:uk_boat_express",
        "handle:dunkirk_taxi_game",
        "phone:+33758214693",
    ]
    assert alert.payload()["alert_id"] == alert.key
    # What a network alert carries, field by field: no post text among them.
    assert set(details) == {
        "network_id", "sources", "platforms", "members", "flagged_posts", "languages", "routes", "prices",
        "first_seen", "last_seen",
    }  # fmt: skip


def test_a_known_network_raises_only_its_new_members():
    first, _ = network_alerts([PLANTED], {}, AlertRules(), NOW)
    known = {PLANTED.network_id: set(first[0].details["members"])}
    assert network_alerts([PLANTED], known, AlertRules(), NOW) == ([], [])

    grown = network(
        PLANTED.network_id,
        [*PLANTED.sources, "telegram:rebaz_safar_uk"],
        phone=["+33758214693", "+447700900412"],
        handle=["dunkirk_taxi_game"],
    )
    alerts, _ = network_alerts([grown], known, AlertRules(), NOW)
    assert sorted(a.key for a in alerts) == [
        "new_member:net-000000000001:phone:+447700900412",
        "new_member:net-000000000001:source:telegram:rebaz_safar_uk",
    ]
    phone = next(a for a in alerts if "phone" in a.key)
    assert phone.summary.startswith("phone +447700900412 joined network net-000000000001 (3 sources")


def test_rules_switched_off_raise_nothing_but_keep_networks_known():
    rules = AlertRules(new_network=False, new_contact=False)
    alerts, silent = network_alerts([PLANTED], {}, rules, NOW)
    assert alerts == [] and [a.key for a in silent] == ["new_network:net-000000000001"]
    known = {PLANTED.network_id: {"source:telegram:kurd_game_dunkirk"}}
    assert network_alerts([PLANTED], known, rules, NOW) == ([], [])


def cluster(posts: int, best: float) -> dict[str, Any]:
    return {
        "cluster_id": "c-1",
        "posts": posts,
        "best_score": best,
        "sources": ["telegram:a", "telegram:b"],
        "urls": [f"https://t.me/a/{i}" for i in range(posts)],
        "first_published": "2026-11-01T00:00:00+00:00",
        "last_published": "2026-11-03T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("posts", "best", "raised"),
    [(3, 0.95, True), (2, 0.99, False), (3, 0.949, False), (10, 0.97, True)],
)
def test_a_cluster_needs_both_its_size_and_its_score(posts, best, raised):
    alerts = cluster_alerts([cluster(posts, best)], AlertRules(), NOW)
    assert [a.key for a in alerts] == (["cluster:c-1"] if raised else [])


def test_the_cluster_rule_is_off_without_a_score():
    assert cluster_alerts([cluster(10, 1.0)], AlertRules(cluster_score=None), NOW) == []


def flagged_row(
    key: str, published_at: str, entities: dict[str, Any], cluster_id: str | None = None
) -> dict[str, Any]:
    """A flagged post as `vigie.store.alerts.flagged_route_posts` gives it."""
    return {
        "key": f"telegram:{key}",
        "platform": "telegram",
        "channel": key.split("/")[0],
        "url": f"https://t.me/{key}",
        "text": "",
        "published_at": published_at,
        "lang": "en",
        "entities": json.dumps(entities),
        "cluster_id": cluster_id,
    }


def posts_per_week(
    today: date, counts: list[int], route: tuple[str, str] = ("fr", "gb")
) -> list[dict[str, Any]]:
    """counts[0] in the current week, counts[1] the week before, and so on."""
    monday = today - timedelta(days=today.weekday())
    posts = []
    for weeks_ago, n in enumerate(counts):
        day = monday - timedelta(weeks=weeks_ago) + timedelta(days=1)
        posts += [
            flagged_row(
                f"a/{weeks_ago}-{i}", f"{day}T10:00:00+00:00", {"origin": route[0], "destination": route[1]}
            )
            for i in range(n)
        ]
    return posts


TODAY = date(2026, 12, 3)  # a Thursday, in 2026-W49


def test_a_route_week_above_twice_its_baseline_raises_once_named_by_iso_week():
    # This week 6, then 8 weeks of 2 each: mean 2, 6 > 2 × 2.
    alerts = route_week_alerts(posts_per_week(TODAY, [6] + [2] * 8), AlertRules(), TODAY, NOW)
    [alert] = alerts
    assert alert.key == "route_week:fr>gb:2026-W49"
    assert alert.details["adverts"] == 6 and alert.details["baseline_mean"] == 2.0
    assert alert.details["baseline_counts"] == [2] * 8
    assert "3.0× its weekly mean of 2.0" in alert.summary


@pytest.mark.parametrize(
    ("counts", "why"),
    [
        ([4] + [2] * 8, "exactly twice the mean is not above it"),
        ([4] + [0] * 8, "below route_min_posts"),
        ([10] + [6] * 8, "below twice the mean"),
    ],
)
def test_a_route_week_that_does_not_stand_out_raises_nothing(counts, why):
    assert route_week_alerts(posts_per_week(TODAY, counts), AlertRules(), TODAY, NOW) == [], why


def test_last_week_counts_too_and_a_new_route_stands_out_against_nothing():
    alerts = route_week_alerts(posts_per_week(TODAY, [0, 5], route=("be", "ie")), AlertRules(), TODAY, NOW)
    assert [a.key for a in alerts] == ["route_week:be>ie:2026-W48"]
    assert "none in the 8 weeks before" in alerts[0].summary


def test_iso_weeks_at_the_turn_of_the_year():
    assert iso_week(date(2026, 12, 28)) == "2026-W53"
    assert iso_week(date(2027, 1, 4)) == "2027-W01"


def test_a_referral_is_still_online_only_after_the_hours_configured():
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    row = {
        "post_key": "telegram:a/1",
        "url": "https://t.me/a/1",
        "platform": "telegram",
        "notice_id": "n-1",
        "status": "referred",
        "last_check": "online",
        "last_check_at": "2026-12-01T06:00:00+00:00",
    }
    early = {**row, "referred_at": (at - timedelta(hours=71)).isoformat()}
    late = {**row, "post_key": "telegram:a/2", "referred_at": (at - timedelta(hours=73)).isoformat()}
    alerts = still_online_alerts([early, late], AlertRules(), at)
    assert [a.key for a in alerts] == ["still_online:telegram:a/2"]
    assert alerts[0].summary.startswith("https://t.me/a/1 still online 73 h after its referral to telegram")
    assert still_online_alerts([late], AlertRules(still_online_hours=None), at) == []


def test_backoff_doubles_from_its_base():
    config = VigieConfig.model_validate(
        {"alerts": {"webhook": {"backoff_base": 2.0}, "email": {"backoff_base": 10.0}}}
    )
    assert [backoff(config, n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert [backoff(config, n, "email") for n in (1, 2, 3)] == [10.0, 20.0, 40.0]


def test_channels_are_those_configured():
    assert configured_channels(VigieConfig()) == []
    config = VigieConfig.model_validate(
        {"alerts": {"webhook": {"url": "http://127.0.0.1:9/hook"}, "email": {"host": "smtp.example.org"}}}
    )
    assert configured_channels(config) == ["webhook", "email"]


def test_the_signature_covers_the_timestamp_and_the_exact_body():
    import hashlib
    import hmac

    body = webhook.body_of({"alert_id": "x", "summary": "é"})
    assert body == '{"alert_id": "x", "summary": "é"}'.encode()
    expected = hmac.new(b"k3y", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert webhook.signature("k3y", body, "1767225600") == f"sha256={expected}"
    assert webhook.signature("k3y", body, "1767225601") != webhook.signature("k3y", body, "1767225600")
    assert webhook.signature("other", body, "1767225600") != webhook.signature("k3y", body, "1767225600")


def test_an_alert_id_from_any_script_becomes_an_ascii_header_that_decodes_back():
    from urllib.parse import unquote

    key = "new_member:net-1:link:t.me/joinchat/abc_قروب"
    header = webhook.alert_id_header(key)
    header.encode("latin-1")  # what http.client requires of a header value
    assert header.isascii() and " " not in header and "\n" not in header
    assert header.startswith("new_member:net-1:link:t.me/joinchat/abc_%D9%82")
    assert unquote(header) == key


def test_backoff_is_capped():
    config = VigieConfig.model_validate(
        {"alerts": {"max_backoff_seconds": 100, "webhook": {"backoff_base": 30}}}
    )
    assert [backoff(config, n) for n in (1, 2, 3, 4, 40, 5000)] == [30.0, 60.0, 100.0, 100.0, 100.0, 100.0]


def test_a_delivery_is_dead_only_when_tried_enough_times_and_old_enough():
    from pipeline.alerts.deliver import gives_up
    from vigie.store.alerts import Delivery

    config = VigieConfig.model_validate({"alerts": {"give_up_hours": 48, "webhook": {"max_attempts": 5}}})
    at = datetime(2026, 12, 3, 12, tzinfo=UTC)

    def delivery(hours_old: float) -> Delivery:
        raised = (at - timedelta(hours=hours_old)).isoformat()
        return Delivery("cluster:c-1", "webhook", "pending", 4, None, None, None, {}, raised)

    assert not gives_up(config, delivery(1), 5, at)  # an hour-long outage loses nothing
    assert not gives_up(config, delivery(49), 4, at)
    assert gives_up(config, delivery(49), 5, at)


def test_messages_name_the_webhook_by_scheme_and_host_only():
    from pipeline.alerts.deliver import where

    config = VigieConfig.model_validate(
        {"alerts": {"webhook": {"url": "https://user:pw@hooks.example.org:8443/services/T0/B0/s3cr3t?k=v"}}}
    )
    assert where(config, "webhook") == "webhook https://hooks.example.org:8443"


def test_a_login_over_a_connection_in_clear_is_refused(monkeypatch):
    from pipeline.alerts import email
    from vigie.config import EmailConfig

    plain = EmailConfig(
        host="smtp.example.org", sender="v@example.org", recipients=["a@example.org"], starttls=False
    )
    assert email.missing_setup(plain) is None  # a relay that needs no login
    monkeypatch.setenv(email.USER_ENV, "vigie")
    monkeypatch.setenv(email.PASSWORD_ENV, "pw")
    assert "in clear" in (email.missing_setup(plain) or "")
    assert email.missing_setup(plain.model_copy(update={"starttls": True})) is None


def test_only_sources_and_contacts_join_a_network_as_alerts():
    known = {PLANTED.network_id: {"source:" + s for s in PLANTED.sources} | {"handle:dunkirk_taxi_game"}}
    grown = network(
        PLANTED.network_id,
        PLANTED.sources,
        phone=["+33758214693"],
        handle=["dunkirk_taxi_game"],
        cluster=["c-77"],
        image=["img-3"],
        wallet=["TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"],
    )
    known[PLANTED.network_id].add("phone:+33758214693")
    alerts, _ = network_alerts([grown], known, AlertRules(), NOW)
    assert [a.key for a in alerts] == [
        "new_member:net-000000000001:wallet:TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"
    ]


def test_the_members_of_a_network_merged_into_another_are_known_in_it():
    from pipeline.alerts.rules import fold_merged

    a, b, c = "net-00000000000a", "net-00000000000b", "net-00000000000c"
    known = {a: {"source:telegram:x"}, b: {"source:telegram:y", "phone:+1"}, c: {"handle:z"}}
    folded = fold_merged(known, {b: a, c: b})  # c into b, b into a
    assert folded[a] == {"source:telegram:x", "source:telegram:y", "phone:+1", "handle:z"}
    merged = network(a, ["telegram:x", "telegram:y"], phone=["+1"], handle=["z"])
    assert network_alerts([merged], folded, AlertRules(), NOW) == ([], [])
    assert len(network_alerts([merged], known, AlertRules(), NOW)[0]) == 3  # unfolded: a flood


def test_a_cluster_holding_a_post_already_told_about_is_not_told_again():
    told = {"c-0": {"https://t.me/a/1"}}
    assert cluster_alerts([cluster(3, 0.97)], AlertRules(), NOW, told) == []
    assert [a.key for a in cluster_alerts([cluster(3, 0.97)], AlertRules(), NOW, {"c-0": {"x"}})] == [
        "cluster:c-1"
    ]


def test_a_route_counts_adverts_not_reposts_and_is_keyed_by_its_two_countries():
    monday = TODAY - timedelta(days=TODAY.weekday())
    day = f"{monday}T10:00:00+00:00"
    reposts = [
        flagged_row(f"c{i}/1", day, {"origin": "fr-dunkirk", "destination": "gb"}, "c-1") for i in range(5)
    ]
    assert route_week_alerts(reposts, AlertRules(), TODAY, NOW) == []  # one advert in five channels
    places = ["fr-dunkirk", "fr-calais", "fr-gravelines", "fr", "fr-dunkirk"]
    adverts = [
        flagged_row(f"q{i}/1", day, {"origin": place, "destination": "gb"}, f"c-{i}")
        for i, place in enumerate(places)
    ]
    [alert] = route_week_alerts(adverts, AlertRules(), TODAY, NOW)
    assert alert.key == "route_week:fr>gb:2026-W49" and alert.details["adverts"] == 5


def test_a_route_between_two_towns_of_one_country_raises_nothing_and_legs_count():
    monday = TODAY - timedelta(days=TODAY.weekday())
    day = f"{monday}T10:00:00+00:00"
    inland = [
        flagged_row(f"d{i}/1", day, {"origin": "fr-dunkirk", "destination": "fr-calais"}) for i in range(6)
    ]
    assert route_week_alerts(inland, AlertRules(), TODAY, NOW) == []  # no France → France
    legs = {
        "origin": "fr-dunkirk",
        "destination": "fr-calais",
        "legs": [
            {"origin": "fr-dunkirk", "destination": "fr-calais", "prices": []},
            {"origin": "be", "destination": "ie", "prices": []},
        ],
    }
    by_legs = [flagged_row(f"l{i}/1", day, legs) for i in range(5)]
    [alert] = route_week_alerts(by_legs, AlertRules(), TODAY, NOW)
    assert alert.key == "route_week:be>ie:2026-W49" and alert.details["adverts"] == 5


def test_the_daemon_schedules_the_alerts_job_only_when_alerts_go_somewhere():
    from pipeline.daemon.jobs import ALERTS, job_specs, managed

    assert ALERTS not in {s.id for s in job_specs(VigieConfig())}
    config = VigieConfig.model_validate(
        {
            "alerts": {"webhook": {"url": "http://127.0.0.1:9/hook"}},
            "daemon": {"replay_every_minutes": 30, "alerts_every_minutes": 5},
        }
    )
    [spec] = [s for s in job_specs(config) if s.id == ALERTS]
    assert spec.schedule == "every 5 min" and spec.run_at_once and spec.executor == "alerts"
    assert managed(ALERTS)  # removed from the job store once no channel is configured
