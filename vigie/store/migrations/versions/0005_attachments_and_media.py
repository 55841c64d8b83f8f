"""Every post type kept: attachments, partial previews and forwards without a link; media
files stored by content with their PDQ hash and the text read in them (schema 5).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from vigie.store.migrations.helpers import Int64, Real, set_user_version

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("posts", sa.Column("attachments", sa.Text, nullable=False, server_default=sa.text("'[]'")))
    op.add_column("posts", sa.Column("partial", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("posts", sa.Column("forwarded_from_name", sa.Text))
    op.add_column(
        "posts", sa.Column("media_pending", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    op.add_column(
        "posts", sa.Column("media_attempts", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    op.add_column("posts", sa.Column("media_tried_at", sa.Text))
    op.add_column("posts", sa.Column("ocr_text", sa.Text))
    op.create_index("posts_media_pending", "posts", ["media_pending"])
    op.add_column("analysis", sa.Column("image_score", Real))
    op.create_table(
        "media_files",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("content_type", sa.Text),
        sa.Column("size", Int64, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("pdq", sa.Text),
        sa.Column("pdq_quality", sa.Integer),
        sa.Column("ocr_text", sa.Text),
        sa.Column("ocr_models", sa.Text),
        sa.Column("ocr_confidence", Real),
        sa.Column("first_seen", sa.Text, nullable=False),
        sa.Column("kept", sa.Integer, nullable=False, server_default=sa.text("1")),
    )
    op.create_index("media_files_by_pdq", "media_files", ["pdq"])
    op.create_table(
        "post_media",
        sa.Column("post_key", sa.Text, sa.ForeignKey("posts.key"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, sa.ForeignKey("media_files.sha256")),
        sa.Column("error", sa.Text),
        sa.Column("fetched_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("post_key", "position"),
        sa.CheckConstraint("status IN ('fetched', 'too_big', 'failed', 'refused', 'unavailable')"),
    )
    op.create_index("post_media_by_file", "post_media", ["sha256"])
    set_user_version(5)
