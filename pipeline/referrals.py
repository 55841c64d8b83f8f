"""Review, referral notices platforms can act on, evidence, removal tracking, statistics.

Lifecycle of a flagged post: new → confirmed | rejected (review, audited) → referred
(export: batch id, time, evidence frozen) → removed | online (verified by re-crawling).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigie.config import ReferralsConfig
from vigie.errors import VigieError
from vigie.sanitize import spreadsheet_cell
from vigie.store import Store, utcnow

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


class ReferralError(VigieError):
    """Raised by review and export when an item cannot take the requested step (unknown
    target, already referred, notifier not configured). Nothing is written."""


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


def review_queue(store: Store, limit: int | None = 50, include_decided: bool = False) -> list[dict[str, Any]]:
    """Flagged clusters (a post without a cluster is its own): the sure adverts first, then the
    review band (posts the classifier is unsure of), each by score, highest first. A cluster
    with any sure advert in it is in the advert band."""
    rows = store.db.execute(
        "SELECT a.post_key, a.cluster_id, a.score, a.lang, a.cues, a.entities, a.is_advert, p.url, p.channel,"
        " p.platform, p.text, p.published_at, r.status FROM analysis a JOIN posts p ON p.key = a.post_key"
        " LEFT JOIN referrals r ON r.post_key = a.post_key WHERE a.is_advert = 1 OR a.needs_review = 1"
        " ORDER BY a.is_advert DESC, a.score DESC"
    ).fetchall()
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] and not include_decided:
            continue
        g = groups.setdefault(
            r["cluster_id"] or r["post_key"],
            {
                "target": r["cluster_id"] or r["post_key"],
                "score": r["score"],
                "posts": [],
                "contacts": set(),
                "routes": set(),
                "cues": set(),
                "example": r["text"],
                "status": r["status"] or "new",
                "band": "advert" if r["is_advert"] else "review",
            },
        )
        g["posts"].append(
            {
                "key": r["post_key"],
                "url": r["url"],
                "channel": r["channel"],
                "lang": r["lang"],
                "score": r["score"],
                "published_at": r["published_at"],
                "band": "advert" if r["is_advert"] else "review",
                "status": r["status"] or "new",
            }
        )
        entities = json.loads(r["entities"] or "{}")
        g["contacts"] |= set(entities.get("contacts", []))
        if entities.get("origin") or entities.get("destination"):
            g["routes"].add(f"{entities.get('origin') or '?'} → {entities.get('destination') or '?'}")
        g["cues"] |= {c["cue"] for c in json.loads(r["cues"] or "[]")}
    out = sorted(groups.values(), key=lambda g: (g["band"] != "advert", -g["score"]))[:limit]
    for g in out:
        g["contacts"], g["routes"], g["cues"] = sorted(g["contacts"]), sorted(g["routes"]), sorted(g["cues"])
    return out


def decide(store: Store, target: str, decision: str, reason: str, reviewer: str) -> list[str]:
    """Confirm or reject a post (its key) or a whole repost cluster (its id). Audited."""
    if decision not in ("confirmed", "rejected"):
        raise ReferralError(f"decision {decision!r}: expected confirmed or rejected")
    if not reason.strip():
        raise ReferralError("a reason is required: it is kept with the decision")
    if not reviewer.strip():
        raise ReferralError("the reviewer's name is required")
    rows = store.db.execute(
        "SELECT a.post_key, a.cluster_id, a.cues, p.platform, r.status FROM analysis a JOIN posts p ON p.key = a.post_key"
        " LEFT JOIN referrals r ON r.post_key = a.post_key"
        " WHERE (a.is_advert = 1 OR a.needs_review = 1) AND (a.post_key = ? OR a.cluster_id = ?)",
        (target, target),
    ).fetchall()
    if not rows:
        raise ReferralError(f"{target}: no flagged post or repost cluster with this key or id")
    locked = [r["post_key"] for r in rows if r["status"] in ("referred", "removed", "online")]
    if locked:
        raise ReferralError(
            f"{target}: already referred ({', '.join(locked[:3])}); a referred item is not re-reviewed"
        )
    now = utcnow()
    with store.transaction():
        for r in rows:
            store.db.execute(
                "INSERT INTO reviews (post_key, cluster_id, decision, reason, reviewer, decided_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (r["post_key"], r["cluster_id"], decision, reason.strip(), reviewer, now),
            )
            store.db.execute(
                "INSERT INTO referrals (post_key, status, cluster_id, platform, content_type, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(post_key) DO UPDATE SET status = excluded.status,"
                " updated_at = excluded.updated_at",
                (
                    r["post_key"],
                    decision,
                    r["cluster_id"],
                    r["platform"],
                    content_type(json.loads(r["cues"])),
                    now,
                ),
            )
    return [r["post_key"] for r in rows]


def reviewed_examples(store: Store) -> list[Any]:
    """Analysts' latest decisions as extra training items (train split)."""
    from classifier.corpus import Example

    rows = store.db.execute(
        "SELECT rv.decision, p.text, a.lang, a.cues FROM reviews rv JOIN posts p ON p.key = rv.post_key"
        " JOIN analysis a ON a.post_key = rv.post_key"
        " WHERE rv.id = (SELECT MAX(id) FROM reviews WHERE post_key = rv.post_key) AND p.text != ''"
    ).fetchall()
    from classifier.corpus import LANGS

    out = []
    for r in rows:
        lang = r["lang"] if r["lang"] in LANGS else "en"
        if r["decision"] == "confirmed":
            kind = (
                "advert_documents"
                if content_type(json.loads(r["cues"])) == "documents"
                else "advert_crossing"
            )
            out.append(Example(r["text"], lang, 1, kind, "train"))
        else:
            out.append(Example(r["text"], lang, 0, "other", "train"))
    return out


# -- export ---------------------------------------------------------------------------


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
    if len(evidence) > 1:
        channels = sorted({e["channel"] for e in evidence})
        parts.append(
            f"The same advert was posted {len(evidence)} times in {len(channels)} channel(s): "
            f"{', '.join(channels)}."
        )
    parts.append("Each item was reviewed and confirmed by an analyst before this notice.")
    return " ".join(parts)


def _notices(store: Store, platform: str, config: ReferralsConfig, batch_id: str) -> list[dict[str, Any]]:
    rows = store.db.execute(
        "SELECT r.post_key, r.cluster_id, r.content_type, p.url, p.channel, p.text, p.payload_sha256, p.captured_at,"
        " p.crawler_version, p.published_at, a.entities, a.score, a.lang FROM referrals r"
        " JOIN posts p ON p.key = r.post_key JOIN analysis a ON a.post_key = r.post_key"
        " WHERE r.status = 'confirmed' AND r.platform = ? ORDER BY r.cluster_id, p.published_at",
        (platform,),
    ).fetchall()
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
        }
        evidence = []
        for r in items:
            e = json.loads(r["entities"] or "{}")
            if e.get("origin") or e.get("destination"):
                merged["routes"].append(f"{e.get('origin') or '?'} → {e.get('destination') or '?'}")
            merged["prices"] += [p["text"] for p in e.get("prices", [])]
            for key in ("contacts", "guarantees", "payment_terms", "transport"):
                merged[key] += e.get(key, [])
            evidence.append(
                {
                    "url": r["url"],
                    "channel": r["channel"],
                    "published_at": r["published_at"],
                    "captured_at": r["captured_at"],
                    "payload_sha256": r["payload_sha256"],
                    "text": r["text"],
                    "text_sha256": hashlib.sha256(r["text"].encode("utf-8")).hexdigest(),
                    "crawler_version": r["crawler_version"],
                    "classifier_score": r["score"],
                    "language": r["lang"],
                    "post_key": r["post_key"],
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


def _rows(notices: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A row per URL for the spreadsheet formats, every cell neutralised: contacts start
    with `+` or `@`, and what follows is the poster's text (`@x; =HYPERLINK(...)`)."""
    columns = [
        "notice_id",
        "platform",
        "url",
        "category",
        "content_type",
        "legal_basis",
        "explanation",
        "routes",
        "prices",
        "contacts",
        "captured_at",
        "payload_sha256",
        "text_sha256",
        "notifier_name",
        "notifier_email",
        "trusted_flagger",
        "destination",
    ]
    rows = []
    for n in notices:
        for e in n["evidence"]:
            row = {
                "notice_id": n["notice_id"],
                "platform": n["platform"],
                "url": e["url"],
                "category": n["category"],
                "content_type": n["content_type"],
                "legal_basis": n["legal_basis"],
                "explanation": n["explanation"],
                "routes": "; ".join(n["cues"]["routes"]),
                "prices": "; ".join(n["cues"]["prices"]),
                "contacts": "; ".join(n["cues"]["contacts"]),
                "captured_at": e["captured_at"],
                "payload_sha256": e["payload_sha256"],
                "text_sha256": e["text_sha256"],
                "notifier_name": n["notifier"]["name"],
                "notifier_email": n["notifier"]["email"],
                "trusted_flagger": n["trusted_flagger"],
                "destination": n["destination"],
            }
            rows.append([spreadsheet_cell(row[c]) for c in columns])
    return columns, rows


def _csv(notices: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns, rows = _rows(notices)
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _xlsx(notices: list[dict[str, Any]], path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "notices"
    columns, rows = _rows(notices)
    sheet.append(columns)
    for row in rows:
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:
            cell.data_type = "s"  # text, never a formula, whatever the value looks like
    sheet.freeze_panes = "A2"
    book.save(path)


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
    batch_id = f"VIGIE-{platform.upper()}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    result = Export(batch_id, platform, fmt, _notices(store, platform, config, batch_id))
    if dry_run or not result.notices:
        return result
    target = out_dir / batch_id
    target.mkdir(parents=True, exist_ok=True)
    manifest = {"batch_id": batch_id, "platform": platform, "created_at": utcnow(), "notices": result.notices}
    if fmt == "json":
        result.files.append(target / "notices.json")
        result.files[-1].write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    elif fmt == "csv":
        result.files.append(target / "notices.csv")
        result.files[-1].write_text(_csv(result.notices), encoding="utf-8")
    elif fmt == "xlsx":
        result.files.append(target / "notices.xlsx")
        _xlsx(result.notices, result.files[-1])
    else:
        for n in result.notices:
            path = target / f"{n['notice_id']}.txt"
            path.write_text(f"Subject: {n['email']['subject']}\n\n{n['email']['body']}\n", encoding="utf-8")
            result.files.append(path)
        result.files.append(target / "notices.json")
        result.files[-1].write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    now = utcnow()
    with store.transaction():
        for n in result.notices:
            for e in n["evidence"]:
                store.db.execute(
                    "UPDATE referrals SET status = 'referred', batch_id = ?, notice_id = ?, referred_at = ?, evidence_text = ?,"
                    " evidence_sha256 = ?, evidence_captured_at = ?, evidence_crawler_version = ?, updated_at = ?"
                    " WHERE post_key = ? AND status = 'confirmed'",
                    (
                        batch_id,
                        n["notice_id"],
                        now,
                        e["text"],
                        e["payload_sha256"],
                        e["captured_at"],
                        e["crawler_version"],
                        now,
                        e["post_key"],
                    ),
                )
        store.db.execute(
            "INSERT INTO referral_batches (batch_id, platform, format, created_at, notices, items, path)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (batch_id, platform, fmt, now, len(result.notices), result.items, str(target)),
        )
    return result


# -- removal checks ---------------------------------------------------------------------


@dataclass
class CheckReport:
    checked: int = 0
    removed: int = 0
    online: int = 0
    errors: list[str] = field(default_factory=list)


def _fetch(url: str, user_agent: str, retries: int = 3) -> tuple[int, str, bytes, str | None]:
    """(status, final URL, body, Content-Type); follows no redirects so a hidden channel
    shows as one."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, headers={"User-Agent": user_agent})
        try:
            with opener.open(request, timeout=30) as response:
                content_type = response.headers.get("Content-Type")
                return response.status, response.geturl(), response.read(), content_type
        except urllib.error.HTTPError as exc:
            if exc.code == 429 and attempt < retries:
                wait = exc.headers.get("Retry-After", "")
                time.sleep(min(float(wait) if wait.isdigit() else 2.0 * 2**attempt, 60.0))
                continue
            return exc.code, url, b"", None
    return 429, url, b"", None


def _unreachable(base: str, exc: Exception, checked: int) -> str:
    """No answer at all from the preview host: nothing can be told about the rest."""
    reason = getattr(exc, "reason", None) or exc
    host = urllib.parse.urlsplit(base)
    hint = (
        f"; `vigie mirror --port {host.port or 80}` serves the sample channels there"
        if host.hostname in ("127.0.0.1", "localhost", "::1")
        else ""
    )
    return (
        f"cannot reach {base} to check removals ({reason}); {checked} checked, the others are left "
        f"for the next check{hint}"
    )


def check_removals(
    store: Store, config: Any, base_url: str | None = None, force: bool = False
) -> CheckReport:
    """Re-crawl referred Telegram posts: `?before=<id+1>` shows the post if it is still
    online. A post or channel that is gone counts as removed."""
    from crawlers.telegram_parse import parse_page
    from vigie.errors import MarkupChangedError, SourceUnavailableError

    base = (base_url or config.telegram.base_url).rstrip("/")
    report = CheckReport()
    rows = store.db.execute(
        "SELECT r.post_key, r.referred_at, r.last_checked_at, p.channel, p.post_id, p.platform FROM referrals r"
        " JOIN posts p ON p.key = r.post_key WHERE r.status IN ('referred', 'online')"
    ).fetchall()
    due_before = time.time() - config.referrals.recheck_hours * 3600
    for r in rows:
        if r["platform"] != "telegram":
            continue
        if (
            not force
            and r["last_checked_at"]
            and datetime.fromisoformat(r["last_checked_at"]).timestamp() > due_before
        ):
            continue
        url = f"{base}/s/{r['channel']}?before={r['post_id'] + 1}"
        try:
            status, _, body, content_type = _fetch(url, config.crawl.user_agent)
        except (urllib.error.URLError, OSError) as exc:
            raise ReferralError(_unreachable(base, exc, report.checked)) from None
        outcome, detail = "error", f"HTTP {status}"
        if status in (301, 302, 303, 307, 308, 404):
            outcome, detail = "removed", f"channel no longer public (HTTP {status})"
        elif status == 200:
            try:
                page = parse_page(body, url, content_type=content_type)
                present = any(p.post_id == r["post_id"] for p in page.posts)
                outcome, detail = (
                    ("online", "post still shown") if present else ("removed", "post no longer shown")
                )
            except SourceUnavailableError:
                outcome, detail = "removed", "channel no longer public"
            except MarkupChangedError as exc:
                outcome, detail = "error", str(exc)
        now = utcnow()
        with store.transaction():
            store.db.execute(
                "INSERT INTO removal_checks (post_key, checked_at, outcome, detail) VALUES (?, ?, ?, ?)",
                (r["post_key"], now, outcome, detail),
            )
            if outcome == "error":
                store.db.execute(
                    "UPDATE referrals SET last_checked_at = ?, checks = checks + 1 WHERE post_key = ?",
                    (now, r["post_key"]),
                )
            else:
                store.db.execute(
                    "UPDATE referrals SET status = ?, removed_at = CASE WHEN ? = 'removed' THEN ? ELSE NULL END,"
                    " last_checked_at = ?, checks = checks + 1, updated_at = ? WHERE post_key = ?",
                    (outcome, outcome, now, now, now, r["post_key"]),
                )
        report.checked += 1
        if outcome == "removed":
            report.removed += 1
        elif outcome == "online":
            report.online += 1
        else:
            report.errors.append(f"{r['post_key']}: {detail}")
        if config.crawl.download_delay:
            time.sleep(config.crawl.download_delay)
    return report


# -- statistics -------------------------------------------------------------------------


def hours_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600, 2)


def stats(store: Store, period: str | None = None) -> dict[str, Any]:
    """Notices by platform, content type and outcome, and median time to removal: what a
    trusted flagger publishes each year. `period`: YYYY or YYYY-MM of the referral date."""
    rows = store.db.execute(
        "SELECT platform, content_type, status, notice_id, post_key, referred_at, removed_at FROM referrals"
        " WHERE referred_at IS NOT NULL AND (? IS NULL OR referred_at LIKE ? || '%')",
        (period, period),
    ).fetchall()
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
