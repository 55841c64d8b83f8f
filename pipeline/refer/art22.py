"""The trusted flagger's yearly report (DSA Art. 22(3)): notices submitted in the period,
counted by provider of hosting services, by type of alleged illegal content and by the action
the provider took, with how the flagger keeps its independence.

The report is counts only. It never names a channel, an account, a post, a URL, a contact or
a person (the notifier's own name stays out as well; only the organisation is named), so it
can be published as it is.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from jinja2 import Environment

from pipeline.refer import ReferralError
from pipeline.refer.notices import LAW
from pipeline.refer.stats import GONE, hours_to_outcome, kind_of
from vigie.config import ReferralsConfig
from vigie.store import Store, cases

# The providers behind each notice destination, as the DSA names providers of hosting services.
PROVIDERS = {
    "telegram": "Telegram (Telegram Messenger Inc.)",
    "meta": "Meta Platforms Ireland Limited (Facebook, Instagram, Threads)",
    "tiktok": "TikTok Technology Limited",
    "x": "Twitter International Unlimited Company (X)",
    "youtube": "Google Ireland Limited (YouTube)",
}
CONTENT_TYPES = {
    "crossing": "Migrant-smuggling service offers (irregular crossings, transport, guides)",
    "documents": "Offers of forged or fraudulently obtained travel and identity documents",
}
ACTIONS = {
    "removed": "Content removed",
    "account_suspended": "Account suspended or terminated",
    "restricted": "Visibility restricted or geo-blocked",
    "rejected": "No action: the provider declined the notice",
    "online": "No action seen: still online at the last check",
    "pending": "No answer or action yet",
}
# A notice of several items counts under the strongest action taken on any of them.
_STRENGTH = ("account_suspended", "removed", "restricted", "rejected", "online", "pending")

_TEMPLATE = """\
# Report on notices submitted by a trusted flagger, {{ period_label }}

Under Article 22(3) of Regulation (EU) 2022/2065 (Digital Services Act).
{% if organisation %}Trusted flagger: {{ organisation }}.
{% endif %}
In this period {{ notices }} notice{{ "" if notices == 1 else "s" }} covering {{ items }} item{{ "" if items == 1 else "s" }} of content were
submitted under Article 16. An analyst confirmed every item before it was notified; of these,
{{ found.classifier }} had been flagged as adverts by automated detection, {{ found.review_band }} put in its review band
for a person to decide, and {{ found.analyst }} found by analysts themselves. {{ rejected_by_analysts }} flagged
item{{ " was" if rejected_by_analysts == 1 else "s were" }} rejected by analysts and not notified.

## (a) Notices by provider of hosting services

| Provider | Notices | Items |
|---|---:|---:|
{% for row in by_provider %}| {{ row.provider }} | {{ row.notices }} | {{ row["items"] }} |
{% endfor %}
## (b) Notices by type of alleged illegal content

| Type of content | Legal basis | Notices | Items |
|---|---|---:|---:|
{% for row in by_content_type %}| {{ row.label }} | {{ row.law }} | {{ row.notices }} | {{ row["items"] }} |
{% endfor %}
## (c) Notices by action taken by the provider

| Action taken | Notices | Items | Median hours to the action |
|---|---:|---:|---:|
{% for row in by_action %}| {{ row.label }} | {{ row.notices }} | {{ row["items"] }} | {{ "-" if row.median_hours is none else row.median_hours }} |
{% endfor %}
A notice of several items counts under the strongest action taken on any of its items.
Actions come from the providers' answers, from their statements of reasons in the DSA
Transparency Database, and from re-checking that notified content is still public.

### Action by provider (items)

| Provider |{% for kind in actions %} {{ action_labels[kind] }} |{% endfor %}
|---|{% for kind in actions %}---:|{% endfor %}
{% for row in by_provider %}| {{ row.provider }} |{% for kind in actions %} {{ row.actions.get(kind, 0) }} |{% endfor %}
{% endfor %}
## How independence is kept

{{ independence }}
"""


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    middle = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return round(middle, 1)


def _period_label(period: str | None) -> str:
    return period if period else "all periods"


def art22_report(store: Store, config: ReferralsConfig, period: str | None) -> dict[str, Any]:
    """The report's figures: notices of the period (YYYY or YYYY-MM of the referral date)."""
    if not config.independence.strip():
        raise ReferralError(
            "referrals.independence is empty: the Art. 22 report must explain how the flagger keeps its "
            "independence from the providers; write it in the configuration"
        )
    rows = cases.referred_in(store, period)
    notices: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        notices.setdefault(row["notice_id"] or row["post_key"], []).append(row)

    def notice_type(items: list[dict[str, Any]]) -> str:
        # As the notice was written: documents only when every item is one.
        return "documents" if all(r["content_type"] == "documents" for r in items) else "crossing"

    def notice_action(items: list[dict[str, Any]]) -> str:
        kinds = {kind_of(r) for r in items}
        return next(k for k in _STRENGTH if k in kinds)

    provider_notices = Counter(items[0]["platform"] for items in notices.values())
    provider_items = Counter(r["platform"] for r in rows)
    provider_actions: dict[str, Counter[str]] = {}
    for r in rows:
        provider_actions.setdefault(r["platform"], Counter())[kind_of(r)] += 1
    type_notices = Counter(notice_type(items) for items in notices.values())
    type_items = Counter("documents" if r["content_type"] == "documents" else "crossing" for r in rows)
    action_notices = Counter(notice_action(items) for items in notices.values())
    action_items = Counter(kind_of(r) for r in rows)
    hours: dict[str, list[float]] = {}
    for r in rows:
        kind = kind_of(r)
        if (h := hours_to_outcome(r, kind)) is not None:
            hours.setdefault(kind, []).append(h)
    actions = [k for k in ACTIONS if action_items[k] or k in ("removed", *GONE, "pending")]
    jurisdiction = LAW.get("EU", {})
    return {
        "period": period or "all",
        "period_label": _period_label(period),
        "organisation": config.organisation,
        "notices": len(notices),
        "items": len(rows),
        "rejected_by_analysts": cases.count_rejected_in(store, period),
        "found": cases.detection_of_referred(store, period),
        "by_provider": [
            {
                "platform": platform,
                "provider": PROVIDERS.get(platform, platform),
                "notices": provider_notices[platform],
                "items": provider_items[platform],
                "actions": dict(provider_actions.get(platform, {})),
            }
            for platform in sorted(provider_items)
        ],
        "by_content_type": [
            {
                "content_type": kind,
                "label": CONTENT_TYPES[kind],
                "law": jurisdiction.get(kind, ""),
                "notices": type_notices[kind],
                "items": type_items[kind],
            }
            for kind in CONTENT_TYPES
            if type_items[kind]
        ],
        "by_action": [
            {
                "action": kind,
                "label": ACTIONS[kind],
                "notices": action_notices[kind],
                "items": action_items[kind],
                "median_hours": _median(hours.get(kind, [])),
            }
            for kind in actions
        ],
        "actions": actions,
        "independence": config.independence.strip(),
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, to publish or convert. Configured texts are the only free text."""
    env = Environment(autoescape=False, keep_trailing_newline=True)  # Markdown, not HTML
    organisation = " ".join(str(report["organisation"]).split())
    return env.from_string(_TEMPLATE).render(
        {**report, "organisation": organisation, "action_labels": ACTIONS}
    )
