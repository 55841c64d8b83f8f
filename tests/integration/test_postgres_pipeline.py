"""The whole analyst path on a real PostgreSQL server: the demo flags exactly what it flags
on SQLite, then review, export, removal check and statistics run on the shared database."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_newcomer_path import user_shell
from tests.support.server_process import free_port
from vigie.store import Store
from vigie.store.queries import report_rows

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _flagged(store_url: str) -> set[str]:
    with Store(store_url, read_only=True) as store:
        return {row["key"] for row in report_rows(store, None, ())["flagged"]}


def test_demo_on_postgresql_flags_what_sqlite_flags_then_refers_and_tracks_removal(
    tmp_path, fresh_pg_url, shipped
):
    lite, lite_data = user_shell(tmp_path / "sqlite", "team")
    lite.ok(f"vigie demo --mirror-port {free_port()}", timeout=900)
    on_sqlite = _flagged(f"sqlite:///{lite_data / 'demo' / 'vigie.db'}")

    port = free_port()
    pg, pg_data = user_shell(tmp_path / "postgres", "team", VIGIE_STORE_URL=fresh_pg_url)
    try:
        pg.ok(f"vigie demo --mirror-port {port}", timeout=900)
        assert not (pg_data / "demo" / "vigie.db").exists(), "the demo wrote SQLite despite the URL"
        assert on_sqlite and _flagged(fresh_pg_url) == on_sqlite

        pg.env["VIGIE_CONFIG"] = str(pg_data / "demo" / "vigie.yaml")
        queue = json.loads(pg.ok("vigie review --json --limit 1000"))
        cluster = next(g for g in queue if len(g["posts"]) >= 2)
        urls = [post["url"] for post in cluster["posts"]]
        assert f"confirmed {len(urls)} post(s)" in pg.ok(
            f"vigie review confirm {cluster['target']} --reason 'sample advert'"
        )
        assert f"exported 1 notice(s), {len(urls)} URL(s) for telegram" in pg.ok(
            "vigie referrals export --platform telegram --format dsa"
        )
        pg.start(f"vigie mirror --port {port} --remove {urls[0]}", ready="serving sample channels")
        checked = pg.ok("vigie referrals check")
        assert f"checked {len(urls)}: 1 removed, {len(urls) - 1} still online, 0 errors" in checked
        figures = json.loads(pg.ok("vigie referrals stats --json"))["by_platform"]["telegram"]
        assert figures["outcomes"] == {"removed": 1, "online": len(urls) - 1, "pending": 0}
        # Nothing of it went to a SQLite file.
        assert not (pg_data / "demo" / "vigie.db").exists()
    finally:
        pg.stop()
