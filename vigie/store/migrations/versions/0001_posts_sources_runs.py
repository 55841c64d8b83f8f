"""Posts, crawl cursors and run history: the first store (schema 1).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import Int64, set_user_version

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("post_id", Int64, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("published_at", sa.Text),
        sa.Column("views", Int64),
        sa.Column("forwarded_from", sa.Text),
        sa.Column("reply_to", sa.Text),
        sa.Column("edited", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("media", sa.Text, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("links", sa.Text, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("payload_sha256", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("captured_at", sa.Text, nullable=False),
        sa.Column("crawler_version", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_index("posts_by_channel", "posts", ["platform", "channel", "post_id"])
    op.create_table(
        "sources",
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("cursor", Int64),
        sa.Column("pending_top", Int64),
        sa.Column("pending_before", Int64),
        sa.Column("last_attempt_at", sa.Text),
        sa.Column("last_success_at", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("platform", "channel"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("finished_at", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'running'")),
        sa.Column("stats", sa.Text, nullable=False, server_default=sa.text("'{}'")),
        sqlite_autoincrement=True,
    )
    set_user_version(1)
