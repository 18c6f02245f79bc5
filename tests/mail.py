"""A real SMTP server for the tests (aiosmtpd) that keeps what it receives, and a platform whose
notify sends its pages there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from firebreak.launcher import Platform, free_port
from tests.conftest import start_platform

# Mail to any address at this domain is refused for good (550): a page that bounces.
BOUNCE = "bounce.example"


class Mailbox:
    """What the SMTP server received, by recipient."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mail: list[tuple[str, EmailMessage]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@" + BOUNCE):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"")
        with self._lock:
            self.mail += [(recipient, message) for recipient in envelope.rcpt_tos]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [message for recipient, message in self.mail if recipient == address]


def parts(message: EmailMessage) -> dict[str, str]:
    """The message's text/plain and text/html parts, decoded, by content type."""
    found = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A Mailbox behind a real SMTP server on a free loopback port."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def start_paging_platform(
    var_dir: Path,
    *,
    smtp_port: int,
    database_urls: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Platform:
    """The platform, paging by email through the test's SMTP server, its timers ticking fast."""
    return start_platform(
        var_dir,
        database_urls=database_urls,
        extra_env={
            "FIREBREAK_SMTP_HOST": "127.0.0.1",
            "FIREBREAK_SMTP_PORT": str(smtp_port),
            "FIREBREAK_SMTP_STARTTLS": "false",
            "FIREBREAK_PAGING_TICK_SECONDS": "0.1",
            **(extra_env or {}),
        },
    )
