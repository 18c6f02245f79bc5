"""Reports by email as tests send them: a real SMTP client (smtplib) talking to intake's
listener on the platform's inbound mail port."""

from __future__ import annotations

import smtplib
import uuid
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid

from firebreak.launcher import Platform
from tests.alert_client import new_integration
from tests.gateway_client import Api

SENDER = "ops@client.example"


def new_email_integration(
    api: Api, client_id: str, allowed: list[str] | None = None, **settings: object
) -> tuple[dict[str, object], str]:
    """An email integration of the client that takes mail from `allowed` (by default the
    client.example domain), and its address."""
    made = new_integration(
        api,
        client_id,
        kind="email",
        name="Ops mailbox",
        allowed_senders=allowed or ["@client.example"],
        **settings,
    )
    address = made["email_address"]
    assert isinstance(address, str)
    return made, address


def report_mail(
    to: str,
    *,
    sender: str = f"Ops Desk <{SENDER}>",
    subject: str = "Payroll export failed",
    text: str | None = "The 02:00 payroll export to the bank failed twice.",
    html: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    message_id: str | None = None,
) -> EmailMessage:
    """A message as a mail client writes it: text and/or HTML, files attached."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="client.example")
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def smtp(platform: Platform) -> smtplib.SMTP:
    assert platform.inbound_mail_port is not None
    return smtplib.SMTP("127.0.0.1", platform.inbound_mail_port, timeout=30)


def send(platform: Platform, message: EmailMessage) -> tuple[int, bytes]:
    """Sends the message as a mail server would; the reply to its DATA (smtplib raises for a
    refused sender, recipient or message)."""
    with smtp(platform) as client:
        client.ehlo("mx.client.example")
        sender, to = str(message["From"]), str(message["To"])
        address = sender[sender.find("<") + 1 : sender.rfind(">")] if "<" in sender else sender
        code, reply = client.mail(address)
        assert code == 250, reply
        code, reply = client.rcpt(to)
        if code != 250:
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        return client.data(wire(message))


def wire(message: EmailMessage) -> bytes:
    """The message as it travels: lines end in CRLF (RFC 5321)."""
    return message.as_bytes(policy=policy.SMTP)


def unknown_address(domain: str = "localhost") -> str:
    return f"{uuid.uuid4().hex}@{domain}"
