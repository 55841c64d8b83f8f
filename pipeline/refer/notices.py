"""Referral notices platforms can act on without asking back: CSV, xlsx, JSON and DSA
notices, with the evidence frozen at export."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classifier.cues import route_label
from pipeline.refer import ReferralError
from pipeline.refer.spreadsheets import to_csv, write_xlsx
from vigie.config import ReferralsConfig
from vigie.store import Store, cases, utcnow
from vigie.store import media as stored_media

PLATFORMS = ("telegram", "meta", "tiktok", "x", "youtube")
FORMATS = ("csv", "xlsx", "json", "dsa")
# Where each platform takes notices, its policy category, and the fields its form asks for.
DESTINATIONS: dict[str, dict[str, Any]] = {
    "telegram": {
        "channel": "abuse@telegram.org (or Telegram's DSA notice form)",
        "category": "Illegal goods and services: human smuggling",
        "fields": ["urls", "explanation", "notifier_name", "notifier_email", "good_faith"],
    },
    "meta": {
        "channel": "Meta DSA illegal-content report form (Facebook/Instagram)",
        "category": "Human exploitation: human smuggling",
        "fields": ["urls", "country", "law", "explanation", "notifier_name", "notifier_email", "signature"],
    },
    "tiktok": {
        "channel": "TikTok 'Report illegal content' (DSA) form",
        "category": "Human exploitation: smuggling",
        "fields": ["urls", "country", "law", "explanation", "notifier_name", "notifier_email", "good_faith"],
    },
    "x": {
        "channel": "X 'Report illegal content in the EU' (DSA) form",
        "category": "Illegal or harmful activity: human smuggling",
        "fields": ["urls", "country", "law", "explanation", "notifier_name", "notifier_email", "signature"],
    },
    "youtube": {
        "channel": "Google/YouTube legal removal request (DSA)",
        "category": "Illegal content: migrant smuggling",
        "fields": ["urls", "country", "law", "explanation", "notifier_name", "notifier_email", "signature"],
    },
}
LAW = {
    "EU": {
        "crossing": "facilitation of unauthorised entry, transit and residence (Council Directive 2002/90/EC and "
        "Framework Decision 2002/946/JHA, as transposed in the Member States' criminal law)",
        "documents": "supply of forged or fraudulently obtained travel and identity documents to facilitate "
        "unauthorised entry (Directive 2002/90/EC; national document-fraud offences)",
    },
    "UK": {
        "crossing": "assisting unlawful immigration (Immigration Act 1971, section 25)",
        "documents": "supplying false identity documents (Identity Documents Act 2010) to assist unlawful "
        "immigration (Immigration Act 1971, section 25)",
    },
}
GOOD_FAITH = (
    "I declare in good faith that the information and allegations in this notice are accurate and "
    "complete to the best of my knowledge."
)
DOCUMENT_CUES = {"documents", "forged"}


def content_type(cues: list[dict[str, Any]]) -> str:
    names = {c["cue"] for c in cues}
    crossing = names & {
        "crossing",
        "transport_boat",
        "transport_truck",
        "transport_car",
        "transport_foot",
        "route",
    }
    return "documents" if names & DOCUMENT_CUES and not crossing else "crossing"


# -- review ---------------------------------------------------------------------------


@dataclass
class Export:
    batch_id: str
    platform: str
    format: str
    notices: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)

    @property
    def items(self) -> int:
        return sum(len(n["urls"]) for n in self.notices)


def _explanation(
    ctype: str, jurisdiction: str, evidence: list[dict[str, Any]], entities: dict[str, Any]
) -> str:
    parts = [f"The content offers a migrant-smuggling service: {LAW[jurisdiction][ctype]}."]
    if entities["routes"]:
        parts.append(f"It advertises the route(s) {', '.join(entities['routes'])}.")
    if entities["prices"]:
        parts.append(f"It states a price ({', '.join(entities['prices'][:4])}).")
    if entities["contacts"]:
        parts.append(f"It gives contacts for booking ({', '.join(entities['contacts'][:5])}).")
    if entities["guarantees"]:
        parts.append(f"It promises success ({', '.join(entities['guarantees'][:3])}).")
    if entities["payment_terms"]:
        parts.append(f"It sets payment terms ({', '.join(entities['payment_terms'][:3])}).")
    if entities.get("image"):
        parts.append(f"Text read in its image(s): {'; '.join(entities['image'][:6])}.")
    if len(evidence) > 1:
        channels = sorted({e["channel"] for e in evidence})
        where = "channel(s)" if evidence[0]["platform"] == "telegram" else "account(s)"
        parts.append(
            f"The same advert was posted {len(evidence)} times in {len(channels)} {where}: "
            f"{', '.join(channels)}."
        )
    parts.append("Each item was reviewed and confirmed by an analyst before this notice.")
    return " ".join(parts)


def _notices(store: Store, platform: str, config: ReferralsConfig, batch_id: str) -> list[dict[str, Any]]:
    rows = cases.confirmed_for(store, platform)
    media = stored_media.media_of(store, [r["post_key"] for r in rows])
    groups: dict[str, list[Any]] = {}
    for r in rows:
        groups.setdefault(r["cluster_id"] or r["post_key"], []).append(r)
    destination = DESTINATIONS[platform]
    notices = []
    for n, items in enumerate(groups.values(), 1):
        merged: dict[str, list[str]] = {
            "routes": [],
            "prices": [],
            "contacts": [],
            "guarantees": [],
            "payment_terms": [],
            "transport": [],
            "image": [],
        }
        evidence = []
        for r in items:
            e = json.loads(r["entities"] or "{}")
            if label := route_label(e.get("origin"), e.get("destination")):
                merged["routes"].append(label)
            merged["prices"] += [p["text"] for p in e.get("prices", [])]
            for key in ("contacts", "guarantees", "payment_terms", "transport"):
                merged[key] += e.get(key, [])
            pictured = e.get("image") or {}
            merged["image"] += [p["text"] for p in pictured.get("prices", [])] + pictured.get("contacts", [])
            evidence.append(
                {
                    "url": r["url"],
                    # What a trust & safety team looks the item up by: the platform's own
                    # name for the account and the content id.
                    "platform": r["platform"],
                    "channel": r["channel"],
                    "account_name": r["author_name"],
                    "content_id": str(r["post_id"]),
                    "published_at": r["published_at"],
                    "captured_at": r["captured_at"],
                    "payload_sha256": r["payload_sha256"],
                    "text": r["text"],
                    "text_sha256": hashlib.sha256(r["text"].encode("utf-8")).hexdigest(),
                    "crawler_version": r["crawler_version"],
                    "classifier_score": r["score"],
                    "language": r["lang"],
                    "post_key": r["post_key"],
                    # Each file as captured: SHA-256 of its bytes, PDQ hash of an image.
                    "media": [
                        {
                            "type": m["type"],
                            "url": m["url"],
                            "status": m["status"],
                            "sha256": m["sha256"],
                            "content_type": m["content_type"],
                            "pdq": m["pdq"],
                            # False once retention deleted the file: its hash is all that is left.
                            "held": bool(m["kept"]),
                        }
                        for m in media.get(r["post_key"], [])
                    ],
                }
            )
        merged = {k: list(dict.fromkeys(v)) for k, v in merged.items()}
        ctype = "documents" if all(r["content_type"] == "documents" for r in items) else "crossing"
        explanation = _explanation(ctype, config.jurisdiction, evidence, merged)
        urls = [e["url"] for e in evidence]
        notice_id = f"{batch_id}-{n:03d}"
        subject = f"[{notice_id}] Notice of illegal content: migrant-smuggling {'documents' if ctype == 'documents' else 'service'} advert ({len(urls)} URL{'s' if len(urls) > 1 else ''})"
        body = "\n".join(
            [
                f"To: {destination['channel']}",
                f"Notice {notice_id} under Article 16 of the Digital Services Act (Regulation (EU) 2022/2065)"
                + (" from a trusted flagger (Article 22)." if config.trusted_flagger else "."),
                "",
                f"Category: {destination['category']}",
                "Exact locations of the content:",
                *[f"  - {u}" for u in urls],
                "",
                "Why this content is illegal:",
                f"  {explanation}",
                "",
                "Evidence kept by the notifier (SHA-256 of the captured page, capture time):",
                *[f"  - {e['url']}: {e['payload_sha256'] or 'n/a'} at {e['captured_at']}" for e in evidence],
                *[
                    f"  - {e['url']} {m['type']}: SHA-256 {m['sha256']}"
                    + (f", PDQ {m['pdq']}" if m["pdq"] else "")
                    + ("" if m["held"] else " (file no longer held)")
                    for e in evidence
                    for m in e["media"]
                    if m["sha256"]
                ],
                "",
                f"Notifier: {config.notifier_name}"
                + (f", {config.organisation}" if config.organisation else ""),
                f"Contact: {config.notifier_email}",
                "",
                GOOD_FAITH,
            ]
        )
        notices.append(
            {
                "notice_id": notice_id,
                "platform": platform,
                "destination": destination["channel"],
                "category": destination["category"],
                "platform_fields": destination["fields"],
                "content_type": "smuggling service advert"
                if ctype == "crossing"
                else "forged documents advert",
                "urls": urls,
                "cluster_id": items[0]["cluster_id"],
                "explanation": explanation,
                "legal_basis": LAW[config.jurisdiction][ctype],
                "jurisdiction": config.jurisdiction,
                "cues": merged,
                "evidence": evidence,
                "notifier": {
                    "name": config.notifier_name,
                    "email": config.notifier_email,
                    "organisation": config.organisation,
                },
                "trusted_flagger": config.trusted_flagger,
                "good_faith_statement": GOOD_FAITH,
                "email": {"subject": subject, "body": body},
            }
        )
    return notices


def _write(result: Export, target: Path, now: str) -> None:
    manifest = {
        "batch_id": result.batch_id,
        "platform": result.platform,
        "created_at": now,
        "notices": result.notices,
    }
    if result.format == "json":
        result.files.append(target / "notices.json")
        result.files[-1].write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    elif result.format == "csv":
        result.files.append(target / "notices.csv")
        result.files[-1].write_text(to_csv(result.notices), encoding="utf-8")
    elif result.format == "xlsx":
        result.files.append(target / "notices.xlsx")
        write_xlsx(result.notices, result.files[-1])
    else:
        for n in result.notices:
            path = target / f"{n['notice_id']}.txt"
            path.write_text(f"Subject: {n['email']['subject']}\n\n{n['email']['body']}\n", encoding="utf-8")
            result.files.append(path)
        result.files.append(target / "notices.json")
        result.files[-1].write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def export(
    store: Store, config: ReferralsConfig, platform: str, fmt: str, out_dir: Path, dry_run: bool = False
) -> Export:
    """Confirmed items not yet referred, one notice per repost cluster. Without dry_run,
    writes the files, freezes the evidence and marks the items referred (batch, time)."""
    if platform not in PLATFORMS:
        raise ReferralError(f"platform {platform!r}: expected one of {', '.join(PLATFORMS)}")
    if fmt not in FORMATS:
        raise ReferralError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not config.notifier_name or not config.notifier_email:
        raise ReferralError(
            "referrals.notifier_name and referrals.notifier_email must be set in the configuration: "
            "a DSA notice names its notifier"
        )
    # Microseconds: two exports in one second get two batches, never one folder.
    batch_id = f"VIGIE-{platform.upper()}-{datetime.now(UTC):%Y%m%dT%H%M%S.%f}"
    if dry_run:
        return Export(batch_id, platform, fmt, _notices(store, platform, config, batch_id))
    target = out_dir / batch_id
    # The items are read, marked referred and written out in one transaction: an item
    # rejected, or exported by someone else, meanwhile is never sent, and a failure while
    # writing leaves every item confirmed and no batch folder behind.
    with store.transaction():
        result = Export(batch_id, platform, fmt, _notices(store, platform, config, batch_id))
        if not result.notices:
            return result
        now = utcnow()
        for n in result.notices:
            for e in n["evidence"]:
                if not cases.mark_referred(store, e["post_key"], batch_id, n["notice_id"], e, now):
                    raise ReferralError(
                        f"{e['post_key']} changed while the notices were written (decided again or "
                        "exported by someone else); nothing was exported: run the export again"
                    )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.mkdir()  # a batch's notices are never overwritten
        try:
            _write(result, target, now)
            cases.record_batch(
                store, batch_id, platform, fmt, len(result.notices), result.items, str(target), now
            )
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    return result
