"""What crawlers and importers hand to the store: posts with their attachments, and pages of
them with how far a channel's walk got."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# The largest integer the store holds (SQLite's INTEGER is signed 64-bit). An id or a count
# above it is malformed input, not a post.
MAX_INTEGER = 2**63 - 1

ATTACHMENT_TYPES = (
    "photo",
    "video",
    "round_video",
    "voice",
    "audio",
    "document",
    "sticker",
    "poll",
    "location",
    "contact",
    "link_preview",
)


@dataclass(slots=True)
class Attachment:
    """One thing a post carries besides its text. `url` is None when the platform gives
    none (`unavailable` then says why, e.g. "too_big"); the other fields apply by type:
    a document's `name` and `size`, a video's `duration` and `thumbnail_url`, a poll's
    `question` and `options`, a link preview's or location's `title`."""

    type: str
    url: str | None = None
    name: str | None = None
    size: int | None = None
    duration: int | None = None
    thumbnail_url: str | None = None
    question: str | None = None
    options: list[str] | None = None
    title: str | None = None
    unavailable: str | None = None
    # The file's SHA-256 when it came with the post (an export's own file, already held in
    # the media store): read from there instead of fetched.
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ATTACHMENT_TYPES:
            raise ValueError(f"attachment type {self.type!r}: expected one of {', '.join(ATTACHMENT_TYPES)}")

    def to_json(self) -> dict[str, Any]:
        """Only the fields that are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attachment:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})

    def needs_reading(self) -> bool:
        """Whether the media stage has a file to fetch or read for it."""
        return bool(self.sha256) or (self.evidence_url() or "").startswith(("http://", "https://"))

    def evidence_url(self) -> str | None:
        """The file kept as evidence: a photo, a video's thumbnail, a sticker's preview, a document."""
        if self.type in ("photo", "document"):
            return self.url
        if self.type in ("video", "round_video", "sticker"):
            return self.thumbnail_url or (self.url if self.type == "sticker" else None)
        return None

    def readable_text(self) -> str:
        """What of it a reader sees as words: a poll's question and options, a document's
        file name, a contact's or location's title."""
        parts = [self.question or "", *(self.options or [])]
        if self.type in ("document", "audio", "contact", "location"):
            parts += [self.name or "", self.title or ""]
        return "\n".join(p for p in parts if p)


def stored_attachments(raw: str | None) -> list[Attachment]:
    """The attachments a stored post's JSON holds; one of a type this version does not know
    (written by a newer crawler) is left out rather than misread."""
    out = []
    for item in json.loads(raw or "[]"):
        try:
            out.append(Attachment.from_json(item))
        except (TypeError, ValueError):
            continue
    return out


def readable_text(text: str, attachments: list[Attachment]) -> str:
    """A post's text with the words of its attachments, as the classifier reads it."""
    extra = [a.readable_text() for a in attachments]
    return "\n".join([text, *(e for e in extra if e)]) if any(extra) else text


def post_key(platform: str, channel: str, post_id: int | str) -> str:
    """The store's key of a post. Telegram numbers posts per channel: its key names the
    channel. Elsewhere an id is the platform's own (a TikTok video, an Instagram shortcode,
    an X status): the key leaves out the handle, which an account may change, and which
    some exports give only as a numeric account id, so one post is never stored twice."""
    if platform == "telegram":
        return f"{platform}:{channel}:{post_id}"
    return f"{platform}:{post_id}"


@dataclass(slots=True)
class Post:
    """One public post, as the platform shows it at capture time."""

    platform: str
    channel: str  # the channel's or account's handle (`vigie.platforms.handle`)
    post_id: int | str  # Telegram's are integers; shortcodes and Facebook ids are not
    url: str
    text: str
    published_at: str | None
    views: int | None = None
    forwarded_from: str | None = None
    reply_to: str | None = None
    edited: bool = False
    media: list[str] = field(default_factory=list)  # the attachments' URLs, as before attachments
    links: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # The preview withheld part of the post ("Please open Telegram to view this post").
    partial: bool = False
    # A forward's author when it has no public link (then `forwarded_from` is None).
    forwarded_from_name: str | None = None
    # The account's display name, as the platform shows it beside the handle.
    author_name: str | None = None
    hashtags: list[str] = field(default_factory=list)  # without '#', as written
    mentions: list[str] = field(default_factory=list)  # handles, without '@'
    likes: int | None = None
    shares: int | None = None
    comments: int | None = None
    # Evidence: SHA-256 of the exact markup/JSON the post was parsed from.
    payload_sha256: str = ""
    captured_at: str = ""

    @property
    def key(self) -> str:
        return post_key(self.platform, self.channel, self.post_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["attachments"] = [a.to_json() for a in self.attachments]
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
