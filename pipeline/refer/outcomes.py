"""What platforms answered to notices: recorded by an analyst, or imported from a CSV of
answers. Telegram's removals are re-crawled (`removals`); the other platforms' answers
come from their replies and from the DSA Transparency Database (`dsa_tdb`)."""

from __future__ import annotations

import csv
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.refer import ReferralError
from vigie.store import Store, outcomes, utcnow

KINDS = outcomes.KINDS


@dataclass
class Recorded:
    """What one recording did: the posts whose answer was kept, and those that already had it."""

    recorded: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


@dataclass
class CsvImport:
    rows: int = 0
    recorded: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)


def shown(value: object, width: int = 60) -> str:
    """A value from the outside, quoted and cut short for a message."""
    text = str(value)
    return repr(text if len(text) <= width else text[:width] + "…")


def parse_time(value: str, now: datetime | None = None) -> str:
    """An ISO 8601 time (UTC when it has no offset) as the store keeps it; refused when it
    is not a time or lies in the future."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{shown(value)} is not an ISO 8601 time (e.g. 2026-10-02T14:30:00+02:00)") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > (now or datetime.now(UTC)):
        raise ValueError(f"{shown(value)} is in the future")
    return moment.isoformat(timespec="seconds")


_IDENTIFYING = ("v", "story_fbid", "fbid", "id")


def url_key(url: str | None) -> str:
    """A post URL compared the way platforms mean it: without scheme, `www.`/`m.`, query
    (but the parameters naming the content: YouTube's `v`, Facebook's `story_fbid`, `fbid`,
    `id`), fragment and trailing slash, host in lower case."""
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    query = urllib.parse.parse_qs(parts.query)
    # The parameters that name the content: YouTube's video, Facebook's story and photo.
    kept = [f"{k}={query[k][0]}" for k in _IDENTIFYING if query.get(k)]
    return f"{host}{parts.path.rstrip('/')}" + (f"?{'&'.join(kept)}" if kept else "")


def _check_answer(outcome: str, reason: str | None) -> None:
    if outcome not in KINDS:
        raise ValueError(f"outcome: {shown(outcome)}: expected one of {', '.join(KINDS)}")
    if outcome == "rejected" and not (reason or "").strip():
        raise ValueError("reason: a rejection needs its reason, what the platform said")


def _check_time(item: dict[str, Any], decided_at: str) -> None:
    if decided_at < item["referred_at"]:
        raise ValueError(
            f"at: {decided_at} is before {item['post_key']} was referred ({item['referred_at']})"
        )


def record_answer(
    store: Store,
    notice_id: str,
    outcome: str,
    by: str,
    at: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    url: str | None = None,
) -> Recorded:
    """A platform's answer to notice `notice_id`, for each of its items (or the one `url`
    names), recorded by `by`. Refused, with nothing written, for an unknown notice or URL, a
    time in the future or before the referral, or a rejection without its reason."""
    if not by.strip():
        raise ReferralError("the name of who records the answer is required")
    items = outcomes.referred_items(store, notice_id)
    if not items:
        raise ReferralError(f"{notice_id}: no referral notice with this id")
    if url:
        items = [i for i in items if url_key(i["url"]) == url_key(url)]
        if not items:
            raise ReferralError(f"{url}: not an item of notice {notice_id}")
    try:
        _check_answer(outcome, reason)
        decided_at = parse_time(at) if at else utcnow()
        for item in items:
            _check_time(item, decided_at)
    except ValueError as exc:
        raise ReferralError(f"{notice_id}: {exc}") from None
    result = Recorded()
    now = utcnow()
    given = (reason or "").strip() or None
    with store.transaction():
        for item in items:
            if at is None and _latest_is(store, item["post_key"], outcome, given):
                # The same answer typed again without its time: already kept.
                result.already.append(item["post_key"])
                continue
            kept = outcomes.record_outcome(
                store,
                item["post_key"],
                outcome,
                decided_at,
                "analyst",
                now,
                notice_id=notice_id,
                reason=(reason or "").strip() or None,
                recorded_by=by.strip(),
                note=(note or "").strip() or None,
            )
            (result.recorded if kept else result.already).append(item["post_key"])
    return result


def _latest_is(store: Store, post_key: str, outcome: str, reason: str | None) -> bool:
    trail = outcomes.outcomes_of(store, post_key)
    return bool(trail) and (trail[-1]["outcome"], trail[-1]["reason"]) == (outcome, reason)


def _targets(
    row: dict[str, str], items: list[dict[str, Any]], by_key: dict[str, Any], by_url: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    """The referred posts a CSV row names: its post_key, or its URL (within its notice when
    it gives one), or every item of its notice."""
    notice_id = (row.get("notice_id") or "").strip()
    post_key = (row.get("post_key") or "").strip()
    url = (row.get("url") or "").strip()
    if post_key:
        if post_key not in by_key:
            raise ValueError(f"post_key: {shown(post_key)} is not a referred post")
        found = [by_key[post_key]]
    elif url:
        found = by_url.get(url_key(url), [])
        if notice_id:
            found = [i for i in found if i["notice_id"] == notice_id]
        if not found:
            raise ValueError(
                f"url: {shown(url)} is not a referred post"
                + (f" of notice {shown(notice_id)}" if notice_id else "")
            )
    elif notice_id:
        found = [i for i in items if i["notice_id"] == notice_id]
        if not found:
            raise ValueError(f"notice_id: {shown(notice_id)} is no referral notice")
    else:
        raise ValueError("notice_id, url or post_key: one of them must name the referred post")
    if notice_id and any(i["notice_id"] != notice_id for i in found):
        raise ValueError(f"notice_id: {shown(notice_id)} is not the notice of {found[0]['post_key']}")
    return found


def import_csv(store: Store, path: Path) -> CsvImport:
    """Answers from a CSV with a header row: notice_id, url (or post_key), outcome, at,
    reason, note. A bad row is named (file:line, field) and skipped; the others are kept.
    An answer already kept (same post, kind and time) is not kept twice, so importing a file
    again adds nothing."""
    report = CsvImport()
    content = path.read_bytes()  # a file of answers, typed or exported by hand: small
    try:
        content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ReferralError(
            f"{path}:{line}: not UTF-8 text (save the CSV as UTF-8); nothing was recorded"
        ) from None
    items = outcomes.referred_items(store)
    by_key = {i["post_key"]: i for i in items}
    by_url: dict[str, list[Any]] = {}
    for i in items:
        by_url.setdefault(url_key(i["url"]), []).append(i)
    now = utcnow()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = {(name or "").strip() for name in reader.fieldnames or []}
        missing = [name for name in ("outcome", "at") if name not in header]
        if missing or not header & {"notice_id", "url", "post_key"}:
            raise ReferralError(
                f"{path}:1: the header needs outcome, at and notice_id, url or post_key "
                f"(found {', '.join(sorted(header)) or 'nothing'})"
            )
        for raw in reader:
            report.rows += 1
            row = {(k or "").strip(): (v or "") for k, v in raw.items() if k is not None}
            where = f"{path}:{reader.line_num}"
            outcome = row.get("outcome", "").strip().lower()
            try:
                _check_answer(outcome, row.get("reason"))
                if not row.get("at", "").strip():
                    raise ValueError("at: the time of the answer is required")
                try:
                    decided_at = parse_time(row["at"])
                except ValueError as exc:
                    raise ValueError(f"at: {exc}") from None
                found = _targets(row, items, by_key, by_url)
                for item in found:
                    _check_time(item, decided_at)
            except ValueError as exc:
                report.errors.append(f"{where}: {exc}")
                continue
            with store.transaction():
                for item in found:
                    kept = outcomes.record_outcome(
                        store,
                        item["post_key"],
                        outcome,
                        decided_at,
                        "csv",
                        now,
                        notice_id=item["notice_id"],
                        reason=row.get("reason", "").strip() or None,
                        reference=f"{path.name}:{reader.line_num}",
                        note=row.get("note", "").strip() or None,
                    )
                    if kept:
                        report.recorded += 1
                    else:
                        report.already += 1
    return report
