"""Email over SMTP (aiosmtplib): multipart/alternative, the text part first and the HTML second,
so a client shows the richest it can.

The Message-ID is `<{delivery_id}@firebreak>`, the same on every retry, so a mail system that
already has it can drop the copy. `X-Firebreak-Incident` and `X-Firebreak-Reference` let
recipients' filters and ticketing systems file the mail without parsing the subject.

An SMTP reply decides whether to retry: 5xx is permanent, 4xx is "not now". Timeouts and lost
connections are worth retrying. A server lacking what the settings require (STARTTLS, AUTH) is
configuration that no retry fixes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from services.notify.channels import (
    DeliveryFailed,
    EmailSettings,
    Message,
    Target,
    check_delivery_id,
    deliverable,
)


def _one_line(value: str) -> str:
    """A header value may not contain a line break (the email library refuses it, rightly: it
    would start a new header), and a subject built from a reported title might have one."""
    return " ".join(value.split())


def build_email(target: Target, message: Message, *, delivery_id: str, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = _one_line(message.subject)
    email["From"] = sender
    local_part, _, domain = target.address.rpartition("@")
    email["To"] = Address(display_name=target.name, username=local_part, domain=domain)
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = f"<{delivery_id}@firebreak>"
    email["X-Firebreak-Incident"] = _one_line(message.incident_id)
    email["X-Firebreak-Reference"] = _one_line(message.reference)
    # RFC 3834: machine-sent, so out-of-office replies and the like are not sent back.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


def _reply_failure(code: int, reply: str, what: str) -> DeliveryFailed:
    return DeliveryFailed(f"{what}: {code} {reply}".rstrip(), retryable=not 500 <= code < 600)


class EmailChannel:
    """Sends one email per delivery through the configured SMTP server."""

    def __init__(self, settings: EmailSettings) -> None:
        self._settings = settings

    async def deliver(self, target: Target, message: Message, *, delivery_id: str) -> None:
        check_delivery_id(delivery_id)
        deliverable(target, "email")
        settings = self._settings
        email = build_email(target, message, delivery_id=delivery_id, sender=settings.from_address)
        server = f"{settings.host}:{settings.port}"
        try:
            # aiosmtplib's timeout bounds each step; this bounds the whole exchange.
            async with asyncio.timeout(settings.timeout):
                await aiosmtplib.send(
                    email,
                    sender=settings.from_address,
                    recipients=[target.address],
                    hostname=settings.host,
                    port=settings.port,
                    username=settings.username,
                    password=settings.password,
                    start_tls=settings.starttls,
                    timeout=settings.timeout,
                )
        except aiosmtplib.SMTPRecipientsRefused as error:
            refusal = error.recipients[0]
            raise _reply_failure(
                refusal.code, refusal.message, f"{server} refused the recipient"
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise _reply_failure(error.code, error.message, f"{server} answered") from None
        except TimeoutError:
            raise DeliveryFailed(
                f"{server}: no answer within {settings.timeout} s", retryable=True
            ) from None
        except OSError as error:  # aiosmtplib's connect and disconnect errors are among these
            raise DeliveryFailed(f"{server}: {error}", retryable=True) from None
        except aiosmtplib.SMTPException as error:
            raise DeliveryFailed(f"{server}: {error.message}", retryable=False) from None
