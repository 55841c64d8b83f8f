"""What every importer shares: the result it hands back, records read one at a time with
where they came from, the raw record's hash as evidence, times made UTC, counts, and the
hashtags, mentions and links of a text.

A record that cannot be read is skipped and named by file, line (or record number) and
field; the rest of the file still imports."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigie.errors import InputFormatError
from vigie.records import MAX_INTEGER, Post
from vigie.sanitize import web_url

# A record larger than this is not a post: it is skipped, named, and the file goes on.
MAX_RECORD_BYTES = 16 * 1024 * 1024


class RecordError(ValueError):
    """A record that cannot be read: `field` names what was wrong in it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@contextmanager
def one_record() -> Iterator[None]:
    """Around the mapping of one record: a value of another shape than the schema's (a list
    where a URL goes, a number where a list goes) is that record's error, not the file's."""
    try:
        yield
    except RecordError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        raise RecordError(
            "record", f"not the documented shape ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


@dataclass
class ImportResult:
    """Posts read from files, what was skipped (one line each: `file:line: field: reason`)
    and warnings for the user."""

    records: int = 0
    posts: list[Post] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def skip(self, where: str, exc: Exception) -> None:
        self.skipped.append(f"{where}: {exc}")

    def extend(self, other: ImportResult) -> None:
        self.records += other.records
        self.posts += other.posts
        self.skipped += other.skipped
        self.warnings += other.warnings


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a file: its parsed value, its raw bytes' SHA-256 and where it is."""

    value: Any
    sha256: str
    where: str  # "file:line" or "file:record N"


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def canonical_sha256(value: Any) -> str:
    """The SHA-256 of a record that came inside a larger JSON document: of its JSON written
    with sorted keys and no spaces, so the same record hashes the same wherever it sits."""
    blob = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return sha256_of(blob.encode("utf-8"))


def _opened(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None


def json_lines(path: Path) -> Iterator[Record | tuple[str, Exception]]:
    """Each non-empty line of a JSON Lines / NDJSON file as a Record; a line that is not
    JSON (or too big) as (where, error), so the caller skips it and goes on. The file is
    read a line at a time: a capture of gigabytes is never held whole."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        yield from _lines(path, handle)


def _lines(path: Path, handle: IO[bytes]) -> Iterator[Record | tuple[str, Exception]]:
    for number, raw in enumerate(handle, start=1):
        where = f"{path.name}:{number}"
        line = raw.strip()
        if not line:
            continue
        if len(line) > MAX_RECORD_BYTES:
            yield where, RecordError("line", f"{len(line)} bytes, more than a post can be")
            continue
        try:
            value = json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError:
            yield where, RecordError("line", "not UTF-8")
            continue
        except json.JSONDecodeError as exc:
            yield where, RecordError("line", f"not JSON: {_where_in_line(exc)}")
            continue
        yield Record(value, sha256_of(line), where)


def _where_in_line(exc: json.JSONDecodeError) -> str:
    """The decoder's message with its column ("Unterminated string starting at column 74")."""
    return f"{exc.msg}{'' if exc.msg.endswith(' at') else ' at'} column {exc.colno}"


def json_document(path: Path) -> Any:
    """A whole JSON file; a broken one is a one-line InputFormatError naming where."""
    data = _opened(path)
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputFormatError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"{path}:{exc.lineno}: not JSON: {_where_in_line(exc)}") from None


def csv_rows(path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """Each row of a CSV file with a header as (where, row, raw SHA-256). The hash is of the
    row's cells as the file holds them, joined by the file's own line (its JSON list), so a
    re-export with the same values hashes the same. The file is read a row at a time."""
    try:
        # Rows end at \n or \r\n only: a form feed or U+2028 in a cell is part of the cell.
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    csv.field_size_limit(min(sys.maxsize, MAX_RECORD_BYTES))
    with handle:
        reader = csv.reader(handle)
        try:
            yield from _csv_records(path, reader)
        except UnicodeDecodeError:
            raise InputFormatError(
                f"{path}:{reader.line_num + 1}: not UTF-8 text (save the CSV as UTF-8)"
            ) from None


def _csv_records(path: Path, reader: Any) -> Iterator[tuple[str, dict[str, str], str]]:
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputFormatError(f"{path}:1: not a CSV header ({exc})") from None
    header = [h.strip() for h in header]
    while True:
        first = reader.line_num + 1  # a row quoted over several lines is named by its first
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The row is lost but the reader goes on at the next line.
            yield f"{path.name}:{first}", {}, f"error: {exc}"
            continue
        if not any(c.strip() for c in cells):
            continue
        raw = json.dumps(cells, ensure_ascii=False, separators=(",", ":"))
        yield (
            f"{path.name}:{first}",
            dict(zip(header, cells, strict=False)),
            sha256_of(raw.encode()),
        )


def zone(name: str | None) -> tzinfo | None:
    """An IANA time zone by name ("" or None: none)."""
    if not name:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InputFormatError(
            f"unknown time zone {name[:60]!r}: expected an IANA name such as Europe/Istanbul or UTC"
        ) from None


def utc_time(value: Any, field_name: str, local: tzinfo | None = None) -> str | None:
    """A time as ISO 8601 UTC ("2024-05-01T10:00:00+00:00"): from Unix seconds (or
    milliseconds), ISO 8601 with an offset or 'Z', "2024-05-01 10:00:00" (in `local`, else
    refused), or X's "Wed Oct 10 20:19:24 +0000 2018". None or "" is None."""
    if value is None or value == "":
        return None
    when: datetime | None = None
    if isinstance(value, bool):
        raise RecordError(field_name, f"{value!r} is not a time")
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\d{9,13}(\.\d+)?", value.strip())
    ):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        try:
            when = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise RecordError(field_name, f"{value!r} is not a time") from None
    elif isinstance(value, str):
        text = value.strip()
        try:  # ISO 8601 first: what most files hold, and read much faster than strptime
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
        except ValueError:
            for fmt in ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
                try:
                    when = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if when is None:
            raise RecordError(field_name, f"{value[:40]!r} is not a time")
    else:
        raise RecordError(field_name, f"{str(value)[:40]!r} is not a time")
    if when.tzinfo is None:
        if local is None:
            raise RecordError(field_name, f"{value!r} has no time zone (give the file's with --timezone)")
        when = when.replace(tzinfo=local)
    if not 2000 <= when.year <= 2100:
        raise RecordError(field_name, f"{value!r} is not a plausible post time")
    return when.astimezone(UTC).isoformat()


def count(value: Any, field_name: str) -> int | None:
    """A view, like or share count: a non-negative integer, or None when absent. Counts
    written as "1,234" or "1234.0" are read; anything else is malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(field_name, f"{value!r} is not a count")
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        try:
            value = float(text) if "." in text else int(text)
        except ValueError:
            raise RecordError(field_name, f"{value[:30]!r} is not a count") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(field_name, f"{value!r} is not a count")
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_INTEGER:
        raise RecordError(field_name, f"{str(value)[:30]!r} is not a count")
    return value


def text_field(value: Any, field_name: str) -> str:
    """A text field: a string (None is ""); anything else is malformed."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(field_name, f"expected text, found {type(value).__name__}")
    return value


_HASHTAG = re.compile(r"(?<![\w&])#(\w[\w\u200c\u200d]{0,99})", re.UNICODE)
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_][A-Za-z0-9_.]{0,99})(?<!\.)")
_LINK = re.compile(r"https?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)


def hashtags_in(text: str) -> list[str]:
    """Hashtags written in a text, without '#', in order, each once."""
    return list(dict.fromkeys(_HASHTAG.findall(text)))


def mentions_in(text: str) -> list[str]:
    """@handles written in a text, without '@', lower case, in order, each once."""
    return list(dict.fromkeys(m.lower() for m in _MENTION.findall(text)))


def links_in(text: str) -> list[str]:
    """http(s) links written in a text, in order, each once (trailing punctuation dropped)."""
    found = (web_url(m.rstrip(".,;:!?")) for m in _LINK.findall(text))
    return list(dict.fromkeys(u for u in found if u))


def merged(*lists: list[str]) -> list[str]:
    """Lists joined in order, each item once."""
    return list(dict.fromkeys(item for items in lists for item in items if item))


def files(paths: list[str | Path]) -> list[Path]:
    """The files to read; a missing one is a one-line InputFormatError."""
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputFormatError(f"{path}: no such file")
        out.append(path)
    return out


LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")


def is_json_lines(path: Path) -> bool:
    """Whether a JSON file holds one document per line: by its name, else because its first
    line is a whole document with more after it."""
    if path.suffix.lower() in LINES_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            first = next((line for line in handle if line.strip()), b"")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        json.loads(first.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return len(first.strip()) < path.stat().st_size - 2


def csv_header(path: Path) -> list[str]:
    """A CSV file's column names (its first row only is read); an unreadable file or header
    is a one-line InputFormatError."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [h.strip() for h in next(csv.reader(handle), [])]
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputFormatError(f"{path}:1: not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise InputFormatError(f"{path}:1: not a CSV header ({exc})") from None


def reposts(retweets: int | None, quotes: int | None) -> int | None:
    """An X post's shares, whichever tool captured it: retweets and quote posts."""
    return None if retweets is None and quotes is None else (retweets or 0) + (quotes or 0)
