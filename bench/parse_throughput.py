"""Parse throughput of Telegram preview pages, in posts per second.

Pages are the bundled sample channels rendered as t.me/s pages (20 posts each) plus the
hand-written page from the tests. Run: .venv/bin/python bench/parse_throughput.py
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from crawlers.telegram.mirror import load_channels, render_page
from crawlers.telegram.preview import parse_page

ROOT = Path(__file__).resolve().parent.parent


def saved_pages() -> list[tuple[str, str]]:
    pages = []
    for name, channel in load_channels().items():
        ids = sorted(p["id"] for p in channel["posts"])
        before: int | None = None
        while True:
            html = render_page(channel, before, 20)
            pages.append((f"https://t.me/s/{name}", html))
            older = [i for i in ids if before is None or i < before][-20:]
            if not older or older[0] == ids[0]:
                break
            before = older[0]
    test_page = ROOT / "tests" / "data" / "telegram" / "channel_page.html"
    pages.append(("https://t.me/s/rahat_travel", test_page.read_text(encoding="utf-8")))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per repetition")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    pages = saved_pages()
    posts_per_pass = sum(len(parse_page(html, url).posts) for url, html in pages)
    size = sum(len(html.encode()) for _, html in pages)
    rates = []
    for _ in range(args.repeat):
        passes, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for url, html in pages:
                parse_page(html, url)
            passes += 1
        rates.append(passes * posts_per_pass / (time.perf_counter() - start))
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"pages: {len(pages)} ({size / 1024:.0f} KiB), posts per pass: {posts_per_pass}")
    print(
        f"parse throughput: median {statistics.median(rates):,.0f} posts/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}) over {args.repeat} runs of {args.seconds:.0f}s"
    )


if __name__ == "__main__":
    main()
