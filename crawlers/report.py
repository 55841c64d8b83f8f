"""What one crawl did, per source: filled in by the spider and the store pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SourceReport:
    platform: str
    channel: str
    pages: int = 0
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    dropped: int = 0
    complete: bool = False
    error: str | None = None
    unexpected: bool = False  # the error is a failure of the crawler itself, not of the source
    warnings: list[str] = field(default_factory=list)  # posts skipped, and why (the first few)

    def warn(self, message: str, limit: int = 20) -> None:
        if len(self.warnings) < limit:
            self.warnings.append(message)


@dataclass
class CrawlReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # failures of the crawl as a whole

    def source(self, platform: str, channel: str) -> SourceReport:
        key = f"{platform}:{channel}"
        if key not in self.sources:
            self.sources[key] = SourceReport(platform, channel)
        return self.sources[key]

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources.values() if s.error]

    @property
    def unexpected(self) -> list[str]:
        """What went wrong in the crawler itself (not a source's fault): the run failed."""
        return self.errors + [
            f"{s.platform}:{s.channel}: {s.error}" for s in self.sources.values() if s.unexpected
        ]

    @property
    def status(self) -> str:
        if self.unexpected or (self.sources and len(self.failed) == len(self.sources)):
            return "failed"
        return "partial" if self.failed else "ok"

    def totals(self) -> dict[str, int]:
        keys = ("pages", "seen", "new", "updated", "unchanged", "dropped")
        return {k: sum(getattr(s, k) for s in self.sources.values()) for k in keys}

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": [asdict(s) for s in self.sources.values()],
            "totals": self.totals(),
            "errors": self.errors,
        }
