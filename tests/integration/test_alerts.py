"""Alerts delivered to real local servers: an HTTP receiver that checks each signature, an
SMTP server (aiosmtpd) that requires STARTTLS and a login, senders killed in the middle of
an attempt, and a real daemon restarted (SIGKILL while a POST is in flight, SIGTERM) that
must deliver each alert once per channel to a receiver de-duplicating on X-Vigie-Alert-Id
(delivery is at least once)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from sqlalchemy import select

from pipeline.alerts.deliver import deliver
from pipeline.alerts.rules import raise_new
from tests.conftest import run_vigie
from tests.support.rows import advert_analysis
from vigie.config_file import parse_config
from vigie.records import Post, post_key
from vigie.store import Store
from vigie.store import alerts as stored
from vigie.store.schema import alerts as alert_rows

SECRET = "webhook-signing-key-for-tests"
SMTP_USER, SMTP_PASSWORD = "alerts@unit.example.org", "smtp-pass-for-tests"


# -- servers ----------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1: answers the statuses of `script` first, then 200;
    keeps every POST with whether its signature was right. While `held` is cleared, a POST
    is kept (it has arrived) and its answer waits until `held` is set."""

    def __init__(self, script: list[int] | None = None, port: int = 0) -> None:
        self.script = list(script or [])
        self.posts: list[dict[str, Any]] = []
        self.arrived = 0
        self.lock = threading.Lock()
        self.held = threading.Event()
        self.held.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                stamp = self.headers.get("X-Vigie-Timestamp", "")
                signed = stamp.encode() + b"." + body
                expected = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
                with receiver.lock:
                    receiver.arrived += 1
                receiver.held.wait(30)
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.posts.append(
                        {
                            "status": status,
                            "signed": hmac.compare_digest(
                                self.headers.get("X-Vigie-Signature", ""), expected
                            ),
                            "alert_id": unquote(self.headers.get("X-Vigie-Alert-Id", "")),
                            "timestamp": self.headers.get("X-Vigie-Timestamp"),
                            "body": json.loads(body),
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[dict[str, Any]]:
        """The POSTs answered 2xx."""
        with self.lock:
            return [p for p in self.posts if 200 <= p["status"] < 300]

    def unique(self) -> Counter[str]:
        """Alert id -> times taken, de-duplicated on X-Vigie-Alert-Id as a receiver does: 1 each."""
        return Counter(dict.fromkeys((p["alert_id"] for p in self.delivered()), 1))


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own authority, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigie test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Mailbox:
    """An SMTP server (aiosmtpd) that requires STARTTLS and a login before it takes mail."""

    def __init__(self, directory: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = self_signed(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.messages: list[dict[str, Any]] = []
        self.logins: list[bool] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(
                    {
                        "tls": session.ssl is not None,
                        "authenticated": session.authenticated,
                        "to": list(envelope.rcpt_tos),
                        "message": message_from_bytes(envelope.content),
                    }
                )
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                SMTP_USER.encode(),
                SMTP_PASSWORD.encode(),
            )
            mailbox.logins.append(ok)
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def alert_ids(self) -> list[str]:
        return [str(m["message"]["X-Vigie-Alert-Id"]) for m in self.messages]


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    box = Mailbox(tmp_path).start()
    yield box
    box.stop()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, mailbox: Mailbox) -> None:
    monkeypatch.setenv("VIGIE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("VIGIE_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("VIGIE_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("VIGIE_SMTP_CA_FILE", str(mailbox.cert))


# -- stores -----------------------------------------------------------------------------


def settings(
    tmp_path: Path, webhook: str = "", smtp_port: int | None = None, **alerts: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "alerts": {}}
    if webhook:
        data["alerts"]["webhook"] = {"url": webhook, "max_attempts": 3, "backoff_base": 0.05, "timeout": 5}
    data["alerts"]["give_up_hours"] = 0.001  # dead once tried max_attempts times (3.6 s after raising)
    if smtp_port:
        data["alerts"]["email"] = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "sender": "vigie@unit.example.org",
            "recipients": ["analysts@unit.example.org"],
            "timeout": 2,
            "max_attempts": 3,
        }
    for section, values in alerts.items():
        data["alerts"].setdefault(section, {}).update(values)
    return data


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "vigie.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def add_cluster(store: Store, channel: str, cluster: str, n: int, score: float = 0.97) -> list[str]:
    """`n` flagged reposts in one cluster."""
    from vigie.store.analysis import save_analysis

    keys = []
    store.upsert_posts(
        [
            Post(
                platform="telegram",
                channel=channel,
                post_id=str(i),
                url=f"https://t.me/{channel}/{i}",
                text=f"Game to UK 2500 GBP WhatsApp +33 7 58 21 46 9{i}",
                published_at=f"2026-11-2{i}T10:00:00+00:00",
                captured_at="2026-11-30T00:00:00+00:00",
            )
            for i in range(1, n + 1)
        ]
    )
    for i in range(1, n + 1):
        key = post_key("telegram", channel, str(i))
        row = advert_analysis(key, cluster, "2026-11-30T00:00:00+00:00")
        row["score"] = score
        save_analysis(store, row)
        keys.append(key)
    return keys


def add_route_posts(store: Store, channel: str, published_at: str, entities: dict[str, Any], n: int) -> None:
    """`n` flagged posts naming that route, each its own advert (no repost cluster)."""
    from vigie.store.analysis import save_analysis

    store.upsert_posts(
        [
            Post(
                platform="telegram",
                channel=channel,
                post_id=str(i),
                url=f"https://t.me/{channel}/{i}",
                text=f"Game {i}",
                published_at=published_at,
                captured_at=published_at,
            )
            for i in range(1, n + 1)
        ]
    )
    for i in range(1, n + 1):
        row = advert_analysis(post_key("telegram", channel, str(i)), None, published_at)
        row["entities"] = json.dumps(entities)
        save_analysis(store, row)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_route_rule_reads_stored_legs_between_two_countries(tmp_path, backend, request):
    from pipeline.alerts.rules import evaluate

    url = request.getfixturevalue("fresh_pg_url") if backend == "postgresql" else str(tmp_path / "v.db")
    config = parse_config({"data_dir": str(tmp_path / "data")})
    day = "2026-11-24T10:00:00+00:00"  # the week before 2026-12-03
    with Store(url) as store:
        add_route_posts(store, "inland", day, {"origin": "fr-dunkirk", "destination": "fr-calais"}, 6)
        add_route_posts(store, "old", "2026-09-01T10:00:00+00:00", {"origin": "be", "destination": "ie"}, 6)
        legs = [
            {"origin": "fr-dunkirk", "destination": "fr-calais", "prices": []},
            {"origin": "fr-calais", "destination": "gb", "prices": []},
        ]
        add_route_posts(
            store, "crossing", day, {"origin": "fr-dunkirk", "destination": "fr-calais", "legs": legs}, 5
        )
        found = evaluate(store, config, dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC))
    assert found.errors == []
    assert [a.key for a in found.alerts if a.rule == "route_week"] == ["route_week:fr>gb:2026-W48"]


def cluster_alert(tmp_path: Path, data: dict[str, Any]) -> Any:
    """A store holding one big sure cluster, its alert raised (as on a fresh store)."""
    config = parse_config(data)
    with Store(config.store_url()) as store:
        add_cluster(store, "uk_boat_express", "c-planted", 3)
        raised = raise_new(store, config, held_before=False)
    assert [a.key for a in raised.new] == ["cluster:c-planted"]
    return config


def deliveries(config: Any) -> dict[str, dict[str, Any]]:
    with Store(config.store_url(), read_only=True) as store:
        [row] = stored.listed(store)
    return {d["channel"]: d for d in row["deliveries"]}


# -- webhook ----------------------------------------------------------------------------


def test_a_receiver_failing_twice_gets_the_alert_once_signed_with_three_attempts_recorded(
    tmp_path, receivers, secrets
):
    receiver = Receiver(script=[500, 500]).start()
    receivers.append(receiver)
    config = cluster_alert(tmp_path, settings(tmp_path, webhook=receiver.url))
    with Store(config.store_url()) as store:
        report = deliver(store, config, wait=10)
        assert report.sent == 1 and report.dead == 0
        # Delivered: a second pass and raising again send nothing.
        assert raise_new(store, config).new == []
        assert deliver(store, config, wait=1).sent == 0
    assert [p["status"] for p in receiver.posts] == [500, 500, 200]
    assert all(p["signed"] for p in receiver.posts)
    assert {p["alert_id"] for p in receiver.posts} == {"cluster:c-planted"}
    [got] = receiver.delivered()
    assert abs(int(got["timestamp"]) - time.time()) < 60
    assert got["body"]["rule"] == "cluster" and got["body"]["details"]["flagged_posts"] == 3
    assert "Game to UK" not in json.dumps(got["body"])  # URLs and counts, never a post's text
    webhook = deliveries(config)["webhook"]
    assert (webhook["status"], webhook["attempts"], webhook["last_error"]) == ("sent", 3, None)


def test_a_wrong_key_is_seen_by_the_receiver(tmp_path, receivers, secrets, monkeypatch):
    receiver = Receiver().start()
    receivers.append(receiver)
    config = cluster_alert(tmp_path, settings(tmp_path, webhook=receiver.url))
    monkeypatch.setenv("VIGIE_WEBHOOK_SECRET", "another key")
    with Store(config.store_url()) as store:
        deliver(store, config)
    assert [p["signed"] for p in receiver.posts] == [False]


def test_a_receiver_down_leaves_a_dead_letter_that_retry_brings_back_and_delivers(
    tmp_path, receivers, secrets
):
    port = free_port()  # nothing listens there yet
    data = settings(tmp_path, webhook=f"http://127.0.0.1:{port}/hook")
    config = cluster_alert(tmp_path, data)
    path = write_config(tmp_path, data)
    time.sleep(3.7)  # older than give_up_hours: the third failure makes it a dead letter
    result = run_vigie("alerts", "send", "--wait", "10", config=path)
    assert result.returncode == 1, result.stderr  # what failed is not an "ok" pass
    line, last = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line == (
        f"alerts: webhook http://127.0.0.1:{port}: connection refused; 1 kept as dead letters "
        "(`vigie alerts retry --dead` sends them again)"
    )
    assert "/hook" not in last and "alerts not all delivered" in last
    webhook = deliveries(config)["webhook"]
    assert (webhook["status"], webhook["attempts"], webhook["last_error"]) == (
        "dead",
        3,
        "connection refused",
    )
    listed = json.loads(
        run_vigie("alerts", "list", "--status", "dead", "--json", config=path, check=True).stdout
    )
    assert [a["alert_key"] for a in listed] == ["cluster:c-planted"]
    assert listed[0]["payload"]["details"]["cluster_id"] == "c-planted"  # the payload is kept

    receiver = Receiver(port=port).start()
    receivers.append(receiver)
    result = run_vigie("alerts", "retry", "--dead", config=path, check=True)
    assert "1 dead deliveries back to pending" in result.stdout and "sent 1" in result.stdout
    assert [p["alert_id"] for p in receiver.delivered()] == ["cluster:c-planted"]
    assert deliveries(config)["webhook"]["status"] == "sent"
    assert run_vigie("alerts", "list", "--status", "dead", config=path, check=True).stdout.strip() == (
        "no alerts with a dead delivery"
    )


def test_without_the_signing_key_nothing_is_tried_and_nothing_is_lost(tmp_path, receivers, monkeypatch):
    monkeypatch.delenv("VIGIE_WEBHOOK_SECRET", raising=False)
    receiver = Receiver().start()
    receivers.append(receiver)
    data = settings(tmp_path, webhook=receiver.url)
    config = cluster_alert(tmp_path, data)
    result = run_vigie("alerts", "send", "--wait", "0", config=write_config(tmp_path, data))
    assert result.returncode == 1
    assert "$VIGIE_WEBHOOK_SECRET is not set" in result.stderr and "nothing is lost" in result.stderr
    assert receiver.posts == []
    assert deliveries(config)["webhook"]["attempts"] == 0


# -- email ------------------------------------------------------------------------------


def test_the_email_arrives_once_over_starttls_after_a_login(tmp_path, mailbox, secrets):
    config = cluster_alert(tmp_path, settings(tmp_path, smtp_port=mailbox.port))
    with Store(config.store_url()) as store:
        assert deliver(store, config, wait=5).sent == 1
        assert deliver(store, config, wait=1).sent == 0
    [got] = mailbox.messages
    assert got["tls"] and got["authenticated"] and mailbox.logins == [True]
    assert got["to"] == ["analysts@unit.example.org"]
    message: Message = got["message"]
    assert message["X-Vigie-Alert-Id"] == "cluster:c-planted"
    assert message["Subject"].startswith("[Vigie alert] repost cluster c-planted: 3 flagged posts")
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "cluster:c-planted" in bytes(parts["text/plain"].get_payload(decode=True)).decode()
    attached = json.loads(bytes(parts["application/json"].get_payload(decode=True)))
    assert attached["alert_id"] == "cluster:c-planted" and attached["details"]["best_score"] == 0.97
    assert SMTP_PASSWORD not in message.as_string()
    assert deliveries(config)["email"]["status"] == "sent"


def test_a_wrong_password_is_a_failed_attempt_never_shown(tmp_path, mailbox, secrets, monkeypatch):
    monkeypatch.setenv("VIGIE_SMTP_PASSWORD", "wrong-password-value")
    config = cluster_alert(tmp_path, settings(tmp_path, smtp_port=mailbox.port))
    with Store(config.store_url()) as store:
        report = deliver(store, config, wait=0)
    assert mailbox.messages == [] and mailbox.logins == [False]
    [line] = report.messages(config)
    # aiosmtpd hangs up on a bad login rather than answering 535.
    assert f"SMTP 127.0.0.1:{mailbox.port} refused the login (connection closed)" in line
    assert "wrong-password-value" not in line
    assert deliveries(config)["email"]["attempts"] == 1


def test_a_server_without_a_certificate_we_trust_gets_nothing(tmp_path, mailbox, secrets, monkeypatch):
    monkeypatch.delenv("VIGIE_SMTP_CA_FILE")
    config = cluster_alert(tmp_path, settings(tmp_path, smtp_port=mailbox.port))
    with Store(config.store_url()) as store:
        report = deliver(store, config, wait=0)
    assert mailbox.messages == [] and mailbox.logins == []
    assert "TLS failed" in report.messages(config)[0]


def test_both_channels_down_give_one_line_each_and_lose_nothing(tmp_path, secrets):
    webhook_port, smtp_port = free_port(), free_port()
    data = settings(tmp_path, webhook=f"http://127.0.0.1:{webhook_port}/hook", smtp_port=smtp_port)
    data["alerts"]["webhook"]["max_attempts"] = 5
    data["alerts"]["email"]["max_attempts"] = 5
    config = cluster_alert(tmp_path, data)
    result = run_vigie("alerts", "send", "--wait", "0", config=write_config(tmp_path, data))
    assert result.returncode == 1
    lines = sorted(ln for ln in result.stderr.splitlines() if ln.startswith("alerts: "))
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(
        f"alerts: email via 127.0.0.1:{smtp_port}: SMTP 127.0.0.1:{smtp_port}: connection refused; 1 to be tried again"
    )
    assert lines[1].startswith(
        f"alerts: webhook http://127.0.0.1:{webhook_port}: connection refused; 1 to be tried again"
    )
    got = deliveries(config)
    assert {c: (d["status"], d["attempts"]) for c, d in got.items()} == {
        "email": ("pending", 1),
        "webhook": ("pending", 1),
    }


def test_the_test_alert_reaches_each_channel_and_is_not_stored(tmp_path, receivers, mailbox, secrets):
    receiver = Receiver().start()
    receivers.append(receiver)
    path = write_config(tmp_path, settings(tmp_path, webhook=receiver.url, smtp_port=mailbox.port))
    result = run_vigie("alerts", "test", config=path, check=True)
    assert "test alert sent" in result.stdout
    assert [p["body"]["rule"] for p in receiver.posts] == ["test"] and receiver.posts[0]["signed"]
    assert len(mailbox.messages) == 1
    assert run_vigie("alerts", "list", config=path, check=True).stdout.strip() == "no alerts"
    receiver.stop()
    receivers.remove(receiver)
    failed = run_vigie("alerts", "test", config=path)
    assert failed.returncode == 1 and "connection refused" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


# -- rules over a store -----------------------------------------------------------------


def test_the_first_evaluation_of_a_store_with_flagged_posts_sends_nothing_then_only_the_new(
    tmp_path, receivers, secrets
):
    receiver = Receiver().start()
    receivers.append(receiver)
    config = parse_config(settings(tmp_path, webhook=receiver.url))
    with Store(config.store_url()) as store:
        add_cluster(store, "old_channel", "c-old", 4)
        first = raise_new(store, config)
        assert first.new == [] and first.baseline == 1
        assert stored.counts(store) == {"pending": 0, "sent": 0, "dead": 0}
        add_cluster(store, "new_channel", "c-new", 3)
        second = raise_new(store, config)
        assert [a.key for a in second.new] == ["cluster:c-new"]
        deliver(store, config)
    assert [p["alert_id"] for p in receiver.delivered()] == ["cluster:c-new"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_raising_is_idempotent_and_an_attempt_is_claimed_once(tmp_path, backend, request):
    url = request.getfixturevalue("fresh_pg_url") if backend == "postgresql" else str(tmp_path / "v.db")
    alert = stored.NewAlert("cluster:c-1", "cluster", "c-1", "2026-12-01T00:00:00.000000+00:00", {"x": "é"})
    now = stored.timestamp(dt.datetime.now(dt.UTC))
    with Store(url) as store:
        assert stored.raise_alerts(store, [alert], ["webhook", "email"], now, enable=["cluster"]) == [
            "cluster:c-1"
        ]
        assert stored.raise_alerts(store, [alert], ["webhook", "email"], now) == []
        with store.reading() as connection:
            enabled_at = connection.scalar(
                select(alert_rows.c.created_at).where(alert_rows.c.alert_key == stored.enabled_key("cluster"))
            )
        assert enabled_at == now
        assert stored.enabled_rules(store, ["cluster", "route_week"]) == {"cluster"}
        due = stored.due(store, now, ["webhook"])
        assert [(d.alert_key, d.channel, d.attempts) for d in due] == [("cluster:c-1", "webhook", 0)]
        later = stored.timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
        assert stored.claim(store, due[0], now, later) is True
        assert stored.claim(store, due[0], now, later) is False  # another sender took it
        assert stored.due(store, now, ["webhook"]) == []
        assert stored.record_failure(store, "cluster:c-1", "webhook", "HTTP 500", None, attempt=1)
        assert stored.counts(store) == {"pending": 1, "sent": 0, "dead": 1}
        assert stored.revive(store, now, dead=True) == 1
        [row] = stored.listed(store)
        assert row["payload"] == {"x": "é"}
        assert {d["channel"]: (d["status"], d["attempts"]) for d in row["deliveries"]} == {
            "email": ("pending", 0),
            "webhook": ("pending", 0),
        }


def test_a_server_that_does_not_offer_starttls_gets_nothing(tmp_path, secrets):
    from aiosmtpd.controller import Controller

    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = cluster_alert(tmp_path, settings(tmp_path, smtp_port=port))
        with Store(config.store_url()) as store:
            report = deliver(store, config, wait=0)
    finally:
        controller.stop()
    assert got == []
    assert f"SMTP 127.0.0.1:{port} does not offer STARTTLS; nothing sent" in report.messages(config)[0]
    assert deliveries(config)["email"]["status"] == "pending"


# -- one alert never stops the others; a late sender never overwrites --------------------


def test_an_alert_id_in_another_script_is_delivered_and_a_sender_crash_stops_nothing(
    tmp_path, receivers, secrets, monkeypatch
):
    import pipeline.alerts.email

    receiver = Receiver().start()
    receivers.append(receiver)
    mail_port = free_port()
    config = parse_config(settings(tmp_path, webhook=receiver.url, smtp_port=mail_port))
    key = "new_member:net-1:link:t.me/joinchat/abc_قروب"
    payload = {"alert_id": key, "rule": "new_member", "summary": "link joined", "details": {}}
    now = stored.timestamp(dt.datetime.now(dt.UTC))
    first = stored.NewAlert(key, "new_member", "net-1:link", now, payload)
    second = stored.NewAlert(
        "cluster:c-2", "cluster", "c-2", now, {"alert_id": "cluster:c-2", "summary": "c-2"}
    )

    def exploding(config: Any, payload: dict[str, Any]) -> None:
        raise UnicodeEncodeError("ascii", "قروب", 0, 1, "not ASCII")

    monkeypatch.setattr(pipeline.alerts.email, "send", exploding)
    with Store(config.store_url()) as store:
        stored.raise_alerts(store, [first, second], ["webhook", "email"], now)
        report = deliver(store, config)
        rows = {r["alert_key"]: {d["channel"]: d for d in r["deliveries"]} for r in stored.listed(store)}
    assert sorted(p["alert_id"] for p in receiver.delivered()) == sorted([key, "cluster:c-2"])
    assert report.sent == 2 and report.failed
    for alert in (key, "cluster:c-2"):
        assert rows[alert]["webhook"]["status"] == "sent"
        email = rows[alert]["email"]
        assert (email["status"], email["attempts"], email["last_error"]) == (
            "pending",
            1,
            "UnicodeEncodeError while sending",
        )


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_sender_slower_than_its_claim_cannot_overwrite_what_the_next_one_recorded(
    tmp_path, backend, request
):
    url = request.getfixturevalue("fresh_pg_url") if backend == "postgresql" else str(tmp_path / "v.db")
    alert = stored.NewAlert("cluster:c-1", "cluster", "c-1", "2026-12-01T00:00:00.000000+00:00", {"x": 1})
    t0 = dt.datetime.now(dt.UTC)
    at = [stored.timestamp(t0 + dt.timedelta(seconds=n)) for n in range(4)]
    with Store(url) as store:
        stored.raise_alerts(store, [alert], ["webhook"], at[0])
        [a] = stored.due(store, at[0], ["webhook"])
        assert stored.claim(store, a, at[0], busy_until=at[1])  # A: attempt 1, claim until t+1
        [b] = stored.due(store, at[2], ["webhook"])  # A's claim expired: B takes attempt 2
        assert b.attempts == 1 and stored.claim(store, b, at[2], busy_until=at[3])
        assert stored.record_sent(store, "cluster:c-1", "webhook", at[2], attempt=2)
        # A's late failure, then a late success, change nothing.
        assert not stored.record_failure(store, "cluster:c-1", "webhook", "timed out", None, attempt=1)
        assert not stored.record_sent(store, "cluster:c-1", "webhook", at[3], attempt=1)
        [row] = stored.listed(store)
    [delivery] = row["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["sent_at"], delivery["last_error"]) == (
        "sent",
        2,
        at[2],
        None,
    )


# -- senders killed in the middle of an attempt ------------------------------------------


def _sender(path: Path, *args: str) -> Any:
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "vigie", "--config", str(path), "alerts", "send", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _until(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_sender_killed_while_its_post_is_in_flight_leaves_it_to_the_next_sender(
    tmp_path, receivers, secrets
):
    receiver = Receiver().start()
    receivers.append(receiver)
    data = settings(tmp_path, webhook=receiver.url)
    data["alerts"]["webhook"]["timeout"] = 2  # each attempt ends within 5 s; its claim lasts 15 s
    config = cluster_alert(tmp_path, data)
    path = write_config(tmp_path, data)
    receiver.held.clear()
    first = _sender(path, "--wait", "0")
    _until("the POST at the receiver", lambda: receiver.arrived == 1)
    first.kill()  # after the claim, before the result is recorded
    first.wait(timeout=30)
    receiver.held.set()
    webhook = deliveries(config)["webhook"]
    assert (webhook["status"], webhook["attempts"]) == ("pending", 1)  # claimed, never recorded

    began = time.monotonic()
    result = run_vigie("alerts", "send", "--wait", "30", config=path)  # waits for the claim to expire
    assert result.returncode == 0, result.stderr
    assert 5 < time.monotonic() - began < 30  # not before the claim expired
    webhook = deliveries(config)["webhook"]
    assert (webhook["status"], webhook["attempts"]) == ("sent", 2)
    # At least once: the receiver saw the POST of the killed sender too, and de-duplicates.
    assert [p["alert_id"] for p in receiver.posts] == ["cluster:c-planted"] * 2
    assert receiver.unique() == Counter({"cluster:c-planted": 1})
    assert run_vigie("alerts", "send", "--wait", "0", config=path, check=True)
    assert len(receiver.posts) == 2


def test_a_sender_stopped_by_sigterm_ends_the_post_in_flight_and_records_it(tmp_path, receivers, secrets):
    receiver = Receiver().start()
    receivers.append(receiver)
    data = settings(tmp_path, webhook=receiver.url)
    config = parse_config(data)
    with Store(config.store_url()) as store:
        add_cluster(store, "uk_boat_express", "c-one", 3)
        add_cluster(store, "kurd_game_dunkirk", "c-two", 3)
        assert len(raise_new(store, config, held_before=False).new) == 2
    path = write_config(tmp_path, data)
    receiver.held.clear()
    sender = _sender(path, "--wait", "0")
    _until("the first POST at the receiver", lambda: receiver.arrived == 1)
    sender.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    receiver.held.set()
    assert sender.wait(timeout=30) == 0, sender.stderr.read() if sender.stderr else ""
    [first] = receiver.posts
    with Store(config.store_url(), read_only=True) as store:
        rows = {r["alert_key"]: r["deliveries"][0] for r in stored.listed(store)}
    assert (rows[first["alert_id"]]["status"], rows[first["alert_id"]]["attempts"]) == ("sent", 1)
    [other] = set(rows) - {first["alert_id"]}
    assert (rows[other]["status"], rows[other]["attempts"]) == ("pending", 0)  # not started
    run_vigie("alerts", "send", "--wait", "0", config=path, check=True)
    assert Counter(p["alert_id"] for p in receiver.posts) == Counter({first["alert_id"]: 1, other: 1})


# -- baselines, per rule ----------------------------------------------------------------


def test_an_upgraded_store_learns_its_networks_as_known_once_they_are_refreshed(
    tmp_path, receivers, secrets, monkeypatch
):
    import pipeline.intel.networks
    import vigie.store.networks
    from tests.unit.test_alert_rules import PLANTED

    receiver = Receiver().start()
    receivers.append(receiver)
    config = parse_config(settings(tmp_path, webhook=receiver.url))
    with Store(config.store_url()) as store:
        add_cluster(store, "old_channel", "c-old", 4)  # months of data, before alerts
        first = raise_new(store, config)  # no network refreshed yet: network rules wait
        assert first.new == [] and first.baseline == 1
        assert stored.enabled_rules(store, ["new_network", "new_member", "cluster"]) == {"cluster"}
        # The first refresh stores the networks of all that data and hands them to the rules.
        second = raise_new(store, config, networks=[PLANTED])
        assert second.new == [] and second.baseline == 1  # known, not sent
        grown = pipeline.intel.networks.Network(
            **{
                **PLANTED.__dict__,
                "members": {**PLANTED.members, "wallet": ["TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"]},
            }
        )
        # A pass without a refresh reads the stored networks back.
        monkeypatch.setattr(vigie.store.networks, "count_networks", lambda store: 1)
        monkeypatch.setattr(pipeline.intel.networks, "stored_networks", lambda store: [grown])
        third = raise_new(store, config)
        assert [a.key for a in third.new] == [
            "new_member:net-000000000001:wallet:TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"
        ]


def test_a_rule_that_fails_is_not_baselined_and_the_others_still_run(
    tmp_path, receivers, secrets, monkeypatch
):
    receiver = Receiver().start()
    receivers.append(receiver)
    config = parse_config(settings(tmp_path, webhook=receiver.url))

    def broken(*args: Any) -> Any:
        raise RuntimeError("no such column")

    with Store(config.store_url()) as store:
        add_cluster(store, "old_channel", "c-old", 4)
        monkeypatch.setattr(stored, "flagged_clusters", broken)
        failed = raise_new(store, config)
        assert failed.errors == [
            "alerts: the cluster rule not evaluated (RuntimeError: no such column); the next pass tries again"
        ]
        assert "cluster" not in stored.enabled_rules(store, ["cluster"])
        assert "route_week" in stored.enabled_rules(store, ["route_week"])  # the others ran
        monkeypatch.undo()
        monkeypatch.setenv("VIGIE_WEBHOOK_SECRET", SECRET)
        again = raise_new(store, config)
        assert again.new == [] and again.baseline == 1  # its first evaluation: a baseline


def test_after_a_retrain_the_old_posts_are_still_held_before(tmp_path, receivers, secrets):
    from pipeline.stages import RunReport, after_run

    receiver = Receiver().start()
    receivers.append(receiver)
    config = parse_config(settings(tmp_path, webhook=receiver.url))
    with Store(config.store_url()) as store:
        add_cluster(store, "old_channel", "c-old", 4)
        report = RunReport()
        # A new model re-classified everything: every flagged post was flagged by this pass.
        report.process.processed = report.process.flagged = report.store_flagged = 4
        report.held_before = True
        after_run(config, store, report)
    assert (report.alerts_raised, report.alerts_baseline) == (0, 1)
    assert receiver.posts == []


def test_alerts_raised_with_no_channel_go_to_the_channel_added_later(tmp_path, receivers, secrets):
    receiver = Receiver().start()
    receivers.append(receiver)
    bare = parse_config(settings(tmp_path))
    with Store(bare.store_url()) as store:
        add_cluster(store, "uk_boat_express", "c-planted", 3)
        assert [a.key for a in raise_new(store, bare, held_before=False).new] == ["cluster:c-planted"]
        assert stored.counts(store)["pending"] == 0
    config = parse_config(settings(tmp_path, webhook=receiver.url))
    with Store(config.store_url()) as store:
        assert raise_new(store, config).redelivered == 1
        assert deliver(store, config).sent == 1
        assert raise_new(store, config).redelivered == 0
    assert [p["alert_id"] for p in receiver.posts] == ["cluster:c-planted"]


def test_pending_deliveries_of_a_channel_no_longer_configured_are_said_to_wait(tmp_path, receivers, secrets):
    receiver = Receiver().start()
    receivers.append(receiver)
    config = cluster_alert(tmp_path, settings(tmp_path, smtp_port=free_port()))
    without_email = parse_config(settings(tmp_path, webhook=receiver.url))
    with Store(config.store_url()) as store:
        report = deliver(store, without_email)
    [line] = report.messages(without_email)
    assert line.startswith("alerts: 1 deliveries by email wait, but no email channel is configured any more")


def test_status_shows_the_deliveries_waiting_and_the_dead_letters(tmp_path, secrets):
    data = settings(tmp_path, webhook=f"http://127.0.0.1:{free_port()}/hook")
    cluster_alert(tmp_path, data)
    path = write_config(tmp_path, data)
    shown = run_vigie("status", config=path, check=True).stdout
    assert "alerts: 1 deliveries waiting, 0 dead letters" in shown
    as_json = json.loads(run_vigie("status", "--json", config=path, check=True).stdout)
    assert as_json["alerts"] == {"pending": 1, "sent": 0, "dead": 0}
    daemon = json.loads(run_vigie("daemon", "status", "--json", config=path, check=True).stdout)
    assert daemon["alerts"] == {"pending": 1, "sent": 0, "dead": 0}


# -- the daemon, restarted --------------------------------------------------------------


def _classifier_ready() -> bool:
    from classifier.model import META_FILE
    from vigie.paths import default_classifier_dir

    return (default_classifier_dir() / META_FILE).is_file()


PLANTED_NETWORK = ("kurd_game_dunkirk", "uk_boat_express", "vip_yacht_tickets")


@pytest.mark.slow
def test_the_daemon_delivers_the_new_network_exactly_once_across_restarts(
    tmp_path, mirror_factory, receivers, mailbox, secrets
):
    from tests.integration.test_daemon import Daemons, runs_of, wait_for

    if not _classifier_ready():
        pytest.skip(
            "no trained classifier in the cache (`make test` trains it with `vigie train --if-stale`)"
        )
    mirror = mirror_factory()  # the sample channels, with the planted network
    receiver = Receiver().start()
    receivers.append(receiver)
    data = settings(tmp_path, webhook=receiver.url, smtp_port=mailbox.port)
    data.update(
        crawl={"download_delay": 0, "autothrottle": False, "backoff_base": 0.2},
        telegram={"base_url": mirror.url},
        networks={"hotlines": ["+33 4 86 51 71 61"]},
        daemon={"crawl_every_minutes": 0.5, "alerts_every_minutes": 0.05, "job_timeout_seconds": 600},
        # The planted network's three channels: each restart crawls and classifies less.
        sources=[{"platform": "telegram", "channel": c} for c in PLANTED_NETWORK],
    )
    path = write_config(tmp_path, data)
    daemons = Daemons(tmp_path)
    try:

        def both_got_the_network() -> bool:
            webhook = [p["alert_id"] for p in receiver.delivered()]
            return any(a.startswith("new_network:") for a in webhook) and any(
                a.startswith("new_network:") for a in mailbox.alert_ids()
            )

        in_flight: list[str] = []  # the POST the SIGKILL cut: the receiver may see it twice

        def exactly_once() -> tuple[Counter[str], Counter[str]]:
            webhook = Counter(str(p["alert_id"]) for p in receiver.delivered())
            email = Counter(mailbox.alert_ids())
            assert all(p["signed"] for p in receiver.posts)
            assert all(n == 1 or (n == 2 and a in in_flight) for a, n in webhook.items()), webhook
            assert set(receiver.unique().values()) <= {1}
            assert set(email.values()) <= {1}, email
            return receiver.unique(), email

        def another_pass(classified: int, sent: int) -> bool:
            return (
                len(runs_of(tmp_path, "run --no-crawl")) > classified
                and len(runs_of(tmp_path, "alerts send --wait 0")) > sent
            )

        # An alert raised before a restart and delivered after it: the daemon is killed while
        # its first POST is in flight (claimed, not recorded).
        receiver.held.clear()
        killed = daemons.start(path)
        wait_for("an alert POST in flight", lambda: receiver.arrived >= 1, timeout=600, every=0.1)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        receiver.held.set()
        wait_for("the cut POST answered", lambda: len(receiver.posts) >= 1, timeout=30, every=0.1)
        in_flight.append(str(receiver.posts[0]["alert_id"]))
        first = daemons.start(path)
        wait_for("the new network at both channels", both_got_the_network, timeout=600, every=1)
        wait_for(
            "every alert delivered",
            lambda: not any(d["status"] == "pending" for a in listed(path) for d in a["deliveries"]),
            timeout=120,
            every=1,
        )
        webhook, email = exactly_once()
        assert in_flight[0] in webhook and in_flight[0] in email  # delivered after the restart
        networks = sorted(a for a in webhook if a.startswith("new_network:"))
        assert networks == sorted(a for a in email if a.startswith("new_network:"))

        code, _ = daemons.stop(first, within=60)
        assert code == 0
        for restart in ("after SIGTERM", "after SIGKILL"):
            classified = len(runs_of(tmp_path, "run --no-crawl"))
            sent = len(runs_of(tmp_path, "alerts send --wait 0"))
            proc = daemons.start(path)
            wait_for(
                f"a classification and an alerts pass {restart}",
                lambda c=classified, s=sent: another_pass(c, s),  # type: ignore[misc]
                timeout=300,
                every=1,
            )
            again_webhook, again_email = exactly_once()
            assert sorted(a for a in again_webhook if a.startswith("new_network:")) == networks, restart
            assert sorted(a for a in again_email if a.startswith("new_network:")) == networks, restart
            if restart == "after SIGTERM":
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            else:
                code, _ = daemons.stop(proc, within=60)
                assert code == 0
        exactly_once()
    finally:
        daemons.cleanup()


def listed(path: Path) -> list[dict[str, Any]]:
    """The alerts as `vigie alerts list --json` shows them; fails when it cannot say."""
    for _ in range(3):  # the daemon may hold the SQLite file for a moment
        result = run_vigie("alerts", "list", "--json", config=path, timeout=60)
        if result.returncode == 0:
            return list(json.loads(result.stdout))
        time.sleep(1)
    raise AssertionError(f"vigie alerts list failed: {result.stderr}")


def test_after_a_run_a_failing_step_is_one_line_and_the_others_still_run(
    tmp_path, receivers, secrets, monkeypatch
):
    import pipeline.intel.networks
    from pipeline.stages import RunReport, after_run

    def broken(store: Any, config: Any) -> Any:
        raise RuntimeError("graph exploded")

    monkeypatch.setattr(pipeline.intel.networks, "refresh", broken)
    receiver = Receiver().start()
    receivers.append(receiver)
    config = parse_config(settings(tmp_path, webhook=receiver.url))
    report = RunReport()
    with Store(config.store_url()) as store:
        add_cluster(store, "uk_boat_express", "c-planted", 3)
        report.process.processed = report.process.flagged = report.store_flagged = 3
        report.held_before = False  # a first run on a fresh store
        after_run(config, store, report)
    assert report.errors == [
        "networks: not refreshed (RuntimeError: graph exploded); the next run tries again"
    ]
    assert (report.alerts_raised, report.alerts_sent, report.alerts_waiting) == (1, 1, 0)
    assert [p["alert_id"] for p in receiver.delivered()] == ["cluster:c-planted"]
    assert report.to_json()["alerts"]["sent"] == 1
