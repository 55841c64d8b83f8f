"""The importers on large files: records/s and peak Python memory reading a Zeeschuimer
capture and a 4CAT-style mapped CSV made by repeating the sample files (tests/data/imports)
with fresh ids, against a baseline measured in the same run on the same files: reading
each line (or row) and parsing it with json.loads (csv.reader) and nothing else.

Run from the repository root: .venv/bin/python -m bench.import_throughput [--records N]"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crawlers.imports.mapped import read_mapped
from crawlers.imports.zeeschuimer import read_zeeschuimer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "imports"
CSV_COLUMNS = {"platform": "Platform", "channel": "Account", "post_id": "Post ID", "url": "Link",
               "text": "Message", "published_at": "Posted", "views": "Views"}  # fmt: skip


def _capture(path: Path, n: int) -> None:
    items = []
    for line in (DATA / "zeeschuimer" / "capture.ndjson").read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and item.get("source_platform") == "tiktok.com" and "id" in item["data"]:
            items.append(item)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            item = items[i % len(items)]
            item["data"]["id"] = str(7_400_000_000_000_000_000 + i)
            out.write(json.dumps(item, ensure_ascii=False) + "\n")


def _csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS.values())
        for i in range(n):
            writer.writerow(["tiktok", "game.uk.fast", str(7_500_000_000_000_000_000 + i), "",
                             f"Game to UK 100% guaranteed, boat from Dunkirk, 1500€, WhatsApp +33 6 12 34 {i % 100:02d}",
                             "2026-09-01T10:00:00Z", str(i)])  # fmt: skip


def _measure(work: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds, peak MiB of Python allocations, result): timed on its own, then run again
    under tracemalloc, which slows what it watches."""
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def _baseline_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if json.loads(line))


def _baseline_rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    n = parser.parse_args().records
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; {n} records per file")
    with tempfile.TemporaryDirectory() as tmp:
        capture, table = Path(tmp) / "capture.ndjson", Path(tmp) / "posts.csv"
        _capture(capture, n)
        _csv(table, n)
        for name, path, read, baseline in (
            ("zeeschuimer", capture, lambda: read_zeeschuimer([capture]), lambda: _baseline_lines(capture)),
            ("csv (mapped)", table, lambda: read_mapped([table], CSV_COLUMNS), lambda: _baseline_rows(table)),
        ):
            base_s, base_mib, _ = _measure(baseline)
            seconds, mib, result = _measure(read)
            assert len(result.posts) == n, (name, len(result.posts), result.skipped[:3])
            size = path.stat().st_size / 2**20
            print(
                f"{name}: {n / seconds:,.0f} records/s (baseline json/csv parse {n / base_s:,.0f}/s, "
                f"ratio {base_s / seconds:.3f}); peak {mib:.0f} MiB for a {size:.0f} MiB file "
                f"(baseline {base_mib:.1f} MiB)"
            )


if __name__ == "__main__":
    main()
