"""The HTML report: figures from a small store, escaping of hostile text in the tables and
inside the SVG charts, and the page as real headless Chromium draws it (every chart an SVG
with one mark per figure, nothing injected, nothing fetched)."""

from __future__ import annotations

import json
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from markupsafe import escape

from pipeline.report import collect, render
from pipeline.report.charts import draw
from pipeline.report.model import Contact, Language, NewTerm, Route
from pipeline.report.vega import UnsafeChartError, check_svg, to_svg
from vigie.cli.report import report
from vigie.records import post_key
from vigie.store import Store

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '</script><img src=x onerror="document.body.dataset.pwned=1">'
NOW = "2026-09-25T00:00:00+00:00"
CHARTS = (
    "timeline",
    "languages",
    "routes",
    "prices",
    "outcomes",
    "outcomes_by_platform",
    "removal_by_platform",
    "removal_distribution",
    "price_trends",
    "new_terms",
)
EVIL_CHANNEL = "evil" + HOSTILE
SVG = "{http://www.w3.org/2000/svg}"


def add(
    store: Store,
    platform: str,
    channel: str,
    post_id: int,
    published: str,
    *,
    lang: str = "ar",
    advert: bool = True,
    origin: str | None = None,
    destination: str | None = None,
    prices: list[tuple[float, str]] = (),  # type: ignore[assignment]
    contacts: list[str] = (),  # type: ignore[assignment]
    cluster: str | None = None,
    text: str = "",
    referral: tuple[str, str | None, str | None] | None = None,
) -> str:
    key = post_key(platform, channel, post_id)
    store.db.execute(
        "INSERT INTO posts (key, platform, channel, post_id, url, text, published_at, captured_at,"
        " crawler_version, first_seen, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '0.1.0', ?, ?)",
        (
            key,
            platform,
            channel,
            post_id,
            f"https://{platform}.example/{channel}/{post_id}",
            text or f"Boat from {origin} to {destination}, call now",
            published,
            NOW,
            NOW,
            NOW,
        ),
    )
    entities = {
        "phones": [c for c in contacts if c.startswith("+")],
        "handles": [c[1:] for c in contacts if c.startswith("@")],
        "links": [c for c in contacts if not c.startswith(("+", "@"))],
        "contacts": list(contacts),
        "prices": [{"amount": a, "currency": cur, "text": f"{a} {cur}"} for a, cur in prices],
        "places": [p for p in (origin, destination) if p],
        "origin": origin,
        "destination": destination,
        "transport": ["boat"],
    }
    store.db.execute(
        "INSERT INTO analysis (post_key, content_sha256, model_id, lang, lang_confidence, score, is_advert,"
        " cues, entities, cluster_id, processed_at) VALUES (?, '', 'test', ?, 0.9, ?, ?, ?, ?, ?, ?)",
        (
            key,
            lang,
            0.95 if advert else 0.05,
            int(advert),
            json.dumps([{"cue": "price", "text": "2500€", "weight": 1.0}]),
            json.dumps(entities if advert else {}),
            cluster,
            NOW,
        ),
    )
    if referral:
        status, referred_at, removed_at = referral
        store.db.execute(
            "INSERT INTO referrals (post_key, status, cluster_id, platform, content_type, batch_id, referred_at,"
            " removed_at, updated_at) VALUES (?, ?, ?, ?, 'post', 'b1', ?, ?, ?)",
            (key, status, cluster, platform, referred_at, removed_at, NOW),
        )
    return key


def removed(day: int, hours: int) -> tuple[str, str, str]:
    return (
        "removed",
        f"2026-09-{day:02d}T00:00:00+00:00",
        f"2026-09-{day + hours // 24:02d}T{hours % 24:02d}:00:00+00:00",
    )


def fill(s: Store) -> None:
    """Ten September posts on two platforms and one from December 2025."""
    tg, fb = "telegram", "facebook"
    add(
        s,
        tg,
        "smuggle_one",
        1,
        "2026-09-01T08:00:00+00:00",
        origin="tr-izmir",
        destination="it",
        prices=[(2500, "EUR")],
        contacts=["+905551112233", "@captain_x"],
        cluster="cl-a",
        referral=removed(2, 2),
    )
    add(
        s,
        tg,
        "smuggle_one",
        2,
        "2026-09-03T09:00:00+00:00",
        origin="tr-izmir",
        destination="it",
        prices=[(3000, "USD")],
        contacts=["+905551112233"],
        cluster="cl-a",
        referral=removed(4, 10),
    )
    add(
        s,
        tg,
        EVIL_CHANNEL,
        1,
        "2026-09-05T10:00:00+00:00",
        lang="fa",
        origin="tr-izmir",
        destination="it",
        prices=[(100000, "TRY")],
        contacts=["+905551112233", HOSTILE],
        cluster="cl-a",
        text=HOSTILE,
        referral=removed(6, 30),
    )
    add(
        s,
        fb,
        "page123",
        1,
        "2026-09-06T11:00:00+00:00",
        lang="en",
        origin="ly-zuwara",
        destination="it",
        prices=[(1500, "EUR")],
        contacts=["wa.me/447700900123"],
        cluster="cl-b",
        referral=removed(7, 5),
    )
    add(
        s,
        fb,
        "page123",
        2,
        "2026-09-10T12:00:00+00:00",
        lang="en",
        origin="ly-zuwara",
        destination="it",
        cluster="cl-b",
        referral=removed(11, 7),
    )
    add(
        s,
        tg,
        "smuggle_one",
        3,
        "2026-09-12T13:00:00+00:00",
        lang="ckb",
        origin="fr-calais",
        destination="gb",
        prices=[(1800, "GBP")],
        contacts=["@captain_x"],
        referral=("online", "2026-09-13T00:00:00Z", None),
    )
    add(
        s,
        fb,
        "page123",
        3,
        "2026-09-15T14:00:00+00:00",
        destination="gb",
        contacts=["@captain_x"],
        referral=("referred", "2026-09-16T00:00:00Z", None),
    )
    add(
        s,
        tg,
        EVIL_CHANNEL,
        2,
        "2026-09-20T15:00:00+00:00",
        destination="gb",
        referral=("rejected", None, None),  # an analyst's rejection: not flagged, still a referral record
    )
    add(s, fb, "page123", 4, "2026-09-18T16:00:00+00:00", lang="en", referral=("confirmed", None, None))
    add(s, tg, "smuggle_one", 4, "2026-09-02T17:00:00+00:00", advert=False)
    # Outside September: only in the unfiltered report.
    add(
        s,
        tg,
        "smuggle_one",
        0,
        "2025-12-15T08:00:00+00:00",
        lang="tr",
        origin="tr-istanbul",
        destination="gr",
        referral=("removed", "2025-12-16T00:00:00+00:00", "2025-12-20T04:00:00+00:00"),
    )


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "vigie.db") as s:
        fill(s)
        yield s


def test_collect_figures_for_a_month(store):
    f = collect(store, "2026-09")
    t = f.totals
    assert (t.posts, t.analysed, t.flagged) == (10, 10, 8)  # the rejected advert is not flagged
    assert t.channels == 3 and t.platforms == 2
    assert f.routes[0] == Route(origin="tr-izmir", destination="it", label="Izmir → Italy", count=3)
    assert [r.count for r in f.routes] == [3, 2, 1, 1]
    assert "unknown → United Kingdom" in [r.label for r in f.routes]
    izmir = f.prices[0]
    assert izmir.label == "Izmir → Italy" and izmir.n == 3 and izmir.median_eur == 2700  # 2500, 2760, 2700
    assert len(f.prices) == 3
    assert f.contacts[0] == Contact(
        contact="+905551112233", posts=3, channels=2, platforms=["telegram"], last_seen="2026-09-05"
    )
    captain = next(c for c in f.contacts if c.contact == "@captain_x")
    assert (captain.posts, captain.channels, captain.platforms) == (3, 2, ["facebook", "telegram"])
    assert [(c.cluster_id, c.copies, c.channels) for c in f.clusters] == [("cl-a", 3, 2), ("cl-b", 2, 1)]
    assert f.clusters[0].example_url == "https://telegram.example/smuggle_one/1"
    assert {lang.lang: lang.count for lang in f.languages} == {"ar": 3, "en": 3, "fa": 1, "ckb": 1}

    tl = f.timeline
    assert tl.granularity == "day" and len(tl.buckets) == 18 and sum(tl.total) == 8
    assert tl.buckets[0] == "2026-09-01" and tl.buckets[-1] == "2026-09-18"
    assert {s.platform: sum(s.counts) for s in tl.series} == {"telegram": 4, "facebook": 4}

    oc = f.outcomes
    assert oc.by_status == {"removed": 5, "online": 1, "referred": 1, "confirmed": 1, "rejected": 1}
    assert {p.platform: p.counts for p in oc.by_platform} == {
        "telegram": {"removed": 3, "online": 1, "rejected": 1},
        "facebook": {"removed": 2, "referred": 1, "confirmed": 1},
    }
    rm = f.removal
    assert rm.median_hours == 7 and rm.n == 5  # 2, 5, 7, 10, 30
    assert {p.platform: (p.median_hours, p.n) for p in rm.by_platform} == {
        "telegram": (10, 3),
        "facebook": (6, 2),
    }
    assert [b.count for b in rm.distribution] == [0, 2, 2, 1, 0, 0]
    assert t.sent == 7 and t.removed == 5 and t.removal_rate == round(5 / 7, 4)


def test_collect_without_period_and_bad_period(store):
    f = collect(store)
    assert f.totals.flagged == 9 and f.timeline.granularity == "week"
    assert sum(f.timeline.total) == 9
    telegram = next(p for p in f.removal.by_platform if p.platform == "telegram")
    assert (telegram.median_hours, telegram.n) == (20, 4)  # 2, 10, 30, 100
    assert collect(store, "2024").totals.flagged == 0
    with pytest.raises(ValueError):
        collect(store, "2026-13")
    with pytest.raises(ValueError):
        collect(store, "'; DROP TABLE posts; --")


class Dom(HTMLParser):
    """Every start tag, the text, and per chart container its SVGs, its marks (by their ARIA
    role description: "bar", "arc") and its text."""

    VOID = frozenset(
        ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr")
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.charts: dict[str, dict[str, Any]] = {}
        self.open: list[tuple[str, int]] = []  # (chart, depth) of containers being read
        self.depth = 0
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "body":
            self.body = a
        for name, _ in self.open:
            chart = self.charts[name]
            key = a.get("aria-roledescription") or tag
            chart["shapes"][key] = chart["shapes"].get(key, 0) + 1
            if a.get("aria-label"):
                chart["labels"].append(a["aria-label"])
        if tag in self.VOID:
            return
        self.depth += 1
        if "data-chart" in a:
            name = a["data-chart"] or ""
            self.charts[name] = {"attrs": a, "shapes": {}, "text": [], "labels": []}
            self.open.append((name, self.depth))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if self.open and self.open[-1][1] == self.depth:
            self.open.pop()
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for name, _ in self.open:
            self.charts[name]["text"].append(data)


def parse(page: str) -> Dom:
    dom = Dom()
    dom.feed(page)
    dom.close()
    return dom


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
)


def dump_dom(tmp_path: Path, page: Path) -> Dom:
    result = chromium(tmp_path, "--dump-dom", page.resolve().as_uri())
    dom = parse(result.stdout)
    assert dom.body is not None and "<body" in result.stdout, (
        f"no <body> in Chromium's DOM: {result.stdout[:500]!r} {result.stderr[-1000:]}"
    )
    return dom


def assert_nothing_injected(dom: Dom) -> None:
    assert not [tag for tag, _ in dom.tags if tag in ("img", "script", "iframe", "foreignobject")], (
        "hostile text became an element"
    )
    handlers = [(tag, k) for tag, a in dom.tags for k in a if k.startswith("on")]
    assert not handlers, handlers
    assert "data-pwned" not in dom.body


def html_escaped(s: str) -> str:
    return str(escape(s))  # as the templates escape: quotes too


def chart_svgs(page: str) -> dict[str, ET.Element]:
    """Each chart's inline SVG, parsed as XML: it must be well-formed on its own."""
    svgs = {}
    for name in CHARTS:
        start = page.index(f'data-chart="{name}"')
        if (at := page.find("<svg", start, page.find("</figure>", start))) >= 0:
            svgs[name] = ET.fromstring(page[at : page.index("</svg>", at) + len("</svg>")])
    return svgs


def test_html_escapes_hostile_text(store):
    figures = collect(store, "2026-09")
    page = render(figures, "Report <b>" + HOSTILE)
    assert "<img" not in page and "</script><img" not in page
    assert "<script" not in page.lower()  # no script at all, not even data
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert html_escaped(EVIL_CHANNEL) in page  # the channel table
    assert html_escaped(HOSTILE) in page  # the contacts table and the cluster excerpt
    assert "javascript:" not in page
    assert_nothing_injected(parse(page))


def test_hostile_text_stays_text_inside_the_svg_charts(tmp_path):
    """Route labels come from the entities of a post, platforms and languages from the store:
    whatever they hold is drawn as text and labels the marks, and never becomes markup."""
    evil_place = "x-" + HOSTILE
    evil_platform = "tg" + HOSTILE
    with Store(tmp_path / "hostile.db") as s:
        add(
            s,
            evil_platform,
            EVIL_CHANNEL,
            1,
            "2026-09-01T08:00:00+00:00",
            origin=evil_place,
            destination="it",
            prices=[(2500, "EUR"), (100, "EUR")],
            referral=removed(2, 3),
            text=HOSTILE,
            cluster="c",
        )
        add(
            s,
            evil_platform,
            EVIL_CHANNEL,
            2,
            "2026-09-02T08:00:00+00:00",
            origin=evil_place,
            destination="it",
            prices=[(900, "EUR")],
            referral=("online", "2026-09-03T00:00:00Z", None),
            text=HOSTILE,
            cluster="c",
        )
        figures = collect(s, "2026-09")
    assert figures.trends is not None
    hostile_term = NewTerm(
        term=HOSTILE, posts=3, baseline_posts=0, sources=2, score=2.0, example_url="javascript:alert(1)"
    )
    figures = replace(
        figures,
        languages=[Language(lang=HOSTILE, label=HOSTILE, count=2)],
        trends=replace(figures.trends, new_terms=[hostile_term]),
    )
    assert figures.routes[0].label == f"{evil_place} → Italy"
    page = render(figures, "Hostile")
    svgs = chart_svgs(page)
    assert set(svgs) == set(CHARTS)
    for name, svg in svgs.items():
        for element in svg.iter():
            assert element.tag.removeprefix(SVG) not in ("script", "foreignObject", "image", "a"), name
            assert not [k for k in element.attrib if k.lower().startswith("on")], (name, element.attrib)
    labels = {name: [e.get("aria-label") or "" for e in svg.iter()] for name, svg in svgs.items()}
    texts = {name: "".join(e.text or "" for e in svg.iter(f"{SVG}text")) for name, svg in svgs.items()}
    # The whole value, exactly, in the label of its mark (the drawn text may be cut short).
    assert any(f"{evil_place} → Italy: 2 adverts" == label for label in labels["routes"]), labels["routes"]
    assert any(label.startswith(f"{evil_place} → Italy: median €") for label in labels["prices"])
    assert any(label.startswith(HOSTILE) for label in labels["languages"])
    assert any(
        label.startswith(f"{evil_place} → Italy, 2026-09: median €") for label in labels["price_trends"]
    )
    assert any(label.startswith(f"{HOSTILE}: 3 adverts") for label in labels["new_terms"])
    assert html_escaped(HOSTILE) in page and 'href="javascript:' not in page  # the new terms table
    for name in ("outcomes_by_platform", "removal_by_platform"):
        assert any(label.startswith(evil_platform) for label in labels[name]), labels[name]
    assert "tg</script><img" in texts["outcomes_by_platform"] and "x-</script><img" in texts["routes"]
    assert_nothing_injected(parse(page))


def test_unsafe_svg_is_refused():
    assert to_svg({"mark": "bar", "data": {"values": [{"a": 1}]}, "encoding": {"x": {"field": "a"}}})
    with pytest.raises(UnsafeChartError, match="<script>"):
        check_svg('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    with pytest.raises(UnsafeChartError, match="onload"):
        check_svg('<svg xmlns="http://www.w3.org/2000/svg"><rect onload="alert(1)"/></svg>')
    with pytest.raises(UnsafeChartError, match="href"):
        check_svg(
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink"><g x:href="#a"/></svg>'
        )


def test_charts_are_deterministic_and_small(store):
    figures = collect(store, "2026-09")
    first = draw(figures)
    again = draw(collect(store, "2026-09"))
    assert first == again  # byte for byte, from a second read of the store
    assert render(figures, "Same") == render(figures, "Same")
    sizes = {name: len(svg) for name, svg in first.items() if svg}
    assert set(sizes) == set(CHARTS) - {"new_terms"}  # no flagged post before September to rise against
    assert all(1_000 < size < 60_000 for size in sizes.values()), sizes


@needs_chromium
def test_report_in_headless_chromium(store, tmp_path):
    figures = collect(store, "2026-09")
    page = tmp_path / "report.html"
    page.write_text(render(figures, "September report"), encoding="utf-8")
    dom = dump_dom(tmp_path, page)

    assert set(dom.charts) == set(CHARTS)
    for name, chart in dom.charts.items():
        if name == "new_terms":  # nothing flagged before September to rise against
            assert not chart["shapes"].get("svg") and "baseline" in "".join(chart["text"])
            continue
        assert chart["shapes"].get("svg") == 1, (name, chart["shapes"])
    assert figures.trends is not None
    assert "Izmir" not in "".join(dom.charts["price_trends"]["labels"])  # routes read country to country
    assert any("Turkey → Italy, 2026-09: median €" in label for label in dom.charts["price_trends"]["labels"])

    def bars(name: str) -> int:
        return int(dom.charts[name]["shapes"].get("bar", 0))

    cells = sum(1 for s in figures.timeline.series for n in s.counts if n)
    assert bars("timeline") == cells > 0
    assert bars("routes") == len(figures.routes) == 4
    assert bars("languages") == len(figures.languages) == 4
    assert bars("prices") == len(figures.prices) == 3
    assert dom.charts["outcomes"]["shapes"].get("arc mark") == 5
    assert bars("outcomes_by_platform") == 6
    assert bars("removal_by_platform") == 2
    assert bars("removal_distribution") == 3  # non-empty bins: 1–6 h, 6–24 h, 1–3 days
    routes_text = "".join(dom.charts["routes"]["text"])
    assert "Izmir → Italy" in routes_text and "Zuwara → Italy" in routes_text
    assert "Izmir → Italy: 3 adverts" in dom.charts["routes"]["labels"]
    assert "telegram, Removed: 3 (60%)" in dom.charts["outcomes_by_platform"]["labels"]
    assert "Removed: 5 (56%)" in "".join(dom.charts["outcomes"]["text"])  # the legend

    text = "".join(dom.text)
    assert EVIL_CHANNEL in text  # shown as text in the channels table
    assert "+905551112233" in text and "cl-a" in text
    assert_nothing_injected(dom)

    shot = tmp_path / "report.png"
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        page.resolve().as_uri(),
    )
    pixels = assert_real_screenshot(shot, 1280, 2000)
    # The bars are painted: the colours of the timeline's two platforms and of the routes.
    for colour in ("#1f5fa8", "#e07b39", "#2e9e6b"):
        rgb = bytes.fromhex(colour[1:])
        assert pixels.count(rgb) > 500, colour


def assert_real_screenshot(path: Path, width: int, height: int) -> list[bytes]:
    """Checks the PNG is a real, varied page and returns its pixels as RGB triples."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert (w, h) == (width, height)
    # A blank page compresses to a few KB; charts, tables and text make it much larger.
    assert len(data) > 20_000, f"screenshot is only {len(data)} bytes: blank page?"
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(set(raw[:: max(1, len(raw) // 200_000)])) > 16  # many distinct values, not one flat colour
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    return _pixels(raw, w, h, 3 if colour_type == 2 else 4)


def _pixels(raw: bytes, width: int, height: int, channels: int) -> list[bytes]:
    """Undoes the PNG row filters (None, Sub, Up, Average, Paeth)."""
    stride = width * channels
    previous = bytearray(stride)
    out: list[bytes] = []
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b, c = previous[i], previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out.extend(bytes(row[i : i + 3]) for i in range(0, stride, channels))
        previous = row
    return out


@needs_chromium
def test_empty_report_still_renders(tmp_path):
    with Store(tmp_path / "empty.db") as s:
        figures = collect(s)
    assert figures.totals.flagged == 0 and figures.routes == []
    page = tmp_path / "empty.html"
    page.write_text(render(figures, "Empty"), encoding="utf-8")
    dom = dump_dom(tmp_path, page)
    assert set(dom.charts) == set(CHARTS)
    for name, chart in dom.charts.items():
        assert not chart["shapes"].get("svg"), name
        assert "No " in "".join(chart["text"]), name
    assert "No flagged adverts or referrals" in "".join(dom.text)


def test_report_command_writes_the_page(store, tmp_path):
    config = tmp_path / "vigie.yaml"
    config.write_text(f"data_dir: {json.dumps(str(tmp_path))}\n", encoding="utf-8")
    out = tmp_path / "out" / "report.html"
    missing = CliRunner().invoke(report, ["--out", str(out)], obj={"config_path": str(config)})
    assert missing.exit_code == 2 and f"the directory {out.parent} does not exist" in missing.output
    assert not out.parent.exists()  # never made: a mistyped path is refused, not created
    out.parent.mkdir()
    result = CliRunner().invoke(
        report, ["--out", str(out), "--period", "2026-09"], obj={"config_path": str(config)}
    )
    assert result.exit_code == 0, result.output
    assert str(out.resolve()) in result.output and "8 flagged adverts" in result.output
    page = out.read_text(encoding="utf-8")
    assert "<title>Vigie report — 2026-09</title>" in page and 'data-chart="routes"' in page
    assert len(chart_svgs(page)) == len(CHARTS) - 1  # new terms: nothing flagged before September
    bad = CliRunner().invoke(
        report, ["--out", str(out), "--period", "soon"], obj={"config_path": str(config)}
    )
    assert bad.exit_code != 0 and "--period" in bad.output


def test_charts_need_no_network_or_external_files(store):
    page = render(collect(store), "Self-contained")
    for needle in (
        'src="',
        "src='",
        "<link",
        "@import",
        "url(",
        "@font-face",
        "fonts.googleapis",
        "cdn.",
        "<script",
    ):
        assert needle not in page.lower(), needle
    dom = parse(page)
    [csp] = [
        a.get("content") or "" for tag, a in dom.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp.startswith("default-src 'none';") and "script-src" not in csp  # so no script may run
    hrefs = [a.get("href") or "" for tag, a in dom.tags if "href" in a or "xlink:href" in a]
    assert hrefs and all(h.startswith("https://") for h in hrefs), hrefs  # the example links only


def test_templates_ship_with_the_package():
    from importlib.resources import files

    templates = files("pipeline.report") / "templates"
    assert {p.name for p in templates.iterdir()} >= {"report.html.j2", "macros.html.j2", "report.css"}
