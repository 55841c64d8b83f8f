"""Cluster mode: the nodes (leader, standby daemons, workers) and the classification claims
that give each pending post to one batch (schema 8).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import set_user_version

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("node_id", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("egress", sa.Text),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("heartbeat_at", sa.Text, nullable=False),
        sa.Column("stopped_at", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default=sa.text("'{}'")),
        sa.CheckConstraint("role IN ('leader', 'standby', 'worker')", name="cluster_nodes_role_check"),
    )
    op.create_table(
        "classify_claims",
        sa.Column("post_key", sa.Text, primary_key=True),
        sa.Column("batch_id", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.Text, nullable=False),
    )
    op.create_index("classify_claims_by_batch", "classify_claims", ["batch_id"])
    set_user_version(8)
