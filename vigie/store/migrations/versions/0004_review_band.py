"""The review band: posts the classifier is unsure of wait for an analyst (schema 4).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import set_user_version

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "analysis", sa.Column("needs_review", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    op.create_index("analysis_review", "analysis", ["needs_review", "score"])
    set_user_version(4)
