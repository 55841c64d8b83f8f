"""What crawlers and importers hand to the store: posts, and pages of them with how far a
channel's walk got."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The largest integer the store holds (SQLite's INTEGER is signed 64-bit). An id or a count
# above it is malformed input, not a post.
MAX_INTEGER = 2**63 - 1


@dataclass(slots=True)
class Post:
    """One public post, as the platform shows it at capture time."""

    platform: str
    channel: str
    post_id: int
    url: str
    text: str
    published_at: str | None
    views: int | None = None
    forwarded_from: str | None = None
    reply_to: str | None = None
    edited: bool = False
    media: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    # Evidence: SHA-256 of the exact markup/JSON the post was parsed from.
    payload_sha256: str = ""
    captured_at: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.channel}:{self.post_id}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = self.key
        return data


@dataclass(slots=True)
class Page:
    """One fetched page: its posts are stored in one transaction together with how far
    the walk got, so the walk's progress never runs ahead of stored posts.

    `highest`/`lowest` are the largest and smallest ids reached so far in this walk;
    `complete` says the walk reached the cursor or the channel's first post."""

    platform: str
    channel: str
    posts: list[Post]
    highest: int | None
    lowest: int | None
    complete: bool = False
