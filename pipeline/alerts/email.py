"""Alerts by email: one message per alert (plain text, the alert as a JSON attachment).

With `alerts.email.starttls` (the default) the connection is upgraded before anything else
is said, and a server that does not offer STARTTLS gets nothing; with `starttls: false` the
message goes in clear, and then no login is made: with $VIGIE_SMTP_USER set nothing is sent
(a password never crosses the network in clear); the server's certificate is
verified against the system's authorities, or the file named by $VIGIE_SMTP_CA_FILE. When
$VIGIE_SMTP_USER is set the sender logs in with it and $VIGIE_SMTP_PASSWORD; neither is
ever written in a message or the log. The Message-ID is derived from the alert's key, and
`X-Vigie-Alert-Id` names it: a mail system or a reader's rule can de-duplicate on either."""

from __future__ import annotations

import hashlib
import json
import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import Any

from pipeline.alerts import DeliveryError
from vigie.config import EmailConfig, secret
from vigie.sanitize import for_terminal

USER_ENV = "VIGIE_SMTP_USER"
PASSWORD_ENV = "VIGIE_SMTP_PASSWORD"
CA_FILE_ENV = "VIGIE_SMTP_CA_FILE"


def missing_setup(config: EmailConfig) -> str | None:
    """Why email cannot be sent now, or None."""
    if not config.host:
        return "alerts.email.host is empty"
    if not config.sender or not config.recipients:
        return "alerts.email needs a sender and at least one recipient"
    if secret(USER_ENV) and not secret(PASSWORD_ENV):
        return f"${USER_ENV} is set but ${PASSWORD_ENV} is not"
    if secret(USER_ENV) and not config.starttls:
        return (
            f"${USER_ENV} is set but alerts.email.starttls is false: the password would cross the "
            "network in clear (turn starttls on, or unset the credentials for a server that needs none)"
        )
    return None


def _line(value: Any) -> str:
    """One line of text for a header or the body: no control characters, no line breaks."""
    return " ".join(for_terminal(value).split())


def message(config: EmailConfig, payload: dict[str, Any]) -> EmailMessage:
    key = str(payload.get("alert_id", ""))
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = ", ".join(config.recipients)
    msg["Subject"] = f"[Vigie alert] {_line(payload.get('summary', ''))[:180]}"
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@vigie.alerts>"
    msg["X-Vigie-Alert-Id"] = _line(key)
    lines = [
        _line(payload.get("summary", "")),
        "",
        f"rule: {_line(payload.get('rule', ''))}",
        f"subject: {_line(payload.get('subject', ''))}",
        f"raised at: {_line(payload.get('created_at', ''))}",
        f"alert id: {_line(key)}",
        "",
        "The alert, with its details, is attached as JSON (alert.json).",
    ]
    msg.set_content("\n".join(lines) + "\n")
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    msg.add_attachment(body, maintype="application", subtype="json", filename="alert.json")
    return msg


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=secret(CA_FILE_ENV))


def send(config: EmailConfig, payload: dict[str, Any]) -> str | None:
    """Send the alert once. Raises DeliveryError when the server did not accept it; a
    warning when it accepted it for some recipients only (sending again would repeat it
    to the others)."""
    problem = missing_setup(config)
    if problem:
        raise DeliveryError(problem)
    where = f"{config.host}:{config.port}"
    user, password = secret(USER_ENV), secret(PASSWORD_ENV)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            smtp.ehlo()
            if config.starttls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(f"SMTP {where} does not offer STARTTLS; nothing sent")
                smtp.starttls(context=_tls_context())
                smtp.ehlo()
            if user:
                try:
                    smtp.login(user, password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    raise DeliveryError(f"SMTP {where} refused the login ({exc.smtp_code})") from None
                except smtplib.SMTPServerDisconnected:  # some servers hang up on a bad login
                    raise DeliveryError(f"SMTP {where} refused the login (connection closed)") from None
            refused = smtp.send_message(message(config, payload))
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"SMTP {where} refused every recipient ({len(exc.recipients)})") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {where} answered {exc.smtp_code}") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"SMTP {where}: TLS failed ({exc.reason or 'handshake'})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {where}: {_os_reason(exc, config.timeout)}") from None
    if refused:
        return f"SMTP {where} refused {len(refused)} of {len(config.recipients)} recipients"
    return None


def _os_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
