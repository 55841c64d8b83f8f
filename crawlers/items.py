"""What the crawler's spiders hand to its pipelines beside pages of posts
(`vigie.records.Page`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SourceFailed:
    """Sent when a source could not be crawled; the run goes on with the others."""

    platform: str
    channel: str
    reason: str
