"""Sending one email through the SMTP server of `SODATE_SMTP_URL`.

The URL says how to reach the server: `smtp://user:pass@host:587?starttls=1` (plain SMTP,
upgraded with STARTTLS when `starttls=1`), or `smtps://…:465` (TLS from the start). User and
password are optional and percent-decoded. The standard library speaks the protocol; this
module only reads the URL and reports failures as one error that a job can retry.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT_SECONDS = 30.0


class MailError(Exception):
    """The message could not be handed to the SMTP server (worth retrying later)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool
    starttls: bool
    user: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"not an SMTP URL (smtp://host:port or smtps://host:port): {url!r}")
        tls = parts.scheme == "smtps"
        flags = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            tls=tls,
            starttls=flags.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def send(url: str, message: EmailMessage) -> None:
    """Hand the message to the server; MailError if it is refused or cannot be reached."""
    server = SmtpServer.from_url(url)
    try:
        client: smtplib.SMTP
        if server.tls:
            context = ssl.create_default_context()
            client = smtplib.SMTP_SSL(
                server.host, server.port, timeout=TIMEOUT_SECONDS, context=context
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
        with client:
            if server.starttls:
                client.starttls(context=ssl.create_default_context())
            if server.user is not None:
                client.login(server.user, server.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"SMTP {server.host}:{server.port}: {exc}") from exc
