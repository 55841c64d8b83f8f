"""Removal checks: referred posts re-fetched with the crawler's manners, removed or still online."""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.refer import ReferralError
from vigie.http_client import HttpClient, HttpError, RobotsDisallowed, redact
from vigie.store import Store, cases, utcnow


@dataclass
class CheckReport:
    checked: int = 0
    removed: int = 0
    online: int = 0
    errors: list[str] = field(default_factory=list)


def _unreachable(base: str, exc: HttpError, checked: int) -> str:
    """No usable answer from the preview host (none at all, or failures past every retry):
    nothing can be told about the rest."""
    reason = exc.reason
    host = urllib.parse.urlsplit(base)
    hint = (
        f"; `vigie mirror --port {host.port or 80}` serves the sample channels there"
        if host.hostname in ("127.0.0.1", "localhost", "::1")
        else ""
    )
    return (
        f"cannot reach {redact(base)} to check removals ({reason}); {checked} checked, the others are left "
        f"for the next check{hint}"
    )


def check_removals(
    store: Store, config: Any, base_url: str | None = None, force: bool = False
) -> CheckReport:
    """Re-crawl referred Telegram posts: `?before=<id+1>` shows the post if it is still
    online. A post or channel that is gone counts as removed."""
    from crawlers.telegram.preview import parse_page
    from vigie.errors import MarkupChangedError, SourceUnavailableError

    base = (base_url or config.telegram.base_url).rstrip("/")
    report = CheckReport()
    client = HttpClient(config.crawl)  # robots.txt, the crawl delay, retries: the crawler's manners
    rows = cases.referred_posts(store)
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
        url = f"{base}/s/{r['channel']}?before={int(r['post_id']) + 1}"
        try:
            # No redirect is followed: a hidden channel redirects to its landing page.
            response = client.get(url, follow_redirects=False)
        except RobotsDisallowed as exc:
            response, refused = None, f"not checked: {exc.reason}"
        except HttpError as exc:
            client.close()
            raise ReferralError(_unreachable(base, exc, report.checked)) from None
        status = response.status if response else 0
        body, content_type = (response.body, response.content_type) if response else (b"", None)
        outcome, detail = "error", f"HTTP {status}" if response else refused
        if status in (301, 302, 303, 307, 308, 404):
            outcome, detail = "removed", f"channel no longer public (HTTP {status})"
        elif status == 200:
            try:
                page = parse_page(body, url, content_type=content_type)
                present = any(str(p.post_id) == str(r["post_id"]) for p in page.posts)
                outcome, detail = (
                    ("online", "post still shown") if present else ("removed", "post no longer shown")
                )
            except SourceUnavailableError:
                outcome, detail = "removed", "channel no longer public"
            except MarkupChangedError as exc:
                outcome, detail = "error", str(exc)
        now = utcnow()
        cases.record_removal_check(store, r["post_key"], outcome, detail, now)
        report.checked += 1
        if outcome == "removed":
            report.removed += 1
        elif outcome == "online":
            report.online += 1
        else:
            report.errors.append(f"{r['post_key']}: {detail}")
    client.close()
    return report


# -- statistics -------------------------------------------------------------------------
