"""What the revisions share. Revisions describe the schema as it was when they were
written: they never import the current tables."""

import sqlalchemy as sa
from alembic import op

# Post ids and view counts: SQLite's INTEGER is 64-bit already, PostgreSQL's is not.
Int64 = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def set_user_version(version: int) -> None:
    """SQLite stores also carry the schema number in `PRAGMA user_version`, the number Vigie
    read before it used Alembic: an older Vigie then refuses a store newer than it knows."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA user_version={int(version)}")


# Scores: SQLite's REAL is 8 bytes, PostgreSQL's is 4; FLOAT there is 8.
Real = sa.Float().with_variant(sa.REAL(), "sqlite")
