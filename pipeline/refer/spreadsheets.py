"""Notices as spreadsheets for platforms' bulk forms: one row per URL, every cell
neutralised so that no post's text becomes a formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from vigie.sanitize import spreadsheet_cell


def rows(notices: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A row per URL for the spreadsheet formats, every cell neutralised: contacts start
    with `+` or `@`, and what follows is the poster's text (`@x; =HYPERLINK(...)`)."""
    columns = [
        "notice_id",
        "platform",
        "url",
        "service",
        "account",
        "content_id",
        "category",
        "content_type",
        "legal_basis",
        "explanation",
        "routes",
        "prices",
        "contacts",
        "captured_at",
        "payload_sha256",
        "text_sha256",
        "media_sha256",
        "media_pdq",
        "notifier_name",
        "notifier_email",
        "trusted_flagger",
        "destination",
    ]
    out = []
    for n in notices:
        for e in n["evidence"]:
            row = {
                "notice_id": n["notice_id"],
                "platform": n["platform"],
                "url": e["url"],
                # Meta's notices name Facebook, Instagram or Threads per item.
                "service": e["platform"],
                "account": e["channel"],
                "content_id": e["content_id"],
                "category": n["category"],
                "content_type": n["content_type"],
                "legal_basis": n["legal_basis"],
                "explanation": n["explanation"],
                "routes": "; ".join(n["cues"]["routes"]),
                "prices": "; ".join(n["cues"]["prices"]),
                "contacts": "; ".join(n["cues"]["contacts"]),
                "captured_at": e["captured_at"],
                "payload_sha256": e["payload_sha256"],
                "text_sha256": e["text_sha256"],
                "media_sha256": "; ".join(m["sha256"] for m in e["media"] if m["sha256"]),
                "media_pdq": "; ".join(m["pdq"] for m in e["media"] if m["pdq"]),
                "notifier_name": n["notifier"]["name"],
                "notifier_email": n["notifier"]["email"],
                "trusted_flagger": n["trusted_flagger"],
                "destination": n["destination"],
            }
            out.append([spreadsheet_cell(row[c]) for c in columns])
    return columns, out


def to_csv(notices: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns, cells = rows(notices)
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(cells)
    return buffer.getvalue()


def write_xlsx(notices: list[dict[str, Any]], path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "notices"
    columns, cells = rows(notices)
    sheet.append(columns)
    for row in cells:
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:
            cell.data_type = "s"  # text, never a formula, whatever the value looks like
    sheet.freeze_panes = "A2"
    book.save(path)
