"""Analysts' reviews, referrals, referral batches and removal checks (schema 3).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import set_user_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), nullable=False),
        sa.Column("cluster_id", sa.Text),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("decided_at", sa.Text, nullable=False),
        sa.CheckConstraint("decision IN ('confirmed', 'rejected')"),
        sqlite_autoincrement=True,
    )
    op.create_index("reviews_by_post", "reviews", ["post_key", "id"])
    op.create_table(
        "referrals",
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("cluster_id", sa.Text),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text),
        sa.Column("batch_id", sa.Text),
        sa.Column("notice_id", sa.Text),
        sa.Column("referred_at", sa.Text),
        sa.Column("removed_at", sa.Text),
        sa.Column("last_checked_at", sa.Text),
        sa.Column("checks", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("evidence_text", sa.Text),
        sa.Column("evidence_sha256", sa.Text),
        sa.Column("evidence_captured_at", sa.Text),
        sa.Column("evidence_crawler_version", sa.Text),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('confirmed', 'rejected', 'referred', 'removed', 'online')"),
    )
    op.create_index("referrals_by_status", "referrals", ["status", "platform"])
    op.create_table(
        "referral_batches",
        sa.Column("batch_id", sa.Text, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("notices", sa.Integer, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
    )
    op.create_table(
        "removal_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), nullable=False),
        sa.Column("checked_at", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.CheckConstraint("outcome IN ('removed', 'online', 'error')"),
        sqlite_autoincrement=True,
    )
    set_user_version(3)
