"""Importer for Zeeschuimer's NDJSON export: what a researcher's browser received while
scrolling TikTok, Instagram, X or Threads, one captured item a line.

Each line holds the platform's own object in `data` beside Zeeschuimer's metadata
(`source_platform`, `timestamp_collected` in milliseconds, `source_url`, ...). The raw
line's SHA-256 is the post's evidence. Items of platforms Vigie does not keep (LinkedIn,
9GAG, ...) are left out and counted in one warning per platform."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from crawlers.imports._capture import (
    item_parts,
    kept_platform,
    take_item,
    unkept_warnings,
)
from crawlers.imports.common import ImportResult, Record, RecordError, files, json_lines
from vigie.errors import InputFormatError


def read_zeeschuimer(paths: list[Path]) -> ImportResult:
    """Posts of every Zeeschuimer NDJSON file; a file with no Zeeschuimer item at all is
    refused (one line), a bad item is skipped and named."""
    result = ImportResult()
    unkept: Counter[str] = Counter()
    for path in files(list(paths)):
        result.extend(_read_file(path, unkept))
    result.warnings += unkept_warnings(unkept)
    return result


def _read_file(path: Path, unkept: Counter[str]) -> ImportResult:
    result = ImportResult()
    items = 0
    for record in json_lines(path):
        result.records += 1
        if not isinstance(record, Record):
            result.skip(*record)
            continue
        name, meta, prefix = item_parts(record.value)
        if not meta:
            result.skip(record.where, RecordError("data", "missing: not a Zeeschuimer item"))
            continue
        items += 1
        platform = kept_platform(name) if name else None
        take_item(result, record, name, platform, meta, prefix, unkept, "missing")
    if result.records and not items:
        raise InputFormatError(
            f"{path}: not a Zeeschuimer export (no line has 'source_platform' and 'data'); "
            "a 4CAT CSV goes to `vigie import 4cat`"
        )
    return result
