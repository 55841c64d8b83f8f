"""The HTML report: figures from a small store, escaping of hostile text, and the page as
real headless Chromium draws it (charts drawn, shapes matching the data, nothing injected)."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.report import collect, render
from vigie.commands.report_cmd import report
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
)
EVIL_CHANNEL = "evil" + HOSTILE


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
    key = f"{platform}:{channel}:{post_id}"
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


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "vigie.db") as s:
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
            referral=("rejected", None, None),
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
        yield s


def test_collect_figures_for_a_month(store):
    f = collect(store, "2026-09")
    t = f["totals"]
    assert (t["posts"], t["analysed"], t["flagged"]) == (10, 10, 9)
    assert t["channels"] == 3 and t["platforms"] == 2
    assert f["routes"][0] == {"origin": "tr-izmir", "destination": "it", "label": "Izmir → Italy", "count": 3}
    assert [r["count"] for r in f["routes"]] == [3, 2, 1, 1]
    assert "unknown → United Kingdom" in [r["label"] for r in f["routes"]]
    izmir = f["prices"][0]
    assert (
        izmir["label"] == "Izmir → Italy" and izmir["n"] == 3 and izmir["median_eur"] == 2700
    )  # 2500, 2760, 2700
    assert len(f["prices"]) == 3
    assert f["contacts"][0] == {
        "contact": "+905551112233",
        "posts": 3,
        "channels": 2,
        "platforms": ["telegram"],
        "last_seen": "2026-09-05",
    }
    captain = next(c for c in f["contacts"] if c["contact"] == "@captain_x")
    assert (captain["posts"], captain["channels"], captain["platforms"]) == (3, 2, ["facebook", "telegram"])
    assert [(c["cluster_id"], c["copies"], c["channels"]) for c in f["clusters"]] == [
        ("cl-a", 3, 2),
        ("cl-b", 2, 1),
    ]
    assert f["clusters"][0]["example_url"] == "https://telegram.example/smuggle_one/1"
    assert {lang["lang"]: lang["count"] for lang in f["languages"]} == {"ar": 4, "en": 3, "fa": 1, "ckb": 1}

    tl = f["timeline"]
    assert tl["granularity"] == "day" and len(tl["buckets"]) == 20 and sum(tl["total"]) == 9
    assert tl["buckets"][0] == "2026-09-01" and tl["buckets"][-1] == "2026-09-20"
    assert {s["platform"]: sum(s["counts"]) for s in tl["series"]} == {"telegram": 5, "facebook": 4}

    oc = f["outcomes"]
    assert oc["by_status"] == {"removed": 5, "online": 1, "referred": 1, "confirmed": 1, "rejected": 1}
    assert {p["platform"]: p["counts"] for p in oc["by_platform"]} == {
        "telegram": {"removed": 3, "online": 1, "rejected": 1},
        "facebook": {"removed": 2, "referred": 1, "confirmed": 1},
    }
    rm = f["removal"]
    assert rm["median_hours"] == 7 and rm["n"] == 5  # 2, 5, 7, 10, 30
    assert {p["platform"]: (p["median_hours"], p["n"]) for p in rm["by_platform"]} == {
        "telegram": (10, 3),
        "facebook": (6, 2),
    }
    assert [b["count"] for b in rm["distribution"]] == [0, 2, 2, 1, 0, 0]
    assert t["sent"] == 7 and t["removed"] == 5 and t["removal_rate"] == round(5 / 7, 4)


def test_collect_without_period_and_bad_period(store):
    f = collect(store)
    assert f["totals"]["flagged"] == 10 and f["timeline"]["granularity"] == "week"
    assert sum(f["timeline"]["total"]) == 10
    telegram = next(p for p in f["removal"]["by_platform"] if p["platform"] == "telegram")
    assert telegram == {"platform": "telegram", "median_hours": 20, "n": 4}  # 2, 10, 30, 100
    assert collect(store, "2024")["totals"]["flagged"] == 0
    with pytest.raises(ValueError):
        collect(store, "2026-13")
    with pytest.raises(ValueError):
        collect(store, "'; DROP TABLE posts; --")


class Dom(HTMLParser):
    """Every start tag, the text, and per chart container the shapes inside it."""

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
            key = f"{tag}.{a.get('class')}" if a.get("class") else tag
            chart["shapes"][key] = chart["shapes"].get(key, 0) + 1
        if tag in self.VOID:
            return
        self.depth += 1
        if "data-chart" in a:
            name = a["data-chart"] or ""
            self.charts[name] = {"attrs": a, "shapes": {}, "text": []}
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
    dom = Dom()
    dom.feed(result.stdout)
    dom.close()
    assert dom.body, f"no <body> in Chromium's DOM: {result.stdout[:500]!r} {result.stderr[-1000:]}"
    return dom


def assert_nothing_injected(dom: Dom) -> None:
    assert not [tag for tag, _ in dom.tags if tag == "img"], "hostile text became an <img> element"
    handlers = [(tag, k) for tag, a in dom.tags for k in a if k.startswith("on")]
    assert not handlers, handlers
    assert "data-pwned" not in dom.body


def test_html_escapes_hostile_text(store):
    figures = collect(store, "2026-09")
    page = render(figures, "Report <b>" + HOSTILE)
    assert "<img" not in page and "</script><img" not in page
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert page.count("</script>") == 2  # the data and the chart code, nothing else closes a script
    start = page.index('<script type="application/json" id="vigie-data">') + len(
        '<script type="application/json" id="vigie-data">'
    )
    embedded = json.loads(page[start : page.index("</script>", start)])
    assert embedded == json.loads(json.dumps(figures))  # escaping is lossless
    assert HOSTILE in [c["contact"] for c in embedded["contacts"]]
    assert html_escaped(EVIL_CHANNEL) in page  # the channel table
    assert "javascript:" not in page


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


@needs_chromium
def test_report_in_headless_chromium(store, tmp_path):
    figures = collect(store, "2026-09")
    page = tmp_path / "report.html"
    page.write_text(render(figures, "September report"), encoding="utf-8")
    dom = dump_dom(tmp_path, page)

    assert set(dom.charts) == set(CHARTS)
    for name, chart in dom.charts.items():
        assert chart["attrs"].get("data-drawn") == "true", name
        assert chart["shapes"].get("svg") == 1, (name, chart["shapes"])
    assert dom.body.get("data-charts-drawn") == str(len(CHARTS))

    def bars(name: str) -> int:
        return int(dom.charts[name]["shapes"].get("rect.bar", 0))

    cells = sum(1 for s in figures["timeline"]["series"] for n in s["counts"] if n)
    assert bars("timeline") == cells > 0
    assert bars("routes") == len(figures["routes"]) == 4
    assert bars("languages") == len(figures["languages"]) == 4
    assert bars("prices") == len(figures["prices"]) == 3
    assert dom.charts["outcomes"]["shapes"].get("path.slice") == 5
    assert bars("outcomes_by_platform") == 6
    assert bars("removal_by_platform") == 2
    assert bars("removal_distribution") == 3  # non-empty bins: 1–6 h, 6–24 h, 1–3 days
    routes_text = "".join(dom.charts["routes"]["text"])
    assert "Izmir → Italy" in routes_text and "Zuwara → Italy" in routes_text

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
    assert_real_screenshot(shot, 1280, 2000)


def assert_real_screenshot(path: Path, width: int, height: int) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
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


@needs_chromium
def test_empty_report_still_renders(tmp_path):
    with Store(tmp_path / "empty.db") as s:
        figures = collect(s)
    assert figures["totals"]["flagged"] == 0 and figures["routes"] == []
    page = tmp_path / "empty.html"
    page.write_text(render(figures, "Empty"), encoding="utf-8")
    dom = dump_dom(tmp_path, page)
    assert dom.body.get("data-charts-drawn") == str(len(CHARTS))
    for name, chart in dom.charts.items():
        assert chart["attrs"].get("data-drawn") == "true", name
        assert not chart["shapes"].get("rect.bar"), name
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
    assert str(out.resolve()) in result.output and "9 flagged adverts" in result.output
    page = out.read_text(encoding="utf-8")
    assert "<title>Vigie report — 2026-09</title>" in page and 'data-chart="routes"' in page
    bad = CliRunner().invoke(
        report, ["--out", str(out), "--period", "soon"], obj={"config_path": str(config)}
    )
    assert bad.exit_code != 0 and "--period" in bad.output


def test_charts_need_no_network_or_external_files(store):
    page = render(collect(store), "Self-contained")
    for needle in ('src="', "src='", "<link", "@import", "url(", "@font-face", "fonts.googleapis", "cdn."):
        assert needle not in page.lower(), needle
    assert "default-src 'none'" in page
