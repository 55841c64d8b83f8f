"""Every table of the store, defined once. Migrations (`migrations/versions/`) bring a
database to this shape; a test checks that they agree.

Timestamps are ISO 8601 text in UTC, flags are 0/1 integers and lists or objects are JSON
text: what the SQLite store has always held, and what the PostgreSQL one holds as well."""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)

metadata = MetaData()
# Post ids and view counts: SQLite's INTEGER is 64-bit already, PostgreSQL's is not.
Int64 = Integer().with_variant(BigInteger(), "postgresql")
# Scores: SQLite's REAL is 8 bytes, PostgreSQL's is 4; FLOAT there is 8.
Real = Float().with_variant(REAL(), "sqlite")

posts = Table(
    "posts",
    metadata,
    Column("key", Text, primary_key=True),
    Column("platform", Text, nullable=False),
    Column("channel", Text, nullable=False),
    # Text since schema 6: Instagram shortcodes and Facebook ids are not integers.
    Column("post_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("published_at", Text),
    Column("views", Int64),
    Column("forwarded_from", Text),
    Column("reply_to", Text),
    Column("edited", Integer, nullable=False, server_default=text("0")),
    Column("media", Text, nullable=False, server_default=text("'[]'")),
    Column("links", Text, nullable=False, server_default=text("'[]'")),
    Column("payload_sha256", Text, nullable=False, server_default=text("''")),
    Column("captured_at", Text, nullable=False),
    Column("crawler_version", Text, nullable=False),
    Column("first_seen", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("content_sha256", Text, nullable=False, server_default=text("''")),
    Column("minimised", Integer, nullable=False, server_default=text("0")),
    # Every attachment (type, url, name, size, ...) as JSON; the URLs alone stay in `media`.
    Column("attachments", Text, nullable=False, server_default=text("'[]'")),
    Column("partial", Integer, nullable=False, server_default=text("0")),
    Column("forwarded_from_name", Text),
    # Media to fetch, read and hash before the post is classified (1), or done (0).
    Column("media_pending", Integer, nullable=False, server_default=text("0")),
    # Runs that tried to fetch its media and failed, and when the last one did.
    Column("media_attempts", Integer, nullable=False, server_default=text("0")),
    Column("media_tried_at", Text),
    # The text read in the post's images, in attachment order.
    Column("ocr_text", Text),
    # What other platforms give beside the text: the author's display name, hashtags and
    # mentions (JSON lists), and engagement counts.
    Column("author_name", Text),
    Column("hashtags", Text, nullable=False, server_default=text("'[]'")),
    Column("mentions", Text, nullable=False, server_default=text("'[]'")),
    Column("likes", Int64),
    Column("shares", Int64),
    Column("comments", Int64),
    Index("posts_by_channel", "platform", "channel", "post_id"),
    Index("posts_media_pending", "media_pending"),
)

# One file, stored once by content (data_dir/media/ab/cd/<sha256>) whoever posted it.
media_files = Table(
    "media_files",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("content_type", Text),  # sniffed from the bytes, never from headers
    Column("size", Int64, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("pdq", Text),  # 64 hex characters: the 256-bit PDQ hash of an image
    Column("pdq_quality", Integer),
    Column("ocr_text", Text),
    Column("ocr_models", Text),
    Column("ocr_confidence", Real),
    Column("first_seen", Text, nullable=False),
    Column("kept", Integer, nullable=False, server_default=text("1")),  # 0: the file was deleted
    Index("media_files_by_pdq", "pdq"),
)

# What became of each attachment of a post: fetched (with its file), too big, failed, refused.
post_media = Table(
    "post_media",
    metadata,
    Column("post_key", Text, ForeignKey("posts.key"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("url", Text),
    Column("status", Text, nullable=False),
    Column("sha256", Text, ForeignKey("media_files.sha256")),
    Column("error", Text),
    Column("fetched_at", Text, nullable=False),
    PrimaryKeyConstraint("post_key", "position"),
    Index("post_media_by_file", "sha256"),
    CheckConstraint("status IN ('fetched', 'too_big', 'failed', 'refused', 'unavailable')"),
)

# A crawl cursor per channel: how far the walk through its history got.
sources = Table(
    "sources",
    metadata,
    Column("platform", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("cursor", Int64),
    Column("pending_top", Int64),
    Column("pending_before", Int64),
    Column("last_attempt_at", Text),
    Column("last_success_at", Text),
    Column("last_error", Text),
    PrimaryKeyConstraint("platform", "channel"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("status", Text, nullable=False, server_default=text("'running'")),
    Column("stats", Text, nullable=False, server_default=text("'{}'")),
    sqlite_autoincrement=True,
)

analysis = Table(
    "analysis",
    metadata,
    Column("post_key", Text, ForeignKey("posts.key"), primary_key=True),
    Column("content_sha256", Text, nullable=False),
    Column("model_id", Text, nullable=False),
    Column("lang", Text, nullable=False),
    Column("lang_confidence", Real, nullable=False),
    Column("score", Real, nullable=False),
    Column("is_advert", Integer, nullable=False),
    Column("cues", Text, nullable=False),
    Column("entities", Text, nullable=False),
    Column("cluster_id", Text),
    Column("processed_at", Text, nullable=False),
    Column("indexed_sha256", Text),
    # The review band: posts the classifier is unsure of wait for an analyst.
    Column("needs_review", Integer, nullable=False, server_default=text("0")),
    # The score of the text read in the post's images, scored apart from its own text.
    Column("image_score", Real),
    Index("analysis_flagged", "is_advert", "score"),
    Index("analysis_review", "needs_review", "score"),
)

signatures = Table(
    "signatures",
    metadata,
    Column("post_key", Text, ForeignKey("posts.key"), primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("minhash", LargeBinary, nullable=False),
    Index("signatures_by_cluster", "cluster_id"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("contact", Text, nullable=False),
    Column("post_key", Text, ForeignKey("posts.key"), nullable=False),
    Column("platform", Text, nullable=False),
    Column("channel", Text, nullable=False),
    PrimaryKeyConstraint("contact", "post_key"),
    Index("contacts_by_channel", "platform", "channel"),
)

# The outbox: index actions the search cluster refused or never acknowledged.
spool = Table(
    "spool",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("doc_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("error", Text),
    Column("created_at", Text, nullable=False),
    sqlite_autoincrement=True,
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_key", Text, ForeignKey("posts.key"), nullable=False),
    Column("cluster_id", Text),
    Column("decision", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reviewer", Text, nullable=False),
    Column("decided_at", Text, nullable=False),
    CheckConstraint("decision IN ('confirmed', 'rejected')"),
    Index("reviews_by_post", "post_key", "id"),
    sqlite_autoincrement=True,
)

referrals = Table(
    "referrals",
    metadata,
    Column("post_key", Text, ForeignKey("posts.key"), primary_key=True),
    Column("status", Text, nullable=False),
    Column("cluster_id", Text),
    Column("platform", Text, nullable=False),
    Column("content_type", Text),
    Column("batch_id", Text),
    Column("notice_id", Text),
    Column("referred_at", Text),
    Column("removed_at", Text),
    Column("last_checked_at", Text),
    Column("checks", Integer, nullable=False, server_default=text("0")),
    Column("evidence_text", Text),
    Column("evidence_sha256", Text),
    Column("evidence_captured_at", Text),
    Column("evidence_crawler_version", Text),
    Column("updated_at", Text, nullable=False),
    # What the platform answered, when it did (`platform_outcomes` holds every answer).
    Column("outcome", Text),
    Column("outcome_at", Text),
    CheckConstraint(
        "status IN ('confirmed', 'rejected', 'referred', 'removed', 'online', 'restricted', 'declined')",
        name="referrals_status_check",
    ),
    Index("referrals_by_status", "status", "platform"),
)

# Platforms' answers to notices: recorded by an analyst, from a CSV of outcomes, or matched
# in the DSA Transparency Database's statements of reasons.
platform_outcomes = Table(
    "platform_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_key", Text, ForeignKey("posts.key"), nullable=False),
    Column("notice_id", Text),
    Column("outcome", Text, nullable=False),
    Column("reason", Text),
    Column("decided_at", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
    Column("source", Text, nullable=False),  # analyst, csv or dsa-tdb
    Column("reference", Text),  # the statement of reasons' PUID, the CSV's file:line
    Column("recorded_by", Text),  # the analyst, or the command that matched it
    Column("note", Text),
    CheckConstraint("outcome IN ('removed', 'rejected', 'restricted', 'account_suspended')"),
    CheckConstraint("source IN ('analyst', 'csv', 'dsa-tdb')"),
    Index("platform_outcomes_by_post", "post_key", "id"),
    Index("platform_outcomes_by_reference", "reference"),
    sqlite_autoincrement=True,
)

# Sources found in stored posts that an analyst (or automatic following) decided on:
# approved ones are crawled beside the configured ones; dismissed ones are not offered again.
discovered_sources = Table(
    "discovered_sources",
    metadata,
    Column("platform", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("decided_at", Text, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("hops", Integer, nullable=False, server_default=text("1")),
    Column("score", Real),
    Column("evidence", Text, nullable=False, server_default=text("'{}'")),
    # When automatic following took it, kept whatever is decided later: the daily cap counts it.
    Column("followed_at", Text),
    PrimaryKeyConstraint("platform", "channel"),
    CheckConstraint("status IN ('approved', 'dismissed')"),
)

referral_batches = Table(
    "referral_batches",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("platform", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("notices", Integer, nullable=False),
    Column("items", Integer, nullable=False),
    Column("path", Text, nullable=False),
)

removal_checks = Table(
    "removal_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_key", Text, ForeignKey("posts.key"), nullable=False),
    Column("checked_at", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("detail", Text),
    CheckConstraint("outcome IN ('removed', 'online', 'error')"),
    sqlite_autoincrement=True,
)


# Smuggling networks: sources linked by what they share (contacts, payment offices, wallets,
# repost clusters, flyer images). An id stays with a network while it grows; one absorbed
# by another points to it.
networks = Table(
    "networks",
    metadata,
    Column("network_id", Text, primary_key=True),
    Column("first_seen", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("merged_into", Text),
    # The profile as last computed (sources, contacts, languages, routes, prices…), JSON.
    Column("profile", Text, nullable=False, server_default=text("'{}'")),
)

# What a network is made of: kind is source, phone, handle, link, payment, wallet, cluster
# or image; value is its canonical form ("telegram:channel", E.164, lowercase handle…).
network_members = Table(
    "network_members",
    metadata,
    Column("network_id", Text, ForeignKey("networks.network_id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("joined_at", Text, nullable=False),
    PrimaryKeyConstraint("network_id", "kind", "value"),
    Index("network_members_by_value", "kind", "value"),
)

# Alerts, one row per event however often its rule matches again (alert_key is the rule
# and its subject), and what became of each delivery: a dead one keeps its payload.
alerts = Table(
    "alerts",
    metadata,
    Column("alert_key", Text, primary_key=True),
    Column("rule", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Index("alerts_by_rule", "rule", "created_at"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("alert_key", Text, ForeignKey("alerts.alert_key"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Text),
    Column("last_error", Text),
    Column("sent_at", Text),
    PrimaryKeyConstraint("alert_key", "channel"),
    Index("alert_deliveries_by_status", "status", "next_attempt_at"),
    CheckConstraint("channel IN ('webhook', 'email')", name="alert_deliveries_channel_check"),
    CheckConstraint("status IN ('pending', 'sent', 'dead')", name="alert_deliveries_status_check"),
)


# Cluster mode (`vigie daemon --cluster`, `vigie worker`): each node's role and heartbeat,
# for `vigie cluster status`; the queue itself is procrastinate's tables in the same database.
cluster_nodes = Table(
    "cluster_nodes",
    metadata,
    Column("node_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("egress", Text),
    Column("started_at", Text, nullable=False),
    Column("heartbeat_at", Text, nullable=False),
    Column("stopped_at", Text),
    Column("detail", Text, nullable=False, server_default=text("'{}'")),
    CheckConstraint("role IN ('leader', 'standby', 'worker')", name="cluster_nodes_role_check"),
)

# A pending post given to one classification batch (a queued job); released when the batch
# is done, so that no post is in two batches at once.
classify_claims = Table(
    "classify_claims",
    metadata,
    Column("post_key", Text, primary_key=True),
    Column("batch_id", Text, nullable=False),
    Column("claimed_at", Text, nullable=False),
    Index("classify_claims_by_batch", "batch_id"),
)

# The embedding cache: a file of its own beside the store (a cache, rebuilt when lost).
cache_metadata = MetaData()

embeddings = Table(
    "emb",
    cache_metadata,
    Column("key", Text, primary_key=True),
    Column("vec", LargeBinary, nullable=False),
)
