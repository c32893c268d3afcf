"""SMTP URLs as SODATE_SMTP_URL spells them, and a send that fails saying where."""

from __future__ import annotations

import socket
from email.message import EmailMessage

import pytest

from sodate import mail


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://localhost", ("localhost", 25, False, False, None, None)),
        (
            "smtp://user%40example.jp:p%40ss@mail.example.jp:587?starttls=1",
            ("mail.example.jp", 587, False, True, "user@example.jp", "p@ss"),
        ),
        ("smtps://mail.example.jp", ("mail.example.jp", 465, True, False, None, None)),
    ],
)
def test_urls_are_read(url: str, expected: tuple[object, ...]) -> None:
    server = mail.SmtpServer.from_url(url)
    found = (server.host, server.port, server.tls, server.starttls, server.user, server.password)
    assert found == expected


@pytest.mark.parametrize("url", ["http://localhost", "smtp://", "localhost:25"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an SMTP URL"):
        mail.SmtpServer.from_url(url)


def test_a_server_that_cannot_be_reached_is_a_mail_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe closes
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.jp", "b@example.jp", "件名"
    message.set_content("本文")
    with pytest.raises(mail.MailError, match=f"127.0.0.1:{port}"):
        mail.send(f"smtp://127.0.0.1:{port}", message)
