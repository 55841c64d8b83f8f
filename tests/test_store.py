"""The embedded store: idempotent upserts, edits, crawl state that never runs ahead."""

from __future__ import annotations

import sqlite3

import pytest

from crawlers.items import Post
from vigie.errors import StoreError
from vigie.store import _SCHEMA, SCHEMA_VERSION, Store


def post(i: int, text: str = "", views: int | None = 10, **kw) -> Post:
    return Post(
        "telegram",
        "chan",
        i,
        f"https://t.me/chan/{i}",
        text or f"post {i}",
        "2026-10-01T00:00:00+00:00",
        views=views,
        **kw,
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s" / "vigie.db") as s:
        yield s


def test_wal_mode_and_schema_version(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4


def test_a_version_1_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    db.execute(
        "INSERT INTO posts (key, platform, channel, post_id, url, text, captured_at, crawler_version,"
        " first_seen, updated_at) VALUES ('telegram:c:1', 'telegram', 'c', 1, 'u', 'old text', 'now', '0.0',"
        " 'now', 'now')"
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        row = next(store.posts())
        assert row["text"] == "old text" and row["minimised"] == 0
        assert store.db.execute("SELECT COUNT(*) FROM analysis").fetchone()[0] == 0


def test_minimised_post_stays_unchanged_until_edited(store):
    store.upsert_posts([post(1)])
    store.db.execute("UPDATE posts SET text = '', minimised = 1")
    assert store.upsert_posts([post(1)]) == {"new": 0, "updated": 0, "unchanged": 1}
    assert next(store.posts())["text"] == ""
    assert store.upsert_posts([post(1, text="edited")])["updated"] == 1
    row = next(store.posts())
    assert row["text"] == "edited" and row["minimised"] == 0


def test_upsert_is_idempotent_and_edits_replace(store):
    assert store.upsert_posts([post(1), post(2)]) == {"new": 2, "updated": 0, "unchanged": 0}
    assert store.upsert_posts([post(1), post(2)]) == {"new": 0, "updated": 0, "unchanged": 2}
    assert store.count_posts() == 2
    # New view counts are kept but are not an edit.
    assert store.upsert_posts([post(1, views=99)]) == {"new": 0, "updated": 0, "unchanged": 1}
    first = dict(next(store.posts()))
    assert first["views"] == 99
    assert store.upsert_posts([post(1, text="changed", edited=True)]) == {
        "new": 0,
        "updated": 1,
        "unchanged": 0,
    }
    row = dict(next(store.posts()))
    assert row["text"] == "changed" and row["edited"] == 1 and row["first_seen"] == first["first_seen"]
    assert store.count_posts() == 2


def test_unicode_and_huge_posts_round_trip(store):
    text = "🚤🇬🇧 گەیاندن \u200d ሰላም " * 20000  # ~400 KB
    store.upsert_posts([post(5, text=text)])
    assert next(store.posts())["text"] == text


def test_failed_transaction_stores_nothing(store):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction():
        store._upsert(post(1), "now")
        raise Boom
    assert store.count_posts() == 0


def test_page_progress_and_completion(store):
    store.store_page("telegram", "chan", [post(i) for i in range(81, 101)], 100, 81)
    state = store.source_state("telegram", "chan")
    assert (state.cursor, state.pending_top, state.pending_before) == (None, 100, 81)
    store.store_page("telegram", "chan", [post(i) for i in range(61, 81)], 100, 61)
    assert store.source_state("telegram", "chan").pending_before == 61
    store.store_page("telegram", "chan", [], 100, 61, complete=True)
    state = store.source_state("telegram", "chan")
    assert (state.cursor, state.pending_top, state.pending_before) == (100, None, None)
    assert state.last_success_at and state.last_error is None


def test_completion_never_lowers_the_cursor(store):
    store.store_page("telegram", "chan", [post(50)], 50, 50, complete=True)
    store.store_page("telegram", "chan", [post(40)], 40, 40, complete=True)
    assert store.source_state("telegram", "chan").cursor == 50


def test_empty_channel_completes_without_cursor(store):
    store.store_page("telegram", "chan", [], None, None, complete=True)
    assert store.source_state("telegram", "chan").cursor is None


def test_source_errors_and_runs(store):
    store.record_source_error("telegram", "gone", "no public preview")
    assert store.source_state("telegram", "gone").last_error == "no public preview"
    run = store.start_run("crawl telegram gone")
    store.finish_run(run, "failed", {"n": 1})
    assert store.runs()[0]["status"] == "failed"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "vigie.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="newer Vigie"):
        Store(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "vigie.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(path)


def test_concurrent_first_opens_migrate_once(tmp_path):
    import subprocess
    import sys

    code = "import sys; from vigie.store import Store; Store(sys.argv[1]).close()"
    path = str(tmp_path / "race.db")
    procs = [
        subprocess.Popen([sys.executable, "-c", code, path], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
