"""The store: idempotent upserts, edits, crawl state that never runs ahead, migrations from
every earlier schema, clear errors; on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from pipeline.refer.review import decide
from vigie.config import VigieConfig
from vigie.errors import StoreError
from vigie.records import Post
from vigie.store import Outcome, Store, analysis, cases, outbox, queries
from vigie.store.migrate import head
from vigie.store.posts import minimise_post
from vigie.store.schema import metadata

DATA = Path(__file__).resolve().parents[1] / "data" / "store"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def post(i: int, text: str = "", views: int | None = 10, channel: str = "chan", **kw: Any) -> Post:
    return Post(
        "telegram",
        channel,
        i,
        f"https://t.me/{channel}/{i}",
        text or f"post {i}",
        "2026-10-01T00:00:00+00:00",
        views=views,
        **kw,
    )


def _analysed(
    store: Store,
    key: str,
    score: float = 0.9,
    advert: int = 1,
    cluster: str | None = None,
    entities: str = "{}",
) -> None:
    """An analysis row as the classifier writes one (model "m", English)."""
    analysis.save_analysis(
        store,
        {
            "post_key": key,
            "content_sha256": "c",
            "model_id": "m",
            "lang": "en",
            "lang_confidence": 0.9,
            "score": score,
            "is_advert": advert,
            "needs_review": 0,
            "cues": "[]",
            "entities": entities,
            "cluster_id": cluster,
            "processed_at": "now",
        },
    )


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's' / 'vigie.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture
def store(store_url: str):
    with Store(store_url) as s:
        yield s


def schema_differences(store: Store) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def legacy_differences(store: Store) -> list[Any]:
    """Differences but one: before Alembic, SQLite's text and AUTOINCREMENT primary keys
    were declared without NOT NULL (SQLite's own quirk); the key constraint holds anyway."""
    keys = {(t.name, c.name) for t in metadata.sorted_tables for c in t.primary_key.columns}
    return [
        d
        for d in schema_differences(store)
        if not (isinstance(d, list) and d[0][0] == "modify_nullable" and (d[0][2], d[0][3]) in keys)
    ]


def sqlite_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read with the driver alone (what the file holds)."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
            for t in tables
            if t not in ("sqlite_sequence", "alembic_version")
        }
    finally:
        db.close()


# -- behaviour, on both backends ---------------------------------------------------------


def test_migrations_build_exactly_the_tables(store):
    assert schema_differences(store) == []


def test_upsert_is_idempotent_and_edits_replace(store):
    assert store.upsert_posts([post(1), post(2)]) == {"new": 2, "updated": 0, "unchanged": 0}
    assert store.upsert_posts([post(1), post(2)]) == {"new": 0, "updated": 0, "unchanged": 2}
    assert store.count_posts() == 2
    # New view counts are kept but are not an edit.
    assert store.upsert_posts([post(1, views=99)]) == {"new": 0, "updated": 0, "unchanged": 1}
    first = next(store.posts())
    assert first["views"] == 99
    assert store.upsert_posts([post(1, text="changed", edited=True)]) == {
        "new": 0,
        "updated": 1,
        "unchanged": 0,
    }
    row = next(store.posts())
    assert row["text"] == "changed" and row["edited"] == 1 and row["first_seen"] == first["first_seen"]
    assert row["views"] == 10  # the edit's own count
    assert store.upsert_posts([post(1, text="changed again", views=None)])["updated"] == 1
    assert next(store.posts())["views"] == 10  # an edit without a count keeps the one stored
    assert store.count_posts() == 2 and store.count_posts(channel="other") == 0


def test_a_batch_with_repeats_and_more_posts_than_a_statement_takes(store):
    batch = [post(i) for i in range(1200)] + [
        post(5, text="edited"),
        post(5, text="edited"),
        post(7, views=70),
    ]
    assert store.upsert_posts(batch) == {"new": 1200, "updated": 1, "unchanged": 2}
    assert store.count_posts() == 1200
    by_id = {p["post_id"]: p for p in store.posts()}
    assert by_id["5"]["text"] == "edited" and by_id["7"]["views"] == 70


def test_minimised_post_stays_unchanged_until_edited(store):
    store.upsert_posts([post(1)])
    minimise_post(store, "telegram:chan:1")
    assert store.upsert_posts([post(1)]) == {"new": 0, "updated": 0, "unchanged": 1}
    assert next(store.posts())["text"] == ""
    assert store.upsert_posts([post(1, text="edited")])["updated"] == 1
    row = next(store.posts())
    assert row["text"] == "edited" and row["minimised"] == 0


def test_unicode_and_huge_posts_round_trip(store):
    text = "🚤🇬🇧 گەیاندن \u200d ሰላም '; DROP TABLE posts; -- " * 10000  # ~400 KB
    store.upsert_posts([post(5, text=text)])
    assert next(store.posts())["text"] == text


def test_failed_transaction_stores_nothing(store):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction():
        store.upsert_posts([post(1)])  # joins the open transaction
        store.start_run("crawl")
        raise Boom
    assert store.count_posts() == 0 and store.runs() == []


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
    assert store.count_posts("telegram", "chan") == 40


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
    assert [s.channel for s in store.sources()] == ["gone"]
    run = store.start_run("crawl telegram gone")
    store.finish_run(run, "failed", {"n": 1})
    assert store.runs()[0]["status"] == "failed"
    with pytest.raises(ValueError), store.run("process") as recorded:
        recorded.stats["seen"] = 3
        raise ValueError("boom")
    latest = store.runs(1)[0]
    assert latest["command"] == "process" and latest["status"] == "failed" and "boom" in latest["stats"]


def test_review_and_referral_cases(store):
    store.upsert_posts([post(1), post(2)])
    for i, key in enumerate(("telegram:chan:1", "telegram:chan:2")):
        _analysed(store, key, score=0.9 - i / 10, advert=1, cluster="cl-1")
        analysis.replace_contacts(store, key, "telegram", "chan", ["+447700900001", "+447700900001"])
    assert decide(store, "cl-1", "confirmed", "offer", "ana") == ["telegram:chan:1", "telegram:chan:2"]
    assert decide(store, "telegram:chan:2", "rejected", "news", "ben") == ["telegram:chan:2"]
    log = cases.review_log(store, 10)
    assert [(r["reviewer"], r["decision"]) for r in log] == [
        ("ben", "rejected"),
        ("ana", "confirmed"),
        ("ana", "confirmed"),
    ]
    assert [r["decision"] for r in cases.latest_decisions(store)] == ["confirmed", "rejected"]
    assert [r["post_key"] for r in cases.confirmed_for(store, "telegram")] == ["telegram:chan:1"]
    with store.transaction():
        cases.mark_referred(
            store,
            "telegram:chan:1",
            "B-1",
            "B-1-001",
            {"text": "t", "payload_sha256": "p", "captured_at": "c", "crawler_version": "v"},
            "2026-10-02T00:00:00+00:00",
        )
        cases.record_batch(store, "B-1", "telegram", "csv", 1, 1, "/x", "2026-10-02T00:00:00+00:00")
    assert [r["post_key"] for r in cases.referred_posts(store)] == ["telegram:chan:1"]
    cases.record_removal_check(store, "telegram:chan:1", "error", "HTTP 500", "2026-10-02T12:00:00+00:00")
    cases.record_removal_check(store, "telegram:chan:1", "removed", "HTTP 404", "2026-10-03T00:00:00+00:00")
    (referred,) = cases.referred_in(store, "2026-10")
    assert referred["status"] == "removed" and referred["removed_at"] == "2026-10-03T00:00:00+00:00"
    assert cases.referred_in(store, "2026-1_") == []  # the period is text, not a pattern
    assert queries.count_flagged(store, ("confirmed",)) == 1  # the advert an analyst rejected is not flagged


def test_outbox_keeps_one_action_per_document(store):
    store.upsert_posts([post(1)])
    outbox.spool_action(store, "telegram:chan:1", "update", {"digest": "a", "action": {}}, "timeout")
    outbox.spool_action(store, "telegram:chan:1", "update", {"digest": "b", "action": {}}, "HTTP 429")
    assert outbox.spooled_actions(store) == [{"digest": "b", "action": {}}]
    outbox.mark_indexed(store, [("telegram:chan:1", "b")])
    assert outbox.spooled_actions(store) == []


def test_channels_sharing_contacts_portably(store):
    store.upsert_posts([post(1, channel="alpha"), post(2, channel="beta"), post(3, channel="gamma")])
    analysis.replace_contacts(store, "telegram:alpha:1", "telegram", "alpha", ["+1", "@x"])
    analysis.replace_contacts(store, "telegram:beta:2", "telegram", "beta", ["+1", "@x"])
    analysis.replace_contacts(store, "telegram:gamma:3", "telegram", "gamma", ["@x"])
    assert queries.channels_sharing_contacts(store) == [
        {"channels": ["telegram:alpha", "telegram:beta"], "contacts": ["+1", "@x"], "shared": 2},
        {"channels": ["telegram:alpha", "telegram:gamma"], "contacts": ["@x"], "shared": 1},
        {"channels": ["telegram:beta", "telegram:gamma"], "contacts": ["@x"], "shared": 1},
    ]
    assert len(queries.channels_sharing_contacts(store, min_shared=2)) == 1


def test_concurrent_first_opens_migrate_once(store_url, tmp_path):
    code = "import sys; from vigie.store import Store; Store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, store_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with Store(store_url) as store:
        assert store.db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
        assert schema_differences(store) == []


# -- SQLite ------------------------------------------------------------------------------


def test_sqlite_is_in_wal_mode_and_keeps_its_schema_number(tmp_path):
    with Store(tmp_path / "vigie.db") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 8  # what older releases read
        assert head() == "0008"


@pytest.mark.parametrize("name", ["schema1.db", "schema3.db", "schema4.db", "release-0004.db"])
def test_a_store_of_an_earlier_release_is_upgraded_with_nothing_lost(tmp_path, name):
    """tests/data/store/schemaN.db were written by the release whose store numbered its
    schema N in `PRAGMA user_version` (before Alembic)."""
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    before = sqlite_rows(path)
    with Store(path) as store:
        assert legacy_differences(store) == []
        assert store.db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0008",)]
        keys = [p["key"] for p in store.posts()]
    after = sqlite_rows(path)
    # Schema 6 holds post ids as text: 42 is "42" (key, platform, channel, post_id, ...).
    before["posts"] = sorted(((*r[:3], str(r[3]), *r[4:]) for r in before["posts"]), key=repr)
    assert all(isinstance(r[3], str) for r in after["posts"])
    for table, rows in before.items():
        # Columns added since keep their defaults; the rows and what they held stay.
        assert [r[: len(rows[0])] for r in after[table]] == rows if rows else after[table] == [], table
    assert len(keys) == len(before["posts"]) and len(keys) >= 2
    with Store(path) as store:  # opening an upgraded store changes nothing
        assert sqlite_rows(path) == after


def test_a_store_of_the_previous_release_upgrades_and_re_crawls_without_losing_its_cases(tmp_path):
    """release-0004.db: written by the release before attachments (Alembic revision 0004)."""
    from vigie.records import Attachment
    from vigie.store import media

    path = tmp_path / "vigie.db"
    shutil.copy(DATA / "release-0004.db", path)
    with Store(path) as store:
        assert [p["attachments"] for p in store.posts()] == ["[]"] * 3
        assert len(cases.confirmed_for(store, "telegram")) == 1
        assert media.count_pending_media(store) == 0  # nothing is fetched for posts never re-crawled
        # The next crawl sees the photos as attachments: new information, so the post is updated
        # and its media are fetched; the analyst's confirmation stays.
        again = post(1, channel="boats_izmir", text="Yacht Izmir → Italy 4500€ WhatsApp +90 532 000 0001")
        again.url, again.published_at, again.views = (
            "https://t.me/boats_izmir/1",
            "2026-09-01T10:00:00+00:00",
            101,
        )
        again.media = ["https://cdn4.telesco.pe/file/p1.jpg"]
        again.attachments = [Attachment("photo", "https://cdn4.telesco.pe/file/p1.jpg")]
        assert store.upsert_posts([again])["updated"] == 1
        assert media.count_pending_media(store) == 1
        assert len(cases.confirmed_for(store, "telegram")) == 1


def test_everything_a_schema_4_store_held_reads_back(tmp_path):
    path = tmp_path / "vigie.db"
    shutil.copy(DATA / "schema4.db", path)
    with Store(path) as store:
        assert store.count_posts() == 8 and store.count_posts("telegram", "beta") == 3
        alpha = [p for p in store.posts("telegram", "alpha")]
        assert (
            alpha[0]["text"].startswith("Boat to UK 🚤 1")
            and alpha[0]["media"] == '["https://cdn.example/1.jpg"]'
        )
        assert store.source_state("telegram", "alpha").cursor == 5
        beta = store.source_state("telegram", "beta")
        assert (beta.pending_top, beta.pending_before) == (20, 10)
        assert store.source_state("telegram", "gone").last_error == "no public preview"
        assert [(r["command"], r["status"]) for r in store.runs()] == [
            ("process", "running"),
            ("crawl telegram alpha beta", "ok"),
        ]
        assert {key: len(blob) for key, _, blob in analysis.all_signatures(store)} == {
            "telegram:alpha:1": 32,
            "telegram:alpha:2": 32,
            "telegram:beta:10": 32,
        }
        flagged = cases.flagged_posts(store)
        assert [(r["post_key"], r["status"]) for r in flagged] == [
            ("telegram:alpha:1", "removed"),
            ("telegram:alpha:2", None),
            ("telegram:beta:10", "rejected"),
        ]
        assert [r["reason"] for r in cases.review_log(store, 5)] == ["news report", "smuggling offer"]
        (referred,) = cases.referred_in(store, None)
        assert referred["notice_id"] == "n-1" and referred["removed_at"] == "2026-10-14T00:00:00+00:00"
        assert outbox.spooled_actions(store) == [{"_id": "telegram:alpha:2", "text": "x"}]
        assert queries.channels_sharing_contacts(store)[0]["contacts"] == ["+447700900001"]
        assert queries.count_unindexed_adverts(store) == 1
        checks = store.db.execute("SELECT outcome FROM removal_checks ORDER BY id").fetchall()
        assert [c[0] for c in checks] == ["online", "removed"]
        # It goes on working: a new post, a new run.
        assert store.upsert_posts([post(6, channel="alpha")])["new"] == 1
        assert store.start_run("crawl") == 3


def test_read_only_opening_never_upgrades(tmp_path):
    path = tmp_path / "vigie.db"
    shutil.copy(DATA / "schema3.db", path)
    with pytest.raises(StoreError, match=r"vigie\.db: made by an older Vigie .*`vigie crawl`"):
        Store(path, read_only=True)
    assert sqlite_rows(path) == sqlite_rows(DATA / "schema3.db")
    missing = tmp_path / "none" / "vigie.db"
    with Store(missing, read_only=True) as store:
        assert store.count_posts() == 0 and store.sources() == []
    assert not missing.parent.exists()
    with Store(path) as store:
        pass
    with Store(path, read_only=True) as store:
        assert store.count_posts() == 2


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "vigie.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StoreError, match="newer Vigie"):
        Store(path)
    newer = tmp_path / "newer.db"
    with Store(newer) as store:
        store.db.execute("UPDATE alembic_version SET version_num = '0099_future'")
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"newer\.db: written by a newer Vigie \(revision 0099_future"):
            Store(newer, read_only=read_only)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "vigie.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        Store(path)
    assert "\n" not in str(caught.value) and "nothing was written" in str(caught.value)


def test_a_damaged_store_of_an_earlier_release_is_refused_untouched(tmp_path):
    # Stores before WAL used a rollback journal: the check must come before the switch to WAL,
    # which would rewrite the file's header.
    path = tmp_path / "vigie.db"
    shutil.copy(DATA / "schema1.db", path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'posts'").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(bytes(range(256)) * (page_size // 256))
    before = path.read_bytes()
    with pytest.raises(StoreError, match="the file is damaged"):
        Store(path)
    assert path.read_bytes() == before
    assert not path.with_name("vigie.db-wal").exists()


# -- URLs and errors ---------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://root:hunter2@db/vigie",
            r"^store URL mysql://root:\*\*\*@db/vigie: unsupported database 'mysql'; expected sqlite",
        ),
        (
            "postgresql+psycopg://u:hunter2@/vigie",
            r"^store URL postgresql\+psycopg://u:\*\*\*@/vigie: no host",
        ),
        ("postgresql+psycopg://u:hunter2@db", r": no database name"),
        ("://nothing", r"^store URL <unparsable URL>: not a database URL"),
    ],
)
def test_bad_urls_are_one_line_errors_without_the_password(url, message):
    with pytest.raises(StoreError, match=message) as caught:
        Store(url)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_server_that_is_down_is_a_clear_error():
    url = f"postgresql+psycopg://vigie:hunter2@127.0.0.1:{_closed_port()}/vigie"
    with pytest.raises(
        StoreError,
        match=r"^postgresql\+psycopg://vigie:\*\*\*@127\.0\.0\.1:\d+/vigie: cannot open the store: .*refused",
    ) as caught:
        Store(url)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.postgres
def test_a_refused_login_is_a_clear_error(pg_url):
    wrong = pg_url.replace("@127.0.0.1", "x@127.0.0.1", 1)  # the right user, the wrong password
    with pytest.raises(
        StoreError, match=r"cannot open the store: .*password authentication failed"
    ) as caught:
        Store(wrong)
    password = pg_url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in str(caught.value)


def test_store_url_setting_and_environment(tmp_path, monkeypatch):
    config = VigieConfig(data_dir=str(tmp_path))
    assert config.store_url() == f"sqlite:///{tmp_path / 'vigie.db'}"
    config = VigieConfig.model_validate({"store": {"url": "postgresql+psycopg://vigie@db.example/vigie"}})
    assert config.store_url() == "postgresql+psycopg://vigie@db.example/vigie"
    monkeypatch.setenv("VIGIE_STORE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert config.store_url().endswith("env.db")
    with Store(config.store_url()) as store:
        assert store.path == tmp_path / "env.db" and store.backend == "sqlite"


# -- two writers on PostgreSQL ------------------------------------------------------------


def _in_threads(*work: Any) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def run(job: Any) -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


@pytest.mark.postgres
def test_two_crawls_storing_overlapping_pages_lose_and_duplicate_nothing(fresh_pg_url):
    Store(fresh_pg_url).close()
    counts: list[dict[Outcome, int]] = []

    def crawl(first: int) -> None:
        with Store(fresh_pg_url) as store:
            for top in range(first + 200, first, -20):  # pages of 20, newest first, like a walk
                page = [post(i, text=f"post {i}") for i in range(top - 19, top + 1)]
                counts.append(store.store_page("telegram", "chan", page, top, top - 19))
            counts.append(store.store_page("telegram", "chan", [], first + 200, first + 1, complete=True))

    _in_threads(lambda: crawl(0), lambda: crawl(100))  # posts 101-200 are in both walks
    with Store(fresh_pg_url) as store:
        assert store.count_posts() == 300
        assert sum(c["new"] for c in counts) == 300
        assert sum(c["unchanged"] for c in counts) == 100 and sum(c["updated"] for c in counts) == 0
        assert store.source_state("telegram", "chan").cursor == 300
        keys = [p["key"] for p in store.posts()]
        assert len(keys) == len(set(keys)) == 300


@pytest.mark.postgres
def test_a_crawl_and_a_review_at_once_both_land(fresh_pg_url):
    with Store(fresh_pg_url) as store:
        store.upsert_posts([post(i) for i in range(1, 21)])
        for i in range(1, 21):
            _analysed(store, f"telegram:chan:{i}", score=0.9, advert=1, cluster=None)

    def crawl() -> None:
        with Store(fresh_pg_url) as store:
            for top in range(40, 0, -5):  # edits of the posts under review, and new ones
                page = [post(i, text=f"edited {i}") for i in range(top - 4, top + 1)]
                store.store_page("telegram", "chan", page, top, top - 4)

    def review() -> None:
        with Store(fresh_pg_url) as store:
            for i in range(1, 21):
                decide(store, f"telegram:chan:{i}", "confirmed", "offer", "ana")

    _in_threads(crawl, review)
    with Store(fresh_pg_url) as store:
        assert store.count_posts() == 40
        assert all(p["text"] == f"edited {p['post_id']}" for p in store.posts())
        assert len(cases.review_log(store, 100)) == 20
        assert len(cases.confirmed_for(store, "telegram")) == 20
        assert store.source_state("telegram", "chan").pending_before == 1


def _confirmed_posts(store: Store, n: int) -> None:
    store.upsert_posts([post(i, text=f"boat to Italy {i} +39 333 000 {i:04d}") for i in range(1, n + 1)])
    for i in range(1, n + 1):
        _analysed(store, f"telegram:chan:{i}", score=0.9, advert=1, cluster=f"c{i}")
        decide(store, f"telegram:chan:{i}", "confirmed", "offer", "ana")


REFERRALS = VigieConfig.model_validate(
    {"referrals": {"notifier_name": "Ana", "notifier_email": "ana@example.org"}}
).referrals


@pytest.mark.postgres
def test_two_exports_at_once_send_each_item_in_one_batch(fresh_pg_url, tmp_path):
    from pipeline.refer import ReferralError
    from pipeline.refer.notices import export

    with Store(fresh_pg_url) as store:
        _confirmed_posts(store, 30)
    exported: list[list[str]] = []
    refused: list[str] = []

    def one_export(out: str) -> None:
        with Store(fresh_pg_url) as store:
            try:
                result = export(store, REFERRALS, "telegram", "json", tmp_path / out)
            except ReferralError as exc:
                refused.append(str(exc))
                return
            exported.append([e["post_key"] for n in result.notices for e in n["evidence"]])

    _in_threads(lambda: one_export("a"), lambda: one_export("b"))
    sent = [key for batch in exported for key in batch]
    assert sorted(sent) == sorted(f"telegram:chan:{i}" for i in range(1, 31))  # each once
    written = [
        e["post_key"]
        for manifest in tmp_path.glob("*/*/notices.json")
        for n in json.loads(manifest.read_text("utf-8"))["notices"]
        for e in n["evidence"]
    ]
    assert sorted(written) == sorted(sent)
    assert all("run the export again" in r for r in refused)
    with Store(fresh_pg_url) as store:
        assert cases.confirmed_for(store, "telegram") == []


def test_notices_and_the_review_queue_name_routes_by_their_places(store, tmp_path):
    from pipeline.refer.notices import export
    from pipeline.refer.review import review_queue

    store.upsert_posts([post(1, text="Yacht from Izmir to Italy, 4500€")])
    entities = json.dumps({"origin": "tr-izmir", "destination": "it", "contacts": []})
    _analysed(store, "telegram:chan:1", cluster="cl-r", entities=entities)
    (group,) = review_queue(store)
    assert group["routes"] == ["Izmir → Italy"]
    decide(store, "cl-r", "confirmed", "offer", "ana")
    (notice,) = export(store, REFERRALS, "telegram", "json", tmp_path / "out").notices
    assert "It advertises the route(s) Izmir → Italy." in notice["explanation"]


def test_an_export_that_cannot_write_leaves_everything_confirmed(store, tmp_path, monkeypatch):
    from pipeline.refer import notices

    _confirmed_posts(store, 3)

    def full_disk(*_: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(notices, "to_csv", full_disk)
    with pytest.raises(OSError, match="No space"):
        notices.export(store, REFERRALS, "telegram", "csv", tmp_path / "out")
    assert len(cases.confirmed_for(store, "telegram")) == 3
    assert list((tmp_path / "out").iterdir()) == []
    result = notices.export(store, REFERRALS, "telegram", "json", tmp_path / "out")
    assert result.items == 3 and cases.confirmed_for(store, "telegram") == []


def test_sqlite_engine_reads_what_another_connection_wrote(tmp_path):
    path = tmp_path / "vigie.db"
    with Store(path) as store:
        store.upsert_posts([post(1)])
        other = create_engine(f"sqlite:///{path}")
        with other.begin() as connection:
            connection.exec_driver_sql("UPDATE posts SET views = 7")
        other.dispose()
        assert next(store.posts())["views"] == 7


def test_the_vector_cache_keeps_vectors_across_opens(tmp_path):
    from vigie.store.vector_cache import VectorCache

    path = tmp_path / "cache" / "embeddings.sqlite"
    cache = VectorCache(path)
    keys = [f"k{i}" for i in range(1200)]  # more than one lookup's worth of parameters
    cache.keep((k, k.encode() * 4) for k in keys[:1100])
    cache.keep([("k0", b"newer")])
    cache.close()
    cache = VectorCache(path)
    found = cache.find(keys)
    cache.close()
    assert len(found) == 1100 and found["k0"] == b"newer" and found["k1099"] == b"k1099" * 4


# -- media ------------------------------------------------------------------------------


def _photo_post(i: int, url: str | None = "https://cdn.example/1.jpg", text: str = "DM 📩") -> Post:
    from vigie.records import Attachment

    return post(
        i, text=text, attachments=[Attachment("photo", url=url), Attachment("poll", question="Which?")]
    )


def test_a_post_with_media_waits_for_them_before_classification(store):
    from vigie.store import media

    store.upsert_posts([_photo_post(1), post(2), _photo_post(3, url=None)])
    # Post 3's only photo has no URL: nothing to fetch, nothing to wait for.
    assert [r["key"] for r in media.pending_media(store, 10, "9999")] == ["telegram:chan:1"]
    assert [r["key"] for r in analysis.pending_posts(store, "m", 10)] == [
        "telegram:chan:2",
        "telegram:chan:3",
    ]
    found = media.MediaFile(
        "ab" * 32, "image/jpeg", 1234, 800, 600, "f" * 64, 90, "Izmir → Italy 8000€", "eng", 0.8
    )
    outcome = media.AttachmentOutcome(0, "photo", "https://cdn.example/1.jpg", "fetched", sha256=found.sha256)
    media.save_post_media(store, "telegram:chan:1", [outcome], [found], found.ocr_text)
    assert media.count_pending_media(store) == 0
    pending = {r["key"]: r for r in analysis.pending_posts(store, "m", 10)}
    assert pending["telegram:chan:1"]["ocr_text"] == "Izmir → Italy 8000€"
    (row,) = media.media_of(store, ["telegram:chan:1"])["telegram:chan:1"]
    assert (row["status"], row["pdq"], row["width"], row["kept"]) == ("fetched", "f" * 64, 800, 1)
    stored = store.db.execute("SELECT attachments FROM posts WHERE key = 'telegram:chan:1'").fetchone()[0]
    assert json.loads(stored)[1] == {"type": "poll", "question": "Which?"}
    # The same post crawled again unchanged does not fetch again; edited, it does.
    store.upsert_posts([_photo_post(1)])
    assert media.count_pending_media(store) == 0
    store.upsert_posts([_photo_post(1, text="DM 📩 new prices")])
    assert media.count_pending_media(store) == 1
    # What was read in the old version goes with it.
    assert media.media_of(store, ["telegram:chan:1"]) == {}
    assert store.db.execute("SELECT ocr_text FROM posts WHERE key = 'telegram:chan:1'").fetchone()[0] is None
    # A failed run leaves it pending, not for this run again, with one more attempt counted.
    media.try_again_later(store, "telegram:chan:1", failed=True)
    assert media.pending_media(store, 10, "2000-01-01") == []
    (again,) = media.pending_media(store, 10, "9999")
    assert again["media_attempts"] == 1


def test_posts_stored_before_attachments_keep_their_content_hash(store):
    from vigie.store.posts import content_sha256

    row = {"url": "u", "text": "t", "published_at": None, "forwarded_from": None, "reply_to": None,
           "edited": 0, "media": "[]", "links": "[]"}  # fmt: skip
    before = content_sha256(row)
    assert content_sha256({**row, "attachments": "[]", "partial": 0, "forwarded_from_name": None}) == before
    assert content_sha256({**row, "partial": 1}) != before


def test_media_of_unflagged_posts_are_released_and_referred_ones_kept(store):
    from vigie.store import media

    store.upsert_posts([_photo_post(1), _photo_post(2), _photo_post(3)])
    for i, sha in ((1, "a" * 64), (2, "b" * 64), (3, "c" * 64)):
        file = media.MediaFile(sha, "image/png", 10)
        done = media.AttachmentOutcome(0, "photo", f"https://cdn.example/{i}.png", "fetched", sha256=sha)
        media.save_post_media(store, f"telegram:chan:{i}", [done], [file], None)
    assert media.unreferenced_files(store, keep_unflagged=False) == []  # not classified yet
    _analysed(store, "telegram:chan:1", cluster="cl-1")
    _analysed(store, "telegram:chan:2", score=0.1, advert=0)
    assert media.unreferenced_files(store, keep_unflagged=False) == ["b" * 64]
    assert media.unreferenced_files(store, keep_unflagged=True) == []
    decide(store, "telegram:chan:1", "confirmed", "offer", "ana")
    # Retention: everything is older than tomorrow, but a referred post's file stays.
    assert sorted(media.expired_files(store, "9999")) == ["b" * 64, "c" * 64]
    media.mark_deleted(store, ["b" * 64])
    assert media.unreferenced_files(store, keep_unflagged=False) == []
    assert media.known_file(store, "b" * 64) is None and media.known_file(store, "a" * 64) is not None
    minimise_post(store, "telegram:chan:3")
    assert media.media_of(store, ["telegram:chan:3"]) == {}
    assert media.unreferenced_files(store, keep_unflagged=True) == ["c" * 64]
    # An analyst's rejection releases a flagged post's file like an unflagged one's.
    decide(store, "telegram:chan:1", "rejected", "a news photo", "ana")
    assert "a" * 64 in media.unreferenced_files(store, keep_unflagged=False)


def test_deleted_files_keep_no_text_and_a_file_fetched_again_starts_its_retention_anew(store):
    from vigie.store import media

    store.upsert_posts([_photo_post(1), _photo_post(2)])
    sha = "d" * 64
    file = media.MediaFile(
        sha, "image/png", 10, pdq="e" * 64, pdq_quality=90, ocr_text="Name: A. B., born 1990"
    )
    done = media.AttachmentOutcome(0, "photo", "https://cdn.example/1.png", "fetched", sha256=sha)
    media.save_post_media(store, "telegram:chan:1", [done], [file], file.ocr_text)
    store.db.execute("UPDATE media_files SET first_seen = '2020-01-01T00:00:00+00:00'")
    assert media.expired_files(store, "2021-01-01") == [sha]
    media.mark_deleted(store, [sha])
    row = store.db.execute("SELECT kept, ocr_text, pdq FROM media_files").fetchone()
    assert (row[0], row[1], row[2]) == (0, None, None)
    # The same flyer reposted today: stored again, and its retention counts from today.
    media.save_post_media(store, "telegram:chan:2", [done], [file], file.ocr_text)
    assert media.expired_files(store, "2021-01-01") == []
    assert media.known_file(store, sha) is not None


def test_a_post_whose_account_changed_its_handle_is_stored_once(store):
    """TikTok, Instagram, X ids are the platform's own: the same video under a renamed
    handle, or under the numeric account id an export without expansions gives, is one
    post (its views refreshed), while Telegram's per-channel ids stay apart."""
    url = "https://www.tiktok.com/@old.handle/video/7301234567890123456"
    first = Post("tiktok", "old.handle", "7301234567890123456", url, "Game to UK", None, views=5)
    renamed = Post("tiktok", "new.handle", "7301234567890123456", url, "Game to UK", None, views=9)
    assert store.upsert_posts([first]) == {"new": 1, "updated": 0, "unchanged": 0}
    assert store.upsert_posts([renamed]) == {"new": 0, "updated": 0, "unchanged": 1}
    (row,) = store.posts(platform="tiktok")
    assert (row["key"], row["views"]) == ("tiktok:7301234567890123456", 9)
    assert store.upsert_posts([post(1, channel="chan_a"), post(1, channel="chan_b")])["new"] == 2
