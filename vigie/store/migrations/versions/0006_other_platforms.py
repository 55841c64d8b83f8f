"""Posts from other platforms: string post ids, display names, hashtags, mentions and
engagement counts; the platforms' answers to notices; sources found in posts (schema 6).

Revision ID: 0006
Revises: 0005
"""

import warnings

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import Int64, Real, set_user_version

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_STATUSES = "('confirmed', 'rejected', 'referred', 'removed', 'online', 'restricted', 'declined')"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite rebuilds the table to change the column's type (`vigie.store.migrate` runs the
    # upgrade with foreign keys checked at its end).
    with op.batch_alter_table("posts") as batch:
        batch.alter_column(
            "post_id", type_=sa.Text, existing_nullable=False, postgresql_using="post_id::text"
        )
        batch.add_column(sa.Column("author_name", sa.Text))
        batch.add_column(sa.Column("hashtags", sa.Text, nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("mentions", sa.Text, nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("likes", Int64))
        batch.add_column(sa.Column("shares", Int64))
        batch.add_column(sa.Column("comments", Int64))
    if not sqlite:
        op.drop_constraint("referrals_status_check", "referrals", type_="check")
    # SQLite's rebuild leaves the old unnamed CHECK behind (Alembic warns that it does);
    # the new, named one replaces it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Unnamed CHECK constraint", UserWarning)
        with op.batch_alter_table("referrals") as batch:
            batch.add_column(sa.Column("outcome", sa.Text))
            batch.add_column(sa.Column("outcome_at", sa.Text))
            batch.create_check_constraint("referrals_status_check", sa.text(f"status IN {_STATUSES}"))
    op.create_table(
        "platform_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), nullable=False),
        sa.Column("notice_id", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("decided_at", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("reference", sa.Text),
        sa.Column("recorded_by", sa.Text),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("outcome IN ('removed', 'rejected', 'restricted', 'account_suspended')"),
        sa.CheckConstraint("source IN ('analyst', 'csv', 'dsa-tdb')"),
        sqlite_autoincrement=True,
    )
    op.create_index("platform_outcomes_by_post", "platform_outcomes", ["post_key", "id"])
    op.create_index("platform_outcomes_by_reference", "platform_outcomes", ["reference"])
    op.create_table(
        "discovered_sources",
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decided_at", sa.Text, nullable=False),
        sa.Column("decided_by", sa.Text, nullable=False),
        sa.Column("hops", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("score", Real),
        sa.Column("evidence", sa.Text, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("followed_at", sa.Text),
        sa.PrimaryKeyConstraint("platform", "channel"),
        sa.CheckConstraint("status IN ('approved', 'dismissed')"),
    )
    set_user_version(6)
