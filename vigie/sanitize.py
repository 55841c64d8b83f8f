"""Text from posts is written by people who may want to attack whoever reads it: the
analyst's terminal, the spreadsheet a trust team opens, the browser showing a report.

One function per destination, each used wherever that destination is written:

- `strip_controls`: text kept in the store. C0 and C1 control characters carry no meaning
  in a post (except newline and tab) and are removed; the hash of the raw markup stays the
  evidence of what was published.
- `for_terminal` and `terminal_json`: anything printed. Controls are removed and bidi
  overrides and isolates are shown as `\\u202e`, so a post can neither send escape
  sequences to the terminal nor reorder the line it is printed on.
- `spreadsheet_cell`: every CSV or xlsx cell. A cell that a spreadsheet would read as a
  formula gets a leading apostrophe (OWASP's rule for CSV injection); JSON exports keep
  the raw value.
- `web_url`: link fields (media, forwards, replies, link previews, links). Only http(s)
  URLs are links; `javascript:`, `data:` and other schemes are never kept as one.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

# C0 controls but tab and newline, DEL, C1 controls.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Bidi embeddings and overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# What must not reach a terminal raw even inside a JSON string: json.dumps escapes C0 but
# leaves DEL, C1, bidi controls and the Unicode line separators as they are.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
# OWASP: cells starting with = + - @ tab or carriage return are read as formulas.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_LEADING_BLANKS = re.compile(r"^[\s\x00-\x1f]+")
WEB_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def strip_controls(text: str) -> str:
    """Text as the store keeps it: line breaks as `\\n`, no other control characters, and
    lone surrogates (which UTF-8 cannot hold) replaced by U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))


def for_terminal(value: Any) -> str:
    """`value` as text safe to print: no control characters but newline and tab, and bidi
    controls made visible (`\\u202e`) instead of reordering the line."""
    text = "" if value is None else str(value)
    return _BIDI.sub(_escape, strip_controls(text))


def terminal_json(data: Any, **kwargs: Any) -> str:
    """`json.dumps(data, ensure_ascii=False, **kwargs)`, with the characters a terminal
    would act on written as `\\uXXXX` escapes: the same JSON value, safe to print."""
    return _JSON_UNSAFE.sub(_escape, json.dumps(data, ensure_ascii=False, **kwargs))


def is_formula(value: str) -> bool:
    """Would a spreadsheet (Excel, LibreOffice, Google Sheets) read this cell as a formula?
    Leading blanks count as nothing: LibreOffice can trim them on import."""
    return _LEADING_BLANKS.sub("", value).startswith(FORMULA_PREFIXES) or value.startswith(FORMULA_PREFIXES)


def spreadsheet_cell(value: Any) -> str:
    """The text of a CSV or xlsx cell: `'` before anything a spreadsheet would evaluate,
    and no control characters (xlsx cannot hold them; a leading CR hides a formula)."""
    text = "" if value is None else str(value)
    if is_formula(text):
        return "'" + strip_controls(text)
    text = strip_controls(text)
    return "'" + text if is_formula(text) else text


def web_url(value: str | None) -> str | None:
    """`value` if it is an http(s) URL with a host, else None. Browsers ignore tabs,
    newlines and leading controls in a URL ("java\\tscript:"), so any of those makes the
    value suspect and it is not kept as a link either."""
    if not value or value != value.strip() or _CONTROLS.search(value) or "\t" in value or "\n" in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.netloc:
        return None
    return value


def web_url_or_path(value: str | None) -> str | None:
    """An http(s) URL as `web_url`, or a relative path with no scheme at all (the files of
    a Telegram Desktop export: `photos/photo_1.jpg`); None for anything else."""
    if not value:
        return None
    if web_url(value):
        return value
    bare = _LEADING_BLANKS.sub("", _CONTROLS.sub("", value.replace("\t", "").replace("\n", "")))
    if value != value.strip() or bare != value or _SCHEME.match(bare) or bare.startswith("//"):
        return None
    return value
