"""The store: posts, crawl cursors, analysis, the index outbox, cases (reviews, referrals,
removal checks) and run history, in SQLite (the default) or PostgreSQL, named by a URL.

Every table is defined in `schema`, every schema change is an Alembic revision in
`migrations/versions/`, and every query lives in this package, one module per aggregate:
`posts` (and crawl cursors), `media`, `runs`, `analysis`, `outbox`, `cases`, `outcomes`, `queries`.
"""

from vigie.store.analysis import is_flagged
from vigie.store.core import Store, json_object, stored_time, utcnow
from vigie.store.engine import CHECK_SECONDS, DatabaseError, is_database_error, one_line
from vigie.store.posts import Outcome, SourceState, content_sha256
from vigie.store.runs import Run

# Referral states an analyst's confirmation leads to: such a post stays flagged whatever it scores.
DECIDED = ("confirmed", "referred", "removed", "online", "restricted", "declined")

__all__ = [
    "CHECK_SECONDS",
    "DECIDED",
    "DatabaseError",
    "Outcome",
    "Run",
    "SourceState",
    "Store",
    "content_sha256",
    "is_database_error",
    "is_flagged",
    "json_object",
    "one_line",
    "stored_time",
    "utcnow",
]
