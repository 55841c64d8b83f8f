"""An NGO hotline that smugglers and migrants alike pass on is nobody's contact: the
configured `networks.hotlines` link no channels in `vigie links` and are not listed among
the report's top contacts, while the contacts channels really share still are."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import run_vigie
from tests.support.rows import advert_analysis
from vigie.records import Post, post_key
from vigie.store import Store

HOTLINE = "+33486517161"
SHARED = "+33758214693"


def make_store(tmp_path: Path, hotlines: list[str]) -> Path:
    from pipeline.enrich.entities import extract
    from vigie.config_file import parse_config
    from vigie.store.analysis import replace_contacts, save_analysis

    settings = {"data_dir": str(tmp_path / "data"), "networks": {"hotlines": hotlines}}
    tmp_path.mkdir(parents=True)
    path = tmp_path / "vigie.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    texts = {
        (
            "alpha_boats",
            1,
        ): f"Boat to UK £2,500, WhatsApp {SHARED}. At sea in danger? Alarm Phone 0033 4 86 51 71 61",
        ("beta_boats", 2): f"Game to UK £2,500, call {SHARED}",
        (
            "gamma_route",
            3,
        ): "Boat Ayvalik to Lesbos €2,500. In danger at sea call Alarm Phone +33 4 86 51 71 61",
    }
    with Store(parse_config(settings).store_path()) as store:
        store.upsert_posts(
            [
                Post(platform="telegram", channel=channel, post_id=n, url=f"https://t.me/{channel}/{n}", text=text,
                     published_at=f"2026-11-0{n}T10:00:00+00:00", captured_at="2026-11-10T00:00:00+00:00")
                for (channel, n), text in texts.items()
            ]
        )  # fmt: skip
        for (channel, n), text in texts.items():
            key = post_key("telegram", channel, n)
            entities = extract(text, "en")
            row = advert_analysis(key, None, "2026-11-10T00:00:00+00:00")
            row["entities"] = json.dumps(entities.to_json())
            save_analysis(store, row)
            replace_contacts(store, key, "telegram", channel, entities.contacts)
    return path


def test_links_and_the_report_leave_the_configured_hotlines_out(tmp_path):
    without = make_store(tmp_path / "without", [])
    pairs = json.loads(run_vigie("links", "--json", config=without, check=True).stdout)
    assert {tuple(p["channels"]): p["contacts"] for p in pairs} == {
        ("telegram:alpha_boats", "telegram:beta_boats"): [SHARED],
        ("telegram:alpha_boats", "telegram:gamma_route"): [HOTLINE],
    }

    listed = make_store(tmp_path / "with", ["+33 4 86 51 71 61"])
    pairs = json.loads(run_vigie("links", "--json", config=listed, check=True).stdout)
    assert [(p["channels"], p["contacts"]) for p in pairs] == [
        (["telegram:alpha_boats", "telegram:beta_boats"], [SHARED])
    ]
    out = tmp_path / "report.html"
    run_vigie("report", "--out", str(out), config=listed, check=True)
    page = out.read_text(encoding="utf-8")
    assert SHARED in page and HOTLINE not in page
