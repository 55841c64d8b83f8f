"""Smuggling networks and their members; alerts and their deliveries (schema 7).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import set_user_version

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("network_id", sa.Text, primary_key=True),
        sa.Column("first_seen", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("merged_into", sa.Text),
        sa.Column("profile", sa.Text, nullable=False, server_default=sa.text("'{}'")),
    )
    op.create_table(
        "network_members",
        sa.Column("network_id", sa.Text, sa.ForeignKey("networks.network_id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("joined_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("network_id", "kind", "value"),
    )
    op.create_index("network_members_by_value", "network_members", ["kind", "value"])
    op.create_table(
        "alerts",
        sa.Column("alert_key", sa.Text, primary_key=True),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("alerts_by_rule", "alerts", ["rule", "created_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_key", sa.Text, sa.ForeignKey("alerts.alert_key"), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.Text),
        sa.PrimaryKeyConstraint("alert_key", "channel"),
        sa.CheckConstraint("channel IN ('webhook', 'email')", name="alert_deliveries_channel_check"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name="alert_deliveries_status_check"),
    )
    op.create_index("alert_deliveries_by_status", "alert_deliveries", ["status", "next_attempt_at"])
    set_user_version(7)
