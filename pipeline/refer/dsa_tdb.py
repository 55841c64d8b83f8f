"""Platforms' answers found in the DSA Transparency Database: statements of reasons
(Article 17 DSA) matched to referred posts.

The database publishes its statements as CSV (the daily dumps are zip files of CSV files,
or of zipped CSV parts). A dump holds millions of rows: it is read as a stream, one row at
a time, and only the referred posts are held in memory. Columns used, as published:
`platform_name`, `platform_uid` (the statement's PUID; `puid` in the API), `content_id`
and URL columns when a file has them, `decision_visibility`, `decision_account`,
`decision_provision`, `source_type`, `category`, `application_date`, `created_at`.

A statement names its content by the PUID the platform chose; a referred post matches when
the statement's content id, a URL column, or a token of its PUID is the post's id (a
Facebook `PAGEID_POSTID` id also by its post part) or its URL, on the same platform."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipeline.refer import ReferralError
from pipeline.refer.outcomes import shown, url_key
from vigie.store import Store, outcomes, utcnow

# `platform_name` as the database writes it → Vigie's platform.
PLATFORM_NAMES = {
    "facebook": "facebook",
    "instagram": "instagram",
    "threads": "threads",
    "tiktok": "tiktok",
    "x": "x",
    "twitter": "x",
    "youtube": "youtube",
    "telegram": "telegram",
}
REMOVED = {"DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED"}
RESTRICTED = {
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
}
SUSPENDED = {
    "DECISION_ACCOUNT_SUSPENDED",
    "DECISION_ACCOUNT_TERMINATED",
    "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_TOTAL_TERMINATION",
}
ID_COLUMNS = ("content_id", "content_url", "url", "content_link")
PUID_COLUMNS = ("platform_uid", "puid")
_VALUE = re.compile(r"DECISION_[A-Z_]+")
_TOKENS = re.compile(r"[^A-Za-z0-9_.\-]+")
MIN_PUID_TOKEN = 8  # shorter ids inside a PUID match by chance
PROGRESS_EVERY = 50_000  # rows between two progress reports


@dataclass
class DsaMatch:
    read: int = 0  # statements read
    matched: int = 0  # statements about a referred post
    recorded: int = 0  # answers kept
    already: int = 0  # answers kept before (the same statement, or the same answer)
    before_referral: int = 0  # statements applied before the post was referred: no answer to it
    errors: list[str] = field(default_factory=list)


def _decisions(row: dict[str, str]) -> set[str]:
    values = " ".join(
        row.get(c) or "" for c in ("decision_visibility", "decision_account", "decision_provision")
    )
    return set(_VALUE.findall(values))


def outcome_of(row: dict[str, str]) -> str | None:
    """The kind of answer a statement records: the account suspended or terminated, the
    content removed or disabled, or restricted (demoted, labelled, age- or interaction-
    restricted, other). None for a statement with no such decision (monetary only)."""
    decisions = _decisions(row)
    if decisions & SUSPENDED:
        return "account_suspended"
    if decisions & REMOVED:
        return "removed"
    if decisions & RESTRICTED or any(d.startswith("DECISION_PROVISION_") for d in decisions):
        return "restricted"
    return None


def _when(value: str) -> str:
    """The database's times ("2024-05-01 00:00:00", UTC) as the store keeps them."""
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")


def _csv_rows(handle: IO[str], where: str) -> Iterator[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(handle)
    try:
        for row in reader:
            yield f"{where}:{reader.line_num}", row
    except UnicodeDecodeError:
        raise ReferralError(
            f"{where}:{reader.line_num + 1}: not UTF-8 text; nothing after it was read"
        ) from None


def statements(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Every row of a dump (a .csv, or a .zip of CSV files or of zipped CSV parts) with
    where it is (file[!member]:line), one at a time."""
    if path.suffix.lower() != ".zip":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from _csv_rows(handle, str(path))
        return
    with zipfile.ZipFile(path) as archive:
        yield from _archive_rows(archive, str(path))


def _archive_rows(archive: zipfile.ZipFile, where: str) -> Iterator[tuple[str, dict[str, str]]]:
    for member in archive.infolist():
        name = member.filename.lower()
        if member.is_dir():
            continue
        if name.endswith(".csv"):
            with archive.open(member) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                yield from _csv_rows(text, f"{where}!{member.filename}")
        elif name.endswith(".zip"):
            with archive.open(member) as raw, zipfile.ZipFile(raw) as inner:
                yield from _archive_rows(inner, f"{where}!{member.filename}")


def _precision(value: str) -> int:
    """How many characters of an ISO time a statement's date is precise to: the day (10),
    the hour (13, as the database stores `application_date`) or the second (19)."""
    text = value.strip()
    if len(text) <= 10:
        return 10
    return 13 if text[14:19] in ("00:00", "00", "") else 19


def _puid(row: dict[str, str]) -> str:
    return next((row[c].strip() for c in PUID_COLUMNS if (row.get(c) or "").strip()), "")


def _described(row: dict[str, str]) -> tuple[str | None, str]:
    """What the statement says of its decision (category and ground), and where it came
    from (the notice type, the content's date), kept with the answer."""
    value = {
        c: (row.get(c) or "").strip() for c in ("category", "decision_ground", "source_type", "content_date")
    }
    reason = " ".join(filter(None, [value["category"], value["decision_ground"]])) or None
    note = f"statement of reasons, {value['source_type'] or 'source not given'}"
    if value["content_date"]:
        note += f", content of {value['content_date']}"
    return reason, note


class _Referred:
    """The referred posts, by platform and id, and by URL."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.by_id: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.by_url: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            post_id = str(item["post_id"])
            ids = {post_id}
            if item["platform"] == "facebook" and "_" in post_id:
                ids.add(post_id.rsplit("_", 1)[1])  # PAGEID_POSTID: the post part too
            for one in ids:
                self.by_id.setdefault((item["platform"], one), []).append(item)
            self.by_url.setdefault(url_key(item["url"]), []).append(item)
        self.platforms = {platform for platform, _ in self.by_id}

    def find(self, platform: str, row: dict[str, str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for column in ID_COLUMNS:
            value = (row.get(column) or "").strip()
            if not value:
                continue
            candidates = [value]
            if platform == "facebook" and "_" in value:
                candidates.append(value.rsplit("_", 1)[1])
            for candidate in candidates:
                for item in self.by_id.get((platform, candidate), []):
                    found[item["post_key"]] = item
            if "/" in value:
                for item in self.by_url.get(url_key(value if "//" in value else f"//{value}"), []):
                    if item["platform"] == platform:
                        found[item["post_key"]] = item
        puid = _puid(row)
        for token in {*_TOKENS.split(puid), *re.split(r"[^A-Za-z0-9]+", puid)}:
            if len(token) >= MIN_PUID_TOKEN:
                for item in self.by_id.get((platform, token), []):
                    found[item["post_key"]] = item
        return list(found.values())


def match_dsa(
    store: Store, paths: list[Path], progress: Callable[[Path, int], None] | None = None
) -> DsaMatch:
    """Statements of reasons about referred posts, kept as answers (source `dsa-tdb`, the
    PUID as reference). A statement applied before the post was referred is no answer to the
    notice and is left out. Running it again on the same dumps adds nothing. `progress` is
    told the file and the rows read so far, now and then."""
    report = DsaMatch()
    referred = _Referred(outcomes.referred_items(store))
    now = utcnow()
    for path in paths:
        for where, row in statements(path):
            report.read += 1
            if progress and report.read % PROGRESS_EVERY == 0:
                progress(path, report.read)
            platform = PLATFORM_NAMES.get((row.get("platform_name") or "").strip().lower())
            if platform not in referred.platforms:
                continue
            items = referred.find(platform, row)
            if not items:
                continue
            report.matched += 1
            puid = _puid(row)
            outcome = outcome_of(row)
            if not puid:
                report.errors.append(f"{where}: platform_uid: empty; a statement is kept by its PUID")
                continue
            if outcome is None:
                report.errors.append(
                    f"{where}: decision_visibility: no removal, restriction or suspension in "
                    f"{shown(' '.join(sorted(_decisions(row))) or 'nothing')}"
                )
                continue
            column = "application_date" if row.get("application_date") else "created_at"
            try:
                decided_at = _when(row.get(column) or "")
            except ValueError:
                report.errors.append(f"{where}: {column}: {shown(row.get(column) or '')} is not a date")
                continue
            reason, note = _described(row)
            # Statements give the hour (or the day) only: one within the hour of the referral
            # answers it, dated no earlier than it.
            digits = _precision(row.get(column) or "")
            for item in items:
                if decided_at[:digits] < item["referred_at"][:digits]:
                    report.before_referral += 1
                    continue
                kept = outcomes.record_outcome(
                    store,
                    item["post_key"],
                    outcome,
                    max(decided_at, item["referred_at"]),
                    "dsa-tdb",
                    now,
                    notice_id=item["notice_id"],
                    reason=reason,
                    reference=puid,
                    note=note,
                )
                if kept:
                    report.recorded += 1
                else:
                    report.already += 1
    return report
