"""Log records as JSON lines (`vigie --log-format json`), for log shippers in a cluster.

Each record is one JSON object on one line: `ts` (UTC, ISO 8601), `level`, `logger`,
`message`, the extra fields a caller passed (`logger.info(..., extra={"task": ..., "job_id":
..., "node": ...})`), and `error` (the exception's type and one line) when there is one,
`traceback` only when asked for. Everything outside printable ASCII is escaped, so post text
in a message can neither forge a line nor drive the terminal it is read on."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

# The attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _plain(value: Any) -> Any:
    """A value JSON can hold as it is; anything else as its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    def __init__(self, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _plain(value)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            entry["error"] = f"{type(exc).__name__}: {_one_line(exc)}"
            if self.tracebacks and record.exc_info:
                entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        elif self.tracebacks and record.stack_info:
            entry["traceback"] = record.stack_info
        return json.dumps(entry, ensure_ascii=True)
