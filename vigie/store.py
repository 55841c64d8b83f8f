"""The embedded store: SQLite in WAL mode holding posts, crawl cursors and run history.

Posts are keyed `platform:channel:post_id`; writing the same post twice adds nothing,
and an edited post replaces its stored content.

Opening checks the file (`PRAGMA quick_check`, once per process and within a time budget)
and refuses a damaged one, so nothing is written into it. Commands that only read open the
store with `read_only=True`: they work on a file or a directory they cannot write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from crawlers.items import Post
from vigie import __version__
from vigie.errors import StoreError

SCHEMA_VERSION = 4
Outcome = Literal["new", "updated", "unchanged"]
# Referral states an analyst's confirmation leads to: such a post stays flagged whatever it scores.
DECIDED = ("confirmed", "referred", "removed", "online")
# `PRAGMA quick_check` reads the whole file: past this many seconds it stops, unfinished.
CHECK_SECONDS = 10.0

log = logging.getLogger(__name__)
_checked: set[Path] = set()  # stores found intact by this process

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    key TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    channel TEXT NOT NULL,
    post_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    text TEXT NOT NULL,
    published_at TEXT,
    views INTEGER,
    forwarded_from TEXT,
    reply_to TEXT,
    edited INTEGER NOT NULL DEFAULT 0,
    media TEXT NOT NULL DEFAULT '[]',
    links TEXT NOT NULL DEFAULT '[]',
    payload_sha256 TEXT NOT NULL DEFAULT '',
    captured_at TEXT NOT NULL,
    crawler_version TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_by_channel ON posts (platform, channel, post_id);
CREATE TABLE IF NOT EXISTS sources (
    platform TEXT NOT NULL,
    channel TEXT NOT NULL,
    cursor INTEGER,
    pending_top INTEGER,
    pending_before INTEGER,
    last_attempt_at TEXT,
    last_success_at TEXT,
    last_error TEXT,
    PRIMARY KEY (platform, channel)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    stats TEXT NOT NULL DEFAULT '{}'
);
"""

# Each version's changes, applied in order to stores made by an older Vigie.
_MIGRATIONS = {
    2: """
    ALTER TABLE posts ADD COLUMN content_sha256 TEXT NOT NULL DEFAULT '';
    ALTER TABLE posts ADD COLUMN minimised INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE analysis (
        post_key TEXT PRIMARY KEY REFERENCES posts(key),
        content_sha256 TEXT NOT NULL,
        model_id TEXT NOT NULL,
        lang TEXT NOT NULL,
        lang_confidence REAL NOT NULL,
        score REAL NOT NULL,
        is_advert INTEGER NOT NULL,
        cues TEXT NOT NULL,
        entities TEXT NOT NULL,
        cluster_id TEXT,
        processed_at TEXT NOT NULL,
        indexed_sha256 TEXT
    );
    CREATE INDEX analysis_flagged ON analysis (is_advert, score);
    CREATE TABLE signatures (
        post_key TEXT PRIMARY KEY REFERENCES posts(key),
        cluster_id TEXT NOT NULL,
        minhash BLOB NOT NULL
    );
    CREATE INDEX signatures_by_cluster ON signatures (cluster_id);
    CREATE TABLE contacts (
        contact TEXT NOT NULL,
        post_key TEXT NOT NULL REFERENCES posts(key),
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        PRIMARY KEY (contact, post_key)
    );
    CREATE INDEX contacts_by_channel ON contacts (platform, channel);
    CREATE TABLE spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL,
        action TEXT NOT NULL,
        body TEXT NOT NULL,
        error TEXT,
        created_at TEXT NOT NULL
    );
    """,
    3: """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        post_key TEXT NOT NULL REFERENCES posts(key),
        cluster_id TEXT,
        decision TEXT NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
        reason TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        decided_at TEXT NOT NULL
    );
    CREATE INDEX reviews_by_post ON reviews (post_key, id);
    CREATE TABLE referrals (
        post_key TEXT PRIMARY KEY REFERENCES posts(key),
        status TEXT NOT NULL CHECK (status IN ('confirmed', 'rejected', 'referred', 'removed', 'online')),
        cluster_id TEXT,
        platform TEXT NOT NULL,
        content_type TEXT,
        batch_id TEXT,
        notice_id TEXT,
        referred_at TEXT,
        removed_at TEXT,
        last_checked_at TEXT,
        checks INTEGER NOT NULL DEFAULT 0,
        evidence_text TEXT,
        evidence_sha256 TEXT,
        evidence_captured_at TEXT,
        evidence_crawler_version TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX referrals_by_status ON referrals (status, platform);
    CREATE TABLE referral_batches (
        batch_id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        format TEXT NOT NULL,
        created_at TEXT NOT NULL,
        notices INTEGER NOT NULL,
        items INTEGER NOT NULL,
        path TEXT NOT NULL
    );
    CREATE TABLE removal_checks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        post_key TEXT NOT NULL REFERENCES posts(key),
        checked_at TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('removed', 'online', 'error')),
        detail TEXT
    );
    """,
    # The review band: posts the classifier is unsure of wait for an analyst, after the adverts.
    4: """
    ALTER TABLE analysis ADD COLUMN needs_review INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX analysis_review ON analysis (needs_review, score);
    """,
}

# Content that makes a stored post "updated" when it changes; views change all the time.
_CONTENT = ("url", "text", "published_at", "forwarded_from", "reply_to", "edited", "media", "links")


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Run:
    """A run being recorded: its body sets `status` and `stats` before it ends."""

    id: int
    status: str = "ok"
    stats: dict[str, Any] = field(default_factory=dict)


def _damaged(path: Path, detail: str) -> StoreError:
    what = "is not a SQLite database or its header is damaged" if "not a database" in detail else "is damaged"
    recovered = path.with_name(path.stem + "-recovered" + path.suffix)
    return StoreError(
        f"{path}: cannot open the store: the file {what} ({detail}); nothing was written to it. "
        f"Restore it from a backup, or copy what is readable into a new file with "
        f"`sqlite3 {path} .recover | sqlite3 {recovered}` and point store.path at that file"
    )


@dataclass(frozen=True, slots=True)
class SourceState:
    platform: str
    channel: str
    cursor: int | None = None
    pending_top: int | None = None
    pending_before: int | None = None
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None


def content_sha256(row: dict[str, Any]) -> str:
    blob = json.dumps([row[name] for name in _CONTENT], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _row(post: Post) -> dict[str, Any]:
    row = {
        "key": post.key,
        "platform": post.platform,
        "channel": post.channel,
        "post_id": post.post_id,
        "url": post.url,
        "text": post.text,
        "published_at": post.published_at,
        "views": post.views,
        "forwarded_from": post.forwarded_from,
        "reply_to": post.reply_to,
        "edited": int(post.edited),
        "media": json.dumps(post.media, ensure_ascii=False),
        "links": json.dumps(post.links, ensure_ascii=False),
        "payload_sha256": post.payload_sha256,
        "captured_at": post.captured_at or utcnow(),
    }
    row["content_sha256"] = content_sha256(row)
    return row


class Store:
    """One connection to the embedded database. Not shared between threads.

    With `read_only=True` nothing is ever written, not even the schema: a store that does
    not exist yet reads as empty, and one made by an older Vigie must be opened once for
    writing (any crawl) to be upgraded."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.db: sqlite3.Connection
        try:
            self._open()
        except BaseException as exc:
            if (db := getattr(self, "db", None)) is not None:
                db.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"{self.path}: cannot open the store: {exc}") from None
            if isinstance(exc, sqlite3.DatabaseError):  # "malformed", "not a database"
                raise _damaged(self.path, str(exc)) from None
            raise

    def _open(self) -> None:
        if self.read_only:
            self.db = self._connect_read_only()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self._check()
        if self.read_only:
            self._check_version()
        else:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self.path.exists():
            db = sqlite3.connect(":memory:", isolation_level=None)
            self.db = db
            self._migrate()  # an empty store, in memory only
            return db
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc) and "unable to open" not in str(exc):
                raise
            # A WAL store in a directory we cannot write: SQLite cannot make the shared-memory
            # file it coordinates with writers through. None can be writing (they would have
            # made it), so read the file as it is: what its last writer checkpointed.
            db.close()
            db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
        return db

    def _check(self) -> None:
        """Refuse a damaged file: a quick structural check, once per process per store."""
        key = self.path.resolve()
        if key in _checked or not self.path.exists():
            return
        deadline = time.monotonic() + CHECK_SECONDS
        self.db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            rows = [str(r[0]) for r in self.db.execute("PRAGMA quick_check(3)")]
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            log.warning("%s: integrity check stopped after %.0f s, unfinished", self.path, CHECK_SECONDS)
            _checked.add(key)  # not again in this process: the budget is spent
            return
        finally:
            self.db.set_progress_handler(None, 0)
        if rows != ["ok"]:
            raise _damaged(self.path, "; ".join(" ".join(r.split()) for r in rows)[:300])
        _checked.add(key)

    def _check_version(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer Vigie (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade Vigie or use another store.path"
            )
        if version == 0:
            raise StoreError(
                f"{self.path}: not a Vigie store (no schema); a command that writes (for example "
                "`vigie crawl`) makes one"
            )
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: made by an older Vigie (schema {version}); it is upgraded the next "
                "time a command that writes opens it (for example `vigie crawl`)"
            )

    def _migrate(self) -> None:
        """Create or upgrade the schema. The version is read inside the write lock, so two
        processes opening a new store at once do not both migrate it."""
        with self.transaction():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer Vigie (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade Vigie or use another store.path"
                )
            steps = ([_SCHEMA] if version == 0 else []) + [
                _MIGRATIONS[v] for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)
            ]
            for script in steps:
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- posts ---------------------------------------------------------------

    def _upsert(self, post: Post, now: str) -> Outcome:
        row = _row(post)
        old = self.db.execute("SELECT * FROM posts WHERE key = ?", (post.key,)).fetchone()
        if old is None:
            self.db.execute(
                "INSERT INTO posts (key, platform, channel, post_id, url, text, published_at, views,"
                " forwarded_from, reply_to, edited, media, links, payload_sha256, captured_at,"
                " crawler_version, first_seen, updated_at, content_sha256) VALUES (:key, :platform, :channel,"
                " :post_id, :url, :text, :published_at, :views, :forwarded_from, :reply_to, :edited,"
                " :media, :links, :payload_sha256, :captured_at, :crawler_version, :now, :now, :content_sha256)",
                {**row, "crawler_version": __version__, "now": now},
            )
            return "new"
        # A minimised post has lost its text; its content hash still says whether it changed.
        if old["content_sha256"] == row["content_sha256"]:
            if row["views"] is not None and row["views"] != old["views"]:
                self.db.execute("UPDATE posts SET views = ? WHERE key = ?", (row["views"], post.key))
            return "unchanged"
        self.db.execute(
            "UPDATE posts SET url = :url, text = :text, published_at = :published_at,"
            " views = COALESCE(:views, views), forwarded_from = :forwarded_from,"
            " reply_to = :reply_to, edited = :edited, media = :media, links = :links,"
            " payload_sha256 = :payload_sha256, captured_at = :captured_at,"
            " crawler_version = :crawler_version, updated_at = :now, content_sha256 = :content_sha256,"
            " minimised = 0 WHERE key = :key",
            {**row, "crawler_version": __version__, "now": now},
        )
        return "updated"

    def upsert_posts(self, posts: Iterable[Post]) -> dict[Outcome, int]:
        counts: dict[Outcome, int] = {"new": 0, "updated": 0, "unchanged": 0}
        now = utcnow()
        with self.transaction():
            for post in posts:
                counts[self._upsert(post, now)] += 1
        return counts

    @staticmethod
    def _where(platform: str | None, channel: str | None) -> tuple[str, list[str]]:
        named = [(column, value) for column, value in (("platform", platform), ("channel", channel)) if value]
        where = " AND ".join(f"{column} = ?" for column, _ in named) or "1=1"
        return where, [value for _, value in named]

    def count_posts(self, platform: str | None = None, channel: str | None = None) -> int:
        where, args = self._where(platform, channel)
        return int(self.db.execute(f"SELECT COUNT(*) FROM posts WHERE {where}", args).fetchone()[0])

    def posts(self, platform: str | None = None, channel: str | None = None) -> Iterator[sqlite3.Row]:
        where, args = self._where(platform, channel)
        yield from self.db.execute(
            f"SELECT * FROM posts WHERE {where} ORDER BY platform, channel, post_id", args
        )

    # -- crawl state ---------------------------------------------------------

    def source_state(self, platform: str, channel: str) -> SourceState:
        row = self.db.execute(
            "SELECT * FROM sources WHERE platform = ? AND channel = ?", (platform, channel)
        ).fetchone()
        return SourceState(**dict(row)) if row else SourceState(platform, channel)

    def sources(self) -> list[SourceState]:
        rows = self.db.execute("SELECT * FROM sources ORDER BY platform, channel")
        return [SourceState(**dict(row)) for row in rows]

    def _touch_source(self, platform: str, channel: str) -> None:
        self.db.execute(
            "INSERT INTO sources (platform, channel) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (platform, channel),
        )

    def store_page(
        self,
        platform: str,
        channel: str,
        posts: list[Post],
        highest: int | None,
        lowest: int | None,
        complete: bool = False,
    ) -> dict[Outcome, int]:
        """Store a page's posts and, in the same transaction, how far the walk got.

        An unfinished walk is remembered as the range [lowest, highest] so the next run
        resumes below `lowest`; a complete walk moves the cursor to everything stored."""
        counts: dict[Outcome, int] = {"new": 0, "updated": 0, "unchanged": 0}
        now = utcnow()
        with self.transaction():
            for post in posts:
                counts[self._upsert(post, now)] += 1
            self._touch_source(platform, channel)
            where = (platform, channel)
            if complete:
                self.db.execute(
                    "UPDATE sources SET cursor = NULLIF(MAX(COALESCE(cursor, -1), COALESCE(?, -1),"
                    " COALESCE(pending_top, -1)), -1), pending_top = NULL, pending_before = NULL,"
                    " last_attempt_at = ?, last_success_at = ?, last_error = NULL"
                    " WHERE platform = ? AND channel = ?",
                    (highest, now, now, *where),
                )
            elif highest is not None and lowest is not None:
                self.db.execute(
                    "UPDATE sources SET pending_top = MAX(COALESCE(pending_top, 0), ?),"
                    " pending_before = ?, last_attempt_at = ? WHERE platform = ? AND channel = ?",
                    (highest, lowest, now, *where),
                )
        return counts

    def record_source_error(self, platform: str, channel: str, reason: str) -> None:
        with self.transaction():
            self._touch_source(platform, channel)
            self.db.execute(
                "UPDATE sources SET last_error = ?, last_attempt_at = ? WHERE platform = ? AND channel = ?",
                (reason, utcnow(), platform, channel),
            )

    # -- runs ----------------------------------------------------------------

    def start_run(self, command: str) -> int:
        cur = self.db.execute("INSERT INTO runs (command, started_at) VALUES (?, ?)", (command, utcnow()))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, status = ?, stats = ? WHERE id = ?",
            (utcnow(), status, json.dumps(stats, ensure_ascii=False), run_id),
        )

    @contextmanager
    def run(self, command: str) -> Iterator[Run]:
        """Record a run of `command`. It ends with the status and stats its body set, or as
        failed, with the error, when the body raises: it is never left `running`."""
        run = Run(self.start_run(command))
        try:
            yield run
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.finish_run(run.id, "failed", {**run.stats, "error": error[:500]})
            raise
        self.finish_run(run.id, run.status, run.stats)

    def runs(self, limit: int = 20) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)))
