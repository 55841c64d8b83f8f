"""Classification results, repost signatures, contacts and the index outbox (schema 2).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import Real, set_user_version

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("posts", sa.Column("content_sha256", sa.Text, nullable=False, server_default=sa.text("''")))
    op.add_column("posts", sa.Column("minimised", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.create_table(
        "analysis",
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), primary_key=True),
        sa.Column("content_sha256", sa.Text, nullable=False),
        sa.Column("model_id", sa.Text, nullable=False),
        sa.Column("lang", sa.Text, nullable=False),
        sa.Column("lang_confidence", Real, nullable=False),
        sa.Column("score", Real, nullable=False),
        sa.Column("is_advert", sa.Integer, nullable=False),
        sa.Column("cues", sa.Text, nullable=False),
        sa.Column("entities", sa.Text, nullable=False),
        sa.Column("cluster_id", sa.Text),
        sa.Column("processed_at", sa.Text, nullable=False),
        sa.Column("indexed_sha256", sa.Text),
    )
    op.create_index("analysis_flagged", "analysis", ["is_advert", "score"])
    op.create_table(
        "signatures",
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), primary_key=True),
        sa.Column("cluster_id", sa.Text, nullable=False),
        sa.Column("minhash", sa.LargeBinary, nullable=False),
    )
    op.create_index("signatures_by_cluster", "signatures", ["cluster_id"])
    op.create_table(
        "contacts",
        sa.Column("contact", sa.Text, nullable=False),
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("contact", "post_key"),
    )
    op.create_index("contacts_by_channel", "contacts", ["platform", "channel"])
    op.create_table(
        "spool",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("doc_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    set_user_version(2)
